//! [`Sleep`]: a future that completes at a deadline ([`sleep`], [`sleep_until`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::FusedFuture;

#[cfg(feature = "hyper")]
use super::Action;
use super::{TimerCell, register, waker_timer};

/// A future that completes at a deadline. Made by [`sleep`] and [`sleep_until`].
///
/// Dropping it cancels its timer. It is a [`FusedFuture`]: once it returned `Ready`,
/// `futures::select!` leaves it alone (until [`reset`](Sleep::reset) makes it pending again).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    timer: Rc<TimerCell>,
    /// Whether `poll` returned `Ready` since the last reset.
    terminated: bool,
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
    Sleep {
        timer,
        terminated: false,
    }
}

/// Waits until `deadline`.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    let (timer, _) = waker_timer("time::sleep_until", Duration::ZERO, false);
    timer.with_owner(|inner| inner.timers.start_at(&timer, deadline));
    Sleep {
        timer,
        terminated: false,
    }
}

/// A [`Sleep`] for the time left until `deadline`, rounded up to whole milliseconds, so its
/// timer goes on Node's list for that duration (shared by every sleep of that length) rather
/// than a list of its own: it ends up to a millisecond after `deadline`, never before. Reads
/// the clock once (into the loop time, as `sleep` does). For `compat::LoopTimer`: hyper asks
/// for "now + 10 s" per request head (`header_read_timeout`); as absolute deadlines
/// (`sleep_until`) each made its own list and heap entry, and the heap kept a stale entry per
/// cancelled sleep until its 10 s were up.
///
/// # Panics
/// If no loop is running on this thread.
#[cfg(feature = "hyper")]
#[track_caller]
pub(crate) fn sleep_rounded_until(deadline: Instant) -> Sleep {
    let timer = crate::runtime::context::with_current("compat::LoopTimer", |inner| {
        let now = inner.update_time();
        let left = deadline.saturating_duration_since(now);
        let ms = u64::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        let timer = inner.timers.new_timer(
            inner.weak_self.clone(),
            Action::Waker(std::cell::RefCell::new(None)),
            Duration::from_millis(ms),
            false,
            now,
        );
        inner.timers.start(&timer, now);
        timer
    });
    Sleep {
        timer,
        terminated: false,
    }
}

impl Sleep {
    /// Whether the loop this sleep's timer is on is gone (so it can never fire).
    #[cfg(feature = "hyper")]
    pub(crate) fn is_orphaned(&self) -> bool {
        self.timer.owner.strong_count() == 0
    }

    /// Sets whether the timer keeps the loop alive while pending (Node's `ref`/`unref`).
    #[cfg(feature = "hyper")]
    pub(crate) fn set_ref(&self, refed: bool) {
        self.timer
            .with_owner(|inner| inner.timers.set_ref(&self.timer, refed));
    }

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
        self.terminated = false;
        self.timer
            .with_owner(|inner| inner.timers.start_at(&self.timer, deadline));
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_elapsed() {
            self.terminated = true;
            return Poll::Ready(());
        }
        register(&self.timer, cx);
        Poll::Pending
    }
}

impl FusedFuture for Sleep {
    fn is_terminated(&self) -> bool {
        self.terminated
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
