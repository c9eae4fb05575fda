//! [`TaskPtr`]: one counted reference to a task's allocation, seen through one of its views.
//!
//! A task is one allocation (`Task<F>` in `mod.rs`): the [`WakeTarget`] header, with the
//! reference count its wakers share, followed by the loop-local part (the future or its output,
//! and the join state). The loop's task slab holds a `TaskPtr<dyn ErasedTask>` and the join
//! handle a `TaskPtr<dyn JoinTarget<T>>`; each owns one count, as each [`Waker`](std::task::Waker)
//! does.
//!
//! [`ErasedTask`]: super::ErasedTask
//! [`JoinTarget`]: super::JoinTarget

use std::ops::Deref;
use std::ptr::NonNull;

use super::waker::{WakeTarget, release};

/// One counted reference to a task's allocation, dereferencing to the view `D`.
///
/// `!Send` and `!Sync` (it holds raw pointers): the views are of the loop-local part.
pub(crate) struct TaskPtr<D: ?Sized> {
    /// The allocation as `D`. Made from the same allocation pointer as `header`.
    view: NonNull<D>,
    /// The allocation's header (its first field), with the provenance of the whole allocation:
    /// the last count frees the allocation through it.
    header: NonNull<WakeTarget>,
}

impl<D: ?Sized> TaskPtr<D> {
    /// Wraps one count.
    ///
    /// # Safety
    /// The caller gives up one count of the live allocation headed by `header`; `view` points
    /// to that same allocation, as a type it really is.
    pub(crate) unsafe fn from_raw(view: NonNull<D>, header: NonNull<WakeTarget>) -> Self {
        TaskPtr { view, header }
    }

    /// The header pointer, which stays valid while this count is held.
    #[inline]
    pub(crate) fn header_ptr(&self) -> NonNull<WakeTarget> {
        self.header
    }

    /// The view pointer, which stays valid while this count is held.
    #[inline]
    pub(crate) fn view_ptr(&self) -> NonNull<D> {
        self.view
    }
}

impl<D: ?Sized> Clone for TaskPtr<D> {
    /// One more count (an atomic increment), for code that runs user code with the task and
    /// must keep it alive whatever that code drops.
    fn clone(&self) -> Self {
        // SAFETY: this count keeps the header alive while `self` is borrowed.
        unsafe { self.header.as_ref() }.retain();
        TaskPtr {
            view: self.view,
            header: self.header,
        }
    }
}

impl<D: ?Sized> Deref for TaskPtr<D> {
    type Target = D;

    #[inline]
    fn deref(&self) -> &D {
        // SAFETY: this count keeps the allocation alive while `self` is borrowed; the view is a
        // type the allocation really is (see `from_raw`), and only shared references to it are
        // ever made (its mutable state is in cells).
        unsafe { self.view.as_ref() }
    }
}

impl<D: ?Sized> Drop for TaskPtr<D> {
    fn drop(&mut self) {
        // SAFETY: this `TaskPtr` owns one count (see `from_raw`) and is not used after this.
        unsafe { release(self.header) };
    }
}
