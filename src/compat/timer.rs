//! [`LoopTimer`]: hyper's `Timer`, whose sleeps are the loop's timers.
//!
//! hyper wants `Send + Sync` sleeps, and [`Sleep`](crate::time::Sleep) is neither (its timer lives in
//! the loop's `!Send` timer lists). So a [`LoopSleep`] is only the `Send` half of a sleep:
//! - a small task on the loop owns the real [`Sleep`](crate::time::Sleep) and waits for the first of
//!   two things: the deadline (it then sets `fired` and wakes the `LoopSleep`'s waker) or
//!   `cancelled` (it then ends, and dropping its `Sleep` clears the timer);
//! - dropping the `LoopSleep` sets `cancelled` and wakes that task, from whatever thread it is
//!   dropped on: on the loop's thread the task runs in the same drain, from another thread the
//!   wake goes through the loop's inbox (the task's waker is a task waker, `Send`).
//!
//! So a pending sleep keeps the loop alive as a timer does (its task is in the loop), a dropped
//! one stops doing so at once, and nothing `!Send` ever leaves the loop's thread. The shared
//! state is two flags and two `AtomicWaker`s: no lock is held while a waker is woken.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

use crate::Spawner;

/// hyper's [`Timer`](hyper::rt::Timer) on the loop's timers (for `header_read_timeout`,
/// keep-alive and HTTP/2 pings).
///
/// Made on the loop's thread, it remembers that loop: its sleeps are that loop's timers even
/// when hyper asks for one from another thread. Clone it freely (`Send + Sync`).
#[derive(Clone, Debug)]
pub struct LoopTimer {
    spawner: Spawner,
}

impl LoopTimer {
    /// A timer for the loop running on this thread.
    ///
    /// # Panics
    /// If no loop is running on this thread.
    // No `Default`: it would panic off the loop, which `Default` users do not expect.
    #[allow(clippy::new_without_default)]
    #[track_caller]
    pub fn new() -> Self {
        LoopTimer {
            spawner: crate::spawner(),
        }
    }

    /// A timer for the loop behind `spawner` (made without a running loop, say).
    pub fn with_spawner(spawner: Spawner) -> Self {
        LoopTimer { spawner }
    }

    /// A [`LoopSleep`] until `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> LoopSleep {
        let shared = Arc::new(Shared {
            fired: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            sleeper: AtomicWaker::new(),
            watcher: AtomicWaker::new(),
        });
        let s = shared.clone();
        self.spawner.run_detached(move || {
            crate::spawn(Watch {
                sleep: crate::time::sleep_until(deadline),
                shared: s,
            })
            .detach();
        });
        LoopSleep { shared, deadline }
    }
}

impl hyper::rt::Timer for LoopTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let deadline = crate::time::deadline(Instant::now(), duration);
        Box::pin(self.sleep_until(deadline))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(LoopTimer::sleep_until(self, deadline))
    }
}

/// What a [`LoopSleep`] and its task on the loop share.
struct Shared {
    /// Set by the task when the deadline passed.
    fired: AtomicBool,
    /// Set when the `LoopSleep` is dropped.
    cancelled: AtomicBool,
    /// Who polls the `LoopSleep`.
    sleeper: AtomicWaker,
    /// The task on the loop.
    watcher: AtomicWaker,
}

/// A `Send + Sync` sleep on a loop's timers, made by [`LoopTimer`]; dropping it (on any thread)
/// cancels the timer.
pub struct LoopSleep {
    shared: Arc<Shared>,
    deadline: Instant,
}

impl LoopSleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl fmt::Debug for LoopSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopSleep")
            .field("deadline", &self.deadline)
            .field("fired", &self.shared.fired.load(Ordering::Acquire))
            .finish()
    }
}

impl Future for LoopSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.shared.sleeper.register(cx.waker());
        // Fired between the check and the registration: its wake may have missed the waker.
        if self.shared.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for LoopSleep {}

impl Drop for LoopSleep {
    fn drop(&mut self) {
        self.shared.cancelled.store(true, Ordering::Release);
        self.shared.watcher.wake();
    }
}

/// The task on the loop that owns the real timer.
struct Watch {
    sleep: crate::time::Sleep,
    shared: Arc<Shared>,
}

impl Future for Watch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.shared.watcher.register(cx.waker());
        if self.shared.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => {
                self.shared.fired.store(true, Ordering::Release);
                self.shared.sleeper.wake();
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
