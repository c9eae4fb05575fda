//! What the spawner of a task holds: [`JoinHandle`] (await the output, abort, detach) and the
//! [`JoinError`] of a task that panicked or was cancelled.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Weak;
use std::task::{Context, Poll};

use super::JoinHandleParts;
use super::abort;
use super::waker::TaskRef;
use crate::runtime::LoopState;

/// An owned permission to await (or abort) a spawned task, like tokio's.
///
/// Awaiting it gives the task's output, or a [`JoinError`] if the task panicked or was aborted.
/// Dropping it detaches the task: it keeps running and its output is dropped.
#[must_use = "dropping a JoinHandle detaches the task; `.await` it or call `detach()` to say so"]
pub struct JoinHandle<T> {
    /// The task (one counted reference to its allocation).
    target: JoinHandleParts<T>,
    /// Where the task lives, for `abort`.
    task: TaskRef,
    /// The task's loop, for `abort`.
    owner: Weak<LoopState>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(target: JoinHandleParts<T>, task: TaskRef, owner: Weak<LoopState>) -> Self {
        JoinHandle {
            target,
            task,
            owner,
        }
    }

    /// Cancels the task: its future is dropped (at once, or right after its current poll if it
    /// aborts itself) and awaiting the handle gives [`JoinError::is_cancelled`]. Aborting a
    /// finished task does nothing.
    pub fn abort(&self) {
        if let Some(inner) = self.owner.upgrade() {
            inner.abort_task(self.task);
        }
    }

    /// Whether the task has finished (returned, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        self.target.is_finished()
    }

    /// A `Send` handle that can abort the task from any thread (see [`abort::AbortHandle`]).
    ///
    /// [`abort::AbortHandle`]: crate::task::AbortHandle
    pub fn abort_handle(&self) -> abort::AbortHandle {
        let loop_id = self.owner.upgrade().map_or(0, |inner| inner.id);
        abort::AbortHandle::new(loop_id, self.task)
    }

    /// Lets the task run on without anyone awaiting it (the same as dropping the handle).
    pub fn detach(self) {}

    /// The task's id, unique on its loop (useful in logs and traces).
    pub fn id(&self) -> u64 {
        self.task.id
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.target.poll_join(cx)
    }
}

/// Terminated once it has returned the task's output (or error): `futures::select!` then
/// leaves it alone.
impl<T> futures::future::FusedFuture for JoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.target.is_consumed()
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.target.detach();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task did not produce its output.
pub struct JoinError {
    /// The panic payload, or `None` if the task was cancelled.
    panic: Option<Box<dyn Any + Send + 'static>>,
}

impl JoinError {
    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            panic: Some(payload),
        }
    }

    pub(crate) fn cancelled() -> Self {
        JoinError { panic: None }
    }

    /// The task was aborted (or its loop was dropped) before it finished; for an
    /// [`offload`](crate::offload)ed job: its loop was dropped before a worker picked it up.
    pub fn is_cancelled(&self) -> bool {
        self.panic.is_none()
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        self.panic.is_some()
    }

    /// The panic payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the task was cancelled rather than panicking.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.panic
            .expect("JoinError::into_panic called on a cancelled task")
    }

    /// The panic message, when the payload is a string (as `panic!("...")` makes it).
    pub fn panic_message(&self) -> Option<&str> {
        panic_message(self.panic.as_deref()?)
    }
}

/// The message of a panic payload made by `panic!` (a `&str` or a `String`), as
/// `catch_unwind` or [`std::thread::JoinHandle::join`] hands it over.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
/// assert_eq!(executor::task::panic_message(&*payload), Some("boom 7"));
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.panic, self.panic_message()) {
            (None, _) => f.write_str("JoinError::Cancelled"),
            (Some(_), Some(m)) => write!(f, "JoinError::Panic({m:?})"),
            (Some(_), None) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.panic, self.panic_message()) {
            (None, _) => f.write_str("task was cancelled"),
            (Some(_), Some(m)) => write!(f, "task panicked: {m}"),
            (Some(_), None) => f.write_str("task panicked"),
        }
    }
}

impl std::error::Error for JoinError {}
