//! Tasks: spawned futures, their join handles, and how the loop polls them.
//!
//! # Implementation
//! A task is one allocation, `Task<F>`, as in async-task: the `WakeTarget` header (the
//! thread-safe part its [`Waker`] points at, with the allocation's reference count; see
//! `waker.rs`), then the future (later its output) and the join state. The loop's task slab holds
//! one count until the task finishes or is aborted, the [`JoinHandle`] another, each waker one
//! (`raw.rs`). A spawn is one allocation; a poll takes no count (the slab's keeps the task alive).
//!
//! Ground rules:
//! - The future and the output are only touched on the loop's thread (`Task` is `!Send`, and so
//!   are the views the slab and the join handle hold); a waker only touches the header, so a
//!   waker may travel anywhere.
//! - **Nothing `!Send` is left for the last count.** The last count may be a waker dropped on
//!   another thread, which then frees the allocation there. By then the loop's thread has
//!   dropped the future (the slab lets go of a task only once it is `Done`: finished, aborted,
//!   or cancelled at loop drop) and any output (the join handle drops an unread output when it is
//!   dropped, and a detached task's output is dropped when it is made), so `stage` holds
//!   `Consumed` or a [`JoinError`] (`Send`), and the join waker is a `Waker` (`Send`).
//! - A task is polled only from a queue entry created when its `scheduled` flag went from false
//!   to true; the flag is cleared right before the poll, so a wake during the poll queues it again.
//! - **The future never moves.** It lives in the task's allocation from spawn to drop, is polled
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
pub(crate) mod raw;
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
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use crate::task::raw::TaskPtr;
use crate::task::waker::{TaskRef, WakeTarget, borrowed_waker};

/// The life of a task's future.
enum Stage<F: Future> {
    /// Still running.
    Running(F),
    /// Finished (or aborted, or panicked); the output waits for the join handle.
    Finished(Result<F::Output, JoinError>),
    /// The output was taken by the join handle, or dropped because nobody will take it.
    Consumed,
}

/// Who may touch a [`Task`]'s `stage`.
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
    ///
    /// # Safety
    /// `header` is this task's header pointer as its `TaskPtr` holds it (with the provenance of
    /// the whole allocation: the task's waker is made from it, and a clone of that waker may be
    /// the one that frees the allocation).
    unsafe fn run(&self, header: NonNull<WakeTarget>) -> bool;
    /// Drops the future (abort or loop shutdown). Returns false if the task is being polled or
    /// dropped right now (it is then cancelled when that poll returns, or is finishing anyway).
    fn cancel(&self) -> bool;
    /// Forgets the never-polled future without running its destructor and records
    /// "cancelled": a spawn in the last round of a loop's drop (`runtime/shutdown.rs`), whose
    /// destructor could only spawn again.
    ///
    /// # Safety
    /// The task was never polled (its future was never pinned, so it may be moved out). The
    /// state cannot tell: an idle task may have been polled before.
    unsafe fn forget(&self);
}

/// A task's allocation: the shared header, then the loop-local part.
#[repr(C)]
struct Task<F: Future> {
    /// First, so that a pointer to the header is a pointer to the task (`dealloc`).
    header: WakeTarget,
    /// The future or its output. Accessed only as `state` allows (see the module's ground rules).
    stage: UnsafeCell<Stage<F>>,
    /// Who may touch `stage`.
    state: Cell<State>,
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

impl<F: Future> Task<F> {
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
            // A foreign waker's wake is user code: its panic is caught (the hook has reported
            // it), as tokio's `Harness::complete` does, so that it does not unwind out of the
            // loop past the task's removal.
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| w.wake())) {
                drop_contained(payload);
            }
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

impl<F: Future> ErasedTask for Task<F> {
    unsafe fn run(&self, header: NonNull<WakeTarget>) -> bool {
        self.header.scheduled.store(false, Ordering::Release);
        match self.state.get() {
            State::Idle => {}
            State::Done => return true,
            State::Polling | State::Dropping => {
                // Not reachable (a task poll never runs another); should it happen, poll later.
                debug_assert!(false, "a task was polled from inside its own poll or drop");
                // SAFETY: the caller's count keeps the header alive for this wake.
                unsafe { borrowed_waker(header) }.wake_by_ref();
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
        // SAFETY: the future is never moved: it stays in this task's allocation from the spawn
        // until `drop_future` drops it there.
        let fut = unsafe { Pin::new_unchecked(fut) };
        // SAFETY: the caller's `TaskPtr` (the slab's count) keeps the header alive during the
        // poll, the only time this waker is used; clones of it take counts of their own.
        let waker = unsafe { borrowed_waker(header) };
        let mut cx = Context::from_waker(&waker);
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

    unsafe fn forget(&self) {
        assert_eq!(
            self.state.get(),
            State::Idle,
            "forget of a running or finished task"
        );
        // SAFETY: the state is `Idle`, so `stage` is `Running` and no reference into it is
        // live; the task was never polled (the caller's contract), so the future was never
        // pinned (pinning starts at the first poll): moving it out and forgetting it is allowed.
        let stage = unsafe { ptr::replace(self.stage.get(), Stage::Consumed) };
        std::mem::forget(stage);
        self.state.set(State::Done);
        self.finish(Err(JoinError::cancelled()));
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
}

/// Typed access to a task's output, for its [`JoinHandle`].
pub(crate) trait JoinTarget<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn detach(&self);
    fn is_finished(&self) -> bool;
    /// Whether the output was handed to the join handle already.
    fn is_consumed(&self) -> bool;
}

impl<F: Future> JoinTarget<F::Output> for Task<F> {
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

/// Creates a new task: its allocation, with one count for the loop's slab and one for the join
/// handle. `scheduled` starts set: the spawner queues the first poll.
pub(crate) fn new_task<F>(
    fut: F,
    task: TaskRef,
    loop_id: u64,
) -> (TaskPtr<dyn ErasedTask>, JoinHandleParts<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let raw = Box::into_raw(Box::new(Task {
        header: WakeTarget::new(task, loop_id, dealloc::<F>),
        stage: UnsafeCell::new(Stage::Running(fut)),
        state: Cell::new(State::Idle),
        join_waker: Cell::new(None),
        detached: Cell::new(false),
        abort_requested: Cell::new(false),
    }));
    // SAFETY: `raw` is the live allocation just made; `header` is its first field (`repr(C)`)
    // and keeps the pointer's provenance over the whole allocation.
    let header = unsafe { NonNull::new_unchecked(raw.cast::<WakeTarget>()) };
    // SAFETY: as above; the allocation was made with one count, this takes the second.
    unsafe { header.as_ref() }.retain();
    // SAFETY: `raw` is non-null (from a `Box`), and each `TaskPtr` takes one of the two counts.
    unsafe {
        let erased: NonNull<dyn ErasedTask> = NonNull::new_unchecked(raw);
        let join: NonNull<dyn JoinTarget<F::Output>> = NonNull::new_unchecked(raw);
        (
            TaskPtr::from_raw(erased, header),
            TaskPtr::from_raw(join, header),
        )
    }
}

/// Frees a task's allocation: `WakeTarget::dealloc` of every task.
///
/// # Safety
/// `header` heads a `Task<F>` made by `new_task`, and its last count was just released. By the
/// ground rules, nothing `!Send` is left in it, so this may run on any thread.
unsafe fn dealloc<F: Future>(header: NonNull<WakeTarget>) {
    // SAFETY: the header pointer is the `Box` pointer of the task (first field, `repr(C)`, with
    // the provenance of the whole allocation: see `TaskPtr`), and nobody else holds a count.
    drop(unsafe { Box::from_raw(header.as_ptr().cast::<Task<F>>()) });
}

/// What a [`JoinHandle`] is made of (the typed view of the task).
pub(crate) type JoinHandleParts<T> = TaskPtr<dyn JoinTarget<T>>;

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
