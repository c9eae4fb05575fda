//! The two queues drained after every callback: `process.nextTick` and the microtask queue.
//!
//! Node.js (>= 11) drains them after every single callback: the whole nextTick queue first
//! (including ticks queued by ticks), then the whole microtask queue (including microtasks queued
//! by microtasks), and again while either refilled the other (`processTicksAndRejections`).
//! Task polls are jobs too: a woken task is polled from the microtask queue, as a promise
//! continuation would be.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::task::Waker;

use crate::task::waker::TaskRef;

/// One unit of work in a queue.
pub(crate) enum Job {
    /// A plain callback, with where it was queued (for observers).
    Callback(Box<dyn Callback>),
    /// Poll a task (skipped if the task is gone).
    Task(TaskRef),
    /// Wake a waker (used when a future that is not the task's own asks to be resumed later).
    Wake(Waker),
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Job::Callback(_) => f.write_str("Callback"),
            Job::Task(t) => write!(f, "Task({})", t.id),
            Job::Wake(_) => f.write_str("Wake"),
        }
    }
}

/// A queued `next_tick`/`queue_microtask` callback: the closure and where it was queued, in one
/// allocation (a `Job` stays as small as a task reference).
pub(crate) trait Callback {
    /// Where `next_tick` or `queue_microtask` was called.
    fn location(&self) -> &'static Location<'static>;
    /// Runs the callback.
    fn run(self: Box<Self>);
}

/// The one [`Callback`]: a closure and its queueing site.
struct Located<F> {
    location: &'static Location<'static>,
    f: F,
}

impl<F: FnOnce()> Callback for Located<F> {
    fn location(&self) -> &'static Location<'static> {
        self.location
    }

    fn run(self: Box<Self>) {
        (self.f)()
    }
}

impl Job {
    /// A callback job queued at `location` (the caller of `next_tick` or `queue_microtask`).
    pub(crate) fn callback(
        location: &'static Location<'static>,
        f: impl FnOnce() + 'static,
    ) -> Job {
        Job::Callback(Box::new(Located { location, f }))
    }
}

/// The nextTick queue and the microtask queue.
#[derive(Default, Debug)]
pub(crate) struct MicroQueues {
    /// `process.nextTick` callbacks, FIFO. Never borrowed while user code runs.
    ticks: RefCell<VecDeque<Job>>,
    /// Microtasks and woken tasks, FIFO. Never borrowed while user code runs.
    micro: RefCell<VecDeque<Job>>,
    /// Jobs in both queues: the drain's "anything to do?" after every callback is one load.
    len: Cell<usize>,
}

impl MicroQueues {
    /// Whether both queues are empty.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len.get() == 0
    }

    /// Whether the nextTick queue is empty.
    #[inline]
    pub(crate) fn ticks_empty(&self) -> bool {
        self.ticks.borrow().is_empty()
    }

    /// Queues a microtask (or a woken task).
    #[inline]
    pub(crate) fn push_micro(&self, job: Job) {
        self.micro.borrow_mut().push_back(job);
        self.len.set(self.len.get() + 1);
    }

    /// Queues microtasks, in order. (Made by the caller before: making a job may clone a
    /// waker, which must not happen inside the borrow.)
    pub(crate) fn extend_micro(&self, jobs: Vec<Job>) {
        self.len.set(self.len.get() + jobs.len());
        self.micro.borrow_mut().extend(jobs);
    }

    /// Queues a nextTick callback.
    #[inline]
    pub(crate) fn push_tick(&self, job: Job) {
        self.ticks.borrow_mut().push_back(job);
        self.len.set(self.len.get() + 1);
    }

    /// Pops the next nextTick job.
    #[inline]
    pub(crate) fn pop_tick(&self) -> Option<Job> {
        let job = self.ticks.borrow_mut().pop_front();
        if job.is_some() {
            self.len.set(self.len.get() - 1);
        }
        job
    }

    /// Pops the next microtask job.
    #[inline]
    pub(crate) fn pop_micro(&self) -> Option<Job> {
        let job = self.micro.borrow_mut().pop_front();
        if job.is_some() {
            self.len.set(self.len.get() - 1);
        }
        job
    }

    /// Drops every queued job (loop shutdown), outside the borrows.
    pub(crate) fn clear(&self) {
        let ticks = std::mem::take(&mut *self.ticks.borrow_mut());
        let micro = std::mem::take(&mut *self.micro.borrow_mut());
        self.len.set(0);
        drop((ticks, micro));
    }
}
