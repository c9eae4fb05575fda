//! The callback API, named after Node.js's: `set_timeout`, `set_interval`, `set_immediate`,
//! `queue_microtask`, `next_tick`, and the handles they return.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::context;
use crate::runtime::immediates::{CheckEntry, ImmediateCell};
use crate::runtime::microtasks::Job;
use crate::time::MissedTickBehavior;
use crate::time::{Action, TimerCell};

/// The longest delay the callback API accepts: 2^31 - 1 ms (about 24.8 days), as in Node.js.
pub const TIMEOUT_MAX: Duration = Duration::from_millis(2_147_483_647);

/// The shortest delay: Node.js turns anything below 1 ms (including 0) into 1 ms.
pub const TIMEOUT_MIN: Duration = Duration::from_millis(1);

/// A handle to a timer made by [`set_timeout`] or [`set_interval`] (Node.js's `Timeout`).
///
/// Cloning the handle gives another handle to the same timer. Every method is a no-op once the
/// timer's loop is gone.
#[derive(Clone)]
pub struct TimerHandle {
    cell: Rc<TimerCell>,
    /// Made by [`set_timeout`]: the callback is `FnOnce`, so it runs at most once and
    /// [`refresh`](Self::refresh) only postpones a timeout that has not fired yet.
    once: bool,
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cell.fmt(f)
    }
}

impl TimerHandle {
    /// Cancels the timer (`clearTimeout` / `clearInterval`). Returns `true` if it was still
    /// scheduled. A timer cleared before it finished can never be re-armed. As in Node.js,
    /// clearing a timeout that already fired only drops its callback (and returns `false`): a
    /// later [`refresh`](Self::refresh) then arms a silent timer, which keeps the loop alive
    /// until it expires; clearing twice changes nothing more.
    pub fn clear(&self) -> bool {
        self.cell
            .with_owner(|inner| inner.timers.clear(&self.cell))
            .unwrap_or(false)
    }

    /// The timer no longer keeps the loop alive (`timeout.unref()`). It still fires if the loop
    /// is running at its due time.
    pub fn unref(&self) -> &Self {
        self.cell
            .with_owner(|inner| inner.timers.set_ref(&self.cell, false));
        self
    }

    /// The timer keeps the loop alive again (`timeout.ref()`); the default.
    pub fn keep_alive(&self) -> &Self {
        self.cell
            .with_owner(|inner| inner.timers.set_ref(&self.cell, true));
        self
    }

    /// Whether the timer keeps the loop alive when scheduled (`timeout.hasRef()`).
    pub fn has_ref(&self) -> bool {
        self.cell.has_ref()
    }

    /// Restarts the countdown from now with the same duration (`timeout.refresh()`).
    /// Refreshing a timer cleared before it finished does nothing.
    ///
    /// A timeout that already fired (or is running its callback): a [`set_timeout_mut`] one is
    /// armed again, as in Node.js (silently, if it was cleared after it fired), and runs its
    /// callback again; a [`set_timeout`] one does nothing, its `FnOnce` callback having been used
    /// (its handle stays inactive). A refreshed timer keeps its place in the timers phase only if
    /// it was not already chosen to run next (Node.js's `listOnTimeout` runs a timer it picked
    /// even if the drain before it refreshed it).
    pub fn refresh(&self) -> &Self {
        // A one-shot that is not scheduled has fired (or is firing): a timer leaves its list
        // only by firing or by `clear`, after which it cannot be re-armed anyway.
        if self.once && !self.cell.is_scheduled() {
            return self;
        }
        self.cell.with_owner(|inner| {
            let now = inner.update_time();
            inner.timers.start(&self.cell, now);
        });
        self
    }

    /// The timer's id on its loop: the `id` that observers, the trace recorder and the stall
    /// detector give its callbacks (`timeout #id`, `interval #id`).
    pub fn id(&self) -> u64 {
        self.cell.uid()
    }

    /// Whether the timer is waiting to fire.
    pub fn is_active(&self) -> bool {
        self.cell.is_scheduled()
    }

    /// The timer's duration (after clamping).
    pub fn duration(&self) -> Duration {
        self.cell.duration()
    }

    /// Sets what an interval does when the loop was too busy to run it on time (default:
    /// [`MissedTickBehavior::Skip`], Node.js's behaviour). Takes effect from the next tick.
    pub fn set_missed_tick_behavior(&self, behavior: MissedTickBehavior) -> &Self {
        self.cell.missed.set(behavior);
        self
    }
}

/// A handle to a callback queued by [`set_immediate`] (Node.js's `Immediate`).
#[derive(Clone)]
pub struct ImmediateHandle {
    cell: Rc<ImmediateCell>,
}

impl fmt::Debug for ImmediateHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cell.fmt(f)
    }
}

impl ImmediateHandle {
    /// Cancels the callback (`clearImmediate`). Returns `true` if it had not run yet; clearing
    /// twice returns `false`.
    pub fn clear(&self) -> bool {
        let cb = self.cell.callback.borrow_mut().take();
        let was = cb.is_some();
        drop(cb);
        if was && self.cell.refed.get() {
            if let Some(inner) = self.cell.owner.upgrade() {
                let n = &inner.immediates.ref_count;
                n.set(n.get() - 1);
            }
        }
        was
    }

    /// The pending callback no longer keeps the loop alive (`immediate.unref()`).
    pub fn unref(&self) -> &Self {
        self.set_ref(false);
        self
    }

    /// The pending callback keeps the loop alive again (`immediate.ref()`); the default.
    pub fn keep_alive(&self) -> &Self {
        self.set_ref(true);
        self
    }

    /// Whether the callback keeps the loop alive while pending (`immediate.hasRef()`).
    pub fn has_ref(&self) -> bool {
        self.cell.refed.get()
    }

    /// Whether the callback is still waiting to run.
    pub fn is_pending(&self) -> bool {
        self.cell.callback.borrow().is_some()
    }

    fn set_ref(&self, refed: bool) {
        if self.cell.refed.replace(refed) == refed || !self.is_pending() {
            return;
        }
        if let Some(inner) = self.cell.owner.upgrade() {
            let n = &inner.immediates.ref_count;
            n.set(if refed { n.get() + 1 } else { n.get() - 1 });
        }
    }
}

fn clamp(api: &str, d: Duration) -> Duration {
    if d > TIMEOUT_MAX {
        panic!(
            "executor::{api}: a delay of {d:?} is longer than the maximum of {TIMEOUT_MAX:?} \
             (2^31-1 ms, as in Node.js); use `sleep` for longer waits"
        );
    }
    d.max(TIMEOUT_MIN)
}

fn new_timer(api: &str, delay: Duration, repeat: bool, f: Box<dyn FnMut()>) -> TimerHandle {
    callback_timer(api, clamp(api, delay), repeat, f)
}

/// An `FnOnce` as the timer list's `FnMut`: it runs `f` the first time, then nothing (and `f`,
/// with what it captured, is dropped as soon as it has run).
fn once(f: impl FnOnce() + 'static) -> Box<dyn FnMut()> {
    let mut f = Some(f);
    Box::new(move || {
        if let Some(f) = f.take() {
            f();
        }
    })
}

/// Starts a callback timer of exactly `delay` (not clamped to 1 ms: the meters of `observe`
/// sample at periods below Node.js's minimum, as [`interval`](crate::time::interval) may). `delay`
/// must be non-zero.
pub(crate) fn callback_timer(
    api: &str,
    delay: Duration,
    repeat: bool,
    f: Box<dyn FnMut()>,
) -> TimerHandle {
    debug_assert!(!delay.is_zero(), "{api}: a zero period");
    context::with_current(api, |inner| {
        let now = inner.update_time();
        let cell = inner.timers.new_timer(
            inner.weak_self.clone(),
            Action::Callback(RefCell::new(Some(f))),
            delay,
            repeat,
            now,
        );
        inner.timers.start(&cell, now);
        TimerHandle { cell, once: false }
    })
}

/// Calls `f` once after `delay` (`setTimeout`). Delays below 1 ms become 1 ms, as in Node.js.
///
/// `f` is `FnOnce`, so it may move what it captured out (send on a oneshot channel, say), and
/// it is dropped as soon as it has run. The price: [`TimerHandle::refresh`] of a timeout that
/// already fired does nothing, where Node.js would run the callback again; use
/// [`set_timeout_mut`] for that. Refreshing it before it fires postpones it, as in Node.js.
///
/// # Panics
/// If no loop is running on this thread, or if `delay` exceeds [`TIMEOUT_MAX`].
///
/// ```
/// use std::time::Duration;
/// use futures::channel::oneshot;
/// executor::block_on(async {
///     let (tx, rx) = oneshot::channel();
///     executor::set_timeout(Duration::from_millis(5), move || tx.send("five ms later").unwrap());
///     assert_eq!(rx.await.unwrap(), "five ms later");
/// });
/// ```
#[track_caller]
pub fn set_timeout(delay: Duration, f: impl FnOnce() + 'static) -> TimerHandle {
    let mut h = new_timer("set_timeout", delay, false, once(f));
    h.once = true;
    h
}

/// [`set_timeout`] with a callback that can run more than once: Node.js's `setTimeout` in
/// full, where [`TimerHandle::refresh`] of a timeout that already fired (even from inside its
/// own callback) arms it again and runs the callback again. The callback is kept until the
/// timer is cleared or its loop dropped.
///
/// # Panics
/// As [`set_timeout`].
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// let runs = Rc::new(Cell::new(0));
/// let r = runs.clone();
/// executor::run(move || {
///     let h = Rc::new(Cell::new(None::<executor::node::TimerHandle>));
///     let me = h.clone();
///     h.set(Some(executor::set_timeout_mut(Duration::from_millis(1), move || {
///         r.set(r.get() + 1);
///         if r.get() < 3 {
///             let t = me.take().unwrap();
///             t.refresh(); // fired, and yet: runs again
///             me.set(Some(t));
///         }
///     })));
/// });
/// assert_eq!(runs.get(), 3);
/// ```
#[track_caller]
pub fn set_timeout_mut(delay: Duration, f: impl FnMut() + 'static) -> TimerHandle {
    new_timer("set_timeout_mut", delay, false, Box::new(f))
}

/// Calls `f` every `period` until cleared (`setInterval`). Periods below 1 ms become 1 ms.
///
/// A late interval runs once and is rescheduled one period after it ran (missed runs are
/// skipped, as in Node.js); see [`TimerHandle::set_missed_tick_behavior`] for the alternatives.
///
/// # Panics
/// If no loop is running on this thread, or if `period` exceeds [`TIMEOUT_MAX`].
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// let runs = Rc::new(Cell::new(0));
/// let r = runs.clone();
/// executor::run(move || {
///     let handle = Rc::new(Cell::new(None::<executor::node::TimerHandle>));
///     let h = handle.clone();
///     handle.set(Some(executor::set_interval(Duration::from_millis(1), move || {
///         r.set(r.get() + 1);
///         if r.get() == 3 {
///             h.take().unwrap().clear();
///         }
///     })));
/// });
/// assert_eq!(runs.get(), 3);
/// ```
#[track_caller]
pub fn set_interval(period: Duration, f: impl FnMut() + 'static) -> TimerHandle {
    new_timer("set_interval", period, true, Box::new(f))
}

/// Calls `f` in the next check phase (`setImmediate`).
///
/// # Panics
/// If no loop is running on this thread.
///
/// ```
/// executor::run(|| {
///     executor::set_immediate(|| println!("after the poll phase"));
/// });
/// ```
#[track_caller]
pub fn set_immediate(f: impl FnOnce() + 'static) -> ImmediateHandle {
    context::with_current("set_immediate", |inner| {
        let cell = Rc::new(ImmediateCell {
            callback: RefCell::new(Some(Box::new(f))),
            refed: Cell::new(true),
            owner: inner.weak_self.clone(),
        });
        let n = &inner.immediates.ref_count;
        n.set(n.get() + 1);
        inner
            .immediates
            .queue
            .borrow_mut()
            .push_back(CheckEntry::Immediate(cell.clone()));
        ImmediateHandle { cell }
    })
}

/// Queues `f` on the microtask queue (`queueMicrotask`): it runs once the current callback and
/// the nextTick queue are done.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
pub fn queue_microtask(f: impl FnOnce() + 'static) {
    let location = std::panic::Location::caller();
    context::with_current("queue_microtask", |inner| {
        inner.queues.push_micro(Job::callback(location, f))
    })
}

/// Queues `f` on the nextTick queue (`process.nextTick`): it runs as soon as the current
/// callback returns, before any microtask.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
pub fn next_tick(f: impl FnOnce() + 'static) {
    let location = std::panic::Location::caller();
    context::with_current("next_tick", |inner| {
        inner.queues.push_tick(Job::callback(location, f))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_follows_node() {
        assert_eq!(clamp("t", Duration::ZERO), TIMEOUT_MIN);
        assert_eq!(clamp("t", Duration::from_micros(500)), TIMEOUT_MIN);
        assert_eq!(
            clamp("t", Duration::from_micros(1500)),
            Duration::from_micros(1500)
        );
    }

    #[test]
    #[should_panic(expected = "longer than the maximum")]
    fn clamp_refuses_huge_delays() {
        clamp("set_timeout", Duration::MAX);
    }
}
