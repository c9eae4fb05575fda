//! The check phase: `setImmediate` callbacks and tasks resuming from `yield_now`.
//!
//! The phase runs the entries that were queued **before it began**: it counts the queue first and
//! runs that many from the front, so an entry queued during the phase lands behind them and runs
//! in the next iteration (Node.js's `processImmediate`). If a callback panics, the entries not yet
//! run stay at the front of the queue and run first in the next check phase.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Weak;

use crate::observe::Kind;
use crate::runtime::LoopState;
use crate::runtime::microtasks::Job;
use crate::task::waker::TaskRef;
use std::task::Waker;

/// One `setImmediate` callback, shared with its [`ImmediateHandle`](crate::node::ImmediateHandle).
pub(crate) struct ImmediateCell {
    /// The callback; `None` once it ran or was cleared.
    pub(crate) callback: RefCell<Option<Box<dyn FnOnce()>>>,
    /// Whether the pending callback keeps the loop alive.
    pub(crate) refed: Cell<bool>,
    /// The loop it was queued on.
    pub(crate) owner: Weak<LoopState>,
}

impl fmt::Debug for ImmediateCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Immediate")
            .field("pending", &self.callback.borrow().is_some())
            .field("refed", &self.refed.get())
            .finish()
    }
}

/// An entry of the check queue: 16 bytes (each variant is one pointer or a [`TaskRef`], whose
/// niche holds the tag), so a push and a pop move it in registers.
#[derive(Debug)]
pub(crate) enum CheckEntry {
    /// A task resuming after `yield_now` or a self-wake.
    Task(TaskRef),
    /// A `setImmediate` callback.
    Immediate(std::rc::Rc<ImmediateCell>),
    /// A waker resuming after `yield_now` (one that is not the polled task's own); boxed, as
    /// a `Job` is 24 bytes.
    Job(Box<Job>),
}

// The point of the layout above.
const _: () = assert!(std::mem::size_of::<CheckEntry>() == 16);

/// The check queue of one loop.
#[derive(Default, Debug)]
pub(crate) struct Immediates {
    /// Entries in the order they were queued. Never borrowed while user code runs.
    pub(crate) queue: RefCell<VecDeque<CheckEntry>>,
    /// Number of pending, referenced `setImmediate` callbacks.
    pub(crate) ref_count: Cell<usize>,
    /// Number of `Job` entries in the queue (yielded tasks keep the poll phase from sleeping).
    pub(crate) jobs: Cell<usize>,
    /// Number of check phases started so far.
    pub(crate) epoch: Cell<u64>,
}

/// Makes room for one more entry (out of line: the push itself stays small).
#[cold]
#[inline(never)]
fn grow(queue: &mut VecDeque<CheckEntry>) {
    queue.reserve(1);
}

impl Immediates {
    /// Queues a yielded task.
    #[inline]
    pub(crate) fn push_task(&self, task: TaskRef) {
        self.push(CheckEntry::Task(task));
    }

    /// Queues a waker to wake in the check phase.
    pub(crate) fn push_wake(&self, waker: Waker) {
        self.push(CheckEntry::Job(Box::new(Job::Wake(waker))));
    }

    /// Queues a task or waker entry.
    #[inline]
    fn push(&self, entry: CheckEntry) {
        self.jobs.set(self.jobs.get() + 1);
        let mut queue = self.queue.borrow_mut();
        if queue.len() == queue.capacity() {
            grow(&mut queue);
        }
        queue.push_back(entry);
    }

    /// Whether the poll phase must not sleep because the check phase has work.
    #[inline]
    pub(crate) fn has_urgent(&self) -> bool {
        self.ref_count.get() != 0 || self.jobs.get() != 0
    }

    /// Runs the check phase.
    #[inline(always)]
    pub(crate) fn run(&self, inner: &LoopState) {
        self.epoch.set(self.epoch.get() + 1);
        let n = self.queue.borrow().len();
        for _ in 0..n {
            let entry = self.queue.borrow_mut().pop_front();
            match entry {
                Some(CheckEntry::Immediate(cell)) => {
                    let cb = cell.callback.borrow_mut().take();
                    let Some(cb) = cb else { continue };
                    if cell.refed.get() {
                        self.ref_count.set(self.ref_count.get() - 1);
                    }
                    inner.traced(Kind::Immediate, 0, None, cb);
                }
                Some(CheckEntry::Task(task)) => {
                    self.jobs.set(self.jobs.get() - 1);
                    inner.poll_task(task);
                }
                Some(CheckEntry::Job(job)) => {
                    self.jobs.set(self.jobs.get() - 1);
                    inner.run_job(*job, Kind::Immediate);
                }
                None => break,
            }
            inner.drain_queues();
        }
    }

    /// Drops every queued entry (loop shutdown), outside the borrow.
    pub(crate) fn clear(&self) {
        let q = std::mem::take(&mut *self.queue.borrow_mut());
        self.ref_count.set(0);
        self.jobs.set(0);
        for e in &q {
            if let CheckEntry::Immediate(cell) = e {
                let cb = cell.callback.borrow_mut().take();
                drop(cb);
            }
        }
        drop(q);
    }
}
