//! Wakers are Send + Sync: a wake from another thread reaches a sleeping loop at once, and a
//! waker that outlives its loop is harmless.

mod common;
use common::bounded;

use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use executor::EventLoop;

#[test]
fn wake_from_another_thread_wakes_a_sleeping_loop() {
    let waited = bounded(10, || {
        let ev = EventLoop::new();
        ev.block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel();
            let t = Instant::now();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                tx.send(42).unwrap();
            });
            // Nothing else is scheduled: the loop sleeps in the poll phase with no timeout
            // until the other thread's wake interrupts it.
            assert_eq!(rx.await.unwrap(), 42);
            t.elapsed()
        })
    });
    assert!(waited >= Duration::from_millis(30));
}

#[test]
fn spawned_task_woken_from_other_thread_keeps_run_alive() {
    let got = bounded(10, || {
        let ev = EventLoop::new();
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let h = ev.spawn(async move { rx.await.unwrap() });
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            tx.send(9).unwrap();
        });
        ev.run(|| {});
        ev.block_on(h).unwrap()
    });
    assert_eq!(got, 9);
}

#[test]
fn waker_outliving_its_loop_is_harmless() {
    bounded(10, || {
        let ev = EventLoop::new();
        let mut stolen: Option<Waker> = None;
        ev.block_on(futures::future::poll_fn(|cx| {
            if stolen.is_none() {
                stolen = Some(cx.waker().clone());
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        }));
        let h = ev.spawn(std::future::pending::<()>());
        let task_waker: Waker = ev.block_on(futures::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        drop(h);
        drop(ev);
        let w = stolen.unwrap();
        w.wake_by_ref();
        task_waker.wake_by_ref();
        // Wake and drop on another thread too.
        thread::spawn(move || {
            w.wake();
            task_waker.wake();
        })
        .join()
        .unwrap();
    });
}

#[test]
fn idle_loop_waiting_for_a_far_timer_does_not_spin() {
    let stats = bounded(10, || {
        let ev = EventLoop::new();
        ev.block_on(async {
            executor::sleep(Duration::from_millis(300)).await;
        });
        ev.stats()
    });
    // One blocking wait (plus at most a couple of early returns), not one per millisecond.
    assert!(
        stats.os_waits <= 5,
        "the loop woke {} times while idle for 300 ms",
        stats.os_waits
    );
}
