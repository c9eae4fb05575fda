//! The guards of a [`RwLock`](super::RwLock): shared ([`RwLockReadGuard`], covariant in `T` as
//! std's is) and exclusive ([`RwLockWriteGuard`]), borrowed or owned (holding an `Rc` of the
//! lock). Dropping one gives its permits back to the lock's semaphore.

use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::rc::Rc;

use super::{MAX_READS, RwLock};
use crate::sync::semaphore::Semaphore;

/// Shared access to an [`RwLock`]'s value; released on drop.
///
/// Covariant in `T`, like `&'a T` (and std's, tokio's and async-lock's read guards): a guard of
/// `RwLock<&'static str>` can be used where one of `RwLock<&'a str>` is expected.
///
/// ```
/// fn shorten<'a>(g: executor::sync::RwLockReadGuard<'a, &'static str>)
///     -> executor::sync::RwLockReadGuard<'a, &'a str> {
///     g
/// }
/// let l = executor::sync::RwLock::new("v");
/// assert_eq!(*shorten(l.try_read().unwrap()), "v");
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    /// The lock's semaphore. Invariant: this guard holds one of its permits.
    pub(super) sem: &'a Semaphore,
    /// The lock's value. A pointer rather than `&'a RwLock<T>`, whose `UnsafeCell` would make
    /// the guard invariant in `T`; `_value` says what it stands for: a shared borrow for `'a`.
    pub(super) value: NonNull<T>,
    pub(super) _value: PhantomData<&'a T>,
}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// The guard of a read permit of `lock` (the caller holds one and gives it to the guard).
    pub(super) fn new(lock: &'a RwLock<T>) -> Self {
        RwLockReadGuard {
            sem: &lock.sem,
            value: NonNull::new(lock.value.get()).expect("a reference is never null"),
            _value: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `value` points into the `RwLock` borrowed for `'a`, so it is live. The guard
        // holds a permit, so no write guard (which needs all of them) exists, and `&mut RwLock`
        // (`get_mut`, `into_inner`) cannot coexist with the guard's borrow: only shared borrows
        // of the value are live. The returned borrow is tied to `&self`.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an [`RwLock`]'s value; released on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    /// The lock. Invariant: this guard holds all of its permits.
    pub(super) lock: &'a RwLock<T>,
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns exclusive access into shared access without letting a writer in between; readers
    /// queued at the head of the line get in at once.
    ///
    /// ```
    /// executor::block_on(async {
    ///     let l = executor::sync::RwLock::new(1);
    ///     let mut w = l.write().await;
    ///     *w = 2;
    ///     let r = w.downgrade();
    ///     assert_eq!(*r, 2);
    ///     assert!(l.try_read().is_ok());
    /// });
    /// ```
    pub fn downgrade(self) -> RwLockReadGuard<'a, T> {
        let lock = self.lock;
        mem::forget(self);
        lock.sem.release(MAX_READS - 1);
        RwLockReadGuard::new(lock)
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds every permit, so it is the only guard, and `&mut RwLock`
        // cannot coexist with its borrow.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.sem.release(MAX_READS);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Shared access to an `Rc`'d [`RwLock`]'s value, holding no borrow (made by
/// [`RwLock::read_owned`]); released on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct OwnedRwLockReadGuard<T: ?Sized> {
    /// The lock. Invariant: this guard holds one of its permits.
    pub(super) lock: Rc<RwLock<T>>,
}

impl<T: ?Sized> OwnedRwLockReadGuard<T> {
    /// The lock this guard reads.
    pub fn rwlock(&self) -> &Rc<RwLock<T>> {
        &self.lock
    }
}

impl<T: ?Sized> Deref for OwnedRwLockReadGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds a permit, so no write guard (which needs all of them) exists;
        // the `Rc` keeps the lock alive, and `&mut RwLock` (`get_mut`, `into_inner`) needs it
        // unshared, impossible while the guard holds a count: only shared borrows of the value
        // are live. The borrow is tied to `&self`.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for OwnedRwLockReadGuard<T> {
    fn drop(&mut self) {
        self.lock.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedRwLockReadGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an `Rc`'d [`RwLock`]'s value, holding no borrow (made by
/// [`RwLock::write_owned`]); released on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct OwnedRwLockWriteGuard<T: ?Sized> {
    /// The lock. Invariant: this guard holds all of its permits.
    pub(super) lock: Rc<RwLock<T>>,
    /// What `Drop` returns: every permit ([`MAX_READS`]), or all but the one a `downgrade`
    /// gave its read guard.
    pub(super) permits: usize,
}

impl<T: ?Sized> OwnedRwLockWriteGuard<T> {
    /// The lock this guard writes.
    pub fn rwlock(&self) -> &Rc<RwLock<T>> {
        &self.lock
    }

    /// Turns exclusive access into shared access without letting a writer in between (as
    /// [`RwLockWriteGuard::downgrade`]).
    pub fn downgrade(mut self) -> OwnedRwLockReadGuard<T> {
        // One permit passes to the read guard; dropping `self` returns the others.
        self.permits = MAX_READS - 1;
        OwnedRwLockReadGuard {
            lock: Rc::clone(&self.lock),
        }
    }
}

impl<T: ?Sized> Deref for OwnedRwLockWriteGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds every permit, so it is the only guard; the `Rc` keeps the
        // lock alive, and `&mut RwLock` needs it unshared, impossible while the guard holds a
        // count.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for OwnedRwLockWriteGuard<T> {
    fn drop(&mut self) {
        self.lock.sem.release(self.permits);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedRwLockWriteGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
