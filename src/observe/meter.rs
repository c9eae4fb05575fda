//! The interval beside the job: what the loop delay monitor and the tick probe both measure
//! with.
//!
//! A `setInterval`-style callback timer whose callback is told, for each tick, when it was due
//! and when it ran,
//! both as loop times: an interval restarts from the loop time read right before its callback
//! (Node.js's `listOnTimeout`, our `time/timers.rs`), and [`loop_time`](crate::loop_time) inside the callback is that
//! very read, so no extra clock read is taken.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::node::callback_timer;
use crate::{loop_time, node::TimerHandle, time::MissedTickBehavior};

/// One tick of a meter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tick {
    /// When it was due: the start (or the previous tick's run, or its due time for `Burst`)
    /// plus the period.
    pub(crate) due: Instant,
    /// The loop time it ran at.
    pub(crate) ran: Instant,
}

/// Starts an interval of `period` on the running loop that calls `on_tick` on every tick. Unlike
/// [`set_interval`](crate::set_interval), periods below 1 ms are kept (as [`interval`](crate::time::interval)
/// keeps them): a probe may sample faster than Node.js's timers can. The interval is referenced; `unref` the returned
/// handle for a meter that must not keep the loop alive.
///
/// With `Delay` the next tick is due a period after the callback returns, which the callback
/// cannot know: its `due` is then counted from when it ran, as with `Skip`.
///
/// # Panics
/// If no loop is running on this thread, or `period` is zero (the messages name `api`).
#[track_caller]
pub(crate) fn start(
    api: &str,
    period: Duration,
    missed: MissedTickBehavior,
    mut on_tick: impl FnMut(Tick) + 'static,
) -> TimerHandle {
    assert!(
        !period.is_zero(),
        "executor::{api}: the period must be non-zero"
    );
    let due = Rc::new(Cell::new(None::<Instant>));
    let next = due.clone();
    let handle = callback_timer(
        api,
        period,
        true,
        Box::new(move || {
            let ran = loop_time();
            // Set right after `set_interval` returned, before any timers phase could run this.
            let Some(was_due) = next.get() else { return };
            next.set(Some(match missed {
                MissedTickBehavior::Burst => was_due + period,
                MissedTickBehavior::Skip | MissedTickBehavior::Delay => ran + period,
            }));
            on_tick(Tick { due: was_due, ran });
        }),
    );
    handle.set_missed_tick_behavior(missed);
    // `callback_timer` just read the clock into the loop time and started from it.
    due.set(Some(loop_time() + period));
    handle
}
