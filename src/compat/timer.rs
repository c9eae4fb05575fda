//! [`LoopTimer`]: hyper's `Timer`, whose sleeps are the loop's timers.
//!
//! hyper wants `Send + Sync` sleeps, and [`Sleep`](crate::time::Sleep) is neither (its timer lives in
//! the loop's `!Send` timer lists). So a [`LoopSleep`] is only the `Send` half of a sleep; the
//! real [`Sleep`](crate::time::Sleep) stays on the loop's thread, in a thread-local slab
//! ([`ARMED`]), for the `LoopSleep`'s lifetime:
//! - **arming**, when the `LoopSleep` is made: on the loop's thread at once (hyper makes its
//!   sleeps there, one per request head for `header_read_timeout`), from another thread as a
//!   job through the loop's inbox. The `Sleep` (for the time left, in whole milliseconds: see
//!   `arm`) is polled once with a waker made from the shared
//!   state (`std::task::Wake`), so when the timers phase fires it, that waker sets `fired` and
//!   wakes whoever polls the `LoopSleep`. No task per sleep: per sleep, one `Arc`, one timer and
//!   a slab slot (hyper-util's `TokioTimer` is likewise one boxed timer entry per sleep);
//! - **cancelling**, when the `LoopSleep` is dropped, on whatever thread: the slot is taken out
//!   of the slab and the `Sleep` dropped, which clears the timer; on the loop's thread at once,
//!   from another thread as a job. A sleep dropped before its arming job ran is marked, and the
//!   job then drops the `Sleep` it made.
//!
//! So a pending sleep keeps the loop alive as a timer does (from its arming on), a dropped one
//! stops doing so at once (on the loop's thread) or when the loop runs the cancelling job, and
//! nothing `!Send` ever leaves the loop's thread. The shared state is a flag, an `AtomicWaker`
//! and a small `Mutex` (held only to read or swap the slot, never while a waker runs).
//!
//! If the loop is gone when a sleep is dropped on another thread, the job cannot run and the
//! dead `Sleep` (its timer went with the loop) stays in that thread's slab until the thread
//! ends.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use slab::Slab;

use crate::Spawner;

thread_local! {
    /// The armed sleeps of the loops running on this thread (see the module docs). Never
    /// borrowed while a `Sleep` is dropped or polled.
    static ARMED: RefCell<Slab<crate::time::Sleep>> = const { RefCell::new(Slab::new()) };
}

/// hyper's [`Timer`](hyper::rt::Timer) on the loop's timers (for `header_read_timeout`,
/// keep-alive and HTTP/2 pings).
///
/// Made on the loop's thread, it remembers that loop: its sleeps are that loop's timers even
/// when hyper asks for one from another thread. Clone it freely (`Send + Sync`).
#[derive(Clone, Debug)]
pub struct LoopTimer {
    spawner: Arc<Spawner>,
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
            spawner: Arc::new(crate::spawner()),
        }
    }

    /// A timer for the loop behind `spawner` (made without a running loop, say).
    pub fn with_spawner(spawner: Spawner) -> Self {
        LoopTimer {
            spawner: Arc::new(spawner),
        }
    }

    /// A [`LoopSleep`] until `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> LoopSleep {
        let shared = Arc::new(Shared {
            fired: AtomicBool::new(false),
            sleeper: AtomicWaker::new(),
            slot: Mutex::new(Slot::Arming),
        });
        let s = shared.clone();
        // Inline on the loop's thread; a job through the inbox from elsewhere.
        self.spawner.run_detached(move || arm(s, deadline));
        LoopSleep {
            shared,
            deadline,
            spawner: self.spawner.clone(),
        }
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

/// Where a sleep's real timer is.
enum Slot {
    /// The arming job has not run yet.
    Arming,
    /// In [`ARMED`] under this key, on the loop's thread.
    Armed(usize),
    /// The `LoopSleep` was dropped (or the deadline had passed when arming).
    Done,
}

/// What a [`LoopSleep`] and its timer on the loop share; also the timer's waker.
struct Shared {
    /// Set when the deadline passed.
    fired: AtomicBool,
    /// Who polls the `LoopSleep`.
    sleeper: AtomicWaker,
    /// Where the timer is; locked only to read or swap it.
    slot: Mutex<Slot>,
}

impl Shared {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The timers phase fired the `Sleep`.
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.sleeper.wake();
    }
}

/// On the loop's thread: starts the timer and parks its `Sleep` in [`ARMED`], unless the
/// `LoopSleep` is already gone.
fn arm(shared: Arc<Shared>, deadline: Instant) {
    // The time left, rounded up to whole milliseconds: the timer goes on Node's list for that
    // duration (`time/lists.rs`), shared by every sleep of that length. hyper's
    // `header_read_timeout` asks for "now + 10 s" per request head; as absolute deadlines
    // (`sleep_until`) each made its own list and heap entry, and the heap kept a stale entry
    // per cancelled sleep until its 10 s were up (400 000 entries at 40 000 requests/s).
    // So a sleep ends up to a millisecond after its deadline, never before.
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = u64::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    let mut sleep = crate::time::sleep(Duration::from_millis(ms));
    let waker = Waker::from(shared.clone());
    if Pin::new(&mut sleep)
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        shared.wake_by_ref();
        *shared.slot() = Slot::Done;
        return;
    }
    let mut slot = shared.slot();
    if matches!(*slot, Slot::Done) {
        // Dropped before this job ran: `sleep` is dropped (the timer cleared) after the lock.
        drop(slot);
        return;
    }
    // (While the thread's locals are being torn down there is no slab: the sleep is dropped.)
    if let Ok(key) = ARMED.try_with(|a| a.borrow_mut().insert(sleep)) {
        *slot = Slot::Armed(key);
    }
}

/// On the loop's thread: drops the armed `Sleep` under `key` (clearing its timer).
fn disarm(key: usize) {
    let sleep = ARMED
        .try_with(|a| a.borrow_mut().try_remove(key))
        .ok()
        .flatten();
    // Dropped with no borrow held.
    drop(sleep);
}

/// A `Send + Sync` sleep on a loop's timers, made by [`LoopTimer`]; dropping it (on any thread)
/// cancels the timer.
pub struct LoopSleep {
    shared: Arc<Shared>,
    deadline: Instant,
    /// The loop the timer is on, for the cancelling job.
    spawner: Arc<Spawner>,
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
        let was = std::mem::replace(&mut *self.shared.slot(), Slot::Done);
        if let Slot::Armed(key) = was {
            // Inline on the loop's thread (where hyper drops its sleeps); a job from elsewhere.
            self.spawner.run_detached(move || disarm(key));
        }
    }
}
