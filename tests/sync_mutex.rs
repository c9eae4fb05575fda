//! `sync::Mutex`: FIFO hand-off, no barging, cancel safety, and waking only on hand-off.

mod common;

use std::rc::Rc;
use std::time::Duration;

use common::{CountPolls, Log, run_bounded, settle};
use executor::sync::Mutex;
use executor::{sleep, spawn, yield_now};

#[test]
fn waiters_get_the_lock_in_arrival_order_round_after_round() {
    const TASKS: usize = 5;
    const ROUNDS: usize = 4;
    let log = Log::new();
    run_bounded(async {
        let m = Rc::new(Mutex::new(()));
        let held = m.lock().await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let (m, log) = (m.clone(), log.clone());
                spawn(async move {
                    for _ in 0..ROUNDS {
                        let g = m.lock().await;
                        log.push(i);
                        // Others run (and queue) while we hold the lock.
                        yield_now().await;
                        drop(g);
                        // No await before re-locking: a barging lock would hand it right back.
                    }
                })
            })
            .collect();
        settle().await;
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
    });
    let expected: Vec<usize> = (0..ROUNDS).flat_map(|_| 0..TASKS).collect();
    assert_eq!(log.snapshot(), expected);
}

#[test]
fn a_newcomer_cannot_barge_past_a_queued_waiter() {
    let log = Log::new();
    run_bounded(async {
        let m = Rc::new(Mutex::new(Vec::new()));
        let held = m.lock().await;
        let (m2, log2) = (m.clone(), log.clone());
        let waiter = spawn(async move {
            m2.lock().await.push("waiter");
            log2.push("waiter");
        });
        settle().await;
        drop(held);
        // The lock now belongs to the waiter, which has not run yet.
        assert!(
            m.try_lock().is_err(),
            "try_lock barged past a queued waiter"
        );
        m.lock().await.push("newcomer");
        log.push("newcomer");
        waiter.await.unwrap();
        assert_eq!(*m.lock().await, ["waiter", "newcomer"]);
    });
    assert_eq!(log.snapshot(), ["waiter", "newcomer"]);
}

#[test]
fn a_waiter_dropped_when_handed_the_lock_passes_it_on() {
    run_bounded(async {
        let m = Rc::new(Mutex::new(Vec::new()));
        let held = m.lock().await;
        let first = spawn({
            let m = m.clone();
            async move { m.lock().await.push("first") }
        });
        let second = spawn({
            let m = m.clone();
            async move { m.lock().await.push("second") }
        });
        settle().await;
        drop(held); // handed to `first`, whose task is queued but not yet polled...
        first.abort(); // ...and dropped before it could see it
        assert!(first.await.unwrap_err().is_cancelled());
        second.await.unwrap();
        assert_eq!(*m.try_lock().expect("lock leaked"), ["second"]);
    });
}

#[test]
fn a_waiter_dropped_while_queued_leaves_the_queue() {
    let log = Log::new();
    run_bounded(async {
        let m = Rc::new(Mutex::new(()));
        let held = m.lock().await;
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let (m, log) = (m.clone(), log.clone());
                spawn(async move {
                    let _g = m.lock().await;
                    log.push(name);
                })
            })
            .collect();
        settle().await;
        tasks[1].abort();
        drop(held);
        for t in tasks {
            let _ = t.await;
        }
        assert!(m.try_lock().is_ok());
    });
    assert_eq!(log.snapshot(), ["a", "c"]);
}

#[test]
fn a_waiting_task_is_polled_only_when_the_lock_is_handed_to_it() {
    run_bounded(async {
        let m = Rc::new(Mutex::new(0));
        let held = m.lock().await;
        let (waiter, polls) = CountPolls::new({
            let m = m.clone();
            async move { *m.lock().await += 1 }
        });
        let waiter = spawn(waiter);
        // Keep the loop busy with timers and check phases while the lock is held.
        let busy = spawn(async {
            for _ in 0..20 {
                yield_now().await;
                sleep(Duration::from_micros(200)).await;
            }
        });
        busy.await.unwrap();
        assert_eq!(polls.get(), 1, "the waiter was polled while still waiting");
        drop(held);
        waiter.await.unwrap();
        assert_eq!(
            polls.get(),
            2,
            "one poll to queue, one when handed the lock"
        );
        assert_eq!(*m.lock().await, 1);
    });
}

#[test]
fn a_guard_held_across_a_timer_does_not_block_unrelated_tasks() {
    let log = Log::new();
    run_bounded(async {
        let m = Rc::new(Mutex::new(()));
        let holder = spawn({
            let (m, log) = (m.clone(), log.clone());
            async move {
                let _g = m.lock().await;
                log.push("holder: locked");
                sleep(Duration::from_millis(20)).await;
                log.push("holder: unlocking");
            }
        });
        let contender = spawn({
            let (m, log) = (m.clone(), log.clone());
            async move {
                let _g = m.lock().await;
                log.push("contender: locked");
            }
        });
        let unrelated = spawn({
            let log = log.clone();
            async move {
                for _ in 0..3 {
                    yield_now().await;
                }
                log.push("unrelated: ran");
            }
        });
        for t in [holder, contender, unrelated] {
            t.await.unwrap();
        }
    });
    assert_eq!(
        log.snapshot(),
        [
            "holder: locked",
            "unrelated: ran",
            "holder: unlocking",
            "contender: locked"
        ]
    );
}

#[test]
fn a_task_panicking_with_the_guard_releases_the_lock() {
    run_bounded(async {
        let m = Rc::new(Mutex::new(1));
        let panicker = spawn({
            let m = m.clone();
            async move {
                let _g = m.lock().await;
                yield_now().await;
                panic!("boom while holding the lock");
            }
        });
        let next = spawn({
            let m = m.clone();
            async move { *m.lock().await + 1 }
        });
        assert!(panicker.await.unwrap_err().is_panic());
        assert_eq!(next.await.unwrap(), 2);
    });
}

#[test]
fn try_lock_get_mut_into_inner_and_debug() {
    let mut m = Mutex::new(String::from("a"));
    m.get_mut().push('b');
    {
        let g = m.try_lock().unwrap();
        assert_eq!(format!("{m:?}"), r#"Mutex { value: <locked> }"#);
        assert!(m.try_lock().is_err());
        assert_eq!(*g, "ab");
    }
    assert_eq!(format!("{m:?}"), r#"Mutex { value: "ab" }"#);
    assert_eq!(m.into_inner(), "ab");
}

/// For contrast: `futures::lock::Mutex` wakes a waiter on unlock but does not hand the lock to
/// it, so a newcomer takes it first. This is the behaviour `sync::Mutex` rules out.
#[test]
fn futures_lock_mutex_lets_a_newcomer_barge_for_contrast() {
    run_bounded(async {
        let m = Rc::new(futures::lock::Mutex::new(()));
        let held = m.lock().await;
        let waiter = spawn({
            let m = m.clone();
            async move { drop(m.lock().await) }
        });
        settle().await;
        drop(held);
        assert!(m.try_lock().is_some(), "futures' Mutex became fair");
        waiter.await.unwrap();
    });
}
