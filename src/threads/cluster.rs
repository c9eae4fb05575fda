//! A cluster of loops: N full [`EventLoop`](crate::EventLoop)s on N threads, with spawned work placed round-robin
//! or on the least-loaded loop (Node.js's `cluster` module, in one process).
//!
//! (Over 400 lines: most of it is the public API and its docs; the loop threads themselves are
//! `loop_thread.rs`.)
//!
//! More loops do not make a blocking job stop blocking its loop; they make more loops available
//! while some are blocked. CPU-bound jobs scale with the cores, not with the loops: on a 2-core
//! machine expect about 2x at best, however many loops you start.
//!
//! # Implementation
//! Each loop thread runs `block_on` over its inbox (a `futures` unbounded channel). A job is a
//! `Send` closure; on its loop it builds the future and spawns it as a task, plus a small
//! reporter task that awaits the task's [`JoinHandle`](crate::JoinHandle), counts it and sends
//! the outcome (panics included, as a [`JoinError`]) to the caller's [`ClusterHandle`].
//!
//! Ground rules:
//! - `load` of a loop counts the jobs placed on it and not yet settled: it goes up when the job
//!   is placed, and down when its reporter finishes or the job is dropped unrun (a guard moves
//!   with the job), so it never leaks.
//! - [`Cluster::join`] closes every inbox, then each loop runs until no referenced handle is left
//!   (as `EventLoop::run` does) before its thread is joined. Dropping a cluster without `join`
//!   cancels what is still pending instead, so a drop never waits for unbounded work.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

use crate::runtime::{Builder, LoopStats};
use crate::task::JoinError;
use crate::threads::loop_thread;

/// A job for a loop: runs on it and spawns the work's tasks.
type Job = Box<dyn FnOnce() + Send>;

/// How [`Cluster::spawn`] picks a loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// Each job goes to the next loop in turn.
    #[default]
    RoundRobin,
    /// Each job goes to the loop with the fewest unsettled jobs (ties: the next in turn).
    LeastLoaded,
}

/// Builds a [`Cluster`].
///
/// ```
/// use executor::{threads::Cluster, threads::Placement};
/// let cluster = Cluster::builder().loops(2).placement(Placement::LeastLoaded).build().unwrap();
/// assert_eq!(cluster.loops(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterBuilder {
    /// Number of loops; `None`: the machine's available parallelism.
    loops: Option<usize>,
    /// How jobs are placed.
    placement: Placement,
    /// Settings of every loop.
    loop_builder: Builder,
}

impl ClusterBuilder {
    /// Sets the number of loops (and threads).
    ///
    /// # Panics
    /// If `n` is zero.
    pub fn loops(&mut self, n: usize) -> &mut Self {
        assert!(
            n > 0,
            "executor::threads::ClusterBuilder::loops: a cluster needs at least one loop"
        );
        self.loops = Some(n);
        self
    }

    /// Sets how jobs are placed (default: [`Placement::RoundRobin`]).
    pub fn placement(&mut self, placement: Placement) -> &mut Self {
        self.placement = placement;
        self
    }

    /// Sets the settings each loop is built with (e.g. its offload pool's size).
    pub fn loop_builder(&mut self, builder: Builder) -> &mut Self {
        self.loop_builder = builder;
        self
    }

    /// Starts the loops. Fails if a thread cannot be spawned or a loop's poller created.
    pub fn build(&self) -> io::Result<Cluster> {
        let n = self.loops.unwrap_or_else(|| {
            thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let abort = Arc::new(AtomicBool::new(false));
        let mut cluster = Cluster {
            members: Vec::with_capacity(n),
            placement: self.placement,
            next: AtomicUsize::new(0),
            abort: abort.clone(),
        };
        for i in 0..n {
            // On error, `cluster` drops here, cancelling and joining the loops already started.
            cluster
                .members
                .push(Member::start(i, &self.loop_builder, abort.clone())?);
        }
        Ok(cluster)
    }
}

/// Per-loop counters, shared by the cluster and the loop's jobs.
#[derive(Debug, Default)]
struct Counters {
    /// Jobs placed on the loop and not yet settled (see the module's ground rules).
    load: AtomicUsize,
    /// Jobs whose task finished (returned or panicked) on the loop.
    tasks_run: AtomicU64,
}

/// Counts a placed job in `load` until dropped.
struct LoadGuard(Arc<Counters>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.load.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One loop of the cluster, as the cluster sees it.
#[derive(Debug)]
struct Member {
    /// The loop's inbox; closing it starts the loop's shutdown.
    inbox: mpsc::UnboundedSender<Job>,
    /// Load and completed-task counts.
    counters: Arc<Counters>,
    /// The loop's thread; returns the loop's stats.
    thread: thread::JoinHandle<LoopStats>,
}

impl Member {
    fn start(index: usize, builder: &Builder, abort: Arc<AtomicBool>) -> io::Result<Member> {
        let name = format!("executor-cluster-{index}");
        let started = loop_thread::start(
            name,
            "executor::threads::Cluster",
            builder,
            move |ev, mut jobs: mpsc::UnboundedReceiver<Job>| {
                let abort_inbox = abort.clone();
                ev.block_on(async move {
                    while let Some(job) = jobs.next().await {
                        if abort_inbox.load(Ordering::Acquire) {
                            break;
                        }
                        job();
                    }
                });
                if !abort.load(Ordering::Acquire) {
                    // Graceful join: everything placed here settles, as `EventLoop::run` would.
                    ev.run(|| {});
                }
                ev.stats()
            },
        )?;
        Ok(Member {
            inbox: started.inbox,
            counters: Arc::default(),
            thread: started.thread,
        })
    }
}

/// N event loops on N threads, sharing out spawned work.
///
/// Each loop is a full [`EventLoop`](crate::EventLoop): timers, immediates, tasks, offloading.
/// A job runs entirely on the loop it was placed on. `Cluster` is `Send + Sync`; spawn from any
/// thread.
///
/// On a 2-core machine expect about 2x at best for CPU-bound jobs, however many loops run.
///
/// # Examples
/// ```
/// let cluster = executor::threads::Cluster::new(2).unwrap();
/// let handles: Vec<_> = (0..4u64)
///     .map(|i| cluster.spawn(move || async move { i * i }))
///     .collect();
/// let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(squares, [0, 1, 4, 9]);
/// let report = cluster.join();
/// assert_eq!(report.tasks_run, [2, 2]); // round-robin
/// ```
pub struct Cluster {
    /// The loops, in index order; emptied by `join`.
    members: Vec<Member>,
    /// How jobs are placed.
    placement: Placement,
    /// Round-robin cursor (also where least-loaded starts looking, to spread ties).
    next: AtomicUsize,
    /// Set when the cluster is dropped without `join`: loops skip queued jobs and exit at once.
    abort: Arc<AtomicBool>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("loops", &self.members.len())
            .field("placement", &self.placement)
            .field("loads", &self.loads())
            .finish()
    }
}

impl Cluster {
    /// Starts `loops` loops with round-robin placement.
    ///
    /// # Panics
    /// If `loops` is zero.
    pub fn new(loops: usize) -> io::Result<Cluster> {
        Cluster::builder().loops(loops).build()
    }

    /// A builder for other settings.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// The number of loops.
    pub fn loops(&self) -> usize {
        self.members.len()
    }

    /// Places a job: `f` is sent to the chosen loop and called there; the future it builds (which
    /// need not be `Send`) runs as a task on that loop.
    ///
    /// The returned handle gives the output, by blocking ([`ClusterHandle::join`]) or by `.await`.
    /// Dropping the handle lets the job run on unobserved.
    pub fn spawn<F, Fut, T>(&self, f: F) -> ClusterHandle<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let index = self.pick();
        let member = &self.members[index];
        member.counters.load.fetch_add(1, Ordering::AcqRel);
        let guard = LoadGuard(member.counters.clone());
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let task = crate::spawn(async move { f().await });
            crate::spawn(async move {
                let out = task.await;
                if !matches!(&out, Err(e) if e.is_cancelled()) {
                    guard.0.tasks_run.fetch_add(1, Ordering::AcqRel);
                }
                drop(guard);
                let _ = tx.send(out);
            })
            .detach();
        });
        // A closed inbox means the loop thread died; the dropped job resolves the handle as
        // cancelled and releases its load.
        let _ = member.inbox.unbounded_send(job);
        ClusterHandle {
            rx,
            loop_index: index,
            loop_thread: member.thread.thread().id(),
        }
    }

    /// The loop for the next job. Loops whose thread has died (a callback panicked there: its
    /// inbox is closed) are skipped, so work is not sent to be cancelled while others live.
    fn pick(&self) -> usize {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut live = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| !self.members[i].inbox.is_closed());
        match self.placement {
            Placement::RoundRobin => live.next(),
            Placement::LeastLoaded => {
                live.min_by_key(|&i| self.members[i].counters.load.load(Ordering::Acquire))
            }
        }
        .unwrap_or(start)
    }

    /// Whether each loop's thread is still serving. A loop dies when a plain callback on it
    /// panics (an uncaught exception ends its `run`); new jobs then go to the other loops, and
    /// [`join`](Self::join) re-raises that panic.
    pub fn live_loops(&self) -> Vec<bool> {
        self.members.iter().map(|m| !m.inbox.is_closed()).collect()
    }

    /// Unsettled jobs per loop, right now.
    pub fn loads(&self) -> Vec<usize> {
        self.members
            .iter()
            .map(|m| m.counters.load.load(Ordering::Acquire))
            .collect()
    }

    /// Tasks finished (returned or panicked) per loop so far.
    pub fn tasks_run(&self) -> Vec<u64> {
        self.members
            .iter()
            .map(|m| m.counters.tasks_run.load(Ordering::Acquire))
            .collect()
    }

    /// Stops accepting work, lets every loop run until idle (every job settled, every timer
    /// fired), joins the threads and reports what each loop did.
    ///
    /// # Panics
    /// Re-raises the panic of a loop whose callback panicked (an uncaught exception there).
    pub fn join(mut self) -> ClusterReport {
        self.shut_down()
    }

    /// Closes the inboxes and joins the loops (graceful unless `abort` was set).
    fn shut_down(&mut self) -> ClusterReport {
        let members = std::mem::take(&mut self.members);
        let mut report = ClusterReport {
            tasks_run: Vec::with_capacity(members.len()),
            loop_stats: Vec::with_capacity(members.len()),
        };
        let mut panicked = None;
        // Close every inbox before joining any loop, so they wind down in parallel.
        let threads: Vec<_> = members
            .into_iter()
            .map(|m| {
                drop(m.inbox);
                (m.thread, m.counters)
            })
            .collect();
        for (thread, counters) in threads {
            // The last owner may be a job on one of the loops: that thread cannot join itself,
            // and ends by itself once the job returns (its inbox is closed).
            let stats = if thread.thread().id() == thread::current().id() {
                LoopStats::default()
            } else {
                thread.join().unwrap_or_else(|payload| {
                    panicked.get_or_insert(payload);
                    LoopStats::default()
                })
            };
            report
                .tasks_run
                .push(counters.tasks_run.load(Ordering::Acquire));
            report.loop_stats.push(stats);
        }
        if let Some(payload) = panicked {
            if !self.abort.load(Ordering::Acquire) && !thread::panicking() {
                std::panic::resume_unwind(payload);
            }
        }
        report
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.members.is_empty() {
            self.abort.store(true, Ordering::Release);
            self.shut_down();
        }
    }
}

/// What each loop of a [`Cluster`] did, from [`Cluster::join`]; index `i` is loop `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterReport {
    /// Jobs whose task finished (returned or panicked) on each loop.
    pub tasks_run: Vec<u64>,
    /// Each loop's own counters (they include the cluster's internal tasks: two per job plus the
    /// inbox).
    pub loop_stats: Vec<LoopStats>,
}

/// The output of a job placed by [`Cluster::spawn`]: block on it with [`join`](Self::join), or
/// `.await` it (from any loop, or any executor).
#[must_use = "dropping a ClusterHandle lets the job run unobserved; `join()` or `.await` it"]
pub struct ClusterHandle<T> {
    /// Receives the job's outcome; closed without one if the job was cancelled.
    rx: oneshot::Receiver<Result<T, JoinError>>,
    /// Which loop runs the job.
    loop_index: usize,
    /// That loop's thread, where blocking on the handle would deadlock.
    loop_thread: ThreadId,
}

impl<T> ClusterHandle<T> {
    /// Blocks this thread (parked) until the job settles; returns its output, or the
    /// [`JoinError`] of a panic or a cancellation (the cluster was dropped before it finished).
    ///
    /// # Panics
    /// If called on the thread of the loop that runs the job (it would wait forever); `.await`
    /// the handle there instead.
    pub fn join(self) -> Result<T, JoinError> {
        assert!(
            thread::current().id() != self.loop_thread,
            "executor::threads::ClusterHandle::join called on the loop that runs the job; this would \
             deadlock. `.await` the handle instead"
        );
        crate::threads::block_thread::block_thread_on(self)
    }

    /// The index of the loop the job was placed on.
    pub fn loop_index(&self) -> usize {
        self.loop_index
    }
}

impl<T> Future for ClusterHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(Pin::new(&mut self.rx).poll(cx));
        Poll::Ready(out.unwrap_or_else(|_| Err(JoinError::cancelled())))
    }
}

impl<T> fmt::Debug for ClusterHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("loop_index", &self.loop_index)
            .finish()
    }
}
