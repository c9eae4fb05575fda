//! The timers phase: Node.js's timer lists, driven by the loop.
//!
//! # Implementation
//! Node.js keeps one FIFO list per timer duration and a priority queue of those lists ordered by
//! `(expiry, list id)` (`lib/internal/timers.js`). The timers phase takes the list that expires
//! first and runs **every due timer of that list** before it looks at the next list. When several
//! timers are overdue this differs from a plain "earliest deadline first" order (a 10 ms list whose
//! timers are due at 10 and 14 runs both before an 8 ms timer due at 12), and Node.js is our
//! oracle, so we keep the same structure:
//!
//! - a [`List`] per [`ListKey`]: the duration for `setTimeout`-like timers (appends are in start
//!   order, so each list is sorted by due time), or the timer's own id for timers whose due time
//!   is not "start + duration" (absolute deadlines, burst intervals), which keeps those sorted too;
//! - a binary heap of `(expiry, list id, slot)` entries; an entry is stale once its list was
//!   rescheduled (new id) or removed, and stale entries are skipped when they reach the top;
//! - clearing a timer leaves a tombstone in its list (the entry's `seq` no longer matches the
//!   timer's), skipped when it reaches the head; a list with many tombstones is compacted.
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
    /// Set by `clear`: the timer can never be scheduled again.
    destroyed: Cell<bool>,
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
            .field("destroyed", &self.destroyed.get())
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

    fn list_key(&self) -> ListKey {
        if self.own_list.get() {
            ListKey::Own(self.uid)
        } else {
            ListKey::Duration(self.duration.get())
        }
    }
}

/// One list of timers, sorted by due time.
struct List {
    /// The list's key in `TimerLists::by_key`.
    key: ListKey,
    /// Entries `(timer, seq)`; an entry whose seq differs from the timer's is a tombstone.
    entries: VecDeque<(Rc<TimerCell>, u64)>,
    /// Number of tombstones in `entries`.
    tombstones: usize,
    /// Id of the list's live heap entry (ids are unique and increase).
    id: u64,
}

/// The timer lists and the heap that orders them.
#[derive(Default)]
struct TimerLists {
    /// List slot by key.
    by_key: HashMap<ListKey, usize>,
    /// The lists.
    lists: Slab<List>,
    /// `(expiry, list id, slot)`, earliest first. Stale entries are skipped.
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    /// Next list id.
    next_list_id: u64,
}

impl TimerLists {
    /// Pops stale heap entries and returns the live top `(expiry, slot)`.
    fn top(&mut self) -> Option<(Instant, usize)> {
        while let Some(&Reverse((expiry, id, slot))) = self.heap.peek() {
            match self.lists.get(slot) {
                Some(list) if list.id == id => return Some((expiry, slot)),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Gives `slot` a new heap entry with `expiry` (the old one becomes stale).
    fn reschedule(&mut self, slot: usize, expiry: Instant) {
        let id = self.next_list_id;
        self.next_list_id += 1;
        self.lists[slot].id = id;
        self.heap.push(Reverse((expiry, id, slot)));
    }
}

/// What the timers phase found at the head of a list.
enum Head {
    /// A due timer, removed from the list.
    Due(Rc<TimerCell>),
    /// The head is not due yet; the list was rescheduled.
    NotDue,
    /// The list is empty and was removed.
    Empty,
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
            destroyed: Cell::new(false),
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
    /// its duration's list (as Node.js's `insert`).
    pub(crate) fn start(&self, timer: &Rc<TimerCell>, start: Instant) {
        if timer.destroyed.get() {
            return;
        }
        let own = timer.missed.get() == MissedTickBehavior::Burst && timer.repeat;
        self.schedule(timer, deadline(start, timer.duration.get()), own);
    }

    /// Schedules `timer` at the absolute `due` time, in a list of its own.
    pub(crate) fn start_at(&self, timer: &Rc<TimerCell>, due: Instant) {
        if timer.destroyed.get() {
            return;
        }
        self.schedule(timer, due, true);
    }

    fn schedule(&self, timer: &Rc<TimerCell>, due: Instant, own_list: bool) {
        // Unschedule under the old key, so the tombstone is counted in the list that holds it.
        self.unschedule(timer);
        timer.own_list.set(own_list);
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
                let slot = l.lists.insert(List {
                    key,
                    entries: VecDeque::new(),
                    tombstones: 0,
                    id: 0,
                });
                l.by_key.insert(key, slot);
                l.reschedule(slot, due);
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

    /// Takes `timer` out of its list (leaving a tombstone). Returns whether it was scheduled.
    pub(crate) fn unschedule(&self, timer: &TimerCell) -> bool {
        if timer.seq.get() == 0 {
            return false;
        }
        timer.seq.set(0);
        if timer.refed.get() {
            self.ref_count.set(self.ref_count.get() - 1);
        }
        let mut l = self.lists.borrow_mut();
        if let Some(&slot) = l.by_key.get(&timer.list_key()) {
            l.lists[slot].tombstones += 1;
        }
        true
    }

    /// Clears `timer` for good. Returns whether it was still scheduled.
    pub(crate) fn clear(&self, timer: &TimerCell) -> bool {
        let was = self.unschedule(timer);
        timer.destroyed.set(true);
        // Dropping the callback breaks the cycle of a callback that holds its own handle. If the
        // callback is running right now it is not in the cell, and the firing code drops it.
        let taken = match &timer.action {
            Action::Callback(cb) => cb.try_borrow_mut().ok().and_then(|mut c| c.take()),
            Action::Waker(_) => None,
        };
        drop(taken);
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

    /// The earliest expiry of any list (possibly early, never late), or `None` with no timers.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.lists.borrow_mut().top().map(|(expiry, _)| expiry)
    }

    /// Runs every timer due at `now`, list by list (Node.js's `processTimers`), draining the
    /// nextTick and microtask queues after each callback.
    pub(crate) fn run_due(&self, inner: &LoopState, now: Instant) {
        loop {
            let slot = {
                let mut l = self.lists.borrow_mut();
                match l.top() {
                    Some((expiry, slot)) if expiry <= now => slot,
                    _ => return,
                }
            };
            // Node.js's `listOnTimeout`: the list keeps its heap entry while it runs, so a panic
            // in a callback leaves it where the next timers phase finds it.
            while let Head::Due(timer) = self.pop_due(slot, now) {
                self.fire(inner, &timer, now);
                inner.drain_queues();
            }
        }
    }

    /// Removes and returns the head of list `slot` if it is due, skipping tombstones.
    fn pop_due(&self, slot: usize, now: Instant) -> Head {
        let mut guard = self.lists.borrow_mut();
        let l = &mut *guard;
        let list = &mut l.lists[slot];
        loop {
            let Some((timer, seq)) = list.entries.front() else {
                let key = list.key;
                l.by_key.remove(&key);
                l.lists.remove(slot);
                return Head::Empty;
            };
            if timer.seq.get() != *seq {
                list.entries.pop_front();
                list.tombstones = list.tombstones.saturating_sub(1);
                continue;
            }
            let due = timer.due.get();
            if due > now {
                l.reschedule(slot, due);
                return Head::NotDue;
            }
            let (timer, _) = list.entries.pop_front().expect("front exists");
            return Head::Due(timer);
        }
    }

    /// Fires one due timer (already taken out of its list).
    fn fire(&self, inner: &LoopState, timer: &Rc<TimerCell>, now: Instant) {
        timer.seq.set(0);
        if timer.refed.get() {
            self.ref_count.set(self.ref_count.get() - 1);
        }
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
                }
                let waker = w.borrow_mut().take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Action::Callback(cb) => {
                // Node.js reads the clock before an interval's callback and restarts the
                // interval from that time.
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
    fn drop(&mut self) {
        let timer = self.timer;
        if timer.destroyed.get() {
            return;
        }
        *self.cb.borrow_mut() = self.f.take();
        if !timer.repeat {
            self.timers.remember_fired(timer);
        }
        if timer.repeat {
            let period = timer.duration.get();
            match timer.missed.get() {
                MissedTickBehavior::Skip => self.timers.start(timer, self.start),
                MissedTickBehavior::Burst => {
                    self.timers.start_at(timer, deadline(self.prev_due, period));
                }
                MissedTickBehavior::Delay => self.timers.start(timer, self.inner.update_time()),
            }
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
}
