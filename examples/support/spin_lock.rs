//! The article's lock, kept for comparison only (the `volatile_bar` example and the `sync`
//! bench): try to take the lock; if it is held, sleep N ms on a timer and try again.
//!
//! It is correct (nobody gets in while it is held) but neither prompt nor fair: a waiter notices
//! the release only when its retry timer next fires (up to N ms later), whoever's timer fires
//! first wins, and the holder itself can take the lock straight back. `sync::Mutex` hands the
//! lock to the oldest waiter at the moment it is released.

use std::cell::{Cell, RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// A lock whose waiters poll it on a timer.
#[derive(Debug)]
pub struct SpinLock<T> {
    /// Whether a guard exists.
    locked: Cell<bool>,
    /// The value; borrowed only through the guard.
    value: RefCell<T>,
    /// How long a waiter sleeps between attempts (the article's "retry in N ms").
    retry: Duration,
}

impl<T> SpinLock<T> {
    pub fn new(value: T, retry: Duration) -> Self {
        SpinLock {
            locked: Cell::new(false),
            value: RefCell::new(value),
            retry,
        }
    }

    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        if self.locked.replace(true) {
            return None;
        }
        Some(SpinGuard {
            lock: self,
            value: Some(self.value.borrow_mut()),
        })
    }

    /// Tries, and on failure sleeps `retry` and tries again, until it gets the lock.
    pub async fn lock(&self) -> SpinGuard<'_, T> {
        loop {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            executor::sleep(self.retry).await;
        }
    }
}

/// Access to a [`SpinLock`]'s value; releases it on drop.
#[derive(Debug)]
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// `Some` until dropped (the borrow ends before the lock is marked free).
    value: Option<RefMut<'a, T>>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("guard is live")
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("guard is live")
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.value.take();
        self.lock.locked.set(false);
    }
}
