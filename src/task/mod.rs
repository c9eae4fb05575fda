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
//! - **The future never moves.** It lives in the `Rc` allocation from spawn to drop, is polled
//!   there through a `Pin`, and is dropped there (`ptr::drop_in_place`), on every path: completion,
//!   panic, abort, loop drop. This is the guarantee `Pin` makes to intrusive futures (tokio's
//!   `Notified`, a `BufWriter` borrowing a local of the same `async` block).
//! - **No borrow is held while user code runs.** The cell's `state` says who may touch `stage`:
//!   while the future is being polled or dropped (`Polling`, `Dropping`), only the code doing it
//!   holds a reference into `stage`; whatever that user code calls on this task (its own
//!   `JoinHandle`: poll, drop, abort, `is_finished`) sees the state and leaves `stage` alone. In
//!   the other states, references into `stage` are made and ended within one function that runs
//!   no user code meanwhile (values leaving `stage` are moved out first, then dropped).
//! - A panic while polling is caught and becomes the task's [`JoinError`]; so does a panic in
//!   the future's destructor. A panicking destructor of a result nobody will read (a detached
//!   task's output or error) is caught and dropped: the panic hook has reported it, as it reports
//!   the panic of a detached task. Nothing unwinds out of the loop from a task.

pub(crate) mod abort;
pub(crate) mod inbox;
mod join;
pub(crate) mod join_set;
pub(crate) mod waker;
pub(crate) mod yield_now;

pub use crate::runtime::{LoopGone, RemoteJoinHandle};
pub use abort::AbortHandle;
pub use join::{JoinError, JoinHandle, panic_message};
pub use join_set::JoinSet;
pub use yield_now::{YieldNow, yield_now};

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use crate::task::waker::{WakeTarget, new_waker, wake_target_of};

/// The life of a task's future.
enum Stage<F: Future> {
    /// Still running.
    Running(F),
    /// Finished (or aborted, or panicked); the output waits for the join handle.
    Finished(Result<F::Output, JoinError>),
    /// The output was taken by the join handle, or dropped because nobody will take it.
    Consumed,
}

/// Who may touch a [`TaskCell`]'s `stage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `stage` is `Running` and nobody holds a reference into it.
    Idle,
    /// `stage` is `Running` and the future is being polled: only `run` touches `stage`.
    Polling,
    /// The future is being dropped in place: only `drop_future` touches `stage`.
    Dropping,
    /// `stage` is `Finished` or `Consumed`, and nobody holds a reference into it.
    Done,
}

/// A task as the loop sees it.
pub(crate) trait ErasedTask {
    /// Polls the task once. Returns true when the task is finished (and can leave the slab).
    fn run(&self) -> bool;
    /// Drops the future (abort or loop shutdown). Returns false if the task is being polled or
    /// dropped right now (it is then cancelled when that poll returns, or is finishing anyway).
    fn cancel(&self) -> bool;
    /// The shared header (the waker's target).
    fn header(&self) -> &WakeTarget;
    /// The task's own waker.
    fn waker(&self) -> &Waker;
}

/// The loop-local part of a task.
struct TaskCell<F: Future> {
    /// The future or its output. Accessed only as `state` allows (see the module's ground rules).
    stage: UnsafeCell<Stage<F>>,
    /// Who may touch `stage`.
    state: Cell<State>,
    /// The task's waker, made once at spawn (by `new_waker`) so a poll needs no allocation.
    waker: Waker,
    /// Who waits on the join handle.
    join_waker: Cell<Option<Waker>>,
    /// Set when the join handle is dropped: the output is dropped as soon as it exists.
    detached: Cell<bool>,
    /// Set by `abort` during the task's own poll: cancel when the poll returns.
    abort_requested: Cell<bool>,
}

/// Drops `value`, catching a panic of its destructor (the value is one nobody will read: the
/// panic hook has already reported the panic, and its payload is dropped too).
fn drop_contained<T>(value: T) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| drop(value))) {
        // A payload whose own destructor panics would unwind from here: leak that one instead.
        if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
            std::mem::forget(again);
        }
    }
}

impl<F: Future> TaskCell<F> {
    /// Drops the future in place, with the state `Dropping` while its destructor (user code)
    /// runs, and leaves `stage` `Consumed` and the state `Done`. Returns the destructor's panic.
    ///
    /// Must be called in state `Idle`.
    fn drop_future(&self) -> Result<(), Box<dyn Any + Send>> {
        debug_assert_eq!(self.state.get(), State::Idle);
        self.state.set(State::Dropping);
        let stage = self.stage.get();
        // SAFETY: the state was `Idle`, so `stage` is `Running` and no reference into it is
        // live; this one ends at once (only the raw pointer to the future is kept).
        let fut: *mut F = match unsafe { &mut *stage } {
            Stage::Running(fut) => fut,
            _ => unreachable!("an idle task is running"),
        };
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `fut` points to the live future, where it has been pinned since the
            // spawn; it is dropped there, once: while the state is `Dropping` no other code
            // touches `stage` (see the ground rules), and `stage` is overwritten below without
            // dropping what it held.
            unsafe { ptr::drop_in_place(fut) };
        }));
        // SAFETY: the future was dropped (or its drop panicked, after which it must not be
        // dropped again, nor used): `stage` is overwritten without dropping what it held. No
        // reference into `stage` is live.
        unsafe { ptr::write(stage, Stage::Consumed) };
        self.state.set(State::Done);
        dropped
    }

    /// Records the task's result (the future is gone, the state is `Done`) and wakes the joiner.
    fn finish(&self, result: Result<F::Output, JoinError>) {
        debug_assert_eq!(self.state.get(), State::Done);
        if self.detached.get() {
            drop_contained(result);
        } else {
            // SAFETY: the state is `Done`, so no reference into `stage` is live; it holds
            // `Consumed` (just written by `drop_future`), which has nothing to drop.
            unsafe { ptr::write(self.stage.get(), Stage::Finished(result)) };
        }
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }

    /// Drops the future (after it returned, panicked or was aborted) and records `result`; a
    /// panic of the destructor becomes the result instead (the output is then dropped).
    fn complete(&self, result: Result<F::Output, JoinError>) {
        match self.drop_future() {
            Ok(()) => self.finish(result),
            Err(payload) => {
                self.finish(Err(JoinError::panicked(payload)));
                // Dropped once the panic is the recorded result: this destructor is user code
                // too, and may poll the task's handle.
                drop_contained(result);
            }
        }
    }

    /// Moves the output out of `stage`, if it is there (state `Done`, stage `Finished`).
    fn take_output(&self) -> Option<Result<F::Output, JoinError>> {
        if self.state.get() != State::Done {
            return None;
        }
        let stage = self.stage.get();
        // SAFETY: the state is `Done`: no reference into `stage` is live, and none is made
        // until this function returns (it runs no user code).
        if !matches!(unsafe { &*stage }, Stage::Finished(_)) {
            return None;
        }
        // SAFETY: as above; the output is not pinned, so moving it out is fine.
        match unsafe { ptr::replace(stage, Stage::Consumed) } {
            Stage::Finished(out) => Some(out),
            _ => unreachable!("checked just above"),
        }
    }

    /// Whether the output was taken already (state `Done`, stage `Consumed`).
    fn consumed(&self) -> bool {
        // SAFETY: the state is `Done`: no reference into `stage` is live.
        self.state.get() == State::Done && matches!(unsafe { &*self.stage.get() }, Stage::Consumed)
    }
}

impl<F: Future> ErasedTask for TaskCell<F> {
    fn run(&self) -> bool {
        self.header().scheduled.store(false, Ordering::Release);
        match self.state.get() {
            State::Idle => {}
            State::Done => return true,
            State::Polling | State::Dropping => {
                // Not reachable (a task poll never runs another); should it happen, poll later.
                debug_assert!(false, "a task was polled from inside its own poll or drop");
                self.waker.wake_by_ref();
                return false;
            }
        }
        self.state.set(State::Polling);
        // SAFETY: the state was `Idle`, so `stage` is `Running` and no reference into it is
        // live; while `Polling`, no other code makes one (see the ground rules), so this
        // exclusive borrow is unique until the poll returns.
        let fut = match unsafe { &mut *self.stage.get() } {
            Stage::Running(fut) => fut,
            _ => unreachable!("an idle task is running"),
        };
        // SAFETY: the future is never moved: it stays in the `Rc` allocation of this cell from
        // the spawn until `drop_future` drops it there.
        let fut = unsafe { Pin::new_unchecked(fut) };
        let mut cx = Context::from_waker(&self.waker);
        let result = panic::catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx)));
        // The pinned borrow was moved into the closure and has ended.
        self.state.set(State::Idle);
        match result {
            Ok(Poll::Pending) => {
                if self.abort_requested.get() {
                    self.cancel();
                    return true;
                }
                false
            }
            Ok(Poll::Ready(out)) => {
                self.complete(Ok(out));
                true
            }
            Err(payload) => {
                self.complete(Err(JoinError::panicked(payload)));
                true
            }
        }
    }

    fn cancel(&self) -> bool {
        match self.state.get() {
            State::Idle => {
                self.complete(Err(JoinError::cancelled()));
                true
            }
            State::Done => true,
            State::Polling => {
                self.abort_requested.set(true);
                false
            }
            // Being dropped already (the task is finishing): whoever drops it removes it.
            State::Dropping => false,
        }
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
    /// Whether the output was handed to the join handle already.
    fn is_consumed(&self) -> bool;
}

impl<F: Future> JoinTarget<F::Output> for TaskCell<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        if let Some(out) = self.take_output() {
            return Poll::Ready(out);
        }
        if self.consumed() {
            panic!("JoinHandle polled after it returned the task's output");
        }
        // Running, being polled (the task polls its own handle) or being dropped: wait. The
        // waker is cloned and the old one dropped with no borrow held (both may run user code).
        let mut w = self.join_waker.take();
        match &w {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => w = Some(cx.waker().clone()),
        }
        self.join_waker.set(w);
        Poll::Pending
    }

    fn detach(&self) {
        self.detached.set(true);
        drop(self.join_waker.take());
        // While the future is polled or dropped, `finish` will see `detached`.
        if let Some(out) = self.take_output() {
            drop_contained(out);
        }
    }

    fn is_finished(&self) -> bool {
        self.state.get() == State::Done
    }

    fn is_consumed(&self) -> bool {
        self.consumed()
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
        stage: UnsafeCell::new(Stage::Running(fut)),
        state: Cell::new(State::Idle),
        waker: new_waker(header),
        join_waker: Cell::new(None),
        detached: Cell::new(false),
        abort_requested: Cell::new(false),
    });
    (cell.clone(), cell)
}

/// What a [`JoinHandle`] is made of (the typed view of the task cell).
pub(crate) type JoinHandleParts<T> = Rc<dyn JoinTarget<T>>;

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
