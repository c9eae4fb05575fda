//! The span the loop thread publishes for the watchdog: a seqlock over a few atomics.
//!
//! The loop thread is the only writer and never waits: a write starts with a `fetch_add` of
//! [`WRITING`] on the word and ends by storing the next version (Boehm's seqlock writer). The
//! watchdog reads a consistent copy or, if it raced a write, `None` (the loop was clearly not
//! stuck then). The watchdog's only write is [`Shared::mark_reported`], a compare-and-swap on
//! the exact word it read, so it succeeds only while the span it saw still runs.

use std::panic::Location;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use super::{DrainStall, Requeuer, StallReport};
use crate::observe::{Kind, Phase, Span};

/// Seqlock word: a write is in progress.
const WRITING: u64 = 1;
/// Seqlock word: the published span has been reported as a stall.
pub(super) const REPORTED: u64 = 2;
/// Seqlock word: one write's step of the version counter (above the two flag bits).
const VERSION: u64 = 4;

/// What the loop thread publishes and the watchdog reads.
pub(super) struct Shared {
    /// Time origin of `start_ns`.
    epoch: Instant,
    /// Reports spans running longer than this.
    pub(super) threshold: Duration,
    /// The seqlock word: bit 0 [`WRITING`], bit 1 [`REPORTED`], a version above. Written with
    /// `fetch_add` by the loop thread; the watchdog only ever sets `REPORTED` by compare-and-swap.
    seq: AtomicU64,
    /// Number of the running span, 0 when none runs.
    number: AtomicU64,
    /// When it started, in ns since `epoch`.
    start_ns: AtomicU64,
    /// `phase << 8 | kind` (see [`phase_code`] and [`kind_code`]).
    what: AtomicU64,
    /// The span's id.
    id: AtomicU64,
    /// Its spawn location; null or a `&'static Location<'static>`.
    location: AtomicPtr<Location<'static>>,
    /// The running drain: number, start (ns since `epoch`) and jobs so far; number 0 when none.
    drain_number: AtomicU64,
    drain_start_ns: AtomicU64,
    drain_jobs: AtomicU64,
    /// The drain's two busiest jobs: `what` (as above, 0 for none), id, location, jobs run.
    requeuers: [[AtomicU64; 3]; 2],
    requeuer_locations: [AtomicPtr<Location<'static>>; 2],
    /// Outside the seqlock: `number << 1` of the running drain, `| 1` once the watchdog has
    /// reported it (by compare-and-swap, so only while that drain still runs); 0 when none.
    pub(super) drain_word: AtomicU64,
    /// End reports of reported stalls, for the watchdog to deliver.
    pub(super) ended: Mutex<Vec<StallReport>>,
    /// Set to stop the watchdog.
    pub(super) stop: AtomicBool,
}

impl Shared {
    pub(super) fn new(threshold: Duration) -> Self {
        Shared {
            epoch: Instant::now(),
            threshold,
            seq: AtomicU64::new(0),
            number: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            what: AtomicU64::new(0),
            id: AtomicU64::new(0),
            location: AtomicPtr::new(ptr::null_mut()),
            drain_number: AtomicU64::new(0),
            drain_start_ns: AtomicU64::new(0),
            drain_jobs: AtomicU64::new(0),
            requeuers: Default::default(),
            requeuer_locations: Default::default(),
            drain_word: AtomicU64::new(0),
            ended: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        }
    }

    pub(super) fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Starts a write (loop thread only). Returns the word before it.
    #[inline]
    pub(super) fn begin_write(&self) -> u64 {
        let old = self.seq.fetch_add(WRITING, Ordering::Relaxed);
        debug_assert_eq!(old & WRITING, 0, "one writer at a time");
        // Orders the odd word before the data stores (Boehm's seqlock writer).
        fence(Ordering::Release);
        old
    }

    /// Publishes `open` (or "nothing runs") and `drain` (or "no drain runs"), and ends the
    /// write begun with `old`.
    #[inline]
    pub(super) fn publish(&self, old: u64, open: Option<&Open>, drain: Option<&OpenDrain>) {
        match drain {
            Some(d) => {
                self.drain_number.store(d.number, Ordering::Relaxed);
                self.drain_start_ns.store(d.start_ns, Ordering::Relaxed);
                self.drain_jobs.store(d.jobs, Ordering::Relaxed);
                for (i, r) in d.requeuers.iter().enumerate() {
                    let (what, id, jobs, loc) = match r {
                        Some(r) => (
                            1 << 16 | what_code(&r.span),
                            r.span.id,
                            r.jobs,
                            location_ptr(r.span.location),
                        ),
                        None => (0, 0, 0, ptr::null_mut()),
                    };
                    self.requeuers[i][0].store(what, Ordering::Relaxed);
                    self.requeuers[i][1].store(id, Ordering::Relaxed);
                    self.requeuers[i][2].store(jobs, Ordering::Relaxed);
                    self.requeuer_locations[i].store(loc, Ordering::Relaxed);
                }
            }
            None => self.drain_number.store(0, Ordering::Relaxed),
        }
        match open {
            Some(o) => {
                self.number.store(o.number, Ordering::Relaxed);
                self.start_ns.store(o.start_ns, Ordering::Relaxed);
                self.what.store(what_code(&o.span), Ordering::Relaxed);
                self.id.store(o.span.id, Ordering::Relaxed);
                self.location
                    .store(location_ptr(o.span.location), Ordering::Relaxed);
            }
            None => self.number.store(0, Ordering::Relaxed),
        }
        let reported = if open.is_some_and(|o| o.reported) {
            REPORTED
        } else {
            0
        };
        let version = (old & !(WRITING | REPORTED)).wrapping_add(VERSION);
        self.seq.store(version | reported, Ordering::Release);
    }

    /// Sets the reported bit if the seqlock word is still `word` (the watchdog's snapshot):
    /// true only if the loop has not written since, that is, the span it saw still runs.
    pub(super) fn mark_reported(&self, word: u64) -> bool {
        self.seq
            .compare_exchange(word, word | REPORTED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Marks drain `number` reported if it is still the running, unreported drain.
    pub(super) fn mark_drain_reported(&self, number: u64) -> bool {
        self.drain_word
            .compare_exchange(
                number << 1,
                number << 1 | 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// A consistent copy of what is published, or `None` if a write was in progress or raced.
    pub(super) fn snapshot(&self) -> Option<Snapshot> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & WRITING != 0 {
            return None;
        }
        let number = self.number.load(Ordering::Relaxed);
        let start_ns = self.start_ns.load(Ordering::Relaxed);
        let what = self.what.load(Ordering::Relaxed);
        let id = self.id.load(Ordering::Relaxed);
        let loc = self.location.load(Ordering::Relaxed);
        let drain_number = self.drain_number.load(Ordering::Relaxed);
        let drain_start_ns = self.drain_start_ns.load(Ordering::Relaxed);
        let drain_jobs = self.drain_jobs.load(Ordering::Relaxed);
        let mut raw = [(0u64, 0u64, 0u64, ptr::null_mut()); 2];
        for (i, r) in raw.iter_mut().enumerate() {
            *r = (
                self.requeuers[i][0].load(Ordering::Relaxed),
                self.requeuers[i][1].load(Ordering::Relaxed),
                self.requeuers[i][2].load(Ordering::Relaxed),
                self.requeuer_locations[i].load(Ordering::Relaxed),
            );
        }
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s1 {
            return None;
        }
        // SAFETY: the only stores to `location` are null or a pointer made from a
        // `&'static Location<'static>` (`publish`); an atomic load returns one of those values
        // whole, and a `Location` is immutable, `Sync`, and lives for the whole program.
        let location = unsafe { loc.as_ref() };
        let drain = (drain_number != 0).then(|| {
            let requeuers = raw.map(|(what, id, jobs, loc)| {
                (what != 0).then(|| Requeuer {
                    // SAFETY: as for `location` just above: `requeuer_locations` only ever
                    // holds null or a pointer made from a `&'static Location<'static>`.
                    span: span_from(what, id, unsafe { loc.as_ref() }),
                    jobs,
                })
            });
            SnapDrain {
                number: drain_number,
                start_ns: drain_start_ns,
                stall: DrainStall {
                    jobs: drain_jobs,
                    requeuers,
                },
            }
        });
        Some(Snapshot {
            word: s1,
            number,
            start_ns,
            span: span_from(what, id, location),
            drain,
        })
    }
}

/// `phase << 8 | kind` of a span (see [`phase_code`] and [`kind_code`]).
fn what_code(span: &Span) -> u64 {
    u64::from(phase_code(span.phase)) << 8 | u64::from(kind_code(span.kind))
}

/// The span coded by [`what_code`] (bits above 16 ignored), `id` and `location`.
fn span_from(what: u64, id: u64, location: Option<&'static Location<'static>>) -> Span {
    Span {
        phase: phase_from((what >> 8) & 0xff),
        kind: kind_from(what & 0xff),
        id,
        location,
    }
}

/// A location as the pointer stored in the atomics (null for none).
fn location_ptr(l: Option<&'static Location<'static>>) -> *mut Location<'static> {
    l.map_or(ptr::null_mut(), |l| ptr::from_ref(l).cast_mut())
}

/// A consistent copy of the published span.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The seqlock word it was read under.
    pub(super) word: u64,
    /// The span's number; 0 when nothing runs.
    pub(super) number: u64,
    /// Its start, in ns since the epoch.
    pub(super) start_ns: u64,
    /// The span.
    pub(super) span: Span,
    /// The drain running, if one is.
    pub(super) drain: Option<SnapDrain>,
}

/// A consistent copy of the published drain.
#[derive(Debug)]
pub(super) struct SnapDrain {
    pub(super) number: u64,
    pub(super) start_ns: u64,
    pub(super) stall: DrainStall,
}

/// A drain that has begun and not ended, on the loop thread.
#[derive(Debug)]
pub(super) struct OpenDrain {
    pub(super) number: u64,
    pub(super) start_ns: u64,
    /// Jobs (spans) run so far.
    pub(super) jobs: u64,
    /// The two jobs that ran most, by the Misra-Gries summary (`count`).
    pub(super) requeuers: [Option<Requeuer>; 2],
}

impl OpenDrain {
    /// Counts one more job, `span`. Keeps the two busiest with the Misra-Gries summary: a job
    /// not kept takes a free slot, or else lowers both counts by one (a slot reaching zero is
    /// freed). So counts are exact while at most two distinct jobs run (a ping-pong, a chain),
    /// and otherwise short by at most a third of the drain's jobs; a job that ran more than a
    /// third of the time is always kept, and one-off jobs never push out a frequent one.
    pub(super) fn count(&mut self, span: &Span) {
        self.jobs += 1;
        let same = |r: &Requeuer| {
            r.span.kind == span.kind
                && r.span.id == span.id
                && r.span.location.map(ptr::from_ref) == span.location.map(ptr::from_ref)
        };
        for r in self.requeuers.iter_mut().flatten() {
            if same(r) {
                r.jobs += 1;
                return;
            }
        }
        if let Some(free) = self.requeuers.iter_mut().find(|r| r.is_none()) {
            *free = Some(Requeuer {
                span: *span,
                jobs: 1,
            });
            return;
        }
        for slot in &mut self.requeuers {
            if let Some(r) = slot {
                r.jobs -= 1;
                if r.jobs == 0 {
                    *slot = None;
                }
            }
        }
    }

    /// What a report says about the drain: its jobs and its busiest jobs, busiest first.
    pub(super) fn stall(&self) -> DrainStall {
        let mut requeuers = self.requeuers;
        if let [Some(a), Some(b)] = &requeuers {
            if b.jobs > a.jobs {
                requeuers.swap(0, 1);
            }
        }
        DrainStall {
            jobs: self.jobs,
            requeuers,
        }
    }
}

/// A span that has started and not ended, on the loop thread.
#[derive(Debug)]
pub(super) struct Open {
    pub(super) number: u64,
    pub(super) start_ns: u64,
    pub(super) span: Span,
    /// Whether the watchdog reported it (learnt when a nested span's write began).
    pub(super) reported: bool,
}

// The codes are the enums' discriminants, which are their indexes in `Phase::ALL`/`Kind::ALL`.
pub(super) fn phase_code(p: Phase) -> u8 {
    p as u8
}

pub(super) fn phase_from(c: u64) -> Phase {
    from_code(&Phase::ALL, c)
}

pub(super) fn kind_code(k: Kind) -> u8 {
    k as u8
}

pub(super) fn kind_from(c: u64) -> Kind {
    from_code(&Kind::ALL, c)
}

/// The value coded `c` (its index in `all`); the first one for an unknown code.
pub(super) fn from_code<T: Copy>(all: &[T], c: u64) -> T {
    usize::try_from(c)
        .ok()
        .and_then(|i| all.get(i))
        .copied()
        .unwrap_or(all[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for p in Phase::ALL {
            assert_eq!(phase_from(u64::from(phase_code(p))), p);
        }
        for k in Kind::ALL {
            assert_eq!(kind_from(u64::from(kind_code(k))), k);
        }
    }

    #[test]
    fn the_drain_summary_keeps_the_two_jobs_that_keep_coming_back() {
        let task = |id| Span {
            phase: Phase::Microtask,
            kind: Kind::Task,
            id,
            location: None,
        };
        let mut d = OpenDrain {
            number: 1,
            start_ns: 0,
            jobs: 0,
            requeuers: [None, None],
        };
        for i in 0..1000 {
            d.count(&task(1 + i % 2));
            if i % 100 == 0 {
                d.count(&task(100 + i)); // a one-off job now and then
            }
        }
        let s = d.stall();
        assert_eq!(s.jobs, 1010);
        let ids: Vec<_> = s.requeuers.iter().flatten().map(|r| r.span.id).collect();
        assert!(ids == [1, 2] || ids == [2, 1], "{s:?}");
        for r in s.requeuers.iter().flatten() {
            assert!((490..=500).contains(&r.jobs), "a lower bound, close: {s:?}");
        }
    }

    #[test]
    fn a_racing_write_fails_the_snapshot_check() {
        let shared = Shared::new(Duration::from_millis(1));
        let s = shared.snapshot().unwrap();
        let old = shared.begin_write();
        assert!(shared.snapshot().is_none(), "write in progress");
        shared.publish(old, None, None);
        assert!(!shared.mark_reported(s.word), "the version moved on");
    }
}
