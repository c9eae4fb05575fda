//! futures and tokio idioms on the loop: `select!` over the crate's futures (`FusedFuture`),
//! one-shot `set_timeout` callbacks, `interval_at`, `Interval::reset*` and `timeout_at` (the
//! last three after tokio's `tests/time_interval.rs` and `time_timeout.rs`).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::run_bounded;
use executor::{
    EventLoop, set_timeout, set_timeout_mut, sleep, spawn, time::interval, time::interval_at,
    time::timeout, time::timeout_at, yield_now,
};
use futures::channel::oneshot;
use futures::future::FusedFuture;
use futures::stream::FusedStream;
use futures::{FutureExt, StreamExt, select};

const MS: Duration = Duration::from_millis(1);

#[test]
fn select_works_on_sleep_timeout_join_handle_and_yield_now() {
    run_bounded(async {
        let mut slow = sleep(Duration::from_secs(60));
        let mut fast = sleep(MS);
        let which = select! {
            () = slow => "slow",
            () = fast => "fast",
        };
        assert_eq!(which, "fast");
        assert!(fast.is_terminated() && !slow.is_terminated());

        let mut task = spawn(async { 7 });
        let mut never = timeout(Duration::from_secs(60), futures::future::pending::<()>());
        let got = select! {
            r = task => r.unwrap(),
            _ = never => unreachable!("a pending future under a 60 s deadline"),
        };
        assert_eq!(got, 7);
        assert!(task.is_terminated() && !never.is_terminated());

        let mut y = yield_now();
        let mut s = sleep(Duration::from_secs(60));
        select! {
            () = y => {},
            () = s => unreachable!(),
        }
        assert!(y.is_terminated());
    });
}

/// In a `select!` loop, a fused sleep that fired is not picked again.
#[test]
fn a_fired_sleep_is_skipped_by_later_selects() {
    run_bounded(async {
        let mut once = sleep(MS);
        let mut ticks = interval(MS);
        assert!(!ticks.is_terminated());
        let mut events = Vec::new();
        let mut after = 0;
        // Until the sleep has been picked (`select!` picks at random among ready branches),
        // then three more rounds: the fired sleep must not be picked again.
        while after < 3 {
            select! {
                () = once => events.push("sleep"),
                _ = ticks.next() => events.push("tick"),
            }
            if events.contains(&"sleep") {
                after += 1;
            }
        }
        assert_eq!(events.iter().filter(|e| **e == "sleep").count(), 1);
        let mut reset = once;
        reset.reset(Instant::now() + MS);
        assert!(!reset.is_terminated(), "a reset sleep is pending again");
        reset.await;
    });
}

#[test]
fn set_timeout_takes_a_one_shot_closure() {
    let got = run_bounded(async {
        let (tx, rx) = oneshot::channel();
        set_timeout(MS, move || tx.send("fired").unwrap());
        rx.await.unwrap()
    });
    assert_eq!(got, "fired");
}

/// `refresh` of a one-shot: before it fires, it postpones (Node.js); after it fired, or from
/// inside its own callback, it does nothing (its callback is gone), where `set_timeout_mut`
/// runs again as Node.js does.
#[test]
fn refresh_of_a_one_shot_postpones_it_but_cannot_run_it_twice() {
    let once_runs = Rc::new(Cell::new(0));
    let mut_runs = Rc::new(Cell::new(0));
    let (o, m) = (once_runs.clone(), mut_runs.clone());
    EventLoop::new().run(move || {
        let me: Rc<Cell<Option<executor::node::TimerHandle>>> = Rc::default();
        let mine = me.clone();
        let t = set_timeout(MS, move || {
            o.set(o.get() + 1);
            let h = mine.take().unwrap();
            assert!(!h.refresh().is_active(), "refresh inside its callback");
        });
        me.set(Some(t.clone()));
        assert!(t.refresh().is_active(), "refresh before it fired postpones");
        let count = m.clone();
        let again: Rc<Cell<Option<executor::node::TimerHandle>>> = Rc::default();
        let a = again.clone();
        let t2 = set_timeout_mut(MS, move || {
            count.set(count.get() + 1);
            if count.get() == 1 {
                let h = a.take().unwrap();
                assert!(h.refresh().is_active());
                a.set(Some(h));
            }
        });
        again.set(Some(t2));
        set_timeout(Duration::from_millis(5), move || {
            assert!(!t.refresh().is_active(), "refresh after it fired");
        });
    });
    assert_eq!(once_runs.get(), 1);
    assert_eq!(mut_runs.get(), 2);
}

/// tokio's `interval_at`: the first tick at `start`, each tick reporting its due time.
#[test]
fn interval_at_ticks_first_at_start() {
    run_bounded(async {
        let start = Instant::now() + Duration::from_millis(3);
        let mut i = interval_at(start, MS);
        assert_eq!(i.tick().await, start);
        assert!(Instant::now() >= start);
        let second = i.tick().await;
        assert!(second > start);
        // A start in the past ticks in the next timers phase.
        let past = Instant::now() - Duration::from_secs(1);
        let mut late = interval_at(past, Duration::from_secs(60));
        assert_eq!(late.tick().await, past);
    });
}

/// tokio's `reset`, `reset_immediately`, `reset_after` and `reset_at` (time_interval.rs): each
/// moves the next tick, dropping a pending one.
#[test]
fn interval_resets_move_the_next_tick() {
    run_bounded(async {
        let period = Duration::from_secs(60);
        let mut i = interval(period);

        let t0 = Instant::now();
        i.reset_immediately();
        let due = i.tick().await;
        assert!(
            due >= t0 && due <= Instant::now(),
            "reset_immediately ticks now"
        );

        i.reset_after(Duration::from_millis(2));
        let due = i.tick().await;
        assert!(due >= t0 + Duration::from_millis(2));
        assert!(due < t0 + period);

        let at = Instant::now() + Duration::from_millis(2);
        i.reset_at(at);
        assert_eq!(i.tick().await, at);

        // `reset`: the next tick is a whole period away again (60 s: it must not come soon).
        i.reset();
        let r = timeout(Duration::from_millis(5), i.tick()).await;
        assert!(r.is_err(), "reset pushed the tick one period out");
    });
}

/// A fired-but-untaken tick is dropped by a reset (tokio: "resets the interval").
#[test]
fn a_reset_drops_a_pending_tick() {
    run_bounded(async {
        let mut i = interval(MS);
        sleep(Duration::from_millis(3)).await; // a tick is waiting
        i.reset_after(Duration::from_secs(60));
        let r = timeout(Duration::from_millis(5), i.tick()).await;
        assert!(r.is_err());
    });
}

/// tokio's `timeout_at`: completes with the future's output before the deadline, `Elapsed`
/// after it; a ready future wins even against a past deadline.
#[test]
fn timeout_at_follows_the_deadline() {
    run_bounded(async {
        let soon = Instant::now() + Duration::from_millis(2);
        let t = timeout_at(soon, futures::future::pending::<()>());
        assert_eq!(t.deadline(), soon);
        assert!(t.await.is_err());
        assert!(Instant::now() >= soon);

        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(timeout_at(later, async { 1 }).await, Ok(1));
        let past = Instant::now() - Duration::from_secs(1);
        assert_eq!(timeout_at(past, async { 2 }).await, Ok(2));
        assert!(timeout_at(past, sleep(MS)).await.is_err());
    });
}

#[test]
fn futures_combinators_take_the_crates_futures() {
    run_bounded(async {
        let (a, b) = futures::join!(spawn(async { 1 }), sleep(MS).map(|()| 2));
        assert_eq!((a.unwrap(), b), (1, 2));
        let first = futures::future::select(sleep(Duration::from_secs(60)), yield_now()).await;
        assert!(matches!(first, futures::future::Either::Right(_)));
    });
}
