//! The timers phase: Node.js's timer lists, driven by the loop.
//!
//! # Implementation
//! This is a port of Node.js v20's timers (`lib/internal/timers.js`: `insert`,
//! `processTimers`, `listOnTimeout`; `lib/timers.js`: `clearTimeout`, `unenroll`;
//! `src/env.cc`: `RunTimers`) and of the bundled libuv 1.46's `uv__run_timers`
//! (`deps/uv/src/timer.c`), because Node.js is our oracle for ordering and the order of
//! overdue timers depends on every detail of that structure:
//!
//! - a [`List`] per [`ListKey`]: the duration for `setTimeout`-like timers (appends are in start
//!   order, so each list is sorted by due time), or the timer's own id for timers whose due time
//!   is not "start + duration" (absolute deadlines, burst intervals), which keeps those sorted too;
//! - a binary heap of `(expiry, list id, slot)` entries (Node's `timerListQueue`, ordered by
//!   `compareTimersLists`); an entry is stale once its list was rescheduled (new id) or removed,
//!   and stale entries are skipped when they reach the top. A list keeps its expiry when timers
//!   are appended or refreshed; only the timers phase moves it (`listOnTimeout`);
//! - taking a timer out of its list leaves a tombstone (the entry's `seq` no longer matches the
//!   timer's), skipped when it reaches the head; a list with many tombstones is compacted;
//! - one libuv timer handle for all of them ([`Timers::next_expiry`]): the timers phase runs
//!   `RunTimers` while that handle is due at the loop time, so a nextTick or microtask after the
//!   last timer callback that reads the clock (`setTimeout`, `setInterval`, `refresh`) past the
//!   next expiry makes the phase run another pass before the check phase.
//!
//! Ties between lists with equal expiry go to the list created or rescheduled first, and within a
//! list to the timer inserted first: "ordered by (deadline, sequence)" at both levels.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::rc::{Rc, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::observe::Kind;
use crate::runtime::LoopState;

/// How far in the future a timer whose deadline overflows the clock is placed (about 30 years,
/// as tokio does): such a timer never fires in practice, but it is still a valid timer.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// Lists with at least this many tombstones, and more tombstones than live entries, are compacted.
const COMPACT_MIN_TOMBSTONES: usize = 64;

/// What a repeating timer does when the loop was too busy to run it on time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MissedTickBehavior {
    /// Node.js's `setInterval`: a late tick runs once, and the next one is due one period after
    /// the loop time at which the late one ran. Missed ticks are skipped, so an interval runs at
    /// most once per timers phase. (Unlike tokio's `Skip`, the schedule is not kept aligned to
    /// the original start.) An [`Interval`](crate::time::Interval) stream whose consumer is late
    /// likewise holds one tick for it, not one per period missed.
    #[default]
    Skip,
    /// Catch up: the next tick is due one period after the previous *due time*, so ticks missed
    /// while the loop was blocked all run, back to back, as soon as it is free. A late stream
    /// consumer gets every missed tick, each with its own due time.
    Burst,
    /// The next tick is due one period after the previous tick *finished* (after its callback
    /// returned, or when the stream consumer took it).
    Delay,
}

/// What happens when a timer fires.
pub(crate) enum Action {
    /// Run a callback (the callback API). `None` while the callback runs, or after `clear`.
    Callback(RefCell<Option<Box<dyn FnMut()>>>),
    /// Wake a future (sleep, interval streams, timeouts).
    Waker(RefCell<Option<Waker>>),
}

/// Key of a timer list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ListKey {
    /// `start + duration` timers of this duration (Node.js's per-duration lists).
    Duration(Duration),
    /// A timer with its own list (absolute deadline or burst interval), by timer uid.
    Own(u64),
}

/// One timer. Shared (`Rc`) between its handle or future and the list entries that refer to it.
pub(crate) struct TimerCell {
    /// Unique id of the timer on its loop.
    uid: u64,
    /// What firing does.
    pub(crate) action: Action,
    /// The countdown length (`refresh` and repeats restart it). Never zero for the callback API.
    duration: Cell<Duration>,
    /// Whether the timer re-arms itself after firing (an interval).
    pub(crate) repeat: bool,
    /// How a late repeating timer reschedules.
    pub(crate) missed: Cell<MissedTickBehavior>,
    /// Whether the timer lives in a list of its own rather than its duration's list.
    own_list: Cell<bool>,
    /// The due time of the current (or last) countdown.
    due: Cell<Instant>,
    /// Registration number of the live list entry; 0 when the timer is not scheduled.
    /// Invariant: at most one list entry carries this timer's current `seq`.
    seq: Cell<u64>,
    /// Whether a scheduled timer keeps the loop alive.
    refed: Cell<bool>,
    /// Set by `clear` of a timer that had not finished (Node's `_idleTimeout = -1` in
    /// `unenroll`): the timer can never be scheduled again.
    cancelled: Cell<bool>,
    /// Node's `_destroyed`: the timer finished (fired and was not re-armed) or was cleared. A
    /// `clear` of a finished timeout only drops its callback (`unenroll` returns early), so a
    /// later `refresh` re-arms it.
    dead: Cell<bool>,
    /// Node's `_onTimeout`: whether a callback timer still has its callback (`clear` drops it;
    /// the callback itself is out of its cell while it runs). A timer scheduled without one
    /// expires silently: it only keeps the loop alive until then (`listOnTimeout`).
    on_timeout: Cell<bool>,
    /// For `Action::Waker` timers: how many times the timer fired since its consumer last looked
    /// (a `Sleep` is done when this is non-zero; a burst interval may fire several times).
    pub(crate) fired: Cell<u32>,
    /// The due time of the latest firing.
    pub(crate) fired_due: Cell<Instant>,
    /// The loop the timer belongs to.
    pub(crate) owner: Weak<LoopState>,
}

impl fmt::Debug for TimerCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("uid", &self.uid)
            .field("duration", &self.duration.get())
            .field("repeat", &self.repeat)
            .field("scheduled", &(self.seq.get() != 0))
            .field("refed", &self.refed.get())
            .field("cancelled", &self.cancelled.get())
            .finish()
    }
}

impl TimerCell {
    /// Unique id of the timer on its loop.
    pub(crate) fn uid(&self) -> u64 {
        self.uid
    }

    /// The due time of the current (or last) countdown.
    pub(crate) fn due(&self) -> Instant {
        self.due.get()
    }

    /// Whether the timer is waiting to fire.
    pub(crate) fn is_scheduled(&self) -> bool {
        self.seq.get() != 0
    }

    /// Whether the timer keeps the loop alive while scheduled.
    pub(crate) fn has_ref(&self) -> bool {
        self.refed.get()
    }

    /// The countdown length.
    pub(crate) fn duration(&self) -> Duration {
        self.duration.get()
    }

    /// Whether firing would do something (Node's `timer._onTimeout`); waker timers always do.
    fn has_callback(&self) -> bool {
        match self.action {
            Action::Callback(_) => self.on_timeout.get(),
            Action::Waker(_) => true,
        }
    }

    fn list_key(&self) -> ListKey {
        if self.own_list.get() {
            ListKey::Own(self.uid)
        } else {
            ListKey::Duration(self.duration.get())
        }
    }
}

/// One list of timers, sorted by due time (Node's `TimersList`).
struct List {
    /// The list's key in `TimerLists::by_key`.
    key: ListKey,
    /// Identity of this list, never reused (slab slots are): Node compares list objects
    /// (`list === timerListMap[msecs]`), and a removed list's slot may hold a new list.
    uid: u64,
    /// Entries `(timer, seq)`; an entry whose seq differs from the timer's is a tombstone.
    entries: VecDeque<(Rc<TimerCell>, u64)>,
    /// Number of tombstones in `entries`.
    tombstones: usize,
    /// Id of the list's live heap entry (ids are unique and increase).
    id: u64,
}

impl List {
    /// Whether the list holds no scheduled timer (`L.isEmpty`).
    fn is_empty(&self) -> bool {
        self.entries.len() == self.tombstones
    }
}

/// The timer lists and the heap that orders them.
#[derive(Default)]
struct TimerLists {
    /// List slot by key (Node's `timerListMap`).
    by_key: HashMap<ListKey, usize>,
    /// The lists.
    lists: Slab<List>,
    /// `(expiry, list id, slot)`, earliest first (Node's `timerListQueue`). Stale entries are
    /// skipped.
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    /// Next list id (Node's `timerListId`).
    next_list_id: u64,
}

impl TimerLists {
    /// Pops stale heap entries and returns the live top `(expiry, slot, list uid)`.
    fn top(&mut self) -> Option<(Instant, usize, u64)> {
        while let Some(&Reverse((expiry, id, slot))) = self.heap.peek() {
            match self.lists.get(slot) {
                Some(list) if list.id == id => return Some((expiry, slot, list.uid)),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_list_id;
        self.next_list_id += 1;
        id
    }

    /// Gives `slot` a new heap entry with `expiry` (the old one becomes stale): Node's
    /// `list.expiry = ...; list.id = timerListId++; timerListQueue.percolateDown(1)`.
    fn reschedule(&mut self, slot: usize, expiry: Instant) {
        let id = self.new_id();
        self.lists[slot].id = id;
        self.heap.push(Reverse((expiry, id, slot)));
    }

    /// The list at `slot` if it is still the list `uid`.
    fn get_mut(&mut self, slot: usize, uid: u64) -> Option<&mut List> {
        self.lists.get_mut(slot).filter(|l| l.uid == uid)
    }

    /// Removes the list at `slot` from the map and the queue (its heap entry goes stale).
    fn remove(&mut self, slot: usize) {
        let list = self.lists.remove(slot);
        self.by_key.remove(&list.key);
    }
}

/// All timers of one loop.
#[derive(Default)]
pub(crate) struct Timers {
    /// The lists; never borrowed while user code runs.
    lists: RefCell<TimerLists>,
    /// Number of scheduled timers that keep the loop alive.
    ref_count: Cell<usize>,
    /// Last registration number handed out (0 means "not scheduled").
    next_seq: Cell<u64>,
    /// Last timer uid handed out.
    next_uid: Cell<u64>,
    /// When the one libuv timer handle Node.js uses for all its timers is due (`None`: stopped).
    /// Set by `insert` when it makes a list that expires before `js_next_expiry`
    /// (`scheduleTimer`), and after each pass by `RunTimers`' `ScheduleTimer`.
    uv_due: Cell<Option<Instant>>,
    /// Node's `nextExpiry` (`None` is `Infinity`): the expiry `processTimers` last returned,
    /// lowered by `insert`, never raised by `clear`.
    js_next_expiry: Cell<Option<Instant>>,
    /// Fired timeouts whose callback is kept for `refresh`, weakly: a callback that holds its
    /// own handle makes a cycle only the loop's drop can break (`take_all`). Pruned of dead
    /// entries whenever it doubles.
    fired: RefCell<Vec<Weak<TimerCell>>>,
    /// Length at which `fired` is next pruned.
    fired_prune_at: Cell<usize>,
}

impl Timers {
    /// Creates an unscheduled timer.
    pub(crate) fn new_timer(
        &self,
        owner: Weak<LoopState>,
        action: Action,
        duration: Duration,
        repeat: bool,
        now: Instant,
    ) -> Rc<TimerCell> {
        let uid = self.next_uid.get() + 1;
        self.next_uid.set(uid);
        Rc::new(TimerCell {
            uid,
            action,
            duration: Cell::new(duration),
            repeat,
            missed: Cell::new(MissedTickBehavior::Skip),
            own_list: Cell::new(false),
            due: Cell::new(now),
            seq: Cell::new(0),
            refed: Cell::new(true),
            cancelled: Cell::new(false),
            dead: Cell::new(false),
            on_timeout: Cell::new(true),
            fired: Cell::new(0),
            fired_due: Cell::new(now),
            owner,
        })
    }

    /// Number of scheduled timers that keep the loop alive.
    pub(crate) fn ref_count(&self) -> usize {
        self.ref_count.get()
    }

    /// (Re)starts the countdown of `timer` from `start`: due at `start + duration`, appended to
    /// its duration's list (Node's `insert`, reached through `insertGuarded` for `refresh`,
    /// which does nothing for a cleared timer).
    pub(crate) fn start(&self, timer: &Rc<TimerCell>, start: Instant) {
        if timer.cancelled.get() {
            return;
        }
        let own = timer.missed.get() == MissedTickBehavior::Burst && timer.repeat;
        self.schedule(timer, deadline(start, timer.duration.get()), own);
    }

    /// Schedules `timer` at the absolute `due` time, in a list of its own.
    pub(crate) fn start_at(&self, timer: &Rc<TimerCell>, due: Instant) {
        if timer.cancelled.get() {
            return;
        }
        self.schedule(timer, due, true);
    }

    /// Node's `insert` (and `insertGuarded`'s `_destroyed = false`): appends `timer` to its
    /// list, making the list if there is none.
    fn schedule(&self, timer: &Rc<TimerCell>, due: Instant, own_list: bool) {
        // `L.append` first unlinks the timer; unschedule under the old key, so the tombstone is
        // counted in the list that holds it.
        self.unschedule(timer);
        timer.own_list.set(own_list);
        timer.dead.set(false);
        let seq = self.next_seq.get() + 1;
        self.next_seq.set(seq);
        timer.seq.set(seq);
        timer.due.set(due);
        if timer.refed.get() {
            self.ref_count.set(self.ref_count.get() + 1);
        }
        let key = timer.list_key();
        let mut l = self.lists.borrow_mut();
        let slot = match l.by_key.get(&key) {
            Some(&slot) => slot,
            None => {
                let uid = l.new_id();
                let slot = l.lists.insert(List {
                    key,
                    uid,
                    entries: VecDeque::new(),
                    tombstones: 0,
                    id: 0,
                });
                l.by_key.insert(key, slot);
                l.reschedule(slot, due);
                // `insert`: `if (nextExpiry > expiry) { scheduleTimer(msecs); nextExpiry =
                // expiry; }`; the handle is started `msecs` from the loop time, which is the
                // `start` just read (an interval's earlier `start` is only used inside
                // `processTimers`, whose `RunTimers` reschedules the handle anyway).
                if self.js_next_expiry.get().is_none_or(|n| n > due) {
                    self.uv_due.set(Some(due));
                    self.js_next_expiry.set(Some(due));
                }
                slot
            }
        };
        let list = &mut l.lists[slot];
        list.entries.push_back((timer.clone(), seq));
        if list.tombstones >= COMPACT_MIN_TOMBSTONES && list.tombstones * 2 > list.entries.len() {
            list.entries.retain(|(t, s)| t.seq.get() == *s);
            list.tombstones = 0;
        }
    }

    /// Takes `timer` out of its list (`L.remove`, leaving a tombstone). Returns whether it was
    /// scheduled.
    pub(crate) fn unschedule(&self, timer: &TimerCell) -> bool {
        if timer.seq.get() == 0 {
            return false;
        }
        timer.seq.set(0);
        if timer.refed.get() {
            self.ref_count.set(self.ref_count.get() - 1);
        }
        let mut l = self.lists.borrow_mut();
        // A scheduled timer's entry is always in the current list of its key: a list is only
        // ever removed when it is empty.
        if let Some(&slot) = l.by_key.get(&timer.list_key()) {
            l.lists[slot].tombstones += 1;
        }
        true
    }

    /// Clears `timer` (`clearTimeout`, then `unenroll`). Returns whether it was still scheduled.
    ///
    /// As in Node.js: clearing a callback timer whose callback is already gone does nothing
    /// (`if (timer && timer._onTimeout)`); clearing a timeout that already fired only drops its
    /// callback (`unenroll` returns early for a `_destroyed` timer), so a later `refresh` arms a
    /// silent timer; otherwise the timer is taken out of its list for good, and if it keeps the
    /// loop alive and its list is now empty, the list is removed (so a later timer of that
    /// duration makes a new list with its own expiry, instead of joining a stale one).
    pub(crate) fn clear(&self, timer: &TimerCell) -> bool {
        if let Action::Callback(cb) = &timer.action {
            if !timer.on_timeout.replace(false) {
                return false;
            }
            // Dropping the callback breaks the cycle of a callback that holds its own handle.
            // If the callback is running right now it is not in the cell, and `Rearm` drops it.
            let taken = cb.try_borrow_mut().ok().and_then(|mut c| c.take());
            drop(taken);
            if timer.dead.get() {
                return false;
            }
        }
        // `unenroll`.
        timer.dead.set(true);
        let was = self.unschedule(timer);
        if timer.refed.get() {
            let mut l = self.lists.borrow_mut();
            if let Some(&slot) = l.by_key.get(&timer.list_key()) {
                if l.lists[slot].is_empty() {
                    l.remove(slot);
                }
            }
        }
        timer.cancelled.set(true);
        was
    }

    /// Sets whether `timer` keeps the loop alive.
    pub(crate) fn set_ref(&self, timer: &TimerCell, refed: bool) {
        if timer.refed.get() == refed {
            return;
        }
        timer.refed.set(refed);
        if timer.seq.get() != 0 {
            let n = self.ref_count.get();
            self.ref_count.set(if refed { n + 1 } else { n - 1 });
        }
    }

    /// When the timers phase next has work: when the loop's one timer handle is due (possibly
    /// early, after a `clear`, never late), or `None` with no timers.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.uv_due.get()
    }

    /// Node's `RunTimers` (`src/env.cc`), run by the timers phase while the timer handle is due
    /// (the caller then drains the nextTick and microtask queues, as `RunTimers`'
    /// `InternalCallbackScope` does when it closes, after the handle was rescheduled).
    pub(crate) fn run_due(&self, inner: &LoopState) {
        // `uv__run_timers` stops the (non-repeating) handle before calling it.
        self.uv_due.set(None);
        // If a callback panics, the lists keep their heap entries; make the next timers phase
        // look at them again.
        struct OnPanic<'a>(&'a Timers, Instant);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.uv_due.set(Some(self.1));
                }
            }
        }
        // `Local<Value> arg = env->GetNow();` reads the clock.
        let now = inner.update_time();
        let guard = OnPanic(self, now);
        let next = self.process_timers(inner, now);
        std::mem::forget(guard);
        // `env->ScheduleTimer(duration_ms > 0 ? duration_ms : 1)`, with the duration counted
        // from the loop time, which the callbacks may have moved past the next expiry.
        if let Some(expiry) = next {
            let t = inner.loop_time();
            self.uv_due.set(Some(if expiry > t {
                expiry
            } else {
                t + Duration::from_millis(1)
            }));
        }
    }

    /// Node's `processTimers`: runs every list whose expiry is due at `now`, draining the
    /// queues between lists; returns the next expiry (`None` when no list is left).
    fn process_timers(&self, inner: &LoopState, now: Instant) -> Option<Instant> {
        self.js_next_expiry.set(None);
        let mut ran_at_least_one_list = false;
        loop {
            let (expiry, slot, uid) = self.lists.borrow_mut().top()?;
            if expiry > now {
                self.js_next_expiry.set(Some(expiry));
                return Some(expiry);
            }
            if ran_at_least_one_list {
                inner.drain_queues();
            } else {
                ran_at_least_one_list = true;
            }
            self.list_on_timeout(inner, slot, uid, now);
        }
    }

    /// Node's `listOnTimeout`: runs the due timers of one list. The next timer is chosen (and
    /// found due) *before* the drain that follows the previous callback, and then runs even if
    /// that drain refreshed it. The list keeps its heap entry while it runs, so a panic in a
    /// callback leaves it where the next timers phase finds it.
    fn list_on_timeout(&self, inner: &LoopState, slot: usize, uid: u64, now: Instant) {
        let mut ran_at_least_one_timer = false;
        loop {
            // `L.peek(list)`; the list may have been removed (emptied by a `clear`) meanwhile.
            let timer = {
                let mut l = self.lists.borrow_mut();
                let Some(list) = l.get_mut(slot, uid) else {
                    return;
                };
                loop {
                    match list.entries.front() {
                        None => break None,
                        Some((t, seq)) if t.seq.get() != *seq => {
                            list.entries.pop_front();
                            list.tombstones = list.tombstones.saturating_sub(1);
                        }
                        Some((t, _)) => break Some(t.clone()),
                    }
                }
            };
            let Some(timer) = timer else { break };
            // `if (diff < msecs)`: the head is not due; the rest of the list is later still.
            let due = timer.due.get();
            if due > now {
                self.lists.borrow_mut().reschedule(slot, due);
                return;
            }
            let seq = timer.seq.get();
            if ran_at_least_one_timer {
                inner.drain_queues();
            } else {
                ran_at_least_one_timer = true;
            }
            if matches!(timer.action, Action::Waker(_)) && timer.seq.get() != seq {
                // No Node.js counterpart: a sleep reset (or an interval stream re-armed or
                // dropped) by the drain keeps its new state rather than completing early.
                continue;
            }
            // `L.remove(timer)`: also if the drain refreshed it (it runs anyway) or cleared it.
            self.unschedule(&timer);
            if !timer.has_callback() {
                // Cleared, or a silent timer (cleared after it fired, then refreshed).
                timer.dead.set(true);
                continue;
            }
            self.fire(inner, &timer, now);
        }
        // The list is empty: remove it, unless it was removed (and maybe remade) meanwhile.
        let mut l = self.lists.borrow_mut();
        if l.get_mut(slot, uid).is_some() {
            l.remove(slot);
        }
    }

    /// Fires one due timer (already taken out of its list).
    fn fire(&self, inner: &LoopState, timer: &Rc<TimerCell>, now: Instant) {
        let prev_due = timer.due.get();
        match &timer.action {
            Action::Waker(w) => {
                // Ticks the consumer has not taken yet: with `Burst` each one is kept (and handed
                // out with its own due time); with `Skip` (and `Delay`, which waits for the
                // consumer) a late consumer gets one tick, not a backlog.
                let pending = if timer.missed.get() == MissedTickBehavior::Burst {
                    timer.fired.get().saturating_add(1)
                } else {
                    1
                };
                timer.fired.set(pending);
                timer.fired_due.set(prev_due);
                if timer.repeat {
                    inner.interval_tick(timer.uid);
                    let period = timer.duration.get();
                    match timer.missed.get() {
                        MissedTickBehavior::Skip => self.start(timer, inner.update_time()),
                        MissedTickBehavior::Burst => {
                            self.start_at(timer, deadline(prev_due, period))
                        }
                        // Re-armed by the consumer when it takes the tick.
                        MissedTickBehavior::Delay => {}
                    }
                } else {
                    timer.dead.set(true);
                }
                let waker = w.borrow_mut().take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Action::Callback(cb) => {
                // `listOnTimeout`: `if (timer._repeat) start = getLibuvNow();` reads the clock
                // before an interval's callback; the interval restarts from that time.
                let start = if timer.repeat {
                    inner.update_time()
                } else {
                    now
                };
                let f = cb.borrow_mut().take();
                let Some(f) = f else { return };
                let kind = if timer.repeat {
                    inner.interval_tick(timer.uid);
                    Kind::Interval
                } else {
                    Kind::Timeout
                };
                // Put the callback back and re-arm an interval even if the callback panics
                // (Node.js re-arms in a `finally`): the loop can run again after an uncaught
                // panic, and the interval must still be there.
                let mut rearm = Rearm {
                    timers: self,
                    inner,
                    timer,
                    cb,
                    f: Some(f),
                    start,
                    prev_due,
                };
                let f = rearm.f.as_mut().expect("just set");
                inner.traced(kind, timer.uid, None, f);
            }
        }
    }

    /// Notes a fired timeout that keeps its callback (see `fired`).
    fn remember_fired(&self, timer: &Rc<TimerCell>) {
        let mut fired = self.fired.borrow_mut();
        fired.push(Rc::downgrade(timer));
        if fired.len() >= self.fired_prune_at.get() {
            fired.retain(|w| w.strong_count() > 0);
            self.fired_prune_at.set((fired.len() * 2).max(64));
        }
    }

    /// Drops every timer (loop shutdown), returning the callbacks so the caller can drop them
    /// outside any borrow: the scheduled ones, and the fired timeouts still alive (whose
    /// callbacks may hold their own handles).
    pub(crate) fn take_all(&self) -> Vec<Rc<TimerCell>> {
        let mut out: Vec<Rc<TimerCell>> = std::mem::take(&mut *self.fired.borrow_mut())
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|t| t.seq.get() == 0)
            .collect();
        out.sort_by_key(|t| Rc::as_ptr(t) as usize);
        out.dedup_by(|a, b| Rc::ptr_eq(a, b));
        let mut l = self.lists.borrow_mut();
        let lists = std::mem::take(&mut *l);
        self.ref_count.set(0);
        self.uv_due.set(None);
        self.js_next_expiry.set(None);
        for (_, list) in lists.lists {
            for (timer, seq) in list.entries {
                if timer.seq.get() == seq {
                    timer.seq.set(0);
                    out.push(timer);
                }
            }
        }
        out
    }
}

/// `start + d`, or a far-future time if that overflows the clock.
pub(crate) fn deadline(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(FAR_FUTURE))
        .unwrap_or(start)
}

/// After a callback timer has run (or panicked): gives the callback back to its cell and
/// re-arms an interval, unless the callback cleared its own timer.
struct Rearm<'a> {
    timers: &'a Timers,
    inner: &'a LoopState,
    timer: &'a Rc<TimerCell>,
    cb: &'a RefCell<Option<Box<dyn FnMut()>>>,
    f: Option<Box<dyn FnMut()>>,
    /// The loop time read before the callback (an interval restarts from it).
    start: Instant,
    /// The due time of the countdown that fired.
    prev_due: Instant,
}

impl Drop for Rearm<'_> {
    /// `listOnTimeout`'s `finally`.
    fn drop(&mut self) {
        let timer = self.timer;
        if timer.on_timeout.get() {
            *self.cb.borrow_mut() = self.f.take();
            if !timer.repeat {
                self.timers.remember_fired(timer);
            }
        }
        // (A callback cleared while it ran is dropped with `self`, outside any borrow.)
        if timer.repeat && !timer.cancelled.get() {
            // `if (timer._repeat && timer._idleTimeout !== -1) insert(timer, ..., start)`.
            let period = timer.duration.get();
            match timer.missed.get() {
                MissedTickBehavior::Skip => self.timers.start(timer, self.start),
                MissedTickBehavior::Burst => {
                    self.timers.start_at(timer, deadline(self.prev_due, period));
                }
                MissedTickBehavior::Delay => self.timers.start(timer, self.inner.update_time()),
            }
        } else if !timer.is_scheduled() {
            // `else if (!timer._idleNext && !timer._idlePrev && !timer._destroyed)`: not
            // refreshed by its own callback, so it is finished.
            timer.dead.set(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now + Duration::from_secs(86_400 * 365));
        assert_eq!(
            deadline(now, Duration::from_millis(5)),
            now + Duration::from_millis(5)
        );
    }

    fn cell(t: &Timers, d: u64, now: Instant) -> Rc<TimerCell> {
        t.new_timer(
            Weak::new(),
            Action::Waker(RefCell::new(None)),
            Duration::from_millis(d),
            false,
            now,
        )
    }

    #[test]
    fn ref_count_tracks_schedule_unref_and_clear() {
        let t = Timers::default();
        let now = Instant::now();
        let a = cell(&t, 5, now);
        let b = cell(&t, 5, now);
        t.start(&a, now);
        t.start(&b, now);
        assert_eq!(t.ref_count(), 2);
        t.set_ref(&a, false);
        assert_eq!(t.ref_count(), 1);
        t.set_ref(&a, false);
        assert_eq!(t.ref_count(), 1);
        assert!(t.clear(&b));
        assert!(
            !t.clear(&b),
            "clearing twice reports that nothing was scheduled"
        );
        assert_eq!(t.ref_count(), 0);
        t.start(&b, now);
        assert!(!b.is_scheduled(), "a cleared timer cannot be re-armed");
        assert_eq!(t.next_expiry(), Some(now + Duration::from_millis(5)));
    }

    #[test]
    fn compaction_keeps_live_entries_in_order() {
        let t = Timers::default();
        let now = Instant::now();
        let timers: Vec<_> = (0..300).map(|_| cell(&t, 7, now)).collect();
        for x in &timers {
            t.start(x, now);
        }
        for x in timers.iter().filter(|x| x.uid % 3 != 0) {
            t.clear(x);
        }
        let extra = cell(&t, 7, now);
        t.start(&extra, now);
        let l = t.lists.borrow();
        let list = &l.lists[l.by_key[&ListKey::Duration(Duration::from_millis(7))]];
        assert_eq!(list.tombstones, 0);
        let uids: Vec<u64> = list.entries.iter().map(|(c, _)| c.uid).collect();
        let mut expected: Vec<u64> = timers
            .iter()
            .map(|x| x.uid)
            .filter(|u| u % 3 == 0)
            .collect();
        expected.push(extra.uid);
        assert_eq!(uids, expected);
    }
    #[test]
    fn clearing_a_list_s_last_referenced_timer_removes_the_list_an_unrefed_one_does_not() {
        // `unenroll`: only a referenced timer's emptied list is deleted.
        let t = Timers::default();
        let now = Instant::now();
        let a = cell(&t, 5, now);
        t.start(&a, now);
        assert!(t.clear(&a));
        assert!(t.lists.borrow().by_key.is_empty());
        let b = cell(&t, 5, now);
        t.start(&b, now);
        t.set_ref(&b, false);
        assert!(t.clear(&b));
        let l = t.lists.borrow();
        let slot = l.by_key[&ListKey::Duration(Duration::from_millis(5))];
        assert!(l.lists[slot].is_empty(), "the empty list stays queued");
    }

    #[test]
    fn clear_of_a_finished_timeout_only_drops_its_callback_and_refresh_rearms_it_silently() {
        let t = Timers::default();
        let now = Instant::now();
        let x = t.new_timer(
            Weak::new(),
            Action::Callback(RefCell::new(Some(Box::new(|| {})))),
            Duration::from_millis(5),
            false,
            now,
        );
        // As `Rearm` leaves a timeout that fired and was not refreshed.
        x.dead.set(true);
        assert!(!t.clear(&x));
        assert!(!x.has_callback() && !x.cancelled.get());
        t.start(&x, now);
        assert!(x.is_scheduled(), "refresh arms a silent timer");
        assert_eq!(t.ref_count(), 1, "which keeps the loop alive");
        assert!(!t.clear(&x), "a timer without a callback ignores clear");
        assert!(x.is_scheduled());
        // A pending timer cleared can never be re-armed.
        let y = cell(&t, 5, now);
        t.start(&y, now);
        assert!(t.clear(&y));
        t.start(&y, now);
        assert!(!y.is_scheduled());
    }
}
