//! [`Semaphore`]: a FIFO counting semaphore, and the engine of [`Mutex`](super::Mutex),
//! [`RwLock`](super::RwLock) and [`OnceCell`](super::OnceCell).
//!
//! # Implementation
//! The state is a permit count and a [`WaitList`] of waiters, each asking for some number of
//! permits. Ground rules:
//! - **No barging.** A caller takes permits on the spot only if nobody is queued; otherwise it
//!   queues at the tail, even if enough permits are free (they are being kept for the head).
//! - **Direct hand-off.** Released permits go to the head waiter as soon as they cover its whole
//!   request: they are subtracted from the count, the node is dequeued (which is what "granted"
//!   means) and its waker woken. The waiter owns them from that moment, before it is polled, so a
//!   newcomer can never slip in between the release and the wake.
//! - **Head-of-line order.** A head waiter asking for more than is free blocks those behind it
//!   (that is what keeps a writer of an [`RwLock`](super::RwLock) from starving).
//! - **Nothing is lost on drop.** A waiter dropped while queued leaves the queue (and may unblock
//!   the waiters behind it); a waiter dropped after being granted, before it saw the grant, gives
//!   the permits back, which hands them to the next waiter.
//! - A waiting task is woken once, when it is granted; no timer, no retry loop.
//! - **Closing** ([`Semaphore::close`]) dequeues every waiter with the mark [`CLOSED`] in place
//!   of its request (no request can be that large), wakes each with no borrow held, and makes
//!   every later acquire fail at once; permits held stay valid and are returned as usual.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

mod acquire;
mod error;
mod permit;

pub use acquire::Acquire;
pub(crate) use acquire::RawAcquire;
pub use error::{AcquireError, TryAcquireError};
pub use permit::{OwnedSemaphorePermit, SemaphorePermit};

use super::wait_list::WaitList;

/// The largest number of permits a [`Semaphore`] can hold (`usize::MAX >> 3`, as in tokio).
pub const MAX_PERMITS: usize = usize::MAX >> 3;

/// What a waiter dequeued by [`Semaphore::close`] finds in place of its request (every request
/// is at most [`MAX_PERMITS`], so it cannot be mistaken for a grant).
const CLOSED: usize = usize::MAX;

/// The permit count and its queue.
#[derive(Debug)]
struct State {
    /// Free permits: not held by anyone and not granted to a waiter. Never above
    /// [`MAX_PERMITS`].
    permits: usize,
    /// Waiters in arrival order; each node holds the number of permits it asked for.
    /// Invariant: after every operation, the head (if any) asks for more than `permits`.
    waiters: WaitList<usize>,
    /// Set by [`Semaphore::close`], never unset: every acquire fails.
    closed: bool,
}

/// A counting semaphore whose waiters are served strictly in arrival order.
///
/// Local to one thread (`!Send`, `!Sync`): share it between the loop's tasks with an `Rc`.
/// A waiting task is woken exactly once, when its permits are handed to it.
///
/// ```
/// use std::rc::Rc;
/// use executor::sync::Semaphore;
///
/// executor::block_on(async {
///     let sem = Rc::new(Semaphore::new(2));
///     let mut tasks = Vec::new();
///     for i in 0..5 {
///         let sem = sem.clone();
///         tasks.push(executor::spawn(async move {
///             let _permit = sem.acquire().await.unwrap(); // at most two tasks in here at a time
///             executor::yield_now().await;
///             i
///         }));
///     }
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<executor::sync::Semaphore>();
/// ```
pub struct Semaphore {
    /// Never borrowed across a wake or a user callback.
    state: RefCell<State>,
    /// Makes the type `!Send` and `!Sync`: its waiters live on one loop.
    _local: PhantomData<*const ()>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.try_borrow() {
            Ok(st) => f
                .debug_struct("Semaphore")
                .field("permits", &st.permits)
                .field("waiters", &st.waiters.queued())
                .field("closed", &st.closed)
                .finish(),
            Err(_) => f.write_str("Semaphore { <busy> }"),
        }
    }
}

impl Default for Semaphore {
    /// A semaphore with no permits.
    fn default() -> Self {
        Semaphore::new(0)
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    /// If `permits` exceeds [`MAX_PERMITS`].
    pub const fn new(permits: usize) -> Self {
        assert!(
            permits <= MAX_PERMITS,
            "executor::sync::Semaphore: too many permits"
        );
        Semaphore {
            state: RefCell::new(State {
                permits,
                waiters: WaitList::new(),
                closed: false,
            }),
            _local: PhantomData,
        }
    }

    /// Number of free permits (not held, not handed to a waiter).
    pub fn available_permits(&self) -> usize {
        self.state.borrow().permits
    }

    /// Waits for one permit, behind every earlier waiter; fails with [`AcquireError`] once the
    /// semaphore is [closed](Self::close).
    ///
    /// The place in the queue is taken at the first poll; dropping the future gives it up.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits at once, behind every earlier waiter (a large request at the head
    /// of the queue holds back smaller ones behind it: strict FIFO).
    ///
    /// ```
    /// use executor::sync::Semaphore;
    /// executor::block_on(async {
    ///     let sem = Semaphore::new(5);
    ///     let three = sem.acquire_many(3).await.unwrap();
    ///     assert_eq!(three.num_permits(), 3);
    ///     assert_eq!(sem.available_permits(), 2);
    ///     drop(three);
    ///     assert_eq!(sem.available_permits(), 5);
    /// });
    /// ```
    ///
    /// A request for more permits than exist waits until [`add_permits`](Self::add_permits)
    /// makes enough (and, FIFO, holds back every later waiter meanwhile): the semaphore does not
    /// know its total, since permits can be added at any time.
    ///
    /// # Panics
    /// If `n` exceeds [`MAX_PERMITS`]: no count of permits could ever satisfy it.
    #[track_caller]
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        assert!(
            n <= MAX_PERMITS,
            "executor::sync::Semaphore::acquire_many: {n} permits can never be granted (more than MAX_PERMITS)"
        );
        Acquire {
            inner: RawAcquire::new(self, n),
        }
    }

    /// Takes one permit now, if one is free, nobody is queued for permits and the semaphore is
    /// open.
    ///
    /// ```
    /// let sem = executor::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_err());
    /// drop(p);
    /// assert!(sem.try_acquire().is_ok());
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits now, if they are free and nobody is queued for permits.
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take_or_say_why(n)?;
        Ok(SemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// [`acquire`](Self::acquire) for an `Rc`'d semaphore: the permit owns an `Rc` of it, so it
    /// can be kept with no borrow (moved into a spawned task, stored in a struct), as tokio's
    /// `acquire_owned`.
    ///
    /// ```
    /// use std::rc::Rc;
    /// executor::block_on(async {
    ///     let sem = Rc::new(executor::sync::Semaphore::new(1));
    ///     let permit = sem.clone().acquire_owned().await.unwrap();
    ///     let task = executor::spawn(async move {
    ///         let _held = permit; // released when the task ends
    ///     });
    ///     task.await.unwrap();
    ///     assert_eq!(sem.available_permits(), 1);
    /// });
    /// ```
    pub async fn acquire_owned(self: Rc<Self>) -> Result<OwnedSemaphorePermit, AcquireError> {
        self.acquire_many_owned(1).await
    }

    /// [`acquire_many`](Self::acquire_many) for an `Rc`'d semaphore (see
    /// [`acquire_owned`](Self::acquire_owned)).
    pub async fn acquire_many_owned(
        self: Rc<Self>,
        n: usize,
    ) -> Result<OwnedSemaphorePermit, AcquireError> {
        {
            let permit = self.acquire_many(n).await?;
            permit.forget();
        }
        Ok(OwnedSemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// [`try_acquire`](Self::try_acquire) for an `Rc`'d semaphore.
    pub fn try_acquire_owned(self: Rc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Self::try_acquire_many) for an `Rc`'d semaphore.
    pub fn try_acquire_many_owned(
        self: Rc<Self>,
        n: usize,
    ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take_or_say_why(n)?;
        Ok(OwnedSemaphorePermit {
            sem: self,
            permits: n,
        })
    }

    /// Closes the semaphore (tokio's `Semaphore::close`): every queued waiter and every later
    /// [`acquire`](Self::acquire) fails with [`AcquireError`], every later `try_acquire` with
    /// [`TryAcquireError::Closed`]. Permits already held stay valid, and are returned on drop
    /// as usual (they count in [`available_permits`](Self::available_permits), but nobody can
    /// take them).
    ///
    /// ```
    /// use executor::sync::{Semaphore, TryAcquireError};
    /// executor::block_on(async {
    ///     let sem = Semaphore::new(1);
    ///     let held = sem.acquire().await.unwrap();
    ///     sem.close();
    ///     assert!(sem.acquire().await.is_err());
    ///     assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    ///     drop(held);
    ///     assert_eq!(sem.available_permits(), 1);
    /// });
    /// ```
    pub fn close(&self) {
        self.state.borrow_mut().closed = true;
        // Each waiter is dequeued, marked, and woken with the borrow ended (a waker may run
        // code that uses this semaphore, even queue a new waiter: it fails at its first poll).
        loop {
            let waker = {
                let mut st = self.state.borrow_mut();
                if st.waiters.is_empty() {
                    return;
                }
                st.waiters.pop_front(|n| *n = CLOSED)
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    /// Adds `n` permits, handing them to queued waiters first (in order).
    ///
    /// # Panics
    /// If the count would exceed [`MAX_PERMITS`].
    pub fn add_permits(&self, n: usize) {
        self.release(n);
    }

    /// Takes `n` permits if nobody is queued, they are free and the semaphore is open.
    #[inline]
    pub(crate) fn try_take(&self, n: usize) -> bool {
        let mut st = self.state.borrow_mut();
        if st.waiters.is_empty() && st.permits >= n && !st.closed {
            st.permits -= n;
            true
        } else {
            false
        }
    }

    /// [`try_take`](Self::try_take), saying why it failed.
    fn try_take_or_say_why(&self, n: usize) -> Result<(), TryAcquireError> {
        if self.try_take(n) {
            Ok(())
        } else if self.is_closed() {
            Err(TryAcquireError::Closed)
        } else {
            Err(TryAcquireError::NoPermits)
        }
    }

    /// Returns `n` permits and hands what it can to the head of the queue.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        let mut st = self.state.borrow_mut();
        st.permits = match st.permits.checked_add(n) {
            Some(p) if p <= MAX_PERMITS => p,
            _ => {
                drop(st);
                panic!("executor::sync::Semaphore: permit count would exceed MAX_PERMITS");
            }
        };
        if st.waiters.is_empty() {
            return;
        }
        drop(st);
        self.grant_waiters();
    }

    /// Grants permits to head waiters while they are covered, waking each one with no borrow
    /// held (a waker may run code that uses this semaphore).
    fn grant_waiters(&self) {
        loop {
            let waker = {
                let mut st = self.state.borrow_mut();
                let st = &mut *st;
                match st.waiters.front() {
                    Some(&n) if n <= st.permits => {
                        st.permits -= n;
                        st.waiters.pop_front(|_| {})
                    }
                    _ => return,
                }
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn poll<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn release_grants_the_head_before_any_newcomer() {
        let sem = Semaphore::new(0);
        let mut a = pin!(sem.acquire());
        assert!(poll(a.as_mut()).is_pending());
        sem.add_permits(1);
        assert_eq!(sem.available_permits(), 0, "the permit went to the waiter");
        assert!(sem.try_acquire().is_err());
        let p = match poll(a.as_mut()) {
            Poll::Ready(p) => p,
            Poll::Pending => panic!("granted waiter still pending"),
        };
        drop(p);
        assert_eq!(sem.available_permits(), 1);
    }

    #[test]
    fn dropping_a_granted_waiter_returns_its_permits() {
        let sem = Semaphore::new(0);
        {
            let mut a = pin!(sem.acquire_many(2));
            assert!(poll(a.as_mut()).is_pending());
            sem.add_permits(2);
            assert_eq!(sem.available_permits(), 0);
        }
        assert_eq!(sem.available_permits(), 2);
    }

    #[test]
    fn dropping_a_blocking_head_unblocks_the_waiters_behind() {
        let sem = Semaphore::new(1);
        let mut big = Box::pin(sem.acquire_many(2));
        let mut small = pin!(sem.acquire());
        assert!(poll(big.as_mut()).is_pending());
        assert!(
            poll(small.as_mut()).is_pending(),
            "small must queue behind big"
        );
        drop(big);
        assert!(poll(small.as_mut()).is_ready());
    }

    #[test]
    fn close_fails_queued_and_later_waiters_and_keeps_held_permits() {
        let sem = Rc::new(Semaphore::new(1));
        let held = sem.clone().try_acquire_owned().unwrap();
        let mut a = pin!(sem.acquire());
        assert!(poll(a.as_mut()).is_pending());
        sem.close();
        assert!(matches!(
            poll(a.as_mut()),
            Poll::Ready(Err(AcquireError(())))
        ));
        assert!(matches!(poll(pin!(sem.acquire())), Poll::Ready(Err(_))));
        drop(held);
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    }

    #[test]
    #[should_panic(expected = "MAX_PERMITS")]
    fn permit_overflow_panics() {
        Semaphore::new(MAX_PERMITS).add_permits(1);
    }
}
