//! `Spawner`: work put onto a loop from other threads (tokio's `Handle::spawn`).

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{bounded, run_bounded};
use executor::{EventLoop, Spawner, offload, sleep, spawner};

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn spawner_and_remote_handles_are_send() {
    assert_send_sync_clone::<Spawner>();
    assert_send_sync_clone::<executor::task::AbortHandle>();
    fn assert_send<T: Send>() {}
    assert_send::<executor::task::RemoteJoinHandle<u32>>();
}

#[test]
fn a_thread_spawns_onto_a_running_loop_and_gets_the_output() {
    bounded(20, || {
        let ev = EventLoop::new();
        let s = ev.spawner();
        let out = ev.block_on(async move {
            let worker = std::thread::spawn(move || {
                // A sleep is `!Send`: the future is made on the loop.
                let h = s
                    .spawn_local_with(|| async {
                        sleep(Duration::from_millis(1)).await;
                        21
                    })
                    .unwrap();
                // Awaited on the worker thread, off any loop.
                futures::executor::block_on(h).unwrap() * 2
            });
            // The loop must keep running for the worker's task to make progress; poll the
            // worker's end without blocking the loop.
            let (tx, rx) = futures::channel::oneshot::channel();
            std::thread::spawn(move || tx.send(worker.join().unwrap()));
            rx.await.unwrap()
        });
        assert_eq!(out, 42);
    });
}

/// The offload case of the issue: a worker thread's job gets back onto the loop, where the
/// continuation can touch `!Send` loop state.
#[test]
fn an_offload_job_sends_a_continuation_back_to_the_loop() {
    let seen = run_bounded(async {
        let s = spawner();
        let on_loop = std::thread::current().id();
        let h = offload(move || {
            let sum: u64 = (1..=100).sum();
            s.spawn_local_with(move || async move {
                let local = Rc::new(sum); // `!Send`, fine: built on the loop
                assert_eq!(std::thread::current().id(), on_loop);
                *local
            })
            .unwrap()
        })
        .await
        .unwrap();
        h.await.unwrap()
    });
    assert_eq!(seen, 5050);
}

/// Work from another thread keeps the loop alive until the task it made has finished, though
/// nothing on the loop waits for it: `run` returns only after the task's sleep and its write.
#[test]
fn work_in_flight_keeps_the_loop_alive() {
    let ev = EventLoop::new();
    let s = ev.spawner();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let h = std::thread::spawn(move || {
        s.spawn_local_with(move || async move {
            sleep(Duration::from_millis(5)).await;
            d.store(true, Ordering::SeqCst);
        })
        .unwrap()
    })
    .join()
    .unwrap();
    ev.run(|| {});
    assert!(
        done.load(Ordering::SeqCst),
        "the loop ended with the job in flight"
    );
    assert!(ev.block_on(h).is_ok());
}

#[test]
fn a_panic_on_the_loop_comes_back_as_a_join_error() {
    let e = run_bounded(async {
        let s = spawner();
        std::thread::spawn(move || s.spawn(async { panic!("remote boom") }).unwrap())
            .join()
            .unwrap()
            .await
            .unwrap_err()
    });
    assert!(e.is_panic());
    assert_eq!(e.panic_message(), Some("remote boom"));
}

#[test]
fn a_remote_handle_aborts_its_task_from_another_thread() {
    run_bounded(async {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let h = spawner()
            .spawn(async move {
                futures::future::pending::<()>().await;
                drop(tx);
            })
            .unwrap();
        executor::yield_now().await;
        let h = std::thread::spawn(move || {
            h.abort();
            h
        })
        .join()
        .unwrap();
        assert!(h.await.unwrap_err().is_cancelled());
        assert!(rx.await.is_err(), "the aborted future was dropped");
    });
}

#[test]
fn spawning_onto_a_dropped_loop_is_a_clear_error() {
    let ev = EventLoop::new();
    let s = ev.spawner();
    assert!(!s.is_loop_gone());
    drop(ev);
    assert!(s.is_loop_gone());
    let err = s.spawn(async {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the event loop this Spawner points at has been dropped"
    );
}

/// Work queued on a loop that is then dropped unrun: the handle says "cancelled", it does not
/// hang.
#[test]
fn work_queued_on_a_loop_dropped_before_it_ran_is_cancelled() {
    let ev = EventLoop::new();
    let s = ev.spawner();
    let h = std::thread::spawn(move || s.spawn(async { 1 }).unwrap())
        .join()
        .unwrap();
    drop(ev);
    let r = bounded(10, move || futures::executor::block_on(h));
    assert!(r.unwrap_err().is_cancelled());
}

/// Work sent while the loop is not running runs when it next runs, in arrival order.
#[test]
fn jobs_run_in_arrival_order_when_the_loop_next_runs() {
    let ev = EventLoop::new();
    let s = ev.spawner();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..5)
        .map(|i| {
            let (s, log) = (s.clone(), log.clone());
            std::thread::spawn(move || s.run(move || log.lock().unwrap().push(i)).unwrap())
                .join()
                .unwrap()
        })
        .collect();
    ev.run(|| {});
    assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]);
    for h in handles {
        assert!(ev.block_on(h).is_ok());
    }
}
