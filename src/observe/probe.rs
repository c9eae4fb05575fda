//! The tick probe: runs an interval beside a job and measures what the job does to it.
//!
//! A [`TickProbe`] starts an interval of period P on the running loop (a meter, `meter.rs`, as
//! the delay monitor's: a `setInterval` callback in the timers phase) and observes
//! the job's chunk boundaries through a [`ChunkObserver`]. [`TickProbe::finish`] gives a
//! [`ProbeReport`]: elapsed time, chunks, ticks that ran, the ideal tick count
//! `floor(elapsed / P)`, fidelity (ticks / ideal), the longest gap between consecutive ticks
//! (counting the run's start and end), how many ticks ran between consecutive chunks, and the
//! chunk durations.
//!
//! With [`MissedTickBehavior::Skip`] (Node.js's) the interval runs at most once per timers phase,
//! so 0 or 1 tick runs between two chunks; with `Burst`, late ticks catch up and several may run.
//!
//! ```
//! use std::time::Duration;
//! use executor::chunk::{Chunker, Strategy};
//! use executor::observe::{ProbeConfig, TickProbe};
//!
//! let report = executor::block_on(async {
//!     let probe = TickProbe::start(ProbeConfig::every(Duration::from_millis(1)));
//!     let mut chunker = Chunker::new(Strategy::Slice(Duration::from_micros(200)));
//!     chunker.set_observer(probe.observer());
//!     let p = executor::demo::prime::find_nth_prime_chunked(20_000, &mut chunker).await;
//!     assert_eq!(p, 224_737);
//!     probe.finish()
//! });
//! assert!(report.chunks > 1);
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::json::{Fixed, Object};
use super::meter;
use crate::chunk::ChunkObserver;
use crate::{node::TimerHandle, time::MissedTickBehavior};

/// What the probe measures with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The interval's period.
    pub period: Duration,
    /// How the interval treats missed ticks.
    pub missed: MissedTickBehavior,
}

impl ProbeConfig {
    /// An interval of `period` with Node.js's missed-tick behaviour (skip).
    pub fn every(period: Duration) -> Self {
        ProbeConfig {
            period,
            missed: MissedTickBehavior::Skip,
        }
    }
}

/// What the probe saw, updated on the loop thread.
#[derive(Debug)]
struct Recorder {
    /// When the probe started.
    start: Instant,
    /// Ticks so far.
    ticks: Cell<u64>,
    /// Offsets of the ticks from `start`, in ns.
    tick_at: RefCell<Vec<u64>>,
    /// Start offset of the chunk in progress, if one is.
    chunk_open: Cell<Option<u64>>,
    /// `(start, end)` offsets of finished chunks, in ns; a zero-length chunk equal to the last
    /// one is counted in `merged` instead.
    chunks: RefCell<Vec<(u64, u64)>>,
    /// Zero-length chunks not pushed to `chunks` because they equal its last entry: a yield per
    /// tiny unit of work makes hundreds of thousands of chunks stamped with one loop time.
    merged: Cell<u64>,
    /// Ticks when the previous chunk started.
    ticks_at_chunk_start: Cell<u64>,
    /// Ticks that ran in the gaps between consecutive chunks: (min, max, sum, gaps), kept as
    /// running figures (a job cut into millions of chunks need not store one per gap).
    between: Cell<(u32, u32, u64, u64)>,
    /// Whether chunk boundaries are read from the clock (the last chunk was long).
    precise: Cell<bool>,
    /// The last loop time converted by `loop_offset`, and its offset.
    last_loop: Cell<(Instant, u64)>,
    /// `Some(t)` while the last entry of `chunks` is the zero-length `(t, t)` and chunks are
    /// stamped with the loop time: a chunk that opened at `t` and ends at `t` then merges into
    /// it (`chunk_start`'s fast path).
    merging_at: Cell<Option<u64>>,
    /// Chunks merged by that fast path. Each also closed a gap with no tick in it, which is
    /// added to `between` at the end (not per chunk: the fast path is one increment).
    fast_merged: Cell<u64>,
}

impl Recorder {
    /// Nanoseconds since the start, read from the clock.
    fn offset(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Nanoseconds since the start, from the loop time (no clock read; see `chunk_start`).
    /// The loop time moves about once per timer that falls due (`time/deadline.rs`), not once
    /// per chunk, so the last conversion is kept.
    #[inline]
    fn loop_offset(&self) -> u64 {
        let now = crate::loop_time();
        let (at, offset) = self.last_loop.get();
        if at == now {
            return offset;
        }
        let offset = now.saturating_duration_since(self.start).as_nanos() as u64;
        self.last_loop.set((now, offset));
        offset
    }
}

/// Chunks at least this long (as last measured) are stamped with the clock; shorter ones with
/// the loop time. See `Recorder::chunk_start`.
const PRECISE_CHUNK_NS: u64 = 20_000;

impl ChunkObserver for Recorder {
    fn chunk_end(&self) {
        if self.precise.get() {
            if let Some(s) = self.chunk_open.take() {
                let end = self.offset();
                self.chunks.borrow_mut().push((s, end));
            }
        }
    }

    /// Chunk boundaries of long chunks are read from the clock: two reads per chunk of at least
    /// 20 us cost nothing measurable. A yield per tiny unit of work would pay for those two reads
    /// as much as for the work itself, so once chunks are shorter than that, boundaries are
    /// stamped with the loop time instead, which the timers phase has just read: a chunk resumes
    /// in the check phase of the iteration whose timers phase read it, and the previous chunk
    /// ended right before that timers phase. Such a chunk's duration then includes one loop
    /// iteration (and any tick callback), and the gap before it reads as zero.
    #[inline]
    fn chunk_start(&self) {
        let loop_at = self.loop_offset();
        let ticks = self.ticks.get();
        // A yield per tiny unit of work: the chunk ending here opened at this same loop time,
        // as the last recorded one did, and no tick ran since it opened. It merges, the gap
        // before the next one has no tick, and nothing else changes.
        if self.merging_at.get() == Some(loop_at)
            && self.chunk_open.get() == Some(loop_at)
            && self.ticks_at_chunk_start.get() == ticks
        {
            self.fast_merged.set(self.fast_merged.get() + 1);
            return;
        }
        self.chunk_start_slow(loop_at, ticks);
    }
}

impl Recorder {
    /// `chunk_start` in general.
    #[inline(never)]
    fn chunk_start_slow(&self, loop_at: u64, ticks: u64) {
        let mut chunks = self.chunks.borrow_mut();
        if let Some(s) = self.chunk_open.take() {
            let span = (s, loop_at.max(s));
            if span.0 == span.1 && chunks.last() == Some(&span) {
                self.merged.set(self.merged.get() + 1);
            } else {
                chunks.push(span);
            }
        }
        self.merging_at.set(None);
        if let Some(&(s, e)) = chunks.last() {
            self.precise.set(e - s >= PRECISE_CHUNK_NS);
            if s == e && !self.precise.get() {
                self.merging_at.set(Some(s));
            }
            let gap = ticks - self.ticks_at_chunk_start.get();
            let gap = u32::try_from(gap).unwrap_or(u32::MAX);
            let (lo, hi, sum, n) = self.between.get();
            self.between
                .set((lo.min(gap), hi.max(gap), sum + u64::from(gap), n + 1));
        }
        drop(chunks);
        self.ticks_at_chunk_start.set(ticks);
        let at = if self.precise.get() {
            self.offset()
        } else {
            loop_at
        };
        self.chunk_open.set(Some(at));
    }
}

/// A running probe. See the module docs.
///
/// Dropping it (say, with a cancelled search) stops its interval, as [`finish`](Self::finish)
/// does: a forgotten probe must not keep the loop alive.
#[derive(Debug)]
pub struct TickProbe {
    config: ProbeConfig,
    rec: Rc<Recorder>,
    /// The meter's interval (referenced: the probe keeps the loop alive while it runs).
    ticker: TimerHandle,
}

impl Drop for TickProbe {
    fn drop(&mut self) {
        self.ticker.clear();
    }
}

impl TickProbe {
    /// Starts the interval on the running loop.
    ///
    /// # Panics
    /// If no loop is running on this thread, or the period is zero.
    pub fn start(config: ProbeConfig) -> Self {
        let start = Instant::now();
        let rec = Rc::new(Recorder {
            start,
            ticks: Cell::new(0),
            tick_at: RefCell::new(Vec::new()),
            chunk_open: Cell::new(None),
            chunks: RefCell::new(Vec::new()),
            merged: Cell::new(0),
            ticks_at_chunk_start: Cell::new(0),
            between: Cell::new((u32::MAX, 0, 0, 0)),
            precise: Cell::new(true),
            last_loop: Cell::new((start, 0)),
            merging_at: Cell::new(None),
            fast_merged: Cell::new(0),
        });
        let r = rec.clone();
        let ticker = meter::start(
            "TickProbe::start",
            config.period,
            config.missed,
            move |_| {
                r.ticks.set(r.ticks.get() + 1);
                let at = r.offset();
                r.tick_at.borrow_mut().push(at);
            },
        );
        TickProbe {
            config,
            rec,
            ticker,
        }
    }

    /// The observer to attach to the job's [`Chunker`](crate::chunk::Chunker).
    pub fn observer(&self) -> Rc<dyn ChunkObserver> {
        self.rec.clone()
    }

    /// Stops the interval (when `self` drops, at the end: nothing runs on the loop meanwhile)
    /// and reports.
    pub fn finish(self) -> ProbeReport {
        let end = self.rec.offset();
        if let Some(s) = self.rec.chunk_open.take() {
            self.rec.chunks.borrow_mut().push((s, end));
        }
        let rec = &self.rec;
        let tick_at = rec.tick_at.take();
        let chunks = rec.chunks.take();
        let (mut b_min, b_max, b_sum, mut b_gaps) = rec.between.get();
        let fast = rec.fast_merged.get();
        if fast > 0 {
            b_min = 0;
            b_gaps += fast;
        }
        let period_ns = self.config.period.as_nanos().max(1) as u64;
        let ticks = tick_at.len() as u64;
        let ideal = end / period_ns;
        let mut max_gap = 0;
        let mut prev = 0;
        for &t in tick_at.iter().chain([end].iter()) {
            max_gap = max_gap.max(t.saturating_sub(prev));
            prev = t;
        }
        // Three order statistics in O(n) (a yield per unit of work makes hundreds of thousands
        // of chunks; sorting them would cost more than the run's loop bookkeeping).
        // The merged chunks are zero-length: the first `merged` of the sorted durations.
        let merged = (rec.merged.get() + fast) as usize;
        let count = chunks.len() + merged;
        let mut durs: Vec<u64> = chunks.iter().map(|(s, e)| e - s).collect();
        let mut pct = |q: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let i = ((count as f64 * q).ceil() as usize).clamp(1, count) - 1;
            match i.checked_sub(merged) {
                None => Duration::ZERO,
                Some(i) => Duration::from_nanos(*durs.select_nth_unstable(i).1),
            }
        };
        let (chunk_p50, chunk_p99, chunk_max) = (pct(0.50), pct(0.99), pct(1.0));
        ProbeReport {
            period: self.config.period,
            missed: self.config.missed,
            elapsed: Duration::from_nanos(end),
            chunks: count as u64,
            ticks,
            ideal_ticks: ideal,
            fidelity: if ideal == 0 {
                1.0
            } else {
                ticks as f64 / ideal as f64
            },
            max_gap: Duration::from_nanos(max_gap),
            between_min: if b_gaps == 0 { 0 } else { b_min },
            between_mean: if b_gaps == 0 {
                0.0
            } else {
                b_sum as f64 / b_gaps as f64
            },
            between_max: b_max,
            chunk_p50,
            chunk_p99,
            chunk_max,
            tick_at,
            chunk_spans: chunks,
        }
    }
}

/// What one probed run measured. See the module docs.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// The interval's period.
    pub period: Duration,
    /// The interval's missed-tick behaviour.
    pub missed: MissedTickBehavior,
    /// From the probe's start to its finish.
    pub elapsed: Duration,
    /// Chunks of the job that ran on the loop (0 when it ran elsewhere).
    pub chunks: u64,
    /// Interval ticks that ran.
    pub ticks: u64,
    /// `floor(elapsed / period)`.
    pub ideal_ticks: u64,
    /// `ticks / ideal_ticks` (1 when no tick was due).
    pub fidelity: f64,
    /// The longest time without a tick, counting the run's start and end.
    pub max_gap: Duration,
    /// Fewest ticks that ran between two consecutive chunks.
    pub between_min: u32,
    /// Mean ticks that ran between two consecutive chunks.
    pub between_mean: f64,
    /// Most ticks that ran between two consecutive chunks.
    pub between_max: u32,
    /// Median chunk duration.
    pub chunk_p50: Duration,
    /// 99th-percentile chunk duration.
    pub chunk_p99: Duration,
    /// Longest chunk.
    pub chunk_max: Duration,
    /// Offsets of the ticks from the start, in ns.
    pub tick_at: Vec<u64>,
    /// `(start, end)` offsets of the chunks from the start, in ns, in order. Consecutive
    /// zero-length chunks at one instant (chunks too short to stamp with the clock, which then
    /// share the loop time) appear once, so there may be fewer spans than `chunks`.
    pub chunk_spans: Vec<(u64, u64)>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl ProbeReport {
    /// One JSON object (no trailing newline) with the report's figures and `extra` fields
    /// (pre-encoded JSON values) first.
    pub fn to_json(&self, extra: &[(&str, String)]) -> String {
        let mut s = String::new();
        let mut o = Object::open(&mut s);
        for (k, v) in extra {
            o.raw(k, v);
        }
        o.raw("elapsed_ms", Fixed(ms(self.elapsed), 3))
            .raw("chunks", self.chunks)
            .raw("ticks", self.ticks)
            .raw("ideal_ticks", self.ideal_ticks)
            .raw("fidelity", Fixed(self.fidelity, 4))
            .raw("max_gap_ms", Fixed(ms(self.max_gap), 3))
            .raw("ticks_between_chunks_min", self.between_min)
            .raw("ticks_between_chunks_mean", Fixed(self.between_mean, 4))
            .raw("ticks_between_chunks_max", self.between_max)
            .raw("chunk_p50_ms", Fixed(ms(self.chunk_p50), 4))
            .raw("chunk_p99_ms", Fixed(ms(self.chunk_p99), 4))
            .raw("chunk_max_ms", Fixed(ms(self.chunk_max), 4))
            .raw("period_us", self.period.as_micros())
            .str(
                "missed",
                match self.missed {
                    MissedTickBehavior::Skip => "skip",
                    MissedTickBehavior::Burst => "burst",
                    MissedTickBehavior::Delay => "delay",
                },
            );
        o.end();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks that open and end at one loop time merge (the fast path after the first); the
    /// report still counts each of them, and each gap before one, with no tick in it.
    #[test]
    fn merged_chunks_are_counted_with_their_gaps() {
        let report = crate::block_on(async {
            // A period far longer than the test: no tick runs, and the loop time stays put
            // (nothing here reads the clock into it).
            let probe = TickProbe::start(ProbeConfig::every(Duration::from_secs(3600)));
            let obs = probe.observer();
            obs.chunk_start();
            for _ in 0..100 {
                obs.chunk_end();
                obs.chunk_start();
            }
            probe.finish()
        });
        // 100 zero-length chunks (one recorded, 99 merged) and the open one closed by `finish`.
        assert_eq!(report.chunks, 101);
        assert_eq!(report.ticks, 0);
        assert_eq!(
            (report.between_min, report.between_max),
            (0, 0),
            "no tick between chunks"
        );
        assert_eq!(report.between_mean, 0.0);
        // Under Miri a chunk here takes about a millisecond, so the probe rightly stamps every
        // one with the clock (chunks of 20 us or more are `precise`) and none merges.
        if !cfg!(miri) {
            assert_eq!(report.chunk_p50, Duration::ZERO, "{:?}", report.chunk_spans);
        }
    }
}
