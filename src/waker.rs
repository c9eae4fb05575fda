//! Task wakers: `Send + Sync` as `std` requires, cheap on the loop's own thread.
//!
//! # How a wake travels
//! A [`Header`] is the `Arc` behind every task's [`Waker`]. Waking it:
//! 1. sets `scheduled` (a task already scheduled is not queued twice);
//! 2. on the loop's own thread, while that loop runs: pushes `(key, id)` onto the loop's
//!    microtask queue, so the task is polled like a promise continuation;
//! 3. anywhere else (another thread, or this thread while the loop is not running): pushes
//!    `(key, id)` onto the loop's [`Remote`] queue and wakes the poll phase through the poller.
//!
//! The header owns no part of the task's future, so a waker that outlives its loop or migrates to
//! another thread never touches `!Send` data: after the loop is dropped, `Remote::closed` is set
//! and a wake is a no-op.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;

use crate::context;
use crate::reactor::OsPoller;

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
pub(crate) struct Header {
    /// Which task this is.
    pub(crate) task: TaskRef,
    /// Id of the loop that owns the task (loops on one thread are told apart by it).
    pub(crate) loop_id: u64,
    /// True from the moment a wake queues the task until the loop starts polling it.
    /// Invariant: while true, a queue entry will poll the task (or it is gone), so further wakes
    /// need not queue it again. (A task resuming from `yield_now` has a check-queue entry that
    /// does not set the flag.)
    pub(crate) scheduled: AtomicBool,
    /// The owning loop's cross-thread wake queue.
    pub(crate) remote: Arc<Remote>,
}

impl Wake for Header {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.load(Ordering::Relaxed) || self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let queued = context::try_with_current(|inner| {
            inner.id == self.loop_id && {
                inner.schedule_microtask_task(self.task);
                true
            }
        });
        if queued != Some(true) {
            self.remote.push(self.task);
        }
    }
}

/// The thread-safe inbox of one loop: task wakes from other threads (or from this thread while
/// the loop is not running), drained in the poll phase.
#[derive(Debug)]
pub(crate) struct Remote {
    /// Pending wakes, in arrival order.
    queue: Mutex<Vec<TaskRef>>,
    /// Number of entries in `queue`, readable without the lock (the loop checks it every
    /// iteration).
    len: AtomicUsize,
    /// Set when the loop is dropped: later wakes are ignored so nothing accumulates.
    closed: AtomicBool,
    /// Interrupts the loop's poll-phase wait.
    poller: Arc<OsPoller>,
    /// Number of in-flight "keep alive" references from other threads (e.g. offloaded jobs).
    pub(crate) external_refs: AtomicUsize,
}

impl Remote {
    pub(crate) fn new(poller: Arc<OsPoller>) -> Self {
        Remote {
            queue: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            poller,
            external_refs: AtomicUsize::new(0),
        }
    }

    /// Queues a wake and interrupts the poll phase if this is the first one since the last drain.
    pub(crate) fn push(&self, task: TaskRef) {
        let first = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            q.push(task);
            self.len.store(q.len(), Ordering::Release);
            q.len() == 1
        };
        if first {
            self.notify();
        }
    }

    /// Interrupts the poll-phase wait (harmless if the loop is not waiting: the next wait
    /// returns at once).
    pub(crate) fn notify(&self) {
        // A failed notify can only mean the poller is gone with its loop: nothing to wake.
        let _ = self.poller.notify();
    }

    /// Whether wakes are waiting to be drained.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.len.load(Ordering::Acquire) != 0
    }

    /// Moves every pending wake into `out` (which must be empty), in arrival order.
    pub(crate) fn take_into(&self, out: &mut Vec<TaskRef>) {
        debug_assert!(out.is_empty());
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *q, out);
        self.len.store(0, Ordering::Release);
    }

    /// Stops accepting wakes and frees those queued. Called when the loop is dropped.
    pub(crate) fn close(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        q.clear();
        self.len.store(0, Ordering::Release);
    }
}
