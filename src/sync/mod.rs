//! Cooperative synchronisation between the tasks of one loop.
//!
//! One thread does not make shared state safe. Every `.await` hands the loop to other tasks,
//! and when the task resumes, what it read before the `.await` may have changed under it: the
//! "volatile bar" of a JavaScript page whose `alert()` let timers run mid-function. The types here
//! make a critical section span `.await`s:
//!
//! | type | for |
//! |---|---|
//! | [`Mutex`] | exclusive access across `.await`s |
//! | [`RwLock`] | many readers or one writer |
//! | [`Semaphore`] | at most *n* at a time, with multi-permit requests |
//! | [`OnceCell`] | run an async initialiser once, whoever asks first |
//! | [`Notify`] | wake one or all waiting tasks |
//! | [`mpsc`], [`oneshot`] | channels (re-exported from `futures`, see below) |
//!
//! All of them are local to the thread of their loop (`!Send`, `!Sync`: share them with `Rc`),
//! use no atomics, and are built on one rule, that of [`Semaphore`]:
//!
//! - **strict FIFO:** waiters are served in arrival order, and a newcomer (even `try_lock`) never
//!   takes what a queued waiter is waiting for;
//! - **direct hand-off:** releasing gives ownership to the first waiter before it runs, so
//!   nothing can slip in between;
//! - **woken once:** a waiting task is woken when it is served, not before and not repeatedly
//!   (no timer, no retry), and is then polled from the microtask queue, before the loop moves on;
//! - **cancel-safe:** dropping a waiting future leaves the queue; dropping one that was already
//!   served passes what it was given to the next waiter.
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//! use executor::sync::Mutex;
//!
//! executor::block_on(async {
//!     let bar = Rc::new(Mutex::new(0u32));
//!     let tasks: Vec<_> = (0..3)
//!         .map(|_| {
//!             let bar = bar.clone();
//!             executor::spawn(async move {
//!                 let mut n = bar.lock().await;
//!                 let seen = *n;
//!                 executor::sleep(Duration::from_millis(1)).await; // the `alert()`
//!                 *n = seen + 1;
//!             })
//!         })
//!         .collect();
//!     for t in tasks {
//!         t.await.unwrap();
//!     }
//!     assert_eq!(*bar.lock().await, 3); // without the lock: 1
//! });
//! ```
//!
//! # Channels
//! We do not write channels: [`oneshot`] and [`mpsc`] are re-exported from `futures::channel`
//! (already a dependency). They are waker-based, so they work unchanged on this loop (a receiver
//! woken by a send is polled from the microtask queue), they are well kept and widely used, and
//! their cost here is a few uncontended atomic operations per message. A `!Send` copy would save
//! those nanoseconds at the price of a second, less tested implementation of subtle code (close,
//! drop and back-pressure semantics). If profiles ever show channel atomics mattering, an
//! `Rc`-based channel can be added beside them under another name.

mod mutex;
mod notify;
mod once_cell;
mod rwlock;
mod semaphore;
mod wait_list;

pub use futures::channel::{mpsc, oneshot};
pub use mutex::{Lock, Mutex, MutexGuard, OwnedMutexGuard, TryLockError};
pub use notify::{Notified, Notify};
pub use once_cell::{OnceCell, SetError};
pub use rwlock::{
    MAX_READS, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, Read, RwLock, RwLockReadGuard,
    RwLockWriteGuard, Write,
};
pub use semaphore::{
    Acquire, AcquireError, MAX_PERMITS, OwnedSemaphorePermit, Semaphore, SemaphorePermit,
    TryAcquireError,
};
