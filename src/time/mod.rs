//! The async timer API: [`sleep`], [`sleep_until`], [`interval`], [`timeout`].
//!
//! Each is a timer of the loop's timers phase whose action is to wake a future, so a sleeping
//! task resumes right after the timers phase fires its timer (in the microtask drain that follows
//! it), in the same order as the callbacks around it.

mod deadline;
mod entry;
mod lists;
mod missed;
mod phase;
pub(crate) mod timers;

pub(crate) use entry::{Action, TimerCell};
pub use missed::MissedTickBehavior;

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::runtime::context;

/// Creates a waker-driven timer on the running loop.
#[track_caller]
fn waker_timer(api: &str, duration: Duration, repeat: bool) -> (Rc<TimerCell>, Instant) {
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
fn register(timer: &TimerCell, cx: &Context<'_>) {
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

/// A future that completes at a deadline. Made by [`sleep`] and [`sleep_until`].
///
/// Dropping it cancels its timer.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    timer: Rc<TimerCell>,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.timer.due())
            .field("elapsed", &self.is_elapsed())
            .finish()
    }
}

/// Waits until `duration` has elapsed, at sub-millisecond resolution (no clamping).
///
/// The timer is registered when `sleep` is called. A duration too large for the clock (such as
/// `Duration::MAX`) means "never", as in tokio.
///
/// # Panics
/// If no loop is running on this thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// executor::block_on(async {
///     let t = Instant::now();
///     executor::sleep(Duration::from_millis(3)).await;
///     assert!(t.elapsed() >= Duration::from_millis(3));
/// });
/// ```
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let (timer, now) = waker_timer("sleep", duration, false);
    timer.with_owner(|inner| inner.timers.start(&timer, now));
    Sleep { timer }
}

/// Waits until `deadline`.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    let (timer, _) = waker_timer("time::sleep_until", Duration::ZERO, false);
    timer.with_owner(|inner| inner.timers.start_at(&timer, deadline));
    Sleep { timer }
}

impl Sleep {
    /// When the sleep completes.
    pub fn deadline(&self) -> Instant {
        self.timer.due()
    }

    /// Whether the deadline has passed (the timers phase fired it).
    pub fn is_elapsed(&self) -> bool {
        self.timer.fired.get() != 0
    }

    /// Moves the deadline (also after the sleep completed, making it pending again).
    pub fn reset(&mut self, deadline: Instant) {
        self.timer.fired.set(0);
        self.timer
            .with_owner(|inner| inner.timers.start_at(&self.timer, deadline));
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_elapsed() {
            return Poll::Ready(());
        }
        register(&self.timer, cx);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.timer.is_scheduled() {
            self.timer.with_owner(|inner| {
                inner.timers.clear(&self.timer);
            });
        }
    }
}

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

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

pin_project! {
    /// A future with a deadline. Made by [`timeout`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

/// Runs `future` with a deadline `duration` from now: `Err(Elapsed)` if it has not completed by
/// then (the future is then dropped with the `Timeout`).
///
/// # Panics
/// If no loop is running on this thread.
///
/// ```
/// use std::time::Duration;
/// executor::block_on(async {
///     let slow = executor::sleep(Duration::from_secs(60));
///     assert!(executor::time::timeout(Duration::from_millis(1), slow).await.is_err());
///     assert_eq!(executor::time::timeout(Duration::from_secs(1), async { 5 }).await, Ok(5));
/// });
/// ```
#[track_caller]
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    // Name this call, not the `sleep` inside it, when no loop runs.
    crate::runtime::context::with_current("time::timeout", |_| ());
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
