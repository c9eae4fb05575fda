//! `Bridge`: synchronous calls into async code on one persistent worker; panics come back, the
//! worker refuses calls from itself, concurrent callers work, and the drop joins the worker.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{EXIT_FLAG, LIMIT, SlowDropFlag, within};
use executor::{threads::Bridge, threads::BridgeError};

#[test]
fn bridge_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Bridge>();
    assert_send::<BridgeError>();
}

#[test]
fn calls_return_results_and_reuse_one_worker() {
    within(LIMIT, || {
        let bridge = Bridge::new().unwrap();
        let me = thread::current().id();
        let mut workers = Vec::new();
        for i in 0..20u64 {
            let (out, worker) = bridge
                .call(move || async move {
                    executor::sleep(Duration::from_millis(1)).await;
                    (i * 3, thread::current().id())
                })
                .unwrap();
            assert_eq!(out, i * 3);
            workers.push(worker);
        }
        assert!(
            workers.iter().all(|w| *w == workers[0]),
            "the worker changed"
        );
        assert_ne!(workers[0], me);
        assert!(!bridge.is_worker_thread());
    });
}

#[test]
fn the_future_may_be_not_send_and_use_the_whole_loop() {
    within(LIMIT, || {
        let bridge = Bridge::new().unwrap();
        let out = bridge
            .call(|| async {
                let log = Rc::new(RefCell::new(Vec::new()));
                let l = log.clone();
                executor::set_immediate(move || l.borrow_mut().push("immediate"));
                let child = executor::spawn(async { 20 });
                let off = executor::offload(|| 1).await.unwrap();
                executor::yield_now().await;
                log.borrow_mut().push("resumed");
                let log = log.borrow().clone();
                (child.await.unwrap() + off, log)
            })
            .unwrap();
        assert_eq!(out, (21, vec!["immediate", "resumed"]));
    });
}

#[test]
fn a_panic_comes_back_and_the_bridge_stays_usable() {
    within(LIMIT, || {
        let bridge = Bridge::new().unwrap();
        let err = bridge
            .call(|| async {
                executor::yield_now().await;
                if true {
                    panic!("async fn failed");
                }
                0u8
            })
            .unwrap_err();
        assert!(matches!(err, BridgeError::Panicked(_)));
        assert_eq!(err.panic_message(), Some("async fn failed"));
        // A panic while building the future is caught too.
        let err = bridge
            .call(|| -> std::future::Ready<u8> { panic!("no future for you") })
            .unwrap_err();
        assert_eq!(err.panic_message(), Some("no future for you"));
        assert_eq!(
            bridge.call(|| async { "still here" }).unwrap(),
            "still here"
        );
    });
}

#[test]
fn a_call_from_the_worker_itself_is_refused() {
    within(LIMIT, || {
        let bridge = Arc::new(Bridge::new().unwrap());
        let b = bridge.clone();
        let inner = bridge
            .call(move || async move {
                assert!(b.is_worker_thread());
                b.call(|| async { 1 })
            })
            .unwrap();
        let err = inner.unwrap_err();
        assert!(matches!(err, BridgeError::Reentrant), "{err:?}");
        assert!(err.to_string().contains("deadlock"));
        assert_eq!(bridge.call(|| async { 2 }).unwrap(), 2);
    });
}

#[test]
fn concurrent_callers_interleave_on_the_worker_loop() {
    within(LIMIT, || {
        let bridge = Arc::new(Bridge::new().unwrap());
        let callers = 4;
        let start = Arc::new(Barrier::new(callers));
        let t = Instant::now();
        let threads: Vec<_> = (0..callers as u64)
            .map(|c| {
                let (bridge, start) = (bridge.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    // One slow call each: they overlap on the worker's loop.
                    let slow = bridge
                        .call(move || async move {
                            executor::sleep(Duration::from_millis(300)).await;
                            c
                        })
                        .unwrap();
                    assert_eq!(slow, c);
                    for i in 0..25u64 {
                        let v = bridge
                            .call(move || async move {
                                executor::yield_now().await;
                                c * 100 + i
                            })
                            .unwrap();
                        assert_eq!(v, c * 100 + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Serialized, the four slow calls alone would take 1.2 s.
        let elapsed = t.elapsed();
        assert!(elapsed < Duration::from_millis(1000), "took {elapsed:?}");
    });
}

#[test]
fn work_left_behind_by_a_call_keeps_running_between_calls() {
    within(LIMIT, || {
        let bridge = Bridge::new().unwrap();
        thread_local! {
            static FIRED: Cell<bool> = const { Cell::new(false) };
        }
        bridge
            .call(|| async {
                executor::set_timeout(Duration::from_millis(10), || FIRED.with(|f| f.set(true)));
            })
            .unwrap();
        thread::sleep(Duration::from_millis(100));
        assert!(bridge.call(|| async { FIRED.with(Cell::get) }).unwrap());
    });
}

#[test]
fn calls_are_served_while_left_behind_work_keeps_the_worker_loop_busy() {
    within(LIMIT, || {
        let bridge = Bridge::new().unwrap();
        thread_local! {
            static TICKS: Cell<u32> = const { Cell::new(0) };
        }
        // A referenced interval keeps the worker's loop alive: requests now reach it through
        // the loop's poll phase instead of a parked thread.
        bridge
            .call(|| async {
                executor::set_interval(Duration::from_millis(2), || {
                    TICKS.with(|t| t.set(t.get() + 1));
                });
            })
            .unwrap();
        for i in 0..200u32 {
            assert_eq!(bridge.call(move || async move { i }).unwrap(), i);
        }
        thread::sleep(Duration::from_millis(50));
        let ticks = bridge.call(|| async { TICKS.with(Cell::get) }).unwrap();
        assert!(
            ticks >= 5,
            "the interval barely ran between calls: {ticks} ticks"
        );
    });
}

#[test]
fn dropping_the_bridge_joins_its_worker_even_with_work_pending() {
    within(LIMIT, || {
        let bridge = Bridge::new().unwrap();
        let exited = Arc::new(AtomicBool::new(false));
        let flag = exited.clone();
        bridge
            .call(move || async move {
                EXIT_FLAG.with(|f| *f.borrow_mut() = Some(SlowDropFlag(flag)));
                // Left-behind work must not hold the drop up.
                executor::set_timeout(Duration::from_secs(3600), || {});
                executor::spawn(executor::sleep(Duration::from_secs(3600))).detach();
            })
            .unwrap();
        assert!(!exited.load(Ordering::SeqCst));
        drop(bridge);
        assert!(
            exited.load(Ordering::SeqCst),
            "the worker outlived the bridge"
        );
    });
}

#[test]
fn the_child_process_path_gives_the_same_answer() {
    within(LIMIT, || {
        let exe = common::example("sync_bridge");
        let out = std::process::Command::new(&exe)
            .args(["--child", "41"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "42");
        let bad = std::process::Command::new(&exe)
            .args(["--child", "forty-one"])
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2));
        assert!(
            String::from_utf8(bad.stderr)
                .unwrap()
                .contains("unsigned integer")
        );
    });
}

#[test]
fn a_panicking_callback_on_the_worker_loop_does_not_stop_the_bridge() {
    within(LIMIT, || {
        let bridge = Bridge::new().unwrap();
        // The callback panics while this call is still in flight (sleeping).
        let v = bridge.call(|| async {
            executor::set_timeout(Duration::from_millis(1), || panic!("a stray timer fails"));
            executor::sleep(Duration::from_millis(50)).await;
            9
        });
        assert_eq!(v.unwrap(), 9, "the call in flight completed");
        assert_eq!(
            bridge.call(|| async { 10 }).unwrap(),
            10,
            "and the bridge serves on"
        );
        // Also when the panic comes after the call settled, while the worker is idle.
        bridge
            .call(|| async {
                executor::set_timeout(Duration::from_millis(1), || panic!("later"));
            })
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Let the timer fire: ask the worker to wait a little on its own loop.
        bridge
            .call(move || async move {
                executor::sleep(Duration::from_millis(20)).await;
                tx.send(()).unwrap();
            })
            .unwrap();
        rx.recv().unwrap();
        assert_eq!(bridge.call(|| async { 11 }).unwrap(), 11);
    });
}
