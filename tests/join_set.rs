//! `JoinSet` and `AbortHandle`: tokio's `tests/task_join_set.rs`, ported to this loop (real
//! time in milliseconds where tokio uses paused seconds; the order of completion is what is
//! asserted, never how long anything took).

mod common;

use std::time::Duration;

use common::{bounded, run_bounded};
use executor::{EventLoop, sleep, spawn, task::JoinSet};
use futures::channel::oneshot;
use futures::future::pending;

#[test]
fn test_with_sleep() {
    run_bounded(async {
        let mut set = JoinSet::new();
        for i in 0..10 {
            set.spawn(async move { i });
            assert_eq!(set.len(), 1 + i);
        }
        set.detach_all();
        assert_eq!(set.len(), 0);
        assert!(set.join_next().await.is_none());

        for round in 0..2 {
            for i in 0..10 {
                set.spawn(async move {
                    sleep(Duration::from_millis(i as u64)).await;
                    i
                });
            }
            let mut seen = [false; 10];
            while let Some(i) = set.join_next().await.transpose().unwrap() {
                seen[i] = true;
            }
            assert!(seen.iter().all(|s| *s), "round {round}: {seen:?}");
            assert!(set.join_next().await.is_none());
        }
    });
}

#[test]
fn test_abort_on_drop() {
    run_bounded(async {
        let mut set = JoinSet::new();
        let mut recvs = Vec::new();
        for _ in 0..16 {
            let (send, recv) = oneshot::channel::<()>();
            recvs.push(recv);
            set.spawn(async move {
                pending::<()>().await;
                drop(send);
            });
        }
        drop(set);
        for recv in recvs {
            assert!(recv.await.is_err(), "an aborted task dropped its sender");
        }
    });
}

#[test]
fn alternating() {
    run_bounded(async {
        let mut set = JoinSet::new();
        set.spawn(async {});
        set.spawn(async {});
        assert_eq!(set.len(), 2);
        for _ in 0..16 {
            let () = set.join_next().await.unwrap().unwrap();
            assert_eq!(set.len(), 1);
            set.spawn(async {});
            assert_eq!(set.len(), 2);
        }
    });
}

#[test]
fn abort_tasks() {
    run_bounded(async {
        let mut set = JoinSet::new();
        for i in 0..16u64 {
            let abort = set.spawn(async move {
                sleep(Duration::from_millis(i)).await;
                i
            });
            if i % 2 != 0 {
                abort.abort();
            }
        }
        let (mut cancelled, mut completed) = (0, 0);
        while let Some(r) = set.join_next().await {
            match r {
                Ok(i) => {
                    assert_eq!(i % 2, 0);
                    completed += 1;
                }
                Err(e) => {
                    assert!(e.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        assert_eq!((cancelled, completed), (8, 8));
    });
}

/// tokio's `runtime_gone`: the tasks of a dropped loop are cancelled, and a set holding their
/// handles says so on another loop.
#[test]
fn loop_gone() {
    let mut set = JoinSet::new();
    {
        let ev = EventLoop::new();
        set.insert(ev.spawn(async { 1 }));
        drop(ev);
    }
    let r = EventLoop::new().block_on(set.join_next());
    assert!(r.unwrap().unwrap_err().is_cancelled());
}

#[test]
fn join_all() {
    let out = run_bounded(async {
        let mut set = JoinSet::new();
        for _ in 0..5 {
            set.spawn(async { 1 });
        }
        set.join_all().await
    });
    assert_eq!(out, [1; 5]);
}

#[test]
fn task_panics() {
    run_bounded(async {
        let mut set: JoinSet<()> = JoinSet::new();
        let (tx, mut rx) = oneshot::channel();
        set.spawn(async move {
            sleep(Duration::from_millis(20)).await;
            tx.send(()).unwrap();
        });
        set.spawn(async {
            sleep(Duration::from_millis(1)).await;
            panic!("boom");
        });
        let panic = spawn(set.join_all()).await.unwrap_err();
        assert!(panic.is_panic());
        assert_eq!(panic.panic_message(), Some("boom"));
        // The set was dropped with the panicking `join_all`: the slow task was aborted.
        assert!(rx.try_recv().is_err());
    });
}

#[test]
fn abort_all() {
    run_bounded(async {
        let mut set: JoinSet<()> = JoinSet::new();
        for _ in 0..5 {
            set.spawn(pending());
        }
        for _ in 0..5 {
            set.spawn(sleep(Duration::from_millis(1)));
        }
        // Five pending tasks, five finished.
        sleep(Duration::from_millis(5)).await;
        set.abort_all();
        assert_eq!(set.len(), 10);
        let (mut count, mut cancelled) = (0, 0);
        while let Some(r) = set.join_next().await {
            if let Err(e) = r {
                assert!(e.is_cancelled());
                cancelled += 1;
            }
            count += 1;
        }
        assert_eq!((count, cancelled), (10, 5));
        assert!(set.is_empty());
    });
}

#[test]
fn try_join_next() {
    run_bounded(async {
        const N: usize = 1000;
        let mut set = JoinSet::new();
        let gate = std::rc::Rc::new(executor::sync::Notify::new());
        for _ in 0..N {
            let gate = gate.clone();
            set.spawn(async move { gate.notified().await });
        }
        common::settle().await;
        assert!(set.try_join_next().is_none());
        gate.notify_waiters();
        common::settle().await;
        let mut count = 0;
        while let Some(r) = set.try_join_next() {
            r.unwrap();
            count += 1;
        }
        assert_eq!(count, N);
        assert!(set.is_empty());
    });
}

#[test]
fn extend() {
    run_bounded(async {
        let mut set: JoinSet<_> = (0..5).map(|i| async move { i }).collect();
        set.extend((5..10).map(|i| async move { i }));
        let mut seen = [false; 10];
        while let Some(r) = set.join_next().await {
            seen[r.unwrap()] = true;
        }
        assert!(seen.iter().all(|s| *s));
    });
}

#[test]
fn shutdown_aborts_and_empties_the_set() {
    run_bounded(async {
        let mut set = JoinSet::new();
        let mut receivers = Vec::new();
        for _ in 0..8 {
            let (tx, rx) = oneshot::channel::<()>();
            receivers.push(rx);
            set.spawn(async move {
                pending::<()>().await;
                drop(tx);
            });
        }
        assert!(set.try_join_next().is_none());
        set.shutdown().await;
        assert!(set.is_empty());
        for rx in receivers {
            assert!(rx.await.is_err());
        }
    });
}

/// An `AbortHandle` sent to another thread cancels the task through the loop's inbox.
#[test]
fn an_abort_handle_cancels_from_another_thread() {
    bounded(10, || {
        run_bounded(async {
            let (tx, rx) = oneshot::channel::<()>();
            let task = spawn(async move {
                pending::<()>().await;
                drop(tx);
            });
            let abort = task.abort_handle();
            assert_eq!(abort.id(), task.id());
            std::thread::spawn(move || abort.abort()).join().unwrap();
            assert!(task.await.unwrap_err().is_cancelled());
            assert!(rx.await.is_err());
        })
    });
}

/// Aborting a task that finished (its id is never reused) does nothing, from any thread.
#[test]
fn a_stale_abort_handle_does_nothing() {
    run_bounded(async {
        let done = spawn(async { 1 });
        let abort = done.abort_handle();
        assert_eq!(done.await.unwrap(), 1);
        let later = spawn(async {
            executor::yield_now().await;
            2
        });
        abort.abort();
        std::thread::spawn(move || abort.abort()).join().unwrap();
        assert_eq!(later.await.unwrap(), 2);
    });
}
