//! The async timer API: [`sleep`], [`sleep_until`], [`interval`], [`timeout`].
//!
//! Each is a timer of the loop's timers phase whose action is to wake a future, so a sleeping
//! task resumes right after the timers phase fires its timer (in the microtask drain that follows
//! it), in the same order as the callbacks around it.
//!
//! Files: the futures (`sleep.rs`, `interval.rs`, `timeout.rs`, on the helpers below), and the
//! timers phase they ride on: one timer (`entry.rs`), Node.js's lists (`lists.rs`), starting and
//! clearing timers (`timers.rs`), firing them (`phase.rs`), and [`MissedTickBehavior`]
//! (`missed.rs`).

mod deadline;
mod entry;
mod interval;
mod lists;
mod missed;
mod phase;
mod sleep;
mod timeout;
pub(crate) mod timers;

pub(crate) use entry::{Action, TimerCell, deadline};
pub use interval::{Interval, interval, interval_at};
pub use missed::MissedTickBehavior;
#[cfg(feature = "hyper")]
pub(crate) use sleep::sleep_rounded_until;
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, Timeout, timeout, timeout_at};

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Context;
use std::time::{Duration, Instant};

use crate::runtime::context;

/// Creates a waker-driven timer on the running loop.
#[track_caller]
pub(super) fn waker_timer(api: &str, duration: Duration, repeat: bool) -> (Rc<TimerCell>, Instant) {
    context::with_current(api, |inner| {
        let now = inner.update_time();
        let cell = inner.timers.new_timer(
            inner.weak_self.clone(),
            Action::Waker(RefCell::new(None)),
            duration,
            repeat,
            now,
        );
        (cell, now)
    })
}

/// Registers `cx`'s waker with a waker-driven timer.
#[track_caller]
pub(super) fn register(timer: &TimerCell, cx: &Context<'_>) {
    // A timer fires only on the loop that made it: waiting for it anywhere else would hang.
    let here = crate::runtime::context::try_with_current(std::ptr::from_ref);
    if here != Some(timer.owner.as_ptr()) {
        wrong_loop(here.is_some());
    }
    let Action::Waker(slot) = &timer.action else {
        unreachable!("async timers are waker-driven")
    };
    if slot
        .borrow()
        .as_ref()
        .is_some_and(|w| w.will_wake(cx.waker()))
    {
        return;
    }
    // Cloned, and the old waker dropped, with no borrow held: either may run any code.
    let new = cx.waker().clone();
    let old = slot.borrow_mut().replace(new);
    drop(old);
}

#[cold]
#[track_caller]
fn wrong_loop(some_loop_runs: bool) -> ! {
    panic!(
        "executor: a sleep, interval or timeout was awaited {}; its timer can only fire on the \
         loop that created it, so this would wait for ever",
        if some_loop_runs {
            "on a different event loop than the one that created it"
        } else {
            "with no event loop running"
        }
    )
}
