//! A loop's cross-thread inbox: the wakes that reach it from other threads (or from its own
//! thread while it is not running), the closures a [`Spawner`](crate::Spawner) sends it, and
//! the process-wide registry where a waker finds the inbox of its task's loop by loop id.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::waker::TaskRef;
use crate::io::poller::OsPoller;

/// Finds a loop's [`Inbox`] by loop id, from any thread. Wakes from other threads are rare
/// (a worker finishing, a channel fed by a thread), so a task does not carry its own reference
/// to the inbox: a global map, written when a loop is created and dropped, serves them.
pub(crate) mod registry {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock, Weak};

    use super::Inbox;

    fn map() -> &'static Mutex<HashMap<u64, Weak<Inbox>>> {
        static MAP: OnceLock<Mutex<HashMap<u64, Weak<Inbox>>>> = OnceLock::new();
        MAP.get_or_init(Mutex::default)
    }

    /// Registers a loop's inbox.
    pub(crate) fn insert(loop_id: u64, remote: &Arc<Inbox>) {
        let mut m = map().lock().unwrap_or_else(|e| e.into_inner());
        m.insert(loop_id, Arc::downgrade(remote));
    }

    /// Forgets a loop's inbox (the loop is being dropped).
    pub(crate) fn remove(loop_id: u64) {
        let mut m = map().lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&loop_id);
    }

    /// The inbox of a live loop.
    pub(crate) fn find(loop_id: u64) -> Option<Arc<Inbox>> {
        let m = map().lock().unwrap_or_else(|e| e.into_inner());
        m.get(&loop_id).and_then(Weak::upgrade)
    }
}

/// A closure sent to run on the loop's thread (see `runtime/spawner.rs`).
pub(crate) type RemoteJob = Box<dyn FnOnce() + Send>;

/// The thread-safe inbox of one loop: task wakes from other threads (or from this thread while
/// the loop is not running), and closures sent from anywhere, drained in the poll phase.
pub(crate) struct Inbox {
    /// Pending wakes, in arrival order.
    queue: Mutex<Vec<TaskRef>>,
    /// Number of entries in `queue`, readable without the lock (the loop checks it every
    /// iteration).
    len: AtomicUsize,
    /// Set when the loop is dropped: later wakes are ignored so nothing accumulates, and later
    /// jobs are refused.
    closed: AtomicBool,
    /// Closures to run on the loop, in arrival order. A queued job keeps the loop alive
    /// (`has_pending`). Never locked while user code runs: jobs run and drop outside the lock.
    jobs: Mutex<Vec<RemoteJob>>,
    /// Number of entries in `jobs`, readable without the lock.
    jobs_len: AtomicUsize,
    /// Interrupts the loop's poll-phase wait.
    poller: Arc<OsPoller>,
    /// Number of in-flight "keep alive" references from other threads (offloaded jobs).
    /// Changed only through `offload::LoopRef`, whose drop notifies the poller when the count
    /// reaches zero (a loop asleep only for that count must wake to see it end).
    pub(crate) external_refs: AtomicUsize,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("wakes", &self.len.load(Ordering::Relaxed))
            .field("jobs", &self.jobs_len.load(Ordering::Relaxed))
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Inbox {
    pub(crate) fn new(poller: Arc<OsPoller>) -> Self {
        Inbox {
            queue: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            jobs: Mutex::new(Vec::new()),
            jobs_len: AtomicUsize::new(0),
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

    /// Queues a closure to run on the loop and interrupts the poll phase; gives it back if the
    /// loop is gone.
    pub(crate) fn push_job(&self, job: RemoteJob) -> Result<(), RemoteJob> {
        {
            let mut q = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if self.closed.load(Ordering::Acquire) {
                return Err(job);
            }
            q.push(job);
            self.jobs_len.store(q.len(), Ordering::Release);
        }
        self.notify();
        Ok(())
    }

    /// Takes every queued job, in arrival order.
    pub(crate) fn take_jobs(&self) -> Vec<RemoteJob> {
        if self.jobs_len.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut q = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        self.jobs_len.store(0, Ordering::Release);
        std::mem::take(&mut *q)
    }

    /// Whether wakes or jobs are waiting to be drained.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.len.load(Ordering::Acquire) != 0 || self.jobs_len.load(Ordering::Acquire) != 0
    }

    /// Moves every pending wake into `out` (which must be empty), in arrival order.
    pub(crate) fn take_into(&self, out: &mut Vec<TaskRef>) {
        debug_assert!(out.is_empty());
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *q, out);
        self.len.store(0, Ordering::Release);
    }

    /// Stops accepting wakes and jobs, and frees those queued. Called when the loop is dropped.
    pub(crate) fn close(&self) {
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            self.closed.store(true, Ordering::Release);
            q.clear();
            self.len.store(0, Ordering::Release);
        }
        // Taken under the lock (a job pushed before `closed` was visible to its pusher is in
        // the queue by now), dropped with no lock held: a job's drop is user code (it may use
        // a `Spawner`, which now refuses it).
        let jobs = {
            let mut q = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            self.jobs_len.store(0, Ordering::Release);
            std::mem::take(&mut *q)
        };
        drop(jobs);
    }
}
