//! [`Spawner`]: a `Send + Sync + Clone` handle that puts work onto a loop from any thread
//! (tokio's `Handle::spawn`, async-executor's `Executor`), and the loop's side of it.
//!
//! # How it works
//! A spawner holds the loop's [`Inbox`] (an `Arc`, not the loop: the loop stays `!Send` and is
//! dropped by its own thread). [`Spawner::spawn`] boxes a `Send` closure that will spawn the
//! future *on the loop*, queues it on the inbox and interrupts the poll phase; the loop runs
//! queued closures in its poll phase, right after the wakes from other threads, each followed by
//! a drain (so the new task's first poll is right there, as an I/O callback's would be).
//!
//! Invariants:
//! - **Liveness.** A queued closure keeps the loop alive (`Inbox::has_pending`); once it ran,
//!   the task it spawned does (it is in the slab until it finishes). So a loop never ends
//!   between a spawn from another thread and the end of that task.
//! - **The loop is gone:** the inbox is closed when the loop is dropped; a later spawn is
//!   refused with [`LoopGone`], and a closure still queued then is dropped (its
//!   [`RemoteJoinHandle`] resolves to a cancelled [`JoinError`]).
//! - The result crosses back through a `futures` oneshot channel, sent by a second, local task
//!   that awaits the first one's [`JoinHandle`]: a panic of the future arrives as
//!   [`JoinError::is_panic`], an abort as [`JoinError::is_cancelled`].

use std::sync::Mutex;

use futures::channel::oneshot;
use futures::future::FusedFuture;

use super::*;
use crate::task::JoinError;
use crate::task::abort::AbortHandle;

/// A handle to put work onto one loop from any thread: `Send + Sync + Clone`, cheap to clone.
///
/// Get one with [`EventLoop::spawner`] or, on the loop, [`spawner`](crate::spawner()). It does
/// not keep the loop from being dropped (the loop belongs to its thread); spawning onto a
/// dropped loop fails with [`LoopGone`]. Work sent to a loop that is not running at that moment
/// runs when it next runs.
///
/// ```
/// use executor::EventLoop;
///
/// let ev = EventLoop::new();
/// let spawner = ev.spawner();
/// let out = ev.block_on(async move {
///     // From another thread (an `offload` job, a thread of a foreign library): back onto the
///     // loop, with a `Send` future.
///     let worker = std::thread::spawn(move || {
///         spawner.spawn(async { 6 * 7 }).expect("the loop is alive")
///     });
///     let handle = worker.join().unwrap();
///     handle.await.unwrap()
/// });
/// assert_eq!(out, 42);
/// ```
#[derive(Clone)]
pub struct Spawner {
    /// The loop's id (to recognise "we are on that loop already").
    loop_id: u64,
    /// Where the work goes.
    inbox: Arc<Inbox>,
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("loop_id", &self.loop_id)
            .finish()
    }
}

/// The error of a [`Spawner`] whose loop has been dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopGone(());

impl fmt::Display for LoopGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop this Spawner points at has been dropped")
    }
}

impl std::error::Error for LoopGone {}

impl Spawner {
    pub(crate) fn new(inner: &LoopState) -> Self {
        Spawner {
            loop_id: inner.id,
            inbox: inner.remote.clone(),
        }
    }

    /// Spawns `fut` on the loop, from any thread. Its output comes back through the returned
    /// [`RemoteJoinHandle`], which can be awaited anywhere (on this loop, on another loop, with
    /// `futures::executor::block_on` on a plain thread).
    ///
    /// # Errors
    /// [`LoopGone`] if the loop has been dropped.
    pub fn spawn<F>(&self, fut: F) -> Result<RemoteJoinHandle<F::Output>, LoopGone>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_local_with(move || fut)
    }

    /// Runs `make` on the loop's thread and spawns the future it returns there, which need not
    /// be `Send` (it may hold `Rc`s, the loop's sockets and timers): only `make` and the output
    /// cross threads.
    ///
    /// `make` runs inside the new task's first poll, so a panic in it is the task's
    /// [`JoinError`].
    ///
    /// # Errors
    /// [`LoopGone`] if the loop has been dropped.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let ev = executor::EventLoop::new();
    /// let spawner = ev.spawner();
    /// let handle = std::thread::spawn(move || {
    ///     spawner
    ///         .spawn_local_with(|| async {
    ///             let local = Rc::new(5); // not Send: lives on the loop only
    ///             executor::yield_now().await;
    ///             *local + 1
    ///         })
    ///         .unwrap()
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(ev.block_on(handle).unwrap(), 6);
    /// ```
    pub fn spawn_local_with<F, Fut>(
        &self,
        make: F,
    ) -> Result<RemoteJoinHandle<Fut::Output>, LoopGone>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let abort = Arc::new(Mutex::new(AbortSlot::default()));
        let slot = abort.clone();
        let job = move || start_remote(make, tx, &slot);
        let on_this_loop =
            context::try_with_current(|inner| inner.id == self.loop_id) == Some(true);
        if on_this_loop {
            job();
        } else if self.inbox.push_job(Box::new(job)).is_err() {
            return Err(LoopGone(()));
        }
        Ok(RemoteJoinHandle { rx, abort })
    }

    /// Runs `f` on the loop's thread (as a task, so a panic in it is the handle's
    /// [`JoinError`]), and gives back what it returned.
    ///
    /// # Errors
    /// [`LoopGone`] if the loop has been dropped.
    pub fn run<F, R>(&self, f: F) -> Result<RemoteJoinHandle<R>, LoopGone>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_local_with(move || async move { f() })
    }

    /// Runs `f` on the loop's thread: now if this is that thread and the loop runs, else in
    /// its next poll phase (dropped unrun if the loop is gone). For the crate's own glue, whose
    /// closures only spawn.
    #[cfg_attr(not(feature = "hyper"), allow(dead_code))]
    pub(crate) fn run_detached(&self, f: impl FnOnce() + Send + 'static) {
        let on_this_loop =
            context::try_with_current(|inner| inner.id == self.loop_id) == Some(true);
        if on_this_loop {
            f();
        } else {
            let _ = self.inbox.push_job(Box::new(f));
        }
    }

    /// Whether the loop has been dropped (a later spawn fails). `false` can be out of date by
    /// the time it is read.
    pub fn is_loop_gone(&self) -> bool {
        crate::task::inbox::registry::find(self.loop_id).is_none()
    }
}

/// On the loop's thread: spawns the task and its forwarder, and hands the task's abort handle
/// to the remote join handle.
fn start_remote<F, Fut>(
    make: F,
    tx: oneshot::Sender<Result<Fut::Output, JoinError>>,
    slot: &Mutex<AbortSlot>,
) where
    F: FnOnce() -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let Some(task) = context::try_with_current(|inner| {
        inner.spawn(async move { make().await }, Location::caller())
    }) else {
        // Not reachable: jobs run in the poll phase, and the on-loop path checked the loop.
        return;
    };
    let handle = task.abort_handle();
    let aborted = {
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        if !s.aborted {
            s.handle = Some(handle.clone());
        }
        s.aborted
    };
    if aborted {
        handle.abort();
    }
    context::with_current("Spawner::spawn", |inner| {
        inner
            .spawn(
                async move {
                    // The receiver may be gone (the handle was dropped): nobody to tell.
                    let _ = tx.send(task.await);
                },
                Location::caller(),
            )
            .detach();
    });
}

/// What a [`RemoteJoinHandle`] needs to abort its task, once the loop has spawned it.
#[derive(Default)]
struct AbortSlot {
    /// `abort` was called.
    aborted: bool,
    /// The task's handle, once spawned (and not aborted before that).
    handle: Option<AbortHandle>,
}

/// The result of a task a [`Spawner`] sent to a loop: a `Send` future of
/// `Result<T, JoinError>`, awaitable on any thread or loop.
///
/// Dropping it detaches the task. [`JoinError::is_cancelled`] if the task was aborted, or if the
/// loop was dropped before it finished (or before it started).
#[must_use = "dropping a RemoteJoinHandle detaches the task"]
pub struct RemoteJoinHandle<T> {
    rx: oneshot::Receiver<Result<T, JoinError>>,
    abort: Arc<Mutex<AbortSlot>>,
}

impl<T> RemoteJoinHandle<T> {
    /// Cancels the task, from any thread: at once if it has started and this is its loop's
    /// thread, else in the loop's next poll phase (or as soon as the loop spawns it).
    pub fn abort(&self) {
        let handle = {
            let mut s = self.abort.lock().unwrap_or_else(|e| e.into_inner());
            s.aborted = true;
            s.handle.clone()
        };
        if let Some(h) = handle {
            h.abort();
        }
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(JoinError::cancelled())))
    }
}

impl<T> FusedFuture for RemoteJoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.rx.is_terminated()
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle").finish_non_exhaustive()
    }
}

impl LoopState {
    /// Runs the closures queued by spawners, each followed by a drain (poll phase, after the
    /// wakes from other threads). If one panics (it cannot in practice: they only spawn), those
    /// after it are queued as microtasks, not lost.
    pub(super) fn run_remote_jobs(&self) {
        struct Requeue<'a>(
            &'a LoopState,
            std::vec::IntoIter<crate::task::inbox::RemoteJob>,
        );
        impl Drop for Requeue<'_> {
            fn drop(&mut self) {
                let rest: Vec<Job> = self
                    .1
                    .by_ref()
                    .map(|j| Job::callback(std::panic::Location::caller(), j))
                    .collect();
                self.0.queues.extend_micro(rest);
            }
        }
        let jobs = self.remote.take_jobs();
        if jobs.is_empty() {
            return;
        }
        let mut rest = Requeue(self, jobs.into_iter());
        for job in rest.1.by_ref() {
            self.traced(Kind::Wake, 0, None, job);
            self.drain_queues();
        }
    }
}
