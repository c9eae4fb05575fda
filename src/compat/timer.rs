//! [`LoopTimer`]: hyper's `Timer`, whose sleeps are the loop's timers.
//!
//! hyper wants `Send + Sync` sleeps, and [`Sleep`](crate::time::Sleep) is neither (its timer
//! lives in the loop's `!Send` timer lists); and hyper makes one per request head
//! (`header_read_timeout`), polls it once and drops it a moment later, so what a sleep costs is
//! a good part of what a request costs. So a [`LoopSleep`] is only the `Send` half of a sleep:
//! an entry in a thread-local table ([`WHEEL`]) on the loop's thread, which the `LoopSleep`
//! names by key, holds its deadline, whether it fired and whom to wake. Each loop has one
//! [`Driver`] there: the entries in deadline order, and **one** loop timer (a
//! [`Sleep`](crate::time::Sleep), for the time left until the earliest entry, rounded up to
//! whole milliseconds) whose waker fires the due entries and re-arms it. Per sleep, that is a
//! table slot and a queue slot, no allocation (amortized) besides the `Box` hyper puts the
//! `LoopSleep` in (hyper-util's `TokioTimer` is one boxed timer entry per sleep); the loop
//! timer is re-armed only when an entry is due before it.
//!
//! - **Liveness**: the loop timer keeps the loop alive (is ref'd) while some entry is pending,
//!   as a timer would; when the last pending one is dropped it is unref'd at once (not
//!   cleared: the next sleep refs it again, so a lone connection's sleep per request costs no
//!   timer of its own). A dropped entry left in the queue is skipped when it reaches the
//!   front; a queue with many of them is compacted.
//! - A `LoopSleep` is **local** (made on the loop's thread and so far only polled there: hyper
//!   on the loop) or **remote** (made off the loop's thread, or polled there once). Local: a
//!   poll looks at the entry and leaves the poller's waker there; a drop removes the entry.
//!   Remote: the `LoopSleep` and the loop share a [`Shared`] (an `Arc`: a flag, an
//!   `AtomicWaker` and a small `Mutex`, held only to read or swap the slot, never while a
//!   waker runs), whose waker (`std::task::Wake`) the entry wakes; the entry is made (for a
//!   sleep made off the loop), pointed at the `Shared` (for a local sleep first polled
//!   elsewhere) and removed (for a drop off the loop's thread) by jobs through the loop's
//!   inbox. A sleep dropped before its arming job ran is marked, and the job then makes no
//!   entry.
//!
//! Nothing `!Send` ever leaves the loop's thread, and no borrow of the table is held while a
//! waker is cloned, woken or dropped or a `Sleep` is polled or dropped. Entries are named by
//! key and generation, so a stale key never reaches another sleep's entry.
//!
//! If the loop is gone, its timer went with it and its entries never fire: a sleep's jobs
//! cannot run, and its entry stays in that thread's table until the thread ends; the loop's
//! driver's place is reused by the next loop on the thread that makes sleeps.

use std::cell::RefCell;
use std::collections::VecDeque;
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

/// Queues with at least this many dropped entries, and more dropped than pending ones, are
/// compacted.
const COMPACT_MIN_STALE: usize = 64;

thread_local! {
    /// The sleeps of the loops running on this thread (see the module docs).
    static WHEEL: RefCell<Wheel> = RefCell::new(Wheel::default());
}

/// All sleeps on this thread's loops.
#[derive(Default)]
struct Wheel {
    entries: Slab<Entry>,
    /// Last generation handed out.
    generation: u64,
    /// One per loop that has (or had) sleeps on this thread; usually one.
    drivers: Vec<Driver>,
}

/// One sleep.
struct Entry {
    generation: u64,
    /// Index of its loop's driver in `Wheel::drivers`.
    driver: usize,
    /// Whether it is in its driver's queue (pending); `false` once fired.
    queued: bool,
    fired: bool,
    /// Whom firing wakes.
    waker: Option<Waker>,
}

/// A slot and generation in [`WHEEL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    slot: usize,
    generation: u64,
}

/// One loop's sleeps and its one timer.
struct Driver {
    loop_id: u64,
    /// `(deadline, key)` of pending (and dropped, not yet skipped) entries, by deadline.
    queue: VecDeque<(Instant, Key)>,
    /// Dropped entries still in `queue`.
    stale: usize,
    /// Pending entries.
    pending: usize,
    /// The loop timer, due no later than the earliest pending entry; `None` when the queue
    /// was empty at its last firing.
    timer: Option<crate::time::Sleep>,
    /// What `timer` is due at.
    armed: Option<Instant>,
}

impl Wheel {
    fn entry(&mut self, key: Key) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.slot)
            .filter(|e| e.generation == key.generation)
    }

    /// The driver of loop `loop_id`, if it has one.
    fn find(&self, loop_id: u64) -> Option<usize> {
        self.drivers.iter().rposition(|d| d.loop_id == loop_id)
    }

    /// The driver of loop `loop_id`, made if there is none: in the place of a driver whose
    /// loop is gone, or of one with nothing pending and no timer, if there is one (so a thread
    /// that runs loop after loop does not collect drivers). Also returns the evicted driver's
    /// timer, to be dropped with no borrow held.
    ///
    /// Reusing the place is sound: an entry only reaches its driver while queued, and only
    /// on its loop's thread while that loop runs (through `here` or a job on the loop); a gone
    /// loop's entries are never reached again, and an idle driver has none queued (its
    /// dropped ones, left in its queue, name generations no live entry has).
    fn driver(&mut self, loop_id: u64) -> (usize, Option<crate::time::Sleep>) {
        if let Some(i) = self.find(loop_id) {
            return (i, None);
        }
        let fresh = Driver {
            loop_id,
            queue: VecDeque::new(),
            stale: 0,
            pending: 0,
            timer: None,
            armed: None,
        };
        let reusable = self.drivers.iter().position(|d| {
            d.timer
                .as_ref()
                .map_or(d.pending == 0, crate::time::Sleep::is_orphaned)
        });
        match reusable {
            Some(i) => {
                let old = std::mem::replace(&mut self.drivers[i], fresh);
                (i, old.timer)
            }
            None => {
                self.drivers.push(fresh);
                (self.drivers.len() - 1, None)
            }
        }
    }

    /// Adds a pending entry on loop `loop_id`. Returns its key, what the caller must do to
    /// the loop timer (with no borrow held), and an evicted driver's timer to drop.
    fn insert(
        &mut self,
        loop_id: u64,
        deadline: Instant,
        waker: Option<Waker>,
    ) -> (Key, Arm, Option<crate::time::Sleep>) {
        let (d, evicted) = self.driver(loop_id);
        self.generation += 1;
        let key = Key {
            slot: self.entries.insert(Entry {
                generation: self.generation,
                driver: d,
                queued: true,
                fired: false,
                waker,
            }),
            generation: self.generation,
        };
        let driver = &mut self.drivers[d];
        // Almost always at the back (hyper's sleeps of one connection all last 10 s).
        if driver
            .queue
            .back()
            .is_none_or(|&(last, _)| last <= deadline)
        {
            driver.queue.push_back((deadline, key));
        } else {
            let at = driver.queue.partition_point(|&(t, _)| t <= deadline);
            driver.queue.insert(at, (deadline, key));
        }
        driver.pending += 1;
        let arm = if driver.armed.is_none_or(|t| t > deadline) {
            Arm::For(deadline)
        } else if driver.pending == 1 {
            Arm::Ref
        } else {
            Arm::No
        };
        (key, arm, evicted)
    }

    /// Removes the entry `key` (its `LoopSleep` is gone). Returns its waker (to be dropped
    /// with no borrow held) and whether its loop timer must be unref'd.
    fn remove(&mut self, key: Key) -> (Option<Waker>, Option<usize>) {
        if self.entry(key).is_none() {
            return (None, None);
        }
        let e = self.entries.remove(key.slot);
        let mut unref = None;
        if e.queued {
            let driver = &mut self.drivers[e.driver];
            driver.pending -= 1;
            driver.stale += 1;
            if driver.pending == 0 {
                unref = Some(e.driver);
            }
            if driver.stale >= COMPACT_MIN_STALE && driver.stale * 2 > driver.queue.len() {
                let entries = &self.entries;
                driver.queue.retain(|&(_, k)| {
                    entries
                        .get(k.slot)
                        .is_some_and(|e| e.generation == k.generation)
                });
                driver.stale = 0;
            }
        }
        (e.waker, unref)
    }
}

/// What [`Wheel::insert`] asks of its caller.
enum Arm {
    /// Nothing: the loop timer is due before the new entry and already ref'd.
    No,
    /// Ref the loop timer again (the first pending entry since it was unref'd).
    Ref,
    /// Arm a new loop timer for this deadline (none, or a later one, is armed).
    For(Instant),
}

/// On the loop's thread: runs `f` on [`WHEEL`] (`None` while the thread's locals are being
/// torn down).
fn with_wheel<R>(f: impl FnOnce(&mut Wheel) -> R) -> Option<R> {
    WHEEL.try_with(|w| f(&mut w.borrow_mut())).ok()
}

/// The waker of loop `loop_id`'s timer: fires that loop's due entries.
struct DriverWake {
    loop_id: u64,
}

impl Wake for DriverWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Only ever woken by the loop's timers phase, on the loop's thread.
        fire_due(self.loop_id);
    }
}

/// On the loop's thread: arms a new timer for `deadline` on loop `loop_id`'s driver (the old
/// one, dropped, is cleared).
fn arm(loop_id: u64, deadline: Instant) {
    let mut timer = crate::time::sleep_rounded_until(deadline);
    let waker = Waker::from(Arc::new(DriverWake { loop_id }));
    // Not ready: it fires in a timers phase, not when made.
    let _ = Pin::new(&mut timer).poll(&mut Context::from_waker(&waker));
    // The driver was made by the `insert` that asked for this timer. Whatever timer is not
    // kept (the old one, or this one if there were no driver) is dropped with no borrow held.
    let left = with_wheel(|w| match w.find(loop_id) {
        Some(d) => {
            let driver = &mut w.drivers[d];
            if driver.pending == 0 {
                timer.set_ref(false);
            }
            driver.armed = Some(timer.deadline());
            driver.timer.replace(timer)
        }
        None => Some(timer),
    })
    .flatten();
    drop(left);
}

/// On the loop's thread, from its timer's waker: fires loop `loop_id`'s due entries, then
/// arms its timer for the earliest pending one.
fn fire_due(loop_id: u64) {
    let now = Instant::now();
    let mut wake = Vec::new();
    let (old, next) = with_wheel(|w| {
        let Some(d) = w.find(loop_id) else {
            return (None, None);
        };
        let Wheel {
            entries, drivers, ..
        } = w;
        let driver = &mut drivers[d];
        while let Some(&(deadline, key)) = driver.queue.front() {
            let Some(e) = entries
                .get_mut(key.slot)
                .filter(|e| e.generation == key.generation)
            else {
                driver.queue.pop_front();
                driver.stale = driver.stale.saturating_sub(1);
                continue;
            };
            if deadline > now {
                break;
            }
            driver.queue.pop_front();
            e.queued = false;
            e.fired = true;
            driver.pending -= 1;
            wake.extend(e.waker.take());
        }
        driver.armed = None;
        let next = (driver.pending > 0)
            .then(|| driver.queue.front().map(|&(t, _)| t))
            .flatten();
        (driver.timer.take(), next)
    })
    .unwrap_or((None, None));
    // The fired timer, the wakes and the re-arming, with no borrow held.
    drop(old);
    for w in wake {
        w.wake();
    }
    // (Always so: the loop's timers phase fired its timer. Checked, as `arm` needs the loop.)
    let on_loop = context::try_with_current(|inner| inner.id == loop_id) == Some(true);
    if let Some(t) = next.filter(|_| on_loop) {
        arm(loop_id, t);
    }
}

/// On the loop's thread: the timer's ref follows whether an entry is pending.
fn set_ref(driver: usize, refed: bool) {
    // The timer is taken out to be told, so no borrow is held meanwhile (`set_ref` runs no
    // user code, but the timer's owner is looked up).
    let timer = with_wheel(|w| w.drivers.get_mut(driver).and_then(|d| d.timer.take())).flatten();
    if let Some(timer) = timer {
        timer.set_ref(refed);
        let left = with_wheel(|w| match w.drivers.get_mut(driver) {
            Some(d) if d.timer.is_none() => {
                d.timer = Some(timer);
                None
            }
            _ => Some(timer),
        })
        .flatten();
        drop(left);
    }
}

/// On the loop's thread (loop `loop_id` running): a pending entry for `deadline` that wakes
/// `waker` when it fires.
fn add(loop_id: u64, deadline: Instant, waker: Option<Waker>) -> Option<Key> {
    let (key, todo, evicted) = with_wheel(|w| w.insert(loop_id, deadline, waker))?;
    drop(evicted);
    match todo {
        Arm::No => {}
        Arm::Ref => {
            if let Some(d) = with_wheel(|w| w.find(loop_id)).flatten() {
                set_ref(d, true);
            }
        }
        Arm::For(t) => arm(loop_id, t),
    }
    Some(key)
}

/// On the loop's thread: removes entry `key` (its sleep was dropped).
fn remove(key: Key) {
    let Some((waker, unref)) = with_wheel(|w| w.remove(key)) else {
        return;
    };
    drop(waker);
    if let Some(d) = unref {
        set_ref(d, false);
    }
}

/// On the loop's thread: whether entry `key` fired; if not, it will wake `cx`'s waker.
fn poll_entry(key: Key, cx: &Context<'_>) -> Poll<()> {
    let known = with_wheel(|w| {
        let e = w.entry(key)?;
        Some(e.fired || e.waker.as_ref().is_some_and(|o| o.will_wake(cx.waker())))
    })
    .flatten();
    match known {
        None => return Poll::Pending,
        Some(true) => {}
        Some(false) => set_waker(key, cx.waker().clone()),
    }
    if with_wheel(|w| w.entry(key).is_some_and(|e| e.fired)) == Some(true) {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// On the loop's thread: entry `key` now wakes `waker` (at once, if it already fired).
fn set_waker(key: Key, waker: Waker) {
    let (old, fired) = with_wheel(|w| match w.entry(key) {
        Some(e) if !e.fired => (e.waker.replace(waker), None),
        Some(_) => (None, Some(waker)),
        None => (Some(waker), None),
    })
    .unwrap_or((None, None));
    // Cloned before, dropped after, with no borrow held.
    drop(old);
    if let Some(w) = fired {
        w.wake();
    }
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
    /// The loop's id if this thread is running that loop now (so its sleeps can be local).
    fn here(&self) -> Option<u64> {
        let &id = self.loop_id.get()?;
        (context::try_with_current(|inner| inner.id == id) == Some(true)).then_some(id)
    }

    /// On the loop's thread, in a job: remembers the loop's id and returns it.
    fn learn_id(&self) -> Option<u64> {
        let id = context::try_with_current(|inner| inner.id)?;
        Some(*self.loop_id.get_or_init(|| id))
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
        let mode = if let Some(id) = self.inner.here() {
            // (While the thread's locals are being torn down there is no table: the
            // `LoopSleep` never completes.)
            add(id, deadline, None).map_or(Mode::Dead, Mode::Local)
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
                if let Some(id) = t.learn_id() {
                    arm_remote(id, &s, deadline);
                }
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

/// Where a remote sleep's entry is.
enum Slot {
    /// The arming job has not run yet.
    Arming,
    /// In [`WHEEL`] under this key, on the loop's thread.
    Armed(Key),
    /// The `LoopSleep` was dropped.
    Done,
}

/// What a remote [`LoopSleep`] and its entry on the loop share; also the entry's waker.
struct Shared {
    /// Set when the deadline passed.
    fired: AtomicBool,
    /// Who polls the `LoopSleep`.
    sleeper: AtomicWaker,
    /// Where the entry is; locked only to read or swap it.
    slot: Mutex<Slot>,
}

impl Shared {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The entry fired.
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.sleeper.wake();
    }
}

/// On the loop's thread, for a sleep made elsewhere: adds its entry, unless the `LoopSleep` is
/// already gone.
fn arm_remote(loop_id: u64, shared: &Arc<Shared>, deadline: Instant) {
    let mut slot = shared.slot();
    if matches!(*slot, Slot::Done) {
        return;
    }
    // (`add` runs no waker: the entry's is only woken by the timers phase.)
    if let Some(key) = add(loop_id, deadline, Some(Waker::from(shared.clone()))) {
        *slot = Slot::Armed(key);
    }
}

/// On the loop's thread, for a local sleep first polled elsewhere: its entry now wakes
/// `shared`. Nothing to do if the `LoopSleep` was dropped meanwhile (its removing job, or the
/// drop itself on the loop's thread, removes the entry).
fn attach(shared: &Arc<Shared>) {
    let Slot::Armed(key) = *shared.slot() else {
        return;
    };
    set_waker(key, Waker::from(shared.clone()));
}

/// How a [`LoopSleep`] reaches its entry (see the module docs).
enum Mode {
    /// Made on the loop's thread, polled only there so far.
    Local(Key),
    /// Made or polled off the loop's thread.
    Remote(Arc<Shared>),
    /// Made while the thread was tearing down its locals: never completes.
    Dead,
}

/// A `Send + Sync` sleep on a loop's timers, made by [`LoopTimer`]; dropping it (on any thread)
/// cancels it.
pub struct LoopSleep {
    mode: Mode,
    deadline: Instant,
    /// The loop the entry is on, for polls and drops on other threads.
    timer: Arc<TimerLoop>,
}

impl LoopSleep {
    /// When it completes (its entry fires up to a millisecond later, never before).
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
            &Mode::Local(key) if this.timer.here().is_some() => poll_entry(key, cx),
            &Mode::Local(key) => {
                // Polled off the loop's thread (or after its loop ended): from now on the
                // entry wakes a `Shared`, by a job on the loop.
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
        self.timer.spawner.run_detached(move || remove(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that runs loop after loop, each with sleeps (one left pending when its loop
    /// ends, one that fired), reuses the place of a gone loop's driver instead of collecting
    /// drivers.
    #[test]
    fn loops_run_one_after_another_reuse_the_drivers_places() {
        let mut kept = Vec::new();
        for _ in 0..20 {
            let ev = crate::EventLoop::new();
            let pending = ev.block_on(async {
                let timer = LoopTimer::new();
                timer
                    .sleep_until(Instant::now() + Duration::from_millis(1))
                    .await;
                // Kept, not awaited: it is still pending when its loop ends.
                Some(timer.sleep_until(Instant::now() + Duration::from_secs(60)))
            });
            kept.push(pending);
        }
        let drivers = WHEEL.with(|w| w.borrow().drivers.len());
        assert!(drivers <= 2, "{drivers} drivers for loops that are gone");
        // The pending sleeps of gone loops are inert: dropping them off their loops is a no-op.
        drop(kept);
    }
}
