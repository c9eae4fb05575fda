//! [`JoinSet`]: a set of tasks of one loop, joined in the order they finish (tokio's).
//!
//! The handles live in a `futures` [`FuturesUnordered`], which polls only the handles whose
//! task woke it (each handle's join waker is a waker of that set), so `join_next` costs what
//! finished, not the size of the set. Invariant: every task spawned into the set and not yet
//! joined has its handle in `tasks`, so `abort_all` (and the drop, which aborts) reaches it.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::Stream;
use futures::stream::FuturesUnordered;

use super::abort::AbortHandle;
use super::{JoinError, JoinHandle};

/// A collection of tasks spawned on the running loop, awaited in the order they complete.
///
/// Dropping the set aborts every task still in it (tokio's behaviour); [`detach_all`]
/// lets them run on instead.
///
/// [`detach_all`]: JoinSet::detach_all
///
/// ```
/// use std::time::Duration;
/// use executor::task::JoinSet;
///
/// executor::block_on(async {
///     let mut set = JoinSet::new();
///     for ms in [3u64, 1, 2] {
///         set.spawn(async move {
///             executor::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(done) = set.join_next().await {
///         order.push(done.unwrap());
///     }
///     assert_eq!(order, [1, 2, 3]);
/// });
/// ```
#[must_use = "dropping a JoinSet aborts its tasks"]
pub struct JoinSet<T> {
    tasks: FuturesUnordered<JoinHandle<T>>,
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        JoinSet {
            tasks: FuturesUnordered::new(),
        }
    }

    /// Number of tasks in the set: running, or finished and not yet joined.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns `fut` on the running loop (as [`spawn`](crate::spawn)) into the set, and returns
    /// a handle that can abort it.
    ///
    /// # Panics
    /// If no loop is running on this thread.
    #[track_caller]
    pub fn spawn<F>(&mut self, fut: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(crate::spawn(fut))
    }

    /// Adds a task already spawned (its handle) to the set.
    pub fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        self.tasks.push(handle);
        abort
    }

    /// Waits for the next task to finish and returns its result; `None` when the set is empty.
    /// Cancel-safe: dropping the future loses no result (the task stays in the set).
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Takes the result of a task that has finished, if any, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        match self.poll_join_next(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r,
            Poll::Pending => None,
        }
    }

    /// Polls for the next finished task: `Ready(None)` when the set is empty.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        Pin::new(&mut self.tasks).poll_next(cx)
    }

    /// Aborts every task in the set. They stay in it: [`join_next`](Self::join_next) gives
    /// their results (cancelled, or the output of those that had finished).
    pub fn abort_all(&mut self) {
        for h in self.tasks.iter() {
            h.abort();
        }
    }

    /// Removes every task from the set without aborting them: they run on, detached.
    pub fn detach_all(&mut self) {
        self.tasks.clear();
    }

    /// Aborts every task and waits for all of them to be gone; the set is then empty.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Waits for every task and returns their outputs, in the order they finished.
    ///
    /// # Panics
    /// If a task panicked, that panic is resumed here (the other tasks are aborted when the set
    /// is dropped); if a task was aborted, with a message saying so.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(r) = self.join_next().await {
            match r {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("executor::task::JoinSet::join_all: {e}"),
            }
        }
        out
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for h in self.tasks.iter() {
            h.abort();
        }
    }
}

impl<T: 'static, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        for fut in iter {
            self.spawn(fut);
        }
    }
}

impl<T: 'static, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + 'static,
{
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let mut set = JoinSet::new();
        set.extend(iter);
        set
    }
}
