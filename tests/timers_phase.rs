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
