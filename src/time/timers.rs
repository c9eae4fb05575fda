//! All timers of one loop ([`Timers`]): starting, clearing, refreshing and ref-counting them as
//! Node.js's `insert` and `unenroll` do. The structure is in `entry.rs` and `lists.rs`, the
//! timers phase that fires them in `phase.rs`.
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
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use super::MissedTickBehavior;
use super::deadline::DeadlineFilter;
use super::entry::{Action, TimerCell, deadline};
use super::lists::{COMPACT_MIN_TOMBSTONES, List, TimerLists};
use crate::runtime::LoopState;

/// All timers of one loop.
#[derive(Default)]
pub(crate) struct Timers {
    /// The lists; never borrowed while user code runs.
    pub(super) lists: RefCell<TimerLists>,
    /// Number of scheduled timers that keep the loop alive.
    pub(super) ref_count: Cell<usize>,
    /// Last registration number handed out (0 means "not scheduled").
    pub(super) next_seq: Cell<u64>,
    /// Last timer uid handed out.
    pub(super) next_uid: Cell<u64>,
    /// When the one libuv timer handle Node.js uses for all its timers is due (`None`: stopped).
    /// Set by `insert` when it makes a list that expires before `js_next_expiry`
    /// (`scheduleTimer`), and after each pass by `RunTimers`' `ScheduleTimer`.
    pub(super) uv_due: Cell<Option<Instant>>,
    /// Node's `nextExpiry` (`None` is `Infinity`): the expiry `processTimers` last returned,
    /// lowered by `insert`, never raised by `clear`.
    pub(super) js_next_expiry: Cell<Option<Instant>>,
    /// Fired timeouts whose callback is kept for `refresh`, weakly: a callback that holds its
    /// own handle makes a cycle only the loop's drop can break (`take_all`). Pruned of dead
    /// entries whenever it doubles.
    pub(super) fired: RefCell<Vec<Weak<TimerCell>>>,
    /// Length at which `fired` is next pruned.
    pub(super) fired_prune_at: Cell<usize>,
    /// Tells the timers phase when the handle is surely not due yet, without the clock.
    pub(crate) deadline: DeadlineFilter,
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
            pos: Cell::new(0),
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
                    base: 0,
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
        list.push(timer, seq);
        if list.tombstones >= COMPACT_MIN_TOMBSTONES && list.tombstones * 2 > list.entries.len() {
            list.compact();
        }
    }

    /// Takes `timer` out of its list (`L.remove`, leaving a tombstone). Returns whether it was
    /// scheduled.
    pub(crate) fn unschedule(&self, timer: &TimerCell) -> bool {
        let seq = timer.seq.replace(0);
        if seq == 0 {
            return false;
        }
        if timer.refed.get() {
            self.ref_count.set(self.ref_count.get() - 1);
        }
        let mut l = self.lists.borrow_mut();
        // A scheduled timer's entry is always in the current list of its key: a list is only
        // ever removed when it is empty.
        let released = match l.by_key.get(&timer.list_key()) {
            Some(&slot) => l.lists[slot].release(timer, seq),
            None => None,
        };
        drop(l);
        // The caller holds the timer too, so this is not the last reference; dropped with no
        // borrow held all the same.
        drop(released);
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
                let Some(timer) = timer else { continue };
                if timer.seq.get() == seq {
                    timer.seq.set(0);
                    out.push(timer);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::lists::ListKey;

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
    fn a_cleared_timer_is_let_go_of_at_once_also_after_compactions_and_restarts() {
        let t = Timers::default();
        let now = Instant::now();
        let timers: Vec<_> = (0..300).map(|_| cell(&t, 7, now)).collect();
        for x in &timers {
            t.start(x, now);
            assert_eq!(Rc::strong_count(x), 2, "the list holds a scheduled timer");
        }
        // Clears two of every three (compacting the list on the way, as later starts do),
        // restarts some of the rest (a new entry at the back), then clears every timer.
        for (i, x) in timers.iter().enumerate() {
            if i % 3 != 0 {
                assert!(t.clear(x));
                assert_eq!(Rc::strong_count(x), 1, "timer {i}'s tombstone holds it");
            }
        }
        let late: Vec<_> = (0..100).map(|_| cell(&t, 7, now)).collect();
        for x in &late {
            t.start(x, now);
        }
        for x in timers.iter().step_by(6) {
            t.start(x, now);
        }
        for x in timers.iter().step_by(3).chain(&late) {
            assert!(t.clear(x));
            assert_eq!(Rc::strong_count(x), 1);
        }
        assert_eq!(t.ref_count(), 0);
        assert!(
            t.lists.borrow().by_key.is_empty(),
            "the emptied list is removed"
        );
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
        let uids: Vec<u64> = list
            .entries
            .iter()
            .map(|(c, _)| c.as_ref().unwrap().uid)
            .collect();
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
