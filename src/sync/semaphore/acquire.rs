//! Waiting for permits: [`Acquire`], and [`RawAcquire`], the queued wait that the mutex, the
//! read-write lock and the once-cell build on. The FIFO rule and the waker hand-back rule (no
//! `RefCell` borrow across a waker's clone or drop) are in `mod.rs`'s docs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::{AcquireError, CLOSED, Semaphore, SemaphorePermit};

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct Acquire<'a> {
    pub(super) inner: RawAcquire<'a>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.inner;
        inner.poll_acquire(cx).map(|r| {
            r.map(|()| SemaphorePermit {
                sem: inner.sem,
                permits: inner.needed,
            })
        })
    }
}

/// Where a [`RawAcquire`] is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not polled yet: holds no place in the queue.
    Start,
    /// Queued under this wait-list key (possibly already granted, if dequeued).
    Queued(usize),
    /// Returned `Ready`: the permits belong to the caller now (or the semaphore was closed).
    Done,
}

/// Waiting for permits, without deciding what owns them once acquired: the shared engine of
/// [`Acquire`] and the lock futures. Once `poll_acquire` returned `Ready`, the caller owns
/// `needed` permits and must give them back with [`Semaphore::release`] (unless it returned
/// `Err`: the semaphore was closed, and nothing is owned).
#[derive(Debug)]
pub(crate) struct RawAcquire<'a> {
    /// The semaphore.
    pub(crate) sem: &'a Semaphore,
    /// Permits asked for.
    pub(crate) needed: usize,
    /// Our place in the queue.
    stage: Stage,
}

impl<'a> RawAcquire<'a> {
    pub(crate) fn new(sem: &'a Semaphore, needed: usize) -> Self {
        RawAcquire {
            sem,
            needed,
            stage: Stage::Start,
        }
    }

    /// Polls for the permits.
    ///
    /// Cloning a waker and dropping one may run code that uses this semaphore, so neither
    /// happens under the borrow: a clone is made with no borrow held (then the state is looked
    /// at again, as the clone may have changed it), and the waker it replaces is dropped after
    /// the borrow ends. The uncontended path clones nothing.
    ///
    /// # Panics
    /// If polled again after it returned `Ready`.
    #[inline]
    pub(crate) fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), AcquireError>> {
        let mut fresh: Option<Waker> = None;
        let mut displaced: Option<Waker> = None;
        let mut closed = false;
        let ready = loop {
            let mut st = self.sem.state.borrow_mut();
            match self.stage {
                Stage::Start => {
                    if st.closed {
                        closed = true;
                        break true;
                    }
                    if st.waiters.is_empty() && st.permits >= self.needed {
                        st.permits -= self.needed;
                        break true;
                    }
                    if let Some(w) = fresh.take() {
                        self.stage = Stage::Queued(st.waiters.push_back(self.needed, w));
                        break false;
                    }
                }
                Stage::Queued(key) => {
                    if !st.waiters.is_queued(key) {
                        let (given, waker) = st.waiters.remove(key);
                        displaced = waker;
                        closed = given == CLOSED;
                        break true;
                    }
                    if let Some(old) = st.waiters.keep_waker(key, cx.waker(), &mut fresh) {
                        displaced = old;
                        break false;
                    }
                }
                Stage::Done => {
                    drop(st);
                    panic!("executor::sync: a lock or acquire future polled after it completed")
                }
            }
            drop(st);
            fresh = Some(cx.waker().clone());
        };
        drop(displaced);
        drop(fresh);
        if ready {
            self.stage = Stage::Done;
            Poll::Ready(if closed {
                Err(AcquireError(()))
            } else {
                Ok(())
            })
        } else {
            Poll::Pending
        }
    }
}

impl RawAcquire<'_> {
    /// [`poll_acquire`](Self::poll_acquire) for the locks, whose semaphore is never closed.
    #[inline]
    pub(crate) fn poll_lock(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_acquire(cx).map(|r| match r {
            Ok(()) => (),
            Err(_) => unreachable!("a lock's semaphore is never closed"),
        })
    }
}

impl Drop for RawAcquire<'_> {
    fn drop(&mut self) {
        let Stage::Queued(key) = self.stage else {
            return;
        };
        let (granted, n, waker) = {
            let mut st = self.sem.state.borrow_mut();
            let granted = !st.waiters.is_queued(key);
            let (n, waker) = st.waiters.remove(key);
            (granted, n, waker)
        };
        // Dropped with the borrow ended: it may run code that uses this semaphore.
        drop(waker);
        if granted && n == CLOSED {
            // Dequeued by `close`: nothing was handed to us.
        } else if granted {
            // Handed to us but never seen: pass it on, or the next waiter would wait forever.
            self.sem.release(n);
        } else {
            // We may have been the head holding back smaller requests behind us.
            self.sem.grant_waiters();
        }
    }
}
