//! Timers-phase rules of the async API where it has no Node.js counterpart to follow.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{busy, run_bounded};

/// Node.js's `listOnTimeout` runs the timer it picked next even if the drain before it
/// refreshed it (tests/scenarios/61). A `Sleep` reset in that drain is different: it keeps the
/// new deadline instead of completing at once.
#[test]
fn a_sleep_reset_by_the_drain_before_its_turn_keeps_its_new_deadline() {
    run_bounded(async {
        let a = executor::sleep(Duration::from_millis(10));
        let b = Rc::new(RefCell::new(executor::sleep(Duration::from_millis(10))));
        let new_deadline = Rc::new(RefCell::new(None));
        let (b2, nd) = (b.clone(), new_deadline.clone());
        // Both sleeps are in the 10 ms list, b after a; make both overdue before the loop runs.
        let waiter = executor::spawn(async move {
            a.await;
            // Runs in the drain after a fires, before the timers phase reaches b.
            let d = Instant::now() + Duration::from_millis(30);
            b2.borrow_mut().reset(d);
            *nd.borrow_mut() = Some(d);
        });
        busy(Duration::from_millis(20));
        // Wait for b, re-polling it through the shared cell.
        std::future::poll_fn(|cx| Pin::new(&mut *b.borrow_mut()).poll(cx)).await;
        let done = Instant::now();
        waiter.await.expect("the waiter task finished");
        let d = new_deadline.borrow().expect("a completed before b");
        assert!(
            done >= d,
            "b completed {:?} before its new deadline",
            d - done
        );
    });
}

/// A loop that only resumes a yielding task skips the timers phase's clock read while no timer
/// can be due (`time/deadline.rs`); it must still run each timer in the first timers phase after
/// its due time, never before it. Between two stamps of the yielding task a timers phase runs,
/// so when a sleep completes, every stamp but the last one before it must precede its deadline
/// (had one not, the timers phase right after it would have seen the sleep due).
#[test]
fn a_loop_of_yields_runs_each_timer_in_the_first_timers_phase_after_it_is_due() {
    use std::cell::Cell;
    run_bounded(async {
        let now = Instant::now();
        // The yielding task's last two stamps, `Instant::now()` right before each yield.
        let stamps = Rc::new(Cell::new((now, now)));
        let done = Rc::new(Cell::new(false));
        let (s, d) = (stamps.clone(), done.clone());
        let yielder = executor::spawn(async move {
            while !d.get() {
                s.set((s.get().1, Instant::now()));
                executor::yield_now().await;
            }
        });
        for i in 0..50u64 {
            let sleep = executor::sleep(Duration::from_micros(100 + 37 * i));
            let due = sleep.deadline();
            sleep.await;
            let fired = Instant::now();
            assert!(fired >= due, "sleep {i} completed {:?} early", due - fired);
            let (before_last, _) = stamps.get();
            assert!(
                before_last < due,
                "sleep {i} was due {:?} before a timers phase that did not run it",
                before_last - due
            );
        }
        done.set(true);
        yielder.await.expect("the yielder finished");
    });
}
