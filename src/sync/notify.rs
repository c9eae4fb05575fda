//! [`Notify`]: wake one waiting task, or all of them, without data.
//!
//! # Implementation
//! A FIFO [`WaitList`] of waiting [`Notified`] futures, one stored permit, and a count of
//! `notify_waiters` calls. Ground rules:
//! - `notify_one` dequeues the oldest waiter and marks it [`Wakeup::One`]; with nobody queued it
//!   stores the permit (at most one), which the next `notified()` consumes at its first poll.
//! - `notify_waiters` dequeues every waiter, marking them [`Wakeup::All`], and bumps the count:
//!   a `Notified` created before the call but not yet polled sees the new count and completes, so
//!   "create the future, check the condition, await" never misses a wake-up.
//! - A waiter dropped after `notify_one` chose it, before it saw the wake-up, passes it on
//!   (to the next waiter, or as the stored permit): a notification is never lost.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::wait_list::WaitList;

/// What a waiter was woken by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wakeup {
    /// Still queued.
    Waiting,
    /// Chosen by `notify_one` (to be passed on if dropped unseen).
    One,
    /// Woken by `notify_waiters`.
    All,
}

/// The state of a [`Notify`].
#[derive(Debug)]
struct State {
    /// A `notify_one` that found nobody waiting, kept for the next `notified()`.
    permit: bool,
    /// Number of `notify_waiters` calls so far.
    generation: u64,
    /// Queued waiters; a node's value says how it was woken once it is dequeued.
    waiters: WaitList<Wakeup>,
}

/// Wakes tasks waiting for "something happened", with no data attached.
///
/// [`notify_one`](Self::notify_one) wakes the oldest waiter, or stores one permit for the next
/// waiter if nobody waits; [`notify_waiters`](Self::notify_waiters) wakes every waiter (created
/// before the call) and stores nothing. `!Send`: share it between tasks with an `Rc`.
///
/// ```
/// use std::rc::Rc;
/// use executor::sync::Notify;
///
/// executor::block_on(async {
///     let ready = Rc::new(Notify::new());
///     let r = ready.clone();
///     let waiter = executor::spawn(async move {
///         r.notified().await;
///         "woken"
///     });
///     executor::yield_now().await;
///     ready.notify_one();
///     assert_eq!(waiter.await.unwrap(), "woken");
///
///     ready.notify_one(); // nobody waits: the permit is stored...
///     ready.notified().await; // ...and consumed here without waiting
/// });
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<executor::sync::Notify>();
/// ```
pub struct Notify {
    /// Never borrowed across a wake.
    state: RefCell<State>,
    /// Makes the type `!Send` and `!Sync`: its waiters live on one loop.
    _local: PhantomData<*const ()>,
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.try_borrow() {
            Ok(st) => f
                .debug_struct("Notify")
                .field("permit", &st.permit)
                .field("waiters", &st.waiters.queued())
                .finish(),
            Err(_) => f.write_str("Notify { <busy> }"),
        }
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl Notify {
    /// A `Notify` with no waiter and no stored permit.
    pub const fn new() -> Self {
        Notify {
            state: RefCell::new(State {
                permit: false,
                generation: 0,
                waiters: WaitList::new(),
            }),
            _local: PhantomData,
        }
    }

    /// A future that completes when notified.
    ///
    /// It takes its place in the `notify_one` queue at its first poll (consuming a stored permit
    /// if there is one), but it counts as waiting for [`notify_waiters`](Self::notify_waiters)
    /// from the moment it is created.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.state.borrow().generation,
            stage: Stage::Start,
        }
    }

    /// Wakes the oldest waiter; with nobody waiting, stores a permit (one at most) so the next
    /// [`notified`](Self::notified) completes at once.
    pub fn notify_one(&self) {
        let waker = {
            let mut st = self.state.borrow_mut();
            match st.waiters.pop_front(|w| *w = Wakeup::One) {
                Some(w) => w,
                None => {
                    st.permit = true;
                    return;
                }
            }
        };
        waker.wake();
    }

    /// Wakes every waiter, including `Notified` futures created but not yet polled. Stores no
    /// permit.
    ///
    /// ```
    /// executor::block_on(async {
    ///     let n = executor::sync::Notify::new();
    ///     let (a, b) = (n.notified(), n.notified());
    ///     n.notify_waiters();
    ///     a.await;
    ///     b.await;
    /// });
    /// ```
    pub fn notify_waiters(&self) {
        let wakers: Vec<Waker> = {
            let mut st = self.state.borrow_mut();
            st.generation += 1;
            std::iter::from_fn(|| st.waiters.pop_front(|w| *w = Wakeup::All)).collect()
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// Where a [`Notified`] is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not polled yet.
    Start,
    /// Queued under this wait-list key (possibly already woken, if dequeued).
    Queued(usize),
    /// Completed.
    Done,
}

/// The future of [`Notify::notified`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Notified<'a> {
    /// The `Notify`.
    notify: &'a Notify,
    /// `notify_waiters` calls seen when the future was created.
    generation: u64,
    /// Our place in the queue.
    stage: Stage,
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified")
            .field("stage", &self.stage)
            .finish()
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // Cloning a waker and dropping one may run code that uses this `Notify`: a clone is made
        // with no borrow held (then the state is looked at again), and the waker it replaces is
        // dropped after the borrow ends.
        let mut fresh: Option<Waker> = None;
        let mut displaced: Option<Waker> = None;
        let ready = loop {
            let mut st = this.notify.state.borrow_mut();
            match this.stage {
                Stage::Start => {
                    if st.generation != this.generation {
                        break true; // `notify_waiters` ran since we were created
                    }
                    if st.permit {
                        st.permit = false;
                        break true;
                    }
                    if let Some(w) = fresh.take() {
                        this.stage = Stage::Queued(st.waiters.push_back(Wakeup::Waiting, w));
                        break false;
                    }
                }
                Stage::Queued(key) => {
                    if !st.waiters.is_queued(key) {
                        displaced = st.waiters.remove(key).1;
                        break true;
                    }
                    if let Some(old) = st.waiters.keep_waker(key, cx.waker(), &mut fresh) {
                        displaced = old;
                        break false;
                    }
                }
                Stage::Done => {
                    drop(st);
                    panic!("executor::sync::Notified polled after it completed");
                }
            }
            drop(st);
            fresh = Some(cx.waker().clone());
        };
        drop(displaced);
        drop(fresh);
        if ready {
            this.stage = Stage::Done;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let Stage::Queued(key) = self.stage else {
            return;
        };
        let (wakeup, waker) = self.notify.state.borrow_mut().waiters.remove(key);
        // Dropped with the borrow ended: it may run code that uses this `Notify`.
        drop(waker);
        if wakeup == Wakeup::One {
            // Chosen by `notify_one` but never saw it: give it to someone else.
            self.notify.notify_one();
        }
    }
}
