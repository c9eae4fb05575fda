//! Node.js's timer lists: one list per duration (or per timer, for timers whose due time is
//! not "start + duration"), and the heap that orders the lists by expiry (`timerListMap` and
//! `timerListQueue` in `lib/internal/timers.js`). See `timers.rs` for how they are used.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::time::{Duration, Instant};

use slab::Slab;

use super::entry::TimerCell;

/// Lists with at least this many tombstones, and more tombstones than live entries, are compacted.
pub(super) const COMPACT_MIN_TOMBSTONES: usize = 64;

/// Key of a timer list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum ListKey {
    /// `start + duration` timers of this duration (Node.js's per-duration lists).
    Duration(Duration),
    /// A timer with its own list (absolute deadline or burst interval), by timer uid.
    Own(u64),
}

/// The hasher of [`TimerLists::by_key`]: rustc's `FxHasher` (a rotate, xor and multiply per
/// word). `std`'s default, SipHash-1-3, cost about 300 instructions per lookup here, and a
/// sleep with its own list (every `sleep_until`, so every hyper `header_read_timeout`) makes
/// three lookups: a tenth of a whole hyper request's user-space instructions (callgrind, see
/// docs/benchmarks.md). The keys are durations and timer ids the program chose, not input an
/// attacker picks to collide, so SipHash's flooding resistance buys nothing here.
#[derive(Default, Clone, Copy)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// One list of timers, sorted by due time (Node's `TimersList`).
pub(super) struct List {
    /// The list's key in `TimerLists::by_key`.
    pub(super) key: ListKey,
    /// Identity of this list, never reused (slab slots are): Node compares list objects
    /// (`list === timerListMap[msecs]`), and a removed list's slot may hold a new list.
    pub(super) uid: u64,
    /// Entries `(timer, seq)`; an entry whose seq differs from the timer's is a tombstone, and
    /// so is one whose timer is `None`: `unschedule` lets go of the timer at once (so a
    /// cleared timer is freed when its owner drops it, not when its tombstone reaches the
    /// head or a compaction, which freed them in batches of 64 and more).
    pub(super) entries: VecDeque<(Option<Rc<TimerCell>>, u64)>,
    /// Number of tombstones in `entries`.
    pub(super) tombstones: usize,
    /// Index of `entries[0]` counted from the first entry the list ever had (see
    /// `TimerCell::pos`).
    pub(super) base: u64,
    /// Id of the list's live heap entry (ids are unique and increase).
    pub(super) id: u64,
}

impl List {
    /// Whether `entry` is a tombstone.
    pub(super) fn is_tombstone(entry: &(Option<Rc<TimerCell>>, u64)) -> bool {
        entry.0.as_ref().is_none_or(|t| t.seq.get() != entry.1)
    }

    /// Appends a live entry for `timer`, scheduled as `seq`.
    pub(super) fn push(&mut self, timer: &Rc<TimerCell>, seq: u64) {
        timer.pos.set(self.base + self.entries.len() as u64);
        self.entries.push_back((Some(timer.clone()), seq));
    }

    /// Removes the front entry.
    pub(super) fn pop_front(&mut self) {
        if self.entries.pop_front().is_some() {
            self.base += 1;
        }
    }

    /// Drops the tombstones, keeping the live entries in order (and their `pos` true).
    pub(super) fn compact(&mut self) {
        self.entries.retain(|e| !Self::is_tombstone(e));
        self.tombstones = 0;
        for (i, (t, _)) in self.entries.iter().enumerate() {
            if let Some(t) = t {
                t.pos.set(self.base + i as u64);
            }
        }
    }

    /// Turns the live entry of `timer`, scheduled as `seq`, into a tombstone and returns the
    /// list's reference to the timer (to be dropped with no borrow held).
    pub(super) fn release(&mut self, timer: &TimerCell, seq: u64) -> Option<Rc<TimerCell>> {
        self.tombstones += 1;
        let i = usize::try_from(timer.pos.get().checked_sub(self.base)?).ok()?;
        let entry = self.entries.get_mut(i)?;
        if entry.1 != seq || !entry.0.as_ref().is_some_and(|t| std::ptr::eq(&**t, timer)) {
            return None;
        }
        entry.0.take()
    }

    /// Whether the list holds no scheduled timer (`L.isEmpty`).
    pub(super) fn is_empty(&self) -> bool {
        self.entries.len() == self.tombstones
    }
}

/// The timer lists and the heap that orders them.
#[derive(Default)]
pub(super) struct TimerLists {
    /// List slot by key (Node's `timerListMap`).
    pub(super) by_key: HashMap<ListKey, usize, BuildHasherDefault<KeyHasher>>,
    /// The lists.
    pub(super) lists: Slab<List>,
    /// `(expiry, list id, slot)`, earliest first (Node's `timerListQueue`). Stale entries are
    /// skipped.
    pub(super) heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    /// Next list id (Node's `timerListId`).
    pub(super) next_list_id: u64,
}

impl TimerLists {
    /// Pops stale heap entries and returns the live top `(expiry, slot, list uid)`.
    pub(super) fn top(&mut self) -> Option<(Instant, usize, u64)> {
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

    pub(super) fn new_id(&mut self) -> u64 {
        let id = self.next_list_id;
        self.next_list_id += 1;
        id
    }

    /// Gives `slot` a new heap entry with `expiry` (the old one becomes stale): Node's
    /// `list.expiry = ...; list.id = timerListId++; timerListQueue.percolateDown(1)`.
    pub(super) fn reschedule(&mut self, slot: usize, expiry: Instant) {
        let id = self.new_id();
        self.lists[slot].id = id;
        self.heap.push(Reverse((expiry, id, slot)));
    }

    /// The list at `slot` if it is still the list `uid`.
    pub(super) fn get_mut(&mut self, slot: usize, uid: u64) -> Option<&mut List> {
        self.lists.get_mut(slot).filter(|l| l.uid == uid)
    }

    /// Removes the list at `slot` from the map and the queue (its heap entry goes stale).
    pub(super) fn remove(&mut self, slot: usize) {
        let list = self.lists.remove(slot);
        self.by_key.remove(&list.key);
    }
}
