//! [`Interval`]: a stream of periodic ticks ([`interval`], [`interval_at`]).

use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use futures::stream::FusedStream;

use super::{MissedTickBehavior, TimerCell, deadline, register, waker_timer};

/// A stream of periodic ticks. Made by [`interval`].
///
/// Unlike tokio's, the first tick comes one period after creation, as with Node.js's
/// `setInterval`. Each tick yields the time it was due.
#[must_use = "streams do nothing unless polled"]
pub struct Interval {
    timer: Rc<TimerCell>,
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("period", &self.timer.duration())
            .field("missed_tick_behavior", &self.timer.missed.get())
            .finish()
    }
}

/// A stream that ticks every `period`, first one period from now.
///
/// # Panics
/// If `period` is zero (an interval of zero would tick forever without letting time pass), or
/// if no loop is running on this thread.
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// executor::block_on(async {
///     let ticks: Vec<_> = executor::time::interval(Duration::from_millis(1)).take(3).collect().await;
///     assert!(ticks[0] < ticks[1] && ticks[1] < ticks[2]);
/// });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "executor::time::interval: the period must be non-zero"
    );
    let (timer, now) = waker_timer("time::interval", period, true);
    timer.with_owner(|inner| inner.timers.start(&timer, now));
    Interval { timer }
}

/// A stream that ticks first at `start`, then every `period` (tokio's `interval_at`). A `start`
/// in the past ticks in the next timers phase.
///
/// # Panics
/// If `period` is zero, or if no loop is running on this thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// executor::block_on(async {
///     let start = Instant::now() + Duration::from_millis(2);
///     let mut ticks = executor::time::interval_at(start, Duration::from_millis(1));
///     assert_eq!(ticks.tick().await, start);
///     assert!(ticks.tick().await > start);
/// });
/// ```
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "executor::time::interval_at: the period must be non-zero"
    );
    let (timer, _) = waker_timer("time::interval_at", period, true);
    timer.with_owner(|inner| inner.timers.start_at(&timer, start));
    Interval { timer }
}

impl Interval {
    /// Waits for the next tick and returns the time it was due.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        let fired = self.timer.fired.get();
        if fired == 0 {
            register(&self.timer, cx);
            return Poll::Pending;
        }
        self.timer.fired.set(fired - 1);
        if self.timer.missed.get() == MissedTickBehavior::Delay {
            self.timer.with_owner(|inner| {
                let now = inner.update_time();
                inner.timers.start(&self.timer, now);
            });
        }
        // With a backlog (`Burst`), the oldest untaken tick: `fired - 1` periods before the last.
        let last = self.timer.fired_due.get();
        let back = self.timer.duration().checked_mul(fired - 1);
        Poll::Ready(back.and_then(|b| last.checked_sub(b)).unwrap_or(last))
    }

    /// Sets what happens when ticks are missed (default: [`MissedTickBehavior::Skip`]).
    /// Takes effect from the next tick.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.timer.missed.set(behavior);
    }

    /// The current missed-tick behaviour.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.timer.missed.get()
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.timer.duration()
    }

    /// Restarts the schedule: the next tick is one period from now; pending ticks are dropped.
    pub fn reset(&mut self) {
        self.timer.fired.set(0);
        self.timer.with_owner(|inner| {
            let now = inner.update_time();
            inner.timers.start(&self.timer, now);
        });
    }

    /// Restarts the schedule with a tick now: the next [`tick`](Self::tick) completes at once
    /// (due now), the one after it one period later. Pending ticks are dropped.
    pub fn reset_immediately(&mut self) {
        self.timer.with_owner(|inner| {
            let now = inner.update_time();
            self.timer.fired.set(1);
            self.timer.fired_due.set(now);
            inner.timers.start(&self.timer, now);
        });
    }

    /// Restarts the schedule: the next tick is `after` from now, then one every period.
    /// Pending ticks are dropped.
    pub fn reset_after(&mut self, after: Duration) {
        self.timer.fired.set(0);
        self.timer.with_owner(|inner| {
            let now = inner.update_time();
            let at = deadline(now, after);
            inner.timers.start_at(&self.timer, at);
        });
    }

    /// Restarts the schedule: the next tick is at `deadline` (in the next timers phase if it
    /// has passed), then one every period. Pending ticks are dropped.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.timer.fired.set(0);
        self.timer
            .with_owner(|inner| inner.timers.start_at(&self.timer, deadline));
    }
}

impl FusedStream for Interval {
    /// Never: an interval ticks for ever.
    fn is_terminated(&self) -> bool {
        false
    }
}

impl Stream for Interval {
    type Item = Instant;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.poll_tick(cx).map(Some)
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        self.timer.with_owner(|inner| {
            inner.timers.clear(&self.timer);
        });
    }
}
