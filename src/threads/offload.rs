//! Off-loading CPU-bound work to the loop's pool of persistent threads: [`offload`], the
//! equivalent of libuv's `uv_queue_work` (which Node.js uses for `fs`, `crypto` and `zlib`).
//!
//! # Implementation
//! Each loop owns a [`PoolSlot`]; its [`Pool`] starts on the first `offload` and grows one thread
//! at a time, up to its size, when a job arrives and no idle worker is waiting for it. A job is
//! a boxed closure in a FIFO queue behind one mutex; the result travels back through a
//! `futures` oneshot channel, whose send wakes the awaiting task's waker, and so a sleeping loop
//! (see `task/waker.rs` and `task/inbox.rs`).
//!
//! Ground rules:
//! - Only the loop's own thread submits jobs and starts workers (`workers` is a `RefCell`).
//! - A job is in exactly one place: the queue, one worker's hands, or gone. A worker takes it
//!   and a dropped [`Offload`] (or the pool's shutdown) removes it under the same lock, so a job
//!   removed before it started never runs.
//! - Every job holds a [`LoopRef`] (one count in `Inbox::external_refs`) from submission until
//!   its result has been sent or it has been removed: a pending job keeps the loop alive even if
//!   nobody awaits it, as a libuv work request does, and releasing the last one wakes the loop so
//!   it can see it has nothing left to do.
//! - No user code runs under the pool lock: closures run, and removed jobs drop, outside it.

use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::thread;

use futures::channel::oneshot;

use crate::runtime::LoopState;
use crate::runtime::context;
use crate::task::JoinError;
use crate::task::inbox::Inbox;

/// Runs `f` on the running loop's pool of worker threads and resolves, on the loop, to what it
/// returns: the way to keep a CPU-bound job from blocking the loop.
///
/// The job is queued at once (the pool starts on first use, with
/// [`Builder::offload_threads`](crate::Builder::offload_threads) threads, by default the machine's
/// available parallelism). Until it has finished, the job keeps the loop alive, awaited or not.
/// Dropping the returned future before a worker has picked the job up removes it: it never runs.
/// A job that has started cannot be stopped; its result is then dropped on the worker.
///
/// A panic in `f` resolves the future to a [`JoinError`] carrying the payload (as a spawned
/// task's would).
///
/// # Panics
/// If no loop is running on this thread, or if the pool has no thread and cannot start one.
///
/// # Examples
/// ```
/// fn nth_prime(n: usize) -> u64 {
///     (2u64..).filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0)).nth(n - 1).unwrap()
/// }
/// let p = executor::block_on(async {
///     // The loop keeps running timers and callbacks while a worker searches.
///     executor::offload(|| nth_prime(1000)).await
/// });
/// assert_eq!(p.unwrap(), 7919);
/// ```
#[track_caller]
pub fn offload<F, T>(f: F) -> Offload<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    context::with_current("offload", |inner| inner.pool.submit(inner, f))
}

/// The future returned by [`offload`]: the job's result, once a worker has run it.
///
/// It is `Send`, and its drop is thread-safe; dropping it before the job started removes the job.
#[must_use = "dropping an Offload before its job starts cancels the job; `.await` it"]
pub struct Offload<T> {
    /// Where the worker sends the result; closed without a value if the job was dropped unrun.
    rx: oneshot::Receiver<Result<T, JoinError>>,
    /// The job's id in the pool's queue (ids are never reused).
    id: u64,
    /// The pool, to remove the job on drop; dead once the loop is gone.
    pool: Weak<Shared>,
    /// Set once the result has been returned: nothing is left to cancel.
    done: bool,
}

impl<T> Future for Offload<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.done,
            "Offload polled after it returned the job's result"
        );
        let out = std::task::ready!(Pin::new(&mut this.rx).poll(cx));
        this.done = true;
        Poll::Ready(out.unwrap_or_else(|_| Err(JoinError::cancelled())))
    }
}

impl<T> Drop for Offload<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(shared) = self.pool.upgrade() {
            let job = shared.remove(self.id);
            // Outside the lock: the closure's captures are user values.
            drop(job);
        }
    }
}

impl<T> fmt::Debug for Offload<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offload")
            .field("id", &self.id)
            .field("done", &self.done)
            .finish()
    }
}

/// One count in the loop's `Inbox::external_refs`: the loop stays alive while it exists.
struct LoopRef(Arc<Inbox>);

impl LoopRef {
    fn new(remote: &Arc<Inbox>) -> Self {
        remote.external_refs.fetch_add(1, Ordering::AcqRel);
        LoopRef(remote.clone())
    }
}

impl Drop for LoopRef {
    fn drop(&mut self) {
        // The loop may be asleep only because of this count: wake it to re-check liveness.
        // (The notification is sticky, so a loop about to sleep returns at once.)
        if self.0.external_refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.notify();
        }
    }
}

/// A queued job.
struct Job {
    /// Never reused; how a dropped [`Offload`] finds its job.
    id: u64,
    /// Runs the user's closure and sends its result; never unwinds.
    run: Box<dyn FnOnce() + Send>,
    /// Keeps the loop alive until the job is done or removed.
    alive: LoopRef,
}

/// The loop's worker pool, if started.
pub(crate) struct PoolSlot {
    /// Requested number of threads (`None`: available parallelism).
    threads: Option<usize>,
    /// Set on the first [`offload`]; never unset (shut down, it refuses jobs).
    pool: OnceCell<Pool>,
}

impl fmt::Debug for PoolSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSlot")
            .field("threads", &self.threads)
            .field("pool", &self.pool.get())
            .finish()
    }
}

impl PoolSlot {
    pub(crate) fn new(threads: Option<usize>) -> Self {
        PoolSlot {
            threads,
            pool: OnceCell::new(),
        }
    }

    /// Queues `f` on the pool (starting it if needed); the loop stays alive until it is done.
    fn submit<F, T>(&self, inner: &LoopState, f: F) -> Offload<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.get_or_init(|| {
            let size = self.threads.unwrap_or_else(|| {
                thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            Pool::new(size, inner.id)
        });
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move || {
            let out = panic::catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked);
            // The future may be gone (dropped after the job started): the result drops here.
            let _ = tx.send(out);
        });
        let id = pool.push(run, LoopRef::new(&inner.remote));
        Offload {
            rx,
            id,
            pool: Arc::downgrade(&pool.shared),
            done: false,
        }
    }

    /// Stops and joins the pool's threads, if any were started. Jobs not yet started are
    /// dropped (their futures resolve to a cancelled [`JoinError`]); running ones finish.
    pub(crate) fn shutdown(&self) {
        if let Some(pool) = self.pool.get() {
            pool.shutdown();
        }
    }
}

/// The part of the pool shared with its workers.
struct Shared {
    /// The queue and the bookkeeping around it.
    state: Mutex<State>,
    /// Signalled when a job is queued or the pool closes.
    work: Condvar,
}

/// What the pool lock protects.
struct State {
    /// Jobs not yet picked up, oldest first.
    queue: VecDeque<Job>,
    /// Workers waiting on `work` (a job queued while `queue.len() <= idle` needs no new thread).
    idle: usize,
    /// Last job id handed out.
    next_id: u64,
    /// Set by `shutdown`: workers exit once the queue is empty, and new jobs are refused.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under the lock, so a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes job `id` out of the queue if no worker has picked it up yet.
    fn remove(&self, id: u64) -> Option<Job> {
        let mut st = self.lock();
        let at = st.queue.iter().position(|job| job.id == id)?;
        st.queue.remove(at)
    }

    /// A worker's life: take the oldest job, run it, release its loop reference; exit when the
    /// pool is closed and nothing is queued.
    fn work(&self) {
        loop {
            let job = {
                let mut st = self.lock();
                loop {
                    if let Some(job) = st.queue.pop_front() {
                        break job;
                    }
                    if st.closed {
                        return;
                    }
                    st.idle += 1;
                    st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.idle -= 1;
                }
            };
            let Job { run, alive, .. } = job;
            // `run` catches the job's panic; this catches one from dropping a result nobody
            // awaited, so the worker survives both.
            let _ = panic::catch_unwind(AssertUnwindSafe(run));
            // After the send, so a loop woken by this release already sees the result.
            drop(alive);
        }
    }
}

/// A started pool: its shared queue and its threads.
struct Pool {
    /// Queue and signal, shared with the workers.
    shared: Arc<Shared>,
    /// Started workers, joined by `shutdown`; never more than `max`.
    workers: RefCell<Vec<thread::JoinHandle<()>>>,
    /// The pool's size.
    max: usize,
    /// The owning loop's id, for thread names.
    loop_id: u64,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.workers.borrow().len())
            .field("max", &self.max)
            .finish()
    }
}

impl Pool {
    fn new(max: usize, loop_id: u64) -> Self {
        debug_assert!(max > 0);
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    idle: 0,
                    next_id: 0,
                    closed: false,
                }),
                work: Condvar::new(),
            }),
            workers: RefCell::new(Vec::new()),
            max,
            loop_id,
        }
    }

    /// Queues a job and makes sure a worker will take it. Returns the job's id.
    fn push(&self, run: Box<dyn FnOnce() + Send>, alive: LoopRef) -> u64 {
        let mut st = self.shared.lock();
        st.next_id += 1;
        let id = st.next_id;
        let job = Job { id, run, alive };
        if st.closed {
            // Only reachable from a destructor running during the loop's drop: refuse the job
            // (its future resolves to "cancelled").
            drop(st);
            drop(job);
            return id;
        }
        st.queue.push_back(job);
        let wake_idle = st.idle > 0;
        let uncovered = st.queue.len() > st.idle;
        drop(st);
        if wake_idle {
            self.shared.work.notify_one();
        }
        if uncovered && self.workers.borrow().len() < self.max {
            self.start_worker();
        }
        id
    }

    fn start_worker(&self) {
        let mut workers = self.workers.borrow_mut();
        let shared = self.shared.clone();
        let name = format!("executor-offload-{}-{}", self.loop_id, workers.len());
        match thread::Builder::new()
            .name(name)
            .spawn(move || shared.work())
        {
            Ok(handle) => workers.push(handle),
            // Busy workers will get to the job; only a pool with none is stuck.
            Err(_) if !workers.is_empty() => {}
            Err(e) => {
                drop(workers);
                let stranded = std::mem::take(&mut self.shared.lock().queue);
                drop(stranded);
                panic!("executor::offload: cannot start a worker thread: {e}");
            }
        }
    }

    /// Refuses new jobs, drops those not started, lets running ones finish, joins every worker.
    fn shutdown(&self) {
        let stranded = {
            let mut st = self.shared.lock();
            st.closed = true;
            std::mem::take(&mut st.queue)
        };
        self.shared.work.notify_all();
        drop(stranded);
        let workers = std::mem::take(&mut *self.workers.borrow_mut());
        for worker in workers {
            // A worker never unwinds (see `work`); if it somehow did, there is nothing to add.
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_job_is_gone_and_the_rest_keep_their_order() {
        let pool = Pool::new(1, 0);
        let poller = crate::io::poller::OsPoller::new().unwrap();
        let remote = Arc::new(Inbox::new(Arc::new(poller)));
        // Queue directly (no worker started) to look at the queue alone.
        let mut st = pool.shared.lock();
        for id in 1..=3 {
            st.queue.push_back(Job {
                id,
                run: Box::new(|| {}),
                alive: LoopRef::new(&remote),
            });
        }
        drop(st);
        assert_eq!(remote.external_refs.load(Ordering::Acquire), 3);
        assert!(pool.shared.remove(2).is_some());
        assert!(pool.shared.remove(2).is_none());
        let ids: Vec<u64> = pool.shared.lock().queue.iter().map(|j| j.id).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(remote.external_refs.load(Ordering::Acquire), 2);
        pool.shutdown();
        assert_eq!(remote.external_refs.load(Ordering::Acquire), 0);
    }
}
