//! [`RwLock`]: many readers or one writer, served in strict FIFO order.
//!
//! A [`Semaphore`] with [`MAX_READS`] permits: a reader takes one, a writer takes them all. The
//! semaphore's head-of-line rule gives the fairness: a writer at the head of the queue waits for
//! the readers inside to leave, and a reader arriving meanwhile queues *behind* the writer, so a
//! steady stream of readers cannot starve it.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

mod guards;

pub use guards::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLockReadGuard, RwLockWriteGuard};

use super::mutex::TryLockError;
use super::semaphore::{RawAcquire, Semaphore};

/// The most readers that can hold an [`RwLock`] at once (also the number of permits a writer
/// takes). Past it, further readers wait.
pub const MAX_READS: usize = (u32::MAX >> 3) as usize;

/// An async reader-writer lock for the tasks of one loop.
///
/// Any number of [`read`](Self::read) guards, or one [`write`](Self::write) guard, may exist at a
/// time. Requests are served in arrival order: a reader that arrives while a writer waits queues
/// behind the writer (writers are not starved), and a writer that arrives while readers wait
/// queues behind them. Like [`Mutex`](super::Mutex) it is `!Send`, hands the lock over directly,
/// wakes a waiter only when it gets the lock, and is cancel-safe.
///
/// ```
/// use std::rc::Rc;
/// use executor::sync::RwLock;
///
/// executor::block_on(async {
///     let config = Rc::new(RwLock::new(String::from("v1")));
///     let r1 = config.read().await;
///     let r2 = config.read().await; // readers share
///     assert_eq!((r1.as_str(), r2.as_str()), ("v1", "v1"));
///     drop((r1, r2));
///     config.write().await.push_str("+patch");
///     assert_eq!(*config.read().await, "v1+patch");
/// });
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<executor::sync::RwLock<u32>>();
/// ```
pub struct RwLock<T: ?Sized> {
    /// [`MAX_READS`] permits in all: each read guard holds one, a write guard holds all of them.
    /// It is never given more, so a write guard excludes every other guard.
    sem: Semaphore,
    /// The protected value: borrowed only through guards or `&mut self`.
    value: UnsafeCell<T>,
}

impl<T> RwLock<T> {
    /// An unlocked `RwLock` holding `value`.
    pub const fn new(value: T) -> Self {
        RwLock {
            sem: Semaphore::new(MAX_READS),
            value: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared access, behind every earlier request (readers and writers alike).
    pub fn read(&self) -> Read<'_, T> {
        Read {
            lock: self,
            acquire: RawAcquire::new(&self.sem, 1),
        }
    }

    /// Waits for exclusive access, behind every earlier request.
    pub fn write(&self) -> Write<'_, T> {
        Write {
            lock: self,
            acquire: RawAcquire::new(&self.sem, MAX_READS),
        }
    }

    /// Takes shared access now, if no writer holds the lock and nobody is queued.
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        if self.sem.try_take(1) {
            Ok(RwLockReadGuard::new(self))
        } else {
            Err(TryLockError::new())
        }
    }

    /// Takes exclusive access now, if nobody holds the lock and nobody is queued.
    ///
    /// ```
    /// let l = executor::sync::RwLock::new(0);
    /// let r = l.try_read().unwrap();
    /// assert!(l.try_write().is_err());
    /// drop(r);
    /// *l.try_write().unwrap() += 1;
    /// assert_eq!(l.into_inner(), 1);
    /// ```
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        if self.sem.try_take(MAX_READS) {
            Ok(RwLockWriteGuard { lock: self })
        } else {
            Err(TryLockError::new())
        }
    }

    /// [`read`](Self::read) for an `Rc`'d lock: the guard owns an `Rc` of it and holds no
    /// borrow (tokio's `read_owned`).
    pub async fn read_owned(self: Rc<Self>) -> OwnedRwLockReadGuard<T> {
        // The borrowed guard's permit passes to the owned one: forgotten, not released.
        mem::forget(self.read().await);
        OwnedRwLockReadGuard { lock: self }
    }

    /// [`write`](Self::write) for an `Rc`'d lock: the guard owns an `Rc` of it and holds no
    /// borrow (tokio's `write_owned`).
    ///
    /// ```
    /// use std::rc::Rc;
    /// executor::block_on(async {
    ///     let l = Rc::new(executor::sync::RwLock::new(1));
    ///     let mut w = l.clone().write_owned().await;
    ///     *w = 2;
    ///     let r = w.downgrade();
    ///     assert_eq!(*r, 2);
    ///     assert_eq!(*l.clone().read_owned().await, 2);
    /// });
    /// ```
    pub async fn write_owned(self: Rc<Self>) -> OwnedRwLockWriteGuard<T> {
        mem::forget(self.write().await);
        OwnedRwLockWriteGuard {
            lock: self,
            permits: MAX_READS,
        }
    }

    /// [`try_read`](Self::try_read) for an `Rc`'d lock.
    pub fn try_read_owned(self: Rc<Self>) -> Result<OwnedRwLockReadGuard<T>, TryLockError> {
        if self.sem.try_take(1) {
            Ok(OwnedRwLockReadGuard { lock: self })
        } else {
            Err(TryLockError::new())
        }
    }

    /// [`try_write`](Self::try_write) for an `Rc`'d lock.
    pub fn try_write_owned(self: Rc<Self>) -> Result<OwnedRwLockWriteGuard<T>, TryLockError> {
        if self.sem.try_take(MAX_READS) {
            Ok(OwnedRwLockWriteGuard {
                lock: self,
                permits: MAX_READS,
            })
        } else {
            Err(TryLockError::new())
        }
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("value", &&*guard),
            Err(_) => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// The future of [`RwLock::read`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Read<'a, T: ?Sized> {
    /// The lock the guard will point at.
    lock: &'a RwLock<T>,
    /// Our place in the queue (one permit).
    acquire: RawAcquire<'a>,
}

impl<'a, T: ?Sized> Future for Read<'a, T> {
    type Output = RwLockReadGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let lock = self.lock;
        self.acquire
            .poll_lock(cx)
            .map(|()| RwLockReadGuard::new(lock))
    }
}

impl<T: ?Sized> fmt::Debug for Read<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Read")
            .field("acquire", &self.acquire)
            .finish()
    }
}

/// The future of [`RwLock::write`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Write<'a, T: ?Sized> {
    /// The lock the guard will point at.
    lock: &'a RwLock<T>,
    /// Our place in the queue (every permit).
    acquire: RawAcquire<'a>,
}

impl<'a, T: ?Sized> Future for Write<'a, T> {
    type Output = RwLockWriteGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let lock = self.lock;
        self.acquire
            .poll_lock(cx)
            .map(|()| RwLockWriteGuard { lock })
    }
}

impl<T: ?Sized> fmt::Debug for Write<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Write")
            .field("acquire", &self.acquire)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::Waker;

    fn poll<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn owned_guards_share_exclude_and_downgrade() {
        let lock = Rc::new(RwLock::new(vec![1]));
        let r = lock.clone().try_read_owned().unwrap();
        let r2 = lock.clone().try_read_owned().unwrap();
        assert_eq!(r.len() + r2.len(), 2);
        let mut w = pin!(lock.clone().write_owned());
        assert!(poll(w.as_mut()).is_pending());
        drop((r, r2));
        let Poll::Ready(mut g) = poll(w.as_mut()) else {
            panic!("writer not admitted after the readers left")
        };
        g.push(2);
        let r = g.downgrade();
        assert_eq!(*lock.clone().try_read_owned().unwrap(), [1, 2]);
        assert!(lock.clone().try_write_owned().is_err());
        drop(r);
        assert_eq!(Rc::strong_count(&lock), 1);
        assert_eq!(*lock.try_write().unwrap(), [1, 2]);
    }

    #[test]
    fn readers_share_then_a_queued_writer_gets_exclusive_access() {
        let lock = RwLock::new(String::from("a"));
        let r1 = lock.try_read().unwrap();
        let r2 = lock.try_read().unwrap();
        let mut w = pin!(lock.write());
        assert!(poll(w.as_mut()).is_pending());
        assert_eq!((r1.as_str(), r2.as_str()), ("a", "a"));
        drop(r1);
        assert!(poll(w.as_mut()).is_pending());
        drop(r2);
        let Poll::Ready(mut g) = poll(w.as_mut()) else {
            panic!("writer not admitted after the last reader left")
        };
        g.push('b');
        let r = g.downgrade();
        assert_eq!(*lock.try_read().unwrap(), "ab");
        assert_eq!(*r, "ab");
    }
}
