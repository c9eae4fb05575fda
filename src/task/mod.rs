//! Tasks: spawned futures, their join handles, and how the loop polls them.
//!
//! # Implementation
//! A task is one `Rc<TaskCell<F>>` (the future, later its output, and the join waker) plus one
//! `Arc<WakeTarget>` (the thread-safe part its [`Waker`] points at; see `waker.rs`). The loop's task
//! slab holds the `Rc` until the task finishes or is aborted; the [`JoinHandle`] holds another.
//!
//! Ground rules:
//! - The future and the output are only touched on the loop's thread (`TaskCell` is `!Send`); the
//!   waker only touches the header, so a waker may travel anywhere.
//! - A task is polled only from a queue entry created when its `scheduled` flag went from false
//!   to true; the flag is cleared right before the poll, so a wake during the poll queues it again.
//! - A panic while polling is caught and becomes the task's [`JoinError`]; the loop carries on.

pub(crate) mod inbox;
pub(crate) mod waker;
pub(crate) mod yield_now;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use crate::runtime::LoopState;
use crate::task::waker::{TaskRef, WakeTarget, new_waker, wake_target_of};

/// The life of a task's future.
enum Stage<F: Future> {
    /// Still running.
    Running(F),
    /// Finished (or aborted, or panicked); the output waits for the join handle.
    Finished(Result<F::Output, JoinError>),
    /// The output was taken by the join handle, or dropped because nobody will take it.
    Consumed,
}

/// A task as the loop sees it.
pub(crate) trait ErasedTask {
    /// Polls the task once. Returns true when the task is finished (and can leave the slab).
    fn run(&self) -> bool;
    /// Drops the future (abort or loop shutdown). Returns false if the task is being polled right
    /// now (it is then cancelled when that poll returns).
    fn cancel(&self) -> bool;
    /// The shared header (the waker's target).
    fn header(&self) -> &WakeTarget;
    /// The task's own waker.
    fn waker(&self) -> &Waker;
}

/// The loop-local part of a task.
struct TaskCell<F: Future> {
    /// The future or its output. Borrowed mutably only while polling or finishing.
    stage: RefCell<Stage<F>>,
    /// The task's waker, made once at spawn (by `new_waker`) so a poll needs no allocation.
    waker: Waker,
    /// Who waits on the join handle.
    join_waker: Cell<Option<Waker>>,
    /// Set when the join handle is dropped: the output is dropped as soon as it exists.
    detached: Cell<bool>,
    /// Set by `abort` during the task's own poll: cancel when the poll returns.
    abort_requested: Cell<bool>,
}

impl<F: Future> TaskCell<F> {
    fn finish(&self, result: Result<F::Output, JoinError>) {
        let new = if self.detached.get() {
            drop(result);
            Stage::Consumed
        } else {
            Stage::Finished(result)
        };
        // Take the finished future out before dropping it: its destructor is user code and may
        // reach this task again (poll or drop its own JoinHandle).
        let old = std::mem::replace(&mut *self.stage.borrow_mut(), new);
        drop(old);
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }
}

impl<F: Future> ErasedTask for TaskCell<F> {
    fn run(&self) -> bool {
        self.header().scheduled.store(false, Ordering::Release);
        let mut stage = self.stage.borrow_mut();
        let Stage::Running(fut) = &mut *stage else {
            return true;
        };
        // SAFETY: the future lives inside the `Rc` allocation of this cell and is never moved:
        // it is only ever dropped in place (by overwriting `stage`), which `Pin` allows.
        let fut = unsafe { Pin::new_unchecked(fut) };
        let mut cx = Context::from_waker(&self.waker);
        let result = panic::catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx)));
        drop(stage);
        match result {
            Ok(Poll::Pending) => {
                if self.abort_requested.get() {
                    self.cancel();
                    return true;
                }
                false
            }
            Ok(Poll::Ready(out)) => {
                self.finish(Ok(out));
                true
            }
            Err(payload) => {
                self.finish(Err(JoinError::panicked(payload)));
                true
            }
        }
    }

    fn cancel(&self) -> bool {
        let Ok(mut stage) = self.stage.try_borrow_mut() else {
            self.abort_requested.set(true);
            return false;
        };
        if !matches!(*stage, Stage::Running(_)) {
            return true;
        }
        // Take the future out of the cell before dropping it: its destructor may call back into
        // the loop (clear timers, abort other tasks, even this one).
        let old = std::mem::replace(&mut *stage, Stage::Consumed);
        drop(stage);
        // A destructor that panics must not unwind out of `abort` or the loop's shutdown (the
        // tasks after this one would never be freed): its panic becomes the task's result.
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(old)));
        self.finish(Err(match dropped {
            Ok(()) => JoinError::cancelled(),
            Err(payload) => JoinError::panicked(payload),
        }));
        true
    }

    fn header(&self) -> &WakeTarget {
        // SAFETY: `waker` was made by `new_waker` in `new_task`.
        unsafe { wake_target_of(&self.waker) }
    }

    fn waker(&self) -> &Waker {
        &self.waker
    }
}

/// Typed access to a task's output, for its [`JoinHandle`].
pub(crate) trait JoinTarget<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn detach(&self);
    fn is_finished(&self) -> bool;
}

impl<F: Future> JoinTarget<F::Output> for TaskCell<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        let mut stage = self.stage.borrow_mut();
        match std::mem::replace(&mut *stage, Stage::Consumed) {
            Stage::Finished(out) => Poll::Ready(out),
            Stage::Consumed => panic!("JoinHandle polled after it returned the task's output"),
            running @ Stage::Running(_) => {
                *stage = running;
                let mut w = self.join_waker.take();
                match &mut w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => w = Some(cx.waker().clone()),
                }
                self.join_waker.set(w);
                Poll::Pending
            }
        }
    }

    fn detach(&self) {
        self.detached.set(true);
        self.join_waker.take();
        if let Ok(mut stage) = self.stage.try_borrow_mut() {
            if matches!(*stage, Stage::Finished(_)) {
                let old = std::mem::replace(&mut *stage, Stage::Consumed);
                drop(stage);
                drop(old);
            }
        }
    }

    fn is_finished(&self) -> bool {
        !matches!(
            self.stage.try_borrow().as_deref(),
            Ok(Stage::Running(_)) | Err(_)
        )
    }
}

/// Creates the two halves of a new task.
pub(crate) fn new_task<F>(
    fut: F,
    header: Arc<WakeTarget>,
) -> (Rc<dyn ErasedTask>, JoinHandleParts<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let cell = Rc::new(TaskCell {
        stage: RefCell::new(Stage::Running(fut)),
        waker: new_waker(header),
        join_waker: Cell::new(None),
        detached: Cell::new(false),
        abort_requested: Cell::new(false),
    });
    (cell.clone(), cell)
}

/// What a [`JoinHandle`] is made of (the typed view of the task cell).
pub(crate) type JoinHandleParts<T> = Rc<dyn JoinTarget<T>>;

/// An owned permission to await (or abort) a spawned task, like tokio's.
///
/// Awaiting it gives the task's output, or a [`JoinError`] if the task panicked or was aborted.
/// Dropping it detaches the task: it keeps running and its output is dropped.
#[must_use = "dropping a JoinHandle detaches the task; `.await` it or call `detach()` to say so"]
pub struct JoinHandle<T> {
    /// The task's cell.
    target: Rc<dyn JoinTarget<T>>,
    /// Where the task lives, for `abort`.
    task: TaskRef,
    /// The task's loop, for `abort`.
    owner: Weak<LoopState>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(
        target: Rc<dyn JoinTarget<T>>,
        task: TaskRef,
        owner: Weak<LoopState>,
    ) -> Self {
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

/// The message of a panic payload made by `panic!` (a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_message_reads_str_and_string_payloads() {
        let s: Box<dyn Any + Send> = Box::new("static");
        let owned: Box<dyn Any + Send> = Box::new(String::from("owned"));
        let other: Box<dyn Any + Send> = Box::new(42);
        assert_eq!(panic_message(&*s), Some("static"));
        assert_eq!(panic_message(&*owned), Some("owned"));
        assert_eq!(panic_message(&*other), None);
    }
}
