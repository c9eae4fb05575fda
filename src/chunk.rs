//! Cooperative chunking: how a CPU-bound loop decides when to hand control back to the event loop.
//!
//! (Over 400 lines: the strategies share one countdown and one decision point, `decide`, on
//! the per-unit hot path, so they stay together; the share and retune formulas are small.)
//!
//! A [`Chunker`] is called once per unit of work (`chunker.tick().await`). It counts the units
//! and, when its [`Strategy`] says the current chunk is long enough, yields to the loop with
//! [`yield_now`], resuming in the check phase as `setImmediate` would. Between
//! two chunks the loop runs its timers, I/O and other tasks.
//!
//! # Clock reads are amortised
//! `Slice` must know how long the chunk has run, but reading the clock on every unit would cost
//! as much as small units themselves. It reads it every `k` units, and after each chunk re-tunes
//! `k` from the measured speed so that a slice takes about [`CLOCK_READS_PER_SLICE`] reads.
//! `Adaptive` reads the clock at the start and end of each chunk only, and re-tunes its batch
//! size so that a chunk lasts about its target. [`Chunker::clock_reads`] counts the reads, so
//! tests can check the amortisation.
//!
//! # Chunks end when a timer falls due
//! Under Node.js's interval semantics a tick that runs late pushes every later tick back (the
//! next one is due a period after the late one ran), so a chunk that overruns a timer's due time
//! costs ticks for good. `Slice` and `Adaptive` therefore ask the loop, when a chunk starts, when
//! its next timer is due, and end the chunk then if that comes before the end of the slice:
//! `Slice` notices at its next clock read, `Adaptive` sizes the batch from the speed it measured
//! in the previous chunk (aiming a little early: an early yield costs one loop iteration, a late
//! one costs lateness on every later tick).
//!
//! # Holding a share of the loop
//! A fixed slice is a fixed share only while the loop's other work between two chunks is short.
//! Under an I/O flood, each gap between chunks serves hundreds of callbacks, and a 500 µs slice
//! after every multi-millisecond gap leaves the job a few percent of the loop. `Share` measures
//! the gap (from the end of one chunk to the start of the next) and sizes the next chunk so
//! that `chunk / (chunk + gap)` is the share asked for, never below its `slice` nor above
//! [`MAX_SHARE_SLICES`] slices, with `Slice`'s rules otherwise (amortised clock reads, ending
//! when a timer falls due). The price is latency: a request arriving during a chunk waits for
//! it, so with a share of one half the loop's other work waits about as long as it itself took.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::yield_now;

/// About this many clock reads per `Slice` slice once `k` is tuned (so a timer falling due is
/// noticed within about 1/32 of the slice).
pub const CLOCK_READS_PER_SLICE: u64 = 32;

/// `Slice` reads the clock at most once per this many units.
const MIN_UNITS_PER_READ: u64 = 8;

/// The longest `Share` chunk, in slices: bounds the latency a share adds when the gaps grow
/// large (a gap that long is the loop being overloaded, not the job being starved).
pub const MAX_SHARE_SLICES: u32 = 64;

/// `Adaptive` aims chunk ends at this fraction of the time left before the next timer is due.
const AIM_EARLY: f64 = 0.97;

/// When a chunked job yields to the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Yields after every unit of work (what wrapping each step in `setImmediate` does).
    Every,
    /// Yields after every `n` units.
    Batch(u32),
    /// Yields after roughly this much work, measured on the clock (read every `k` units).
    Slice(Duration),
    /// Tunes its batch size while it runs so each chunk lasts about `target`.
    Adaptive {
        /// The chunk duration to aim for.
        target: Duration,
    },
    /// Holds about `percent` % of the loop's time: like `Slice`, but each chunk lasts
    /// `gap * percent / (100 - percent)`, where `gap` is the time the loop spent elsewhere since
    /// the previous chunk, bounded to `slice ..= MAX_SHARE_SLICES * slice` (see the module docs).
    Share {
        /// The share of the loop's time to hold, 1..=99.
        percent: u8,
        /// The shortest chunk (the chunk when the loop has little else to do).
        slice: Duration,
    },
}

impl Strategy {
    /// The short name used on command lines and in reports (`every`, `batch`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Every => "every",
            Strategy::Batch(_) => "batch",
            Strategy::Slice(_) => "slice",
            Strategy::Adaptive { .. } => "adaptive",
            Strategy::Share { .. } => "share",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Batch(n) => write!(f, "batch({n})"),
            Strategy::Slice(d) => write!(f, "slice({}us)", d.as_micros()),
            Strategy::Adaptive { target } => write!(f, "adaptive({}us)", target.as_micros()),
            Strategy::Share { percent, slice } => {
                write!(f, "share({percent}%,{}us)", slice.as_micros())
            }
            other => f.write_str(other.name()),
        }
    }
}

/// Observes chunk boundaries (used by the tick probe). Called on the loop thread.
pub trait ChunkObserver {
    /// A chunk ends: the job is about to yield.
    fn chunk_end(&self);
    /// A chunk starts: the job resumed after yielding (or started).
    fn chunk_start(&self);
}

/// Decides when a CPU-bound loop yields to the event loop. See the module docs.
///
/// ```
/// use executor::chunk::{Chunker, Strategy};
/// let sum = executor::block_on(async {
///     let mut chunker = Chunker::new(Strategy::Batch(100));
///     let mut sum = 0u64;
///     for i in 0..1_000u64 {
///         sum += i;
///         chunker.tick().await; // yields to the loop every 100 iterations
///     }
///     assert_eq!(chunker.chunks(), 10);
///     sum
/// });
/// assert_eq!(sum, 499_500);
/// ```
pub struct Chunker {
    /// The strategy.
    strategy: Strategy,
    /// Units left before the next decision (yield or not, read the clock or not); >= 1.
    /// The only thing touched per unit of work: one decrement and one branch.
    countdown: u64,
    /// What `countdown` was last set to.
    stride: u64,
    /// Units of the current chunk, counted up to the last decision.
    in_chunk: u64,
    /// Units in the current chunk (`Batch`, `Adaptive`) or between clock reads (`Slice`); >= 1.
    batch: u64,
    /// `Adaptive`: units per chunk of about `target` at the measured speed; >= 1.
    target_batch: u64,
    /// `Slice`, `Adaptive`: nanoseconds per unit measured in the last chunk.
    ns_per_unit: Option<f64>,
    /// `Slice`, `Adaptive`: when the loop's next timer was due as the chunk started.
    timer_due: Option<Instant>,
    /// When the current chunk started (`Slice`, `Adaptive`, `Share`).
    chunk_start: Instant,
    /// `Share`: when the last chunk ended (its last clock read), if it ended by its clock.
    chunk_end: Option<Instant>,
    /// `Slice`: its slice; `Share`: the current chunk's length, from the last gap.
    slice: Duration,
    /// Clock reads so far.
    clock_reads: Cell<u64>,
    /// Chunks completed (yields) so far.
    chunks: u64,
    /// Units counted so far, up to the last decision.
    units_done: u64,
    /// Told about chunk boundaries, if attached.
    observer: Option<Rc<dyn ChunkObserver>>,
    /// `Every` and `Batch`: every chunk is `stride` units, decided without the clock (their
    /// decision and the next chunk's start are then a few additions, inlined).
    fixed: bool,
}

impl fmt::Debug for Chunker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunker")
            .field("strategy", &self.strategy)
            .field("batch", &self.batch)
            .field("chunks", &self.chunks)
            .field("units", &self.units())
            .field("clock_reads", &self.clock_reads.get())
            .finish()
    }
}

impl Chunker {
    /// A chunker for `strategy`.
    ///
    /// # Panics
    /// If `Batch(0)`, a zero `Slice`, `Adaptive` target or `Share` slice, or a `Share` percent
    /// outside 1..=99.
    pub fn new(strategy: Strategy) -> Self {
        if let Strategy::Share { percent, .. } = strategy {
            assert!(
                (1..=99).contains(&percent),
                "Strategy::Share needs a percent in 1..=99, got {percent}"
            );
        }
        let batch = match strategy {
            Strategy::Batch(n) => {
                assert!(n > 0, "Strategy::Batch needs a batch size of at least 1");
                u64::from(n)
            }
            Strategy::Slice(d)
            | Strategy::Adaptive { target: d }
            | Strategy::Share { slice: d, .. } => {
                assert!(
                    !d.is_zero(),
                    "Strategy::{strategy:?} needs a non-zero duration"
                );
                // Start small; the first chunk tunes it.
                16
            }
            _ => 1,
        };
        // A placeholder until a strategy that measures time starts its first chunk: the loop
        // time when there is a loop (no clock read), else the clock (counted).
        let (chunk_start, reads) =
            match crate::runtime::context::try_with_current(|inner| inner.loop_time()) {
                Some(t) => (t, 0),
                None => (Instant::now(), 1),
            };
        let mut c = Chunker {
            strategy,
            countdown: 1,
            stride: 1,
            in_chunk: 0,
            batch,
            target_batch: batch,
            ns_per_unit: None,
            timer_due: None,
            chunk_start,
            chunk_end: None,
            slice: match strategy {
                Strategy::Slice(d) | Strategy::Share { slice: d, .. } => d,
                _ => Duration::ZERO,
            },
            clock_reads: Cell::new(reads),
            chunks: 0,
            units_done: 0,
            observer: None,
            fixed: matches!(strategy, Strategy::Every | Strategy::Batch(_)),
        };
        c.begin_chunk_by_strategy();
        c
    }

    /// Reports chunk boundaries to `observer` (the tick probe uses this).
    pub fn set_observer(&mut self, observer: Rc<dyn ChunkObserver>) {
        observer.chunk_start();
        self.observer = Some(observer);
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Number of chunks completed so far (times the chunker yielded).
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Number of units of work counted so far.
    pub fn units(&self) -> u64 {
        self.units_done + (self.stride - self.countdown)
    }

    /// Number of clock reads made so far.
    pub fn clock_reads(&self) -> u64 {
        self.clock_reads.get()
    }

    /// The batch size (`Batch`; for `Adaptive` the tuned size of a full chunk) or the
    /// clock-read stride (`Slice`).
    pub fn batch(&self) -> u64 {
        match self.strategy {
            Strategy::Adaptive { .. } => self.target_batch,
            _ => self.batch,
        }
    }

    /// Starts a chunk: reads the clock (once) and, for `Slice` and `Adaptive`, looks up when
    /// the loop's next timer is due.
    #[inline]
    fn begin_chunk(&mut self) {
        if self.fixed {
            // `stride` is the batch already (set by `new`); so is `countdown`,
            // unless the chunk was ended early by an explicit `yield_now`.
            self.countdown = self.stride;
            return;
        }
        self.begin_chunk_by_strategy();
    }

    /// [`begin_chunk`](Self::begin_chunk) from the strategy (every strategy; the first chunk of a
    /// fixed one sets its stride).
    #[inline(never)]
    fn begin_chunk_by_strategy(&mut self) {
        let stride = match self.strategy {
            Strategy::Every => 1,
            Strategy::Batch(n) => u64::from(n),
            Strategy::Slice(_) | Strategy::Adaptive { .. } | Strategy::Share { .. } => 0,
        };
        if stride != 0 {
            self.set_countdown(stride);
            return;
        }
        self.chunk_start = self.now();
        // (After a chunk ended by an explicit `yield_now`, the gap is unknown: keep the length.)
        if let (Strategy::Share { percent, slice }, Some(end)) =
            (self.strategy, self.chunk_end.take())
        {
            self.slice = share_slice(
                self.chunk_start.saturating_duration_since(end),
                percent,
                slice,
            );
        }
        self.timer_due =
            crate::runtime::context::try_with_current(|inner| inner.timers.next_expiry()).flatten();
        // Units until the timer is due, at the speed measured in the last chunk.
        let to_due = match (self.timer_due, self.ns_per_unit) {
            (Some(due), Some(rate)) => {
                let left = due.saturating_duration_since(self.chunk_start).as_nanos() as f64;
                (left * AIM_EARLY / rate) as u64 + 1
            }
            _ => u64::MAX,
        };
        if let Strategy::Adaptive { .. } = self.strategy {
            self.batch = self.target_batch;
        }
        // End the chunk (Adaptive) or read the clock (Slice) right when the timer should be
        // due, if that comes first.
        self.set_countdown(self.batch.min(to_due));
    }

    fn set_countdown(&mut self, units: u64) {
        let units = units.max(1);
        self.countdown = units;
        self.stride = units;
    }

    fn now(&self) -> Instant {
        self.clock_reads.set(self.clock_reads.get() + 1);
        Instant::now()
    }

    /// Counts one unit of work and says whether the current chunk is over (the caller should
    /// then call [`yield_now`](Self::yield_now)). [`tick`](Self::tick) does both.
    #[inline]
    pub fn should_yield(&mut self) -> bool {
        self.countdown -= 1;
        if self.countdown != 0 {
            return false;
        }
        if self.fixed {
            // `Every`, `Batch`: the chunk is over (`decide`'s bookkeeping, inlined).
            self.in_chunk += self.stride;
            self.units_done += self.stride;
            self.countdown = self.stride;
            return true;
        }
        self.decide()
    }

    /// The decision at the end of a countdown.
    #[inline(never)]
    fn decide(&mut self) -> bool {
        self.in_chunk += self.stride;
        self.units_done += self.stride;
        // Until `yield_now` starts the next chunk (or if the caller never yields), count the
        // same stride again.
        self.countdown = self.stride;
        match self.strategy {
            Strategy::Every | Strategy::Batch(_) => true,
            Strategy::Adaptive { target } => {
                let took = self.now().saturating_duration_since(self.chunk_start);
                self.ns_per_unit = Some(took.as_nanos().max(1) as f64 / self.in_chunk as f64);
                self.target_batch = retune(self.target_batch, self.in_chunk, took, target);
                true
            }
            Strategy::Slice(_) | Strategy::Share { .. } => {
                let slice = self.slice;
                let now = self.now();
                let took = now.saturating_duration_since(self.chunk_start);
                let rate = took.as_nanos().max(1) as f64 / self.in_chunk as f64;
                if took < slice && self.timer_due.is_none_or(|due| now < due) {
                    // Not yet: read again after the usual stride, or right when the timer
                    // should be due if that is sooner (each early read halves the distance).
                    let mut next = self.batch;
                    if let Some(due) = self.timer_due {
                        let left = due.saturating_duration_since(now).as_nanos() as f64;
                        next = next.min((left * AIM_EARLY / rate) as u64 + 1);
                    }
                    self.set_countdown(next);
                    return false;
                }
                self.ns_per_unit = Some(rate);
                // Aim for CLOCK_READS_PER_SLICE reads per slice at the speed just measured
                // (from the time taken, so a chunk cut short by a timer tunes it as well).
                let per_read = u128::from(self.in_chunk) * slice.as_nanos()
                    / (took.as_nanos().max(1) * u128::from(CLOCK_READS_PER_SLICE));
                self.batch = u64::try_from(per_read)
                    .unwrap_or(u64::MAX)
                    .max(MIN_UNITS_PER_READ);
                self.chunk_end = Some(now);
                true
            }
        }
    }

    /// Counts one unit of work and yields to the loop if the chunk is over.
    pub async fn tick(&mut self) {
        if self.should_yield() {
            self.yield_now().await;
        }
    }

    /// Ends the current chunk and yields to the loop (resuming in the check phase).
    pub async fn yield_now(&mut self) {
        self.chunks += 1;
        self.units_done += self.stride - self.countdown;
        self.in_chunk = 0;
        if let Some(o) = &self.observer {
            o.chunk_end();
        }
        yield_now().await;
        if let Some(o) = &self.observer {
            o.chunk_start();
        }
        self.begin_chunk();
    }
}

/// The length of a `Share` chunk after a gap of `gap`: `gap * percent / (100 - percent)`, within
/// `slice ..= MAX_SHARE_SLICES * slice`.
fn share_slice(gap: Duration, percent: u8, slice: Duration) -> Duration {
    let p = u128::from(percent);
    let want = gap.as_nanos() * p / (100 - p);
    let max = slice.as_nanos() * u128::from(MAX_SHARE_SLICES);
    let ns = want.clamp(slice.as_nanos(), max);
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// The next `Adaptive` batch: scale the last one by `target / took`. It shrinks in one step (when
/// units suddenly cost more, every chunk at the old size would hold the loop too long) and grows
/// at most twofold per chunk (so one odd short chunk cannot make the next one huge; after an odd
/// long one, a page fault or a preemption, it is back within a few chunks).
fn retune(batch: u64, units: u64, took: Duration, target: Duration) -> u64 {
    let took_ns = took.as_nanos().max(1);
    let ideal = (u128::from(units) * target.as_nanos() / took_ns).max(1);
    let ideal = u64::try_from(ideal).unwrap_or(u64::MAX);
    ideal.min(batch.saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retune_moves_towards_target_within_bounds() {
        let t = Duration::from_micros(500);
        assert_eq!(retune(100, 100, Duration::from_micros(250), t), 200);
        assert_eq!(
            retune(100, 100, Duration::from_micros(100), t),
            200,
            "at most doubles"
        );
        assert_eq!(
            retune(100, 100, Duration::from_micros(2000), t),
            25,
            "shrinks to the ideal at once"
        );
        assert_eq!(
            retune(10_000, 10_000, Duration::from_millis(500), t),
            10,
            "units 1000x dearer: 1000x fewer"
        );
        assert_eq!(retune(100, 100, Duration::from_micros(400), t), 125);
        assert_eq!(retune(1, 1, Duration::from_secs(1), t), 1, "never zero");
    }

    #[test]
    fn a_share_chunk_grows_with_the_gap_before_it() {
        let slice = Duration::from_micros(500);
        let ms = Duration::from_millis;
        assert_eq!(
            share_slice(Duration::ZERO, 50, slice),
            slice,
            "never below the slice"
        );
        assert_eq!(
            share_slice(ms(4), 50, slice),
            ms(4),
            "half the loop: chunk = gap"
        );
        assert_eq!(
            share_slice(ms(4), 80, slice),
            ms(16),
            "80%: four times the gap"
        );
        assert_eq!(
            share_slice(ms(3), 25, slice),
            ms(1),
            "25%: a third of the gap"
        );
        assert_eq!(
            share_slice(Duration::from_secs(10), 50, slice),
            slice * MAX_SHARE_SLICES,
            "bounded"
        );
    }

    #[test]
    #[should_panic(expected = "percent in 1..=99")]
    fn a_share_of_everything_is_refused() {
        let _ = Chunker::new(Strategy::Share {
            percent: 100,
            slice: Duration::from_micros(500),
        });
    }

    #[test]
    fn batch_yields_every_n() {
        let mut c = Chunker::new(Strategy::Batch(3));
        let pattern: Vec<bool> = (0..7).map(|_| c.should_yield()).collect();
        assert_eq!(pattern, [false, false, true, false, false, true, false]);
    }
}
