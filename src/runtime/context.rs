//! The thread-local "current loop": which [`EventLoop`](crate::EventLoop) is running on this
//! thread, so that free functions such as [`set_timeout`](crate::set_timeout) can find it.
//!
//! # Ground rules
//! - The pointer is set only by [`enter`], which borrows an `Rc<LoopState>` for the lifetime of the
//!   returned guard; the guard clears it when dropped, also on unwind (nesting is refused, so
//!   the previous value is always null).
//! - Only one loop can be entered on a thread at a time: entering while another loop (or the same
//!   one) is entered is the nested `block_on` misuse, and is refused with a clear panic.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use std::time::Instant;

use crate::runtime::LoopState;

thread_local! {
    /// The loop running on this thread, or null. Non-null only while an [`EnterGuard`] lives.
    static CURRENT: Cell<*const LoopState> = const { Cell::new(ptr::null()) };
}

/// Marks a loop as running on this thread until dropped.
pub(crate) struct EnterGuard<'a> {
    /// Keeps the entered loop alive (and so the thread-local pointer valid) while the guard lives.
    _inner: &'a Rc<LoopState>,
}

/// Makes `inner` the current loop of this thread.
///
/// # Panics
/// If a loop is already running on this thread (`what` names the refused call).
pub(crate) fn enter<'a>(inner: &'a Rc<LoopState>, what: &str) -> EnterGuard<'a> {
    CURRENT.with(|c| {
        if !c.get().is_null() {
            panic!(
                "executor::{what} called from inside a running event loop; this would deadlock \
                 (the loop cannot run while it is blocked waiting on itself). Use `spawn` and \
                 `.await` the JoinHandle instead, or use a `Bridge` to block on another thread's loop"
            );
        }
        c.set(Rc::as_ptr(inner));
    });
    inner.run_started.set(Instant::now());
    EnterGuard { _inner: inner }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(ptr::null()));
    }
}

/// Runs `f` on the current loop, or returns `None` when no loop is running on this thread.
#[inline]
pub(crate) fn try_with_current<R>(f: impl FnOnce(&LoopState) -> R) -> Option<R> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null CURRENT was set by `enter` from an `&Rc<LoopState>` that the live
    // `EnterGuard` still borrows, so the `LoopState` is alive for the duration of this call; the
    // reference handed to `f` cannot escape it (the closure only receives `&LoopState` for the call).
    Some(f(unsafe { &*p }))
}

/// Runs `f` on the current loop.
///
/// # Panics
/// With a message naming `api` when no loop is running on this thread.
#[inline]
#[track_caller]
pub(crate) fn with_current<R>(api: &str, f: impl FnOnce(&LoopState) -> R) -> R {
    match try_with_current(f) {
        Some(r) => r,
        None => no_loop(api),
    }
}

/// Whether some loop is running on this thread.
pub(crate) fn is_running() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

#[cold]
#[track_caller]
fn no_loop(api: &str) -> ! {
    panic!(
        "executor::{api} needs a running event loop: call it from code running inside \
         EventLoop::run or EventLoop::block_on (no loop is running on this thread)"
    )
}
