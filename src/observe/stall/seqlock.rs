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

use super::StallReport;
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

    /// Publishes `open` (or "nothing runs") and ends the write begun with `old`.
    #[inline]
    pub(super) fn publish(&self, old: u64, open: Option<&Open>) {
        match open {
            Some(o) => {
                self.number.store(o.number, Ordering::Relaxed);
                self.start_ns.store(o.start_ns, Ordering::Relaxed);
                self.what.store(
                    u64::from(phase_code(o.span.phase)) << 8 | u64::from(kind_code(o.span.kind)),
                    Ordering::Relaxed,
                );
                self.id.store(o.span.id, Ordering::Relaxed);
                let loc = o
                    .span
                    .location
                    .map_or(ptr::null_mut(), |l| ptr::from_ref(l).cast_mut());
                self.location.store(loc, Ordering::Relaxed);
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
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s1 {
            return None;
        }
        // SAFETY: the only stores to `location` are null or a pointer made from a
        // `&'static Location<'static>` (`publish`); an atomic load returns one of those values
        // whole, and a `Location` is immutable, `Sync`, and lives for the whole program.
        let location = unsafe { loc.as_ref() };
        Some(Snapshot {
            word: s1,
            number,
            start_ns,
            span: Span {
                phase: phase_from(what >> 8),
                kind: kind_from(what & 0xff),
                id,
                location,
            },
        })
    }
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
    fn a_racing_write_fails_the_snapshot_check() {
        let shared = Shared::new(Duration::from_millis(1));
        let s = shared.snapshot().unwrap();
        let old = shared.begin_write();
        assert!(shared.snapshot().is_none(), "write in progress");
        shared.publish(old, None);
        assert!(!shared.mark_reported(s.word), "the version moved on");
    }
}
