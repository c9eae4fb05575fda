//! [`Mutex`]: an async mutex for the tasks of one loop, handed over in strict FIFO order.
//!
//! A one-permit [`Semaphore`]: the permit *is* the lock. The guard holds it, and dropping the
//! guard releases it, which hands it straight to the oldest waiter (see `semaphore.rs`).

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::semaphore::{RawAcquire, Semaphore};

/// An async mutual-exclusion lock for the tasks of one loop.
///
/// One thread does not make shared state safe: every `.await` lets other tasks run, and they can
/// change what you read before it. Hold a `MutexGuard` across the `.await`s of a read-modify-write
/// and no other task gets in between.
///
/// - **Fair:** waiters get the lock in the order they asked for it. Unlocking with waiters
///   queued hands the lock directly to the first one; neither [`lock`](Self::lock) nor
///   [`try_lock`](Self::try_lock) can take it in between.
/// - **No polling:** a waiting task sleeps until the lock is handed to it, then is woken once
///   (and polled from the microtask queue, before the loop moves on).
/// - **Cancel-safe:** dropping a [`Lock`] future gives up its place; if the lock had already been
///   handed to it, it passes the lock on.
/// - **Local:** `!Send` and `!Sync`; share it between tasks with an `Rc`.
///
/// Unlike `std::sync::Mutex` there is no poisoning: a task that panics while holding the guard
/// releases the lock (the guard is dropped with the task's future).
///
/// # Examples
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use executor::sync::Mutex;
///
/// executor::block_on(async {
///     let count = Rc::new(Mutex::new(0));
///     let tasks: Vec<_> = (0..10)
///         .map(|_| {
///             let count = count.clone();
///             executor::spawn(async move {
///                 let mut n = count.lock().await;
///                 let read = *n;
///                 executor::sleep(Duration::from_micros(100)).await; // others run here...
///                 *n = read + 1; // ...but none of them touched the counter
///             })
///         })
///         .collect();
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(*count.lock().await, 10);
/// });
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<executor::sync::Mutex<u32>>();
/// ```
pub struct Mutex<T: ?Sized> {
    /// One permit, held by whoever holds a guard (or was handed the lock and has not polled).
    /// It is never given more permits, so at most one guard exists.
    sem: Semaphore,
    /// The protected value: borrowed only through a guard or `&mut self`.
    value: UnsafeCell<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Mutex {
            sem: Semaphore::new(1),
            value: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the value.
    ///
    /// ```
    /// let m = executor::sync::Mutex::new(vec![1]);
    /// assert_eq!(m.into_inner(), [1]);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock, behind every task that asked before.
    ///
    /// The place in the queue is taken when the future is first polled.
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            acquire: RawAcquire::new(&self.sem, 1),
        }
    }

    /// Takes the lock now if it is free and no task is waiting for it.
    ///
    /// ```
    /// let m = executor::sync::Mutex::new(1);
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_err());
    /// drop(g);
    /// assert_eq!(*m.try_lock().unwrap(), 1);
    /// ```
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        if self.sem.try_take(1) {
            Ok(MutexGuard { mutex: self })
        } else {
            Err(TryLockError::new())
        }
    }

    /// [`lock`](Self::lock) for an `Rc`'d mutex: the guard owns an `Rc` of it, so it holds no
    /// borrow and can be moved into a spawned task or kept in a struct (tokio's `lock_owned`).
    ///
    /// ```
    /// use std::rc::Rc;
    /// executor::block_on(async {
    ///     let m = Rc::new(executor::sync::Mutex::new(0));
    ///     let mut guard = m.clone().lock_owned().await;
    ///     let task = executor::spawn(async move {
    ///         *guard += 1; // unlocked when the task ends
    ///     });
    ///     task.await.unwrap();
    ///     assert_eq!(*m.lock().await, 1);
    /// });
    /// ```
    pub async fn lock_owned(self: Rc<Self>) -> OwnedMutexGuard<T> {
        // The borrowed guard's permit passes to the owned one: forgotten, not released.
        std::mem::forget(self.lock().await);
        OwnedMutexGuard { mutex: self }
    }

    /// [`try_lock`](Self::try_lock) for an `Rc`'d mutex (see [`lock_owned`](Self::lock_owned)).
    pub fn try_lock_owned(self: Rc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
        if self.sem.try_take(1) {
            Ok(OwnedMutexGuard { mutex: self })
        } else {
            Err(TryLockError::new())
        }
    }

    /// The value, through a unique borrow (no locking needed: nobody else can hold the lock).
    ///
    /// ```
    /// let mut m = executor::sync::Mutex::new(1);
    /// *m.get_mut() += 1;
    /// assert_eq!(m.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("value", &&*guard),
            Err(_) => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// The future of [`Mutex::lock`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Lock<'a, T: ?Sized> {
    /// The mutex the guard will point at.
    mutex: &'a Mutex<T>,
    /// Our place in the mutex's queue.
    acquire: RawAcquire<'a>,
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MutexGuard<'a, T>> {
        let mutex = self.mutex;
        self.acquire.poll_lock(cx).map(|()| MutexGuard { mutex })
    }
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("acquire", &self.acquire)
            .finish()
    }
}

/// Exclusive access to a [`Mutex`]'s value; unlocks (handing over to the next waiter) on drop.
///
/// It may be held across `.await`s: that is what it is for.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    /// The locked mutex. Invariant: this guard holds its only permit.
    mutex: &'a Mutex<T>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex's only permit, so no other guard exists, and
        // `get_mut`/`into_inner` need `&mut Mutex`, impossible while the guard borrows it; the
        // returned borrow is tied to `&self`, so it cannot outlive the guard.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow through this guard.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Exclusive access to an `Rc`'d [`Mutex`]'s value, holding no borrow (made by
/// [`Mutex::lock_owned`]); unlocks on drop.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct OwnedMutexGuard<T: ?Sized> {
    /// The locked mutex. Invariant: this guard holds its only permit.
    mutex: Rc<Mutex<T>>,
}

impl<T: ?Sized> OwnedMutexGuard<T> {
    /// The mutex this guard locks.
    pub fn mutex(&self) -> &Rc<Mutex<T>> {
        &self.mutex
    }
}

impl<T: ?Sized> Deref for OwnedMutexGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex's only permit, so no other guard exists; the `Rc`
        // keeps the mutex alive, and `get_mut`/`into_inner` need it unshared (`Rc::get_mut`,
        // `Rc::into_inner`), impossible while the guard holds a count. The borrow is tied to
        // `&self`.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow through this guard.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for OwnedMutexGuard<T> {
    fn drop(&mut self) {
        self.mutex.sem.release(1);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The error of [`Mutex::try_lock`] (and of [`RwLock`](super::RwLock)'s `try_` methods): the
/// lock is held, or other tasks are already waiting for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLockError(());

impl TryLockError {
    pub(crate) fn new() -> Self {
        TryLockError(())
    }
}

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the lock is held or has waiters")
    }
}

impl std::error::Error for TryLockError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::Waker;

    fn ready<F: Future>(f: Pin<&mut F>) -> F::Output {
        match f.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("expected the future to be ready"),
        }
    }

    fn pending<F: Future>(f: Pin<&mut F>) {
        let r = f.poll(&mut Context::from_waker(Waker::noop()));
        assert!(r.is_pending(), "expected the future to be pending");
    }

    #[test]
    fn guards_pass_the_value_from_holder_to_holder_in_fifo_order() {
        let m = Mutex::new(Vec::new());
        {
            let mut g = m.try_lock().unwrap();
            let mut a = pin!(m.lock());
            let mut b = pin!(m.lock());
            pending(a.as_mut());
            pending(b.as_mut());
            g.push(0);
            drop(g);
            let mut ga = ready(a.as_mut());
            pending(b.as_mut());
            ga.push(1);
            drop(ga);
            ready(b.as_mut()).push(2);
        }
        assert_eq!(m.into_inner(), [0, 1, 2]);
    }

    #[test]
    fn owned_guards_hand_over_in_fifo_order_and_unlock_on_drop() {
        let m = Rc::new(Mutex::new(Vec::new()));
        let mut g = m.clone().try_lock_owned().unwrap();
        assert!(m.clone().try_lock_owned().is_err());
        let mut a = pin!(m.clone().lock_owned());
        pending(a.as_mut());
        g.push(1);
        drop(g);
        let mut ga = ready(a.as_mut());
        ga.push(2);
        assert!(m.try_lock().is_err());
        drop(ga);
        assert_eq!(*m.try_lock().unwrap(), [1, 2]);
        assert_eq!(Rc::strong_count(&m), 1, "the guards' counts are gone");
    }

    #[test]
    fn an_unsized_value_can_be_locked() {
        let m: Box<Mutex<[u8]>> = Box::new(Mutex::new([1, 2, 3]));
        m.try_lock().unwrap()[1] = 20;
        assert_eq!(&*m.try_lock().unwrap(), [1, 20, 3]);
    }
}
