//! Task wakers: `Send + Sync` as `std` requires, cheap on the loop's own thread.
//!
//! # How a wake travels
//! A [`WakeTarget`] is the `Arc` behind every task's [`Waker`]. Waking it:
//! 1. sets `scheduled` (a task already scheduled is not queued twice);
//! 2. on the loop's own thread, while that loop runs: pushes `(key, id)` onto the loop's
//!    microtask queue, so the task is polled like a promise continuation;
//! 3. anywhere else (another thread, or this thread while the loop is not running): finds the
//!    loop's [`Inbox`](super::inbox::Inbox) inbox in a process-wide registry by loop id (`inbox.rs`), pushes
//!    `(key, id)` onto it and wakes the poll phase through the poller.
//!
//! The header owns no part of the task's future, so a waker that outlives its loop or migrates to
//! another thread never touches `!Send` data: after the loop is dropped, it is gone from the
//! registry (and its `Inbox` closed), and a wake is a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::inbox::registry;
use crate::runtime::context;

/// Identifies one task: its slot in the loop's task slab and its unique id (slots are reused,
/// ids never are, so a stale wake of a finished task is recognised and ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskRef {
    /// Slot in the loop's task slab.
    pub(crate) key: usize,
    /// Unique (per loop) id of the task; never reused.
    pub(crate) id: u64,
}

/// The shared, thread-safe part of a task: what its waker points at.
#[derive(Debug)]
pub(crate) struct WakeTarget {
    /// Which task this is.
    pub(crate) task: TaskRef,
    /// Id of the loop that owns the task (loops on one thread are told apart by it, and other
    /// threads find the loop's [`Inbox`](super::inbox::Inbox) by it).
    pub(crate) loop_id: u64,
    /// True from the moment a wake queues the task until the loop starts polling it.
    /// Invariant: while true, a queue entry will poll the task (or it is gone), so further wakes
    /// need not queue it again. (A task resuming from `yield_now` has a check-queue entry that
    /// does not set the flag.)
    pub(crate) scheduled: AtomicBool,
}

impl WakeTarget {
    fn wake(&self) {
        if self.scheduled.load(Ordering::Relaxed) || self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let queued = context::try_with_current(|inner| {
            inner.id == self.loop_id && {
                inner.schedule_woken(self.task);
                true
            }
        });
        if queued != Some(true) {
            if let Some(remote) = registry::find(self.loop_id) {
                remote.push(self.task);
            }
        }
    }
}

/// Makes the waker of a task. Its data pointer is `Arc::into_raw(header)`, which is what lets
/// [`wake_target_of`] find the header again without the task keeping a second `Arc`.
pub(crate) fn new_waker(header: Arc<WakeTarget>) -> Waker {
    let data = Arc::into_raw(header).cast::<()>();
    // SAFETY: `data` comes from `Arc::into_raw` of an `Arc<WakeTarget>` and the waker owns that
    // strong count; every vtable function below treats it so (`WakeTarget` is `Send + Sync`).
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

/// The header behind a waker made by [`new_waker`].
///
/// # Safety
/// `waker` must have been made by [`new_waker`] (the caller knows: it is a task's own waker).
pub(crate) unsafe fn wake_target_of(waker: &Waker) -> &WakeTarget {
    // SAFETY: by the caller's promise, `data` is `Arc::into_raw` of an `Arc<WakeTarget>` owned by
    // `waker`, so it points to a live `WakeTarget` for as long as `waker` is borrowed.
    unsafe { &*waker.data().cast::<WakeTarget>() }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_by_ref_raw, drop_raw);

unsafe fn clone_raw(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live `Arc<WakeTarget>` pointer (see `new_waker`); the clone owns one
    // more strong count.
    unsafe { Arc::increment_strong_count(data.cast::<WakeTarget>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake_raw(data: *const ()) {
    // SAFETY: `wake` consumes the waker, and with it the strong count it owned.
    let header = unsafe { Arc::from_raw(data.cast::<WakeTarget>()) };
    header.wake();
}

unsafe fn wake_by_ref_raw(data: *const ()) {
    // SAFETY: the waker is borrowed, so its strong count keeps the header alive.
    unsafe { &*data.cast::<WakeTarget>() }.wake();
}

unsafe fn drop_raw(data: *const ()) {
    // SAFETY: dropping the waker releases the strong count it owned.
    unsafe { Arc::decrement_strong_count(data.cast::<WakeTarget>()) };
}
