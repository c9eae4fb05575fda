//! [`LoopTimer`]: hyper's `Timer`, whose sleeps are the loop's timers.
//!
//! hyper wants `Send + Sync` sleeps, and [`Sleep`](crate::time::Sleep) is neither (its timer lives in
//! the loop's `!Send` timer lists). So a [`LoopSleep`] is only the `Send` half of a sleep; the
//! real [`Sleep`](crate::time::Sleep) stays on the loop's thread, in a thread-local slab
//! ([`ARMED`]), for the `LoopSleep`'s lifetime. The `Sleep` is for the time left, rounded up to
//! whole milliseconds (`time::sleep_rounded_until`), so hyper's per-request-head sleeps share
//! one Node list.
//!
//! A `LoopSleep` is in one of two modes, and only goes from the first to the second:
//! - **local** (made on the loop's thread, and so far only polled there: hyper on the loop
//!   makes, polls and drops its sleeps there, one per request head for `header_read_timeout`):
//!   the `Sleep` is armed at once and the `LoopSleep` holds its slab key; a poll polls the
//!   `Sleep` itself (taken out of its slot, no borrow held), so its timer wakes the poller's
//!   waker directly; a drop takes it out of the slab and drops it, which clears the timer.
//!   Per sleep: one timer and a slab slot, and nothing else besides the `Box` hyper puts the
//!   `LoopSleep` in (hyper-util's `TokioTimer` is one boxed timer entry per sleep);
//! - **remote** (made off the loop's thread, or polled there once): the `LoopSleep` and the
//!   loop share a [`Shared`] (an `Arc`): a flag, an `AtomicWaker` and a small `Mutex` (held
//!   only to read or swap the slot, never while a waker runs), and the `Sleep` is polled on the
//!   loop once, by a job through the loop's inbox, with a waker made from the `Shared`
//!   (`std::task::Wake`): when the timers phase fires it, that waker sets `fired` and wakes
//!   whoever polls the `LoopSleep`. Arming (for a sleep made off the loop) is such a job too; a
//!   sleep dropped before its arming job ran is marked, and the job then drops the `Sleep` it
//!   made. A drop off the loop's thread is a job that drops the `Sleep`.
//!
//! So a pending sleep keeps the loop alive as a timer does (from its arming on), a dropped one
//! stops doing so at once (on the loop's thread) or when the loop runs the cancelling job, and
//! nothing `!Send` ever leaves the loop's thread. A `LoopSleep` only touches the slab on the
//! thread of its loop while that loop runs (loop ids are never reused), so a key always names
//! the slot it was given.
//!
//! If the loop is gone when a sleep is dropped on another thread, the job cannot run and the
//! dead `Sleep` (its timer went with the loop) stays in that thread's slab until the thread
//! ends.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use slab::Slab;

use crate::Spawner;
use crate::runtime::context;

thread_local! {
    /// The armed sleeps of the loops running on this thread (see the module docs). A slot is
    /// `None` only while its `Sleep` is being polled: it is taken out, so that no borrow is
    /// held while the poll clones or drops a waker. Never borrowed while a `Sleep` is dropped
    /// or polled.
    static ARMED: RefCell<Slab<Option<crate::time::Sleep>>> = const { RefCell::new(Slab::new()) };
}

/// hyper's [`Timer`](hyper::rt::Timer) on the loop's timers (for `header_read_timeout`,
/// keep-alive and HTTP/2 pings).
///
/// Made on the loop's thread, it remembers that loop: its sleeps are that loop's timers even
/// when hyper asks for one from another thread. Clone it freely (`Send + Sync`).
#[derive(Clone, Debug)]
pub struct LoopTimer {
    inner: Arc<TimerLoop>,
}

/// The loop a [`LoopTimer`] and its sleeps are on.
#[derive(Debug)]
struct TimerLoop {
    spawner: Spawner,
    /// The loop's id, once known: from the start for [`LoopTimer::new`], from the first job
    /// that ran on the loop for [`LoopTimer::with_spawner`]. Until then every sleep is remote.
    loop_id: OnceLock<u64>,
}

impl TimerLoop {
    /// Whether this thread is running this loop now (so its sleeps can be local).
    fn on_its_loop(&self) -> bool {
        let Some(&id) = self.loop_id.get() else {
            return false;
        };
        context::try_with_current(|inner| inner.id == id) == Some(true)
    }

    /// On the loop's thread, in a job: remembers the loop's id.
    fn learn_id(&self) {
        if let Some(id) = context::try_with_current(|inner| inner.id) {
            let _ = self.loop_id.set(id);
        }
    }
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
        let spawner = crate::spawner();
        let loop_id = OnceLock::new();
        let _ = loop_id.set(context::with_current("compat::LoopTimer::new", |inner| {
            inner.id
        }));
        LoopTimer {
            inner: Arc::new(TimerLoop { spawner, loop_id }),
        }
    }

    /// A timer for the loop behind `spawner` (made without a running loop, say).
    pub fn with_spawner(spawner: Spawner) -> Self {
        LoopTimer {
            inner: Arc::new(TimerLoop {
                spawner,
                loop_id: OnceLock::new(),
            }),
        }
    }

    /// A [`LoopSleep`] until `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> LoopSleep {
        let mode = if self.inner.on_its_loop() {
            // (While the thread's locals are being torn down there is no slab: the sleep is
            // dropped, and the `LoopSleep` never completes.)
            let sleep = crate::time::sleep_rounded_until(deadline);
            match ARMED.try_with(|a| a.borrow_mut().insert(None)) {
                Ok(key) => {
                    put_back(key, sleep);
                    Mode::Local(key)
                }
                Err(_) => Mode::Dead,
            }
        } else {
            let shared = Arc::new(Shared {
                fired: AtomicBool::new(false),
                sleeper: AtomicWaker::new(),
                slot: Mutex::new(Slot::Arming),
            });
            let s = shared.clone();
            let t = self.inner.clone();
            // A job through the inbox (or inline, on the loop's thread before its id is known).
            self.inner.spawner.run_detached(move || {
                t.learn_id();
                arm(s, deadline);
            });
            Mode::Remote(shared)
        };
        LoopSleep {
            mode,
            deadline,
            timer: self.inner.clone(),
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

/// Puts `sleep` (back) in its slot `key` of [`ARMED`]; drops it (clearing its timer) if the
/// slot is gone or the slab is (thread teardown). Drops happen with no borrow held.
fn put_back(key: usize, sleep: crate::time::Sleep) {
    let left = ARMED
        .try_with(|a| match a.borrow_mut().get_mut(key) {
            Some(slot @ None) => {
                *slot = Some(sleep);
                None
            }
            _ => Some(sleep),
        })
        .ok()
        .flatten();
    drop(left);
}

/// Takes the `Sleep` in slot `key` of [`ARMED`] out for a poll (the slot stays, empty).
fn take_out(key: usize) -> Option<crate::time::Sleep> {
    ARMED
        .try_with(|a| a.borrow_mut().get_mut(key).and_then(Option::take))
        .ok()
        .flatten()
}

/// Where a remote sleep's real timer is.
enum Slot {
    /// The arming job has not run yet.
    Arming,
    /// In [`ARMED`] under this key, on the loop's thread.
    Armed(usize),
    /// The `LoopSleep` was dropped (or the deadline had passed when arming).
    Done,
}

/// What a remote [`LoopSleep`] and its timer on the loop share; also the timer's waker.
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

/// Polls `sleep` with `shared`'s waker; whether it is done (then `shared` knows).
fn poll_for(shared: &Arc<Shared>, sleep: &mut crate::time::Sleep) -> bool {
    let waker = Waker::from(shared.clone());
    let done = Pin::new(sleep)
        .poll(&mut Context::from_waker(&waker))
        .is_ready();
    if done {
        shared.wake_by_ref();
    }
    done
}

/// On the loop's thread, for a sleep made elsewhere: starts the timer and parks its `Sleep` in
/// [`ARMED`], unless the `LoopSleep` is already gone.
fn arm(shared: Arc<Shared>, deadline: Instant) {
    let mut sleep = crate::time::sleep_rounded_until(deadline);
    if poll_for(&shared, &mut sleep) {
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
    if let Ok(key) = ARMED.try_with(|a| a.borrow_mut().insert(None)) {
        *slot = Slot::Armed(key);
        drop(slot);
        put_back(key, sleep);
    }
}

/// On the loop's thread, for a local sleep first polled elsewhere: its timer now wakes
/// `shared`. Nothing to do if the `LoopSleep` was dropped meanwhile (its cancelling job, or
/// the drop itself on the loop's thread, clears the timer).
fn attach(shared: &Arc<Shared>) {
    let Slot::Armed(key) = *shared.slot() else {
        return;
    };
    if let Some(mut sleep) = take_out(key) {
        poll_for(shared, &mut sleep);
        put_back(key, sleep);
    }
}

/// On the loop's thread: drops the armed `Sleep` under `key` (clearing its timer).
fn disarm(key: usize) {
    let sleep = ARMED
        .try_with(|a| {
            let mut a = a.borrow_mut();
            a.contains(key).then(|| a.remove(key))
        })
        .ok()
        .flatten()
        .flatten();
    // Dropped with no borrow held.
    drop(sleep);
}

/// How a [`LoopSleep`] reaches its timer (see the module docs).
enum Mode {
    /// Armed on the loop's thread, polled only there so far: its `Sleep` is in [`ARMED`]
    /// under this key.
    Local(usize),
    /// Made or polled off the loop's thread.
    Remote(Arc<Shared>),
    /// Made while the thread was tearing down its locals: never completes.
    Dead,
}

/// A `Send + Sync` sleep on a loop's timers, made by [`LoopTimer`]; dropping it (on any thread)
/// cancels the timer.
pub struct LoopSleep {
    mode: Mode,
    deadline: Instant,
    /// The loop the timer is on, for polls and drops on other threads.
    timer: Arc<TimerLoop>,
}

impl LoopSleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl fmt::Debug for LoopSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.mode {
            Mode::Local(_) => "local",
            Mode::Remote(_) => "remote",
            Mode::Dead => "dead",
        };
        f.debug_struct("LoopSleep")
            .field("deadline", &self.deadline)
            .field("mode", &mode)
            .finish()
    }
}

impl Future for LoopSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match &this.mode {
            Mode::Local(key) if this.timer.on_its_loop() => {
                let key = *key;
                let Some(mut sleep) = take_out(key) else {
                    return Poll::Pending;
                };
                let r = Pin::new(&mut sleep).poll(cx);
                put_back(key, sleep);
                r
            }
            &Mode::Local(key) => {
                // Polled off the loop's thread (or after its loop ended): from now on the
                // timer wakes a `Shared`, by a job on the loop.
                let shared = Arc::new(Shared {
                    fired: AtomicBool::new(false),
                    sleeper: AtomicWaker::new(),
                    slot: Mutex::new(Slot::Armed(key)),
                });
                shared.sleeper.register(cx.waker());
                let s = shared.clone();
                this.timer.spawner.run_detached(move || attach(&s));
                this.mode = Mode::Remote(shared);
                Poll::Pending
            }
            Mode::Remote(shared) => {
                if shared.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                shared.sleeper.register(cx.waker());
                // Fired between the check and the registration: its wake may have missed the
                // waker.
                if shared.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                Poll::Pending
            }
            Mode::Dead => Poll::Pending,
        }
    }
}

impl hyper::rt::Sleep for LoopSleep {}

impl Drop for LoopSleep {
    fn drop(&mut self) {
        let key = match &self.mode {
            Mode::Local(key) => *key,
            Mode::Remote(shared) => match std::mem::replace(&mut *shared.slot(), Slot::Done) {
                Slot::Armed(key) => key,
                Slot::Arming | Slot::Done => return,
            },
            Mode::Dead => return,
        };
        // Inline on the loop's thread (where hyper drops its sleeps); a job from elsewhere.
        self.timer.spawner.run_detached(move || disarm(key));
    }
}
