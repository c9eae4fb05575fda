//! `sync::Semaphore`: permits are handed out in arrival order, `acquire_many` included.

mod common;

use std::rc::Rc;

use common::{Log, run_bounded, settle};
use executor::sync::Semaphore;
use executor::{spawn, yield_now};

/// Spawns a task that takes `n` permits, logs, holds them across one yield, logs and releases.
fn worker(
    sem: &Rc<Semaphore>,
    log: &Log<String>,
    name: &'static str,
    n: usize,
) -> executor::JoinHandle<()> {
    let (sem, log) = (sem.clone(), log.clone());
    spawn(async move {
        let permit = sem.acquire_many(n).await.unwrap();
        log.push(format!("{name} in"));
        yield_now().await;
        log.push(format!("{name} out"));
        drop(permit);
    })
}

#[test]
fn a_large_request_at_the_head_holds_back_smaller_ones_behind_it() {
    let log = Log::new();
    run_bounded(async {
        let sem = Rc::new(Semaphore::new(2));
        let held = sem.acquire_many(2).await.unwrap();
        let big = worker(&sem, &log, "big(3)", 3);
        let small = worker(&sem, &log, "small(1)", 1);
        settle().await;
        drop(held);
        settle().await;
        // Two permits are free, but the head wants three, and `small` must not overtake it.
        assert_eq!(sem.available_permits(), 2);
        assert!(sem.try_acquire().is_err());
        assert!(log.snapshot().is_empty());
        sem.add_permits(1);
        big.await.unwrap();
        small.await.unwrap();
        assert_eq!(sem.available_permits(), 3);
    });
    assert_eq!(
        log.snapshot(),
        ["big(3) in", "big(3) out", "small(1) in", "small(1) out"]
    );
}

#[test]
fn mixed_requests_are_served_in_arrival_order() {
    let log = Log::new();
    run_bounded(async {
        let sem = Rc::new(Semaphore::new(0));
        let names = ["a2", "b1", "c3", "d1", "e2"];
        let sizes = [2, 1, 3, 1, 2];
        let tasks: Vec<_> = names
            .iter()
            .zip(sizes)
            .map(|(name, n)| worker(&sem, &log, name, n))
            .collect();
        settle().await;
        // Enough for a2 and b1 only; c3 is then the head and needs 3.
        sem.add_permits(4);
        assert_eq!(sem.available_permits(), 1);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(sem.available_permits(), 4);
    });
    assert_eq!(
        log.snapshot(),
        [
            "a2 in", "b1 in", // 4 permits: a2 and b1 fit, 1 left; c3 (3) heads the queue
            "a2 out", "c3 in", // 1 + 2 = 3: c3's turn, at once (before b1 resumes)
            "b1 out", "d1 in", // 1: d1
            "c3 out", "e2 in", // 3: e2 takes 2
            "d1 out", "e2 out",
        ]
    );
}

#[test]
fn a_waiter_dropped_after_its_grant_returns_the_permits_to_the_next() {
    let log = Log::new();
    run_bounded(async {
        let sem = Rc::new(Semaphore::new(0));
        let first = worker(&sem, &log, "first", 2);
        let second = worker(&sem, &log, "second", 2);
        settle().await;
        sem.add_permits(2); // granted to `first`, not yet polled
        first.abort();
        second.await.unwrap();
        assert_eq!(sem.available_permits(), 2);
    });
    assert_eq!(log.snapshot(), ["second in", "second out"]);
}

#[test]
fn try_acquire_and_forget() {
    let sem = Semaphore::new(3);
    let two = sem.try_acquire_many(2).unwrap();
    assert_eq!(two.num_permits(), 2);
    assert!(sem.try_acquire_many(2).is_err());
    two.forget();
    assert_eq!(sem.available_permits(), 1);
    drop(sem.try_acquire().unwrap());
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(
        format!("{sem:?}"),
        "Semaphore { permits: 1, waiters: 0, closed: false }"
    );
}

#[test]
fn a_request_that_can_never_be_granted_panics_instead_of_waiting_for_ever() {
    let r = std::panic::catch_unwind(|| {
        let sem = executor::sync::Semaphore::new(2);
        drop(sem.acquire_many(usize::MAX));
    });
    let msg = r.unwrap_err();
    let msg = msg
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(msg.contains("can never be granted"), "{msg}");
}
