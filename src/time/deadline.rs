//! Knowing that no timer can be due without reading the clock.
//!
//! The timers phase runs once per loop iteration and must know whether the timer handle is due.
//! A loop that only resumes a yielding task (a CPU-bound job cut into tiny chunks beside a 1 ms
//! interval) would read the clock on every iteration just to learn that the interval is not due
//! yet. `Instant::now` costs about 35 ns on this project's VM (the vDSO orders its TSC read with
//! `rdtscp`, then scales it), as much as the rest of the iteration.
//!
//! # The filter
//! Where the kernel's clocksource is the TSC (x86-64 Linux with an invariant TSC), `Instant` is
//! the TSC scaled, so an unordered `rdtsc` (about 15 ns, no fence, no arithmetic) compared with
//! a TSC deadline says "surely not due yet" without the clock:
//! - after each clock read of the timers phase, the filter is armed for the handle's due time
//!   `due`: `until = anchor + (due - now) * f_low`, where `anchor` is a TSC read taken right
//!   *before* that clock read (so the TSC at `now` was at least `anchor`) and `f_low` is a lower
//!   bound of the TSC frequency (ticks per ns, measured against `Instant`, less a margin that
//!   also covers NTP slewing `CLOCK_MONOTONIC` by up to 0.05%), less a slack of
//!   [`SLACK_TICKS`] for the unordered TSC read;
//! - while the handle is still due at `due` and `anchor <= rdtsc() < until`, the time is before
//!   `due`: `clock - now <= (rdtsc - anchor) / f <= (rdtsc - anchor) / f_low < due - now`. The
//!   phase then skips its clock read and the loop time stays as it was (no timer is due at it,
//!   nor at the clock).
//! - Anything else (another due time, a TSC that went backwards, no calibration yet, another
//!   platform, Miri) reads the clock as before.
//!
//! So the filter never makes a timer fire early (only the clock says a timer is due) and never
//! late (it skips a read only while no timer can be due). What it changes is the loop time seen
//! between two timers: it moves when the timers phase may have work, when a timer starts and
//! after a poll phase that slept, not on every iteration (see [`crate::loop_time`]).
//!
//! # Calibration
//! Process-wide and once: the first clock reads of timers phases are bracketed by two TSC reads,
//! so each is a sample `(tsc, instant)` whose TSC is known within the bracket's width. Once a
//! sample is far enough from the first (at least [`CALIBRATION_SPAN`], and 4000 times the two
//! widths: about 1 ms natively), the frequency is their slope, less a margin of 1/256 (the
//! slope's error is at most 1/4000, NTP's slew of the clock at most 1/2000). Until then the
//! filter is off.
//!
//! The alternatives weighed (figures in docs/benchmarks.md): a helper thread that sets a flag at
//! the deadline wakes 80 us late at the median under load (4-20 ms at p99), which costs ticks
//! for good under Node.js's interval semantics; `CLOCK_MONOTONIC_COARSE` (8 ns) ticks every 4 ms
//! here (`HZ=250`), too coarse to tell whether a 1 ms interval is due (libuv, too, only uses it
//! when its resolution is 1 ms or finer).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The TSC, where it is the clock behind `Instant`.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
mod tsc {
    use std::sync::OnceLock;

    /// Reads the TSC, unordered: the read may run up to a few hundred cycles ahead of the code
    /// around it, which [`SLACK_TICKS`](super::SLACK_TICKS) covers.
    #[inline]
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` is part of the x86-64 baseline and only reads the time-stamp counter.
        // (A thread that asked the kernel to fault on it, `PR_SET_TSC`, cannot read the vDSO
        // clock either; `usable` is only true where the kernel's clocksource is the TSC.)
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Whether the TSC is invariant (constant rate, counting in every C-state) and the
    /// kernel's clocksource, so that `Instant` is the TSC scaled. Checked once per process.
    pub(super) fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            // CPUID 8000_0007h, EDX bit 8: invariant TSC (the leaf exists on every x86-64).
            let invariant = core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0;
            invariant
                && std::fs::read_to_string(
                    "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                )
                .is_ok_and(|s| s.trim() == "tsc")
        })
    }
}

/// No usable TSC: the filter is off and every timers phase reads the clock.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
mod tsc {
    #[inline]
    pub(super) fn read() -> u64 {
        0
    }

    pub(super) fn usable() -> bool {
        false
    }
}

/// The calibration's two samples are at least this far apart.
const CALIBRATION_SPAN: Duration = Duration::from_millis(1);

/// The filter stops skipping this many ticks (about 300 ns) before the deadline it computed:
/// an unordered TSC read may be that early.
const SLACK_TICKS: u64 = 1024;

/// Fixed-point shift of the calibrated frequency.
const FREQ_SHIFT: u32 = 24;

/// Deadlines further than this are armed at this distance (keeps the arithmetic in `u64`; a
/// far timer then costs one clock read every 4 s).
const MAX_HORIZON_NS: u64 = 1 << 32;

mod calibration {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::{CALIBRATION_SPAN, FREQ_SHIFT, SLACK_TICKS};

    /// `f_low * 2^FREQ_SHIFT` (TSC ticks per ns, a lower bound); 0 until calibrated.
    static FREQ: AtomicU64 = AtomicU64::new(0);

    /// The first sample: `(tsc, instant, uncertainty in ticks)`.
    static FIRST: Mutex<Option<(u64, Instant, u64)>> = Mutex::new(None);

    /// The calibrated frequency, if any.
    #[inline]
    pub(super) fn freq() -> Option<u64> {
        match FREQ.load(Ordering::Relaxed) {
            0 => None,
            f => Some(f),
        }
    }

    /// Offers the sample `now`, read between TSC reads `t1` and `t2`: the TSC at `now` was
    /// within `t2 - t1` (plus the slack of unordered reads) after `t1`.
    #[cold]
    pub(super) fn offer(t1: u64, now: Instant, t2: u64) {
        let Some(width) = t2.checked_sub(t1) else {
            return;
        };
        let width = width + SLACK_TICKS;
        let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
        let Some((t0, i0, w0)) = *first else {
            *first = Some((t1, now, width));
            return;
        };
        let span = now.saturating_duration_since(i0);
        let Some(ticks) = t1.checked_sub(t0) else {
            // The TSC went back (it is not the clock after all): start again.
            *first = Some((t1, now, width));
            return;
        };
        if width.saturating_mul(4) < w0 {
            // The first sample was a wide one (preempted between its reads): start from this.
            *first = Some((t1, now, width));
            return;
        }
        // The slope's error is at most (w0 + width) / ticks: wait until that is 1/4000 or less
        // (about 1 ms natively, where a clock read takes some 100 ticks; longer under a
        // profiler, which slows the reads down).
        if span < CALIBRATION_SPAN || u128::from(ticks) < 4000 * u128::from(w0 + width) {
            return;
        }
        let f = (u128::from(ticks) << FREQ_SHIFT) / span.as_nanos();
        let f_low = f - f / 256;
        FREQ.store(u64::try_from(f_low).unwrap_or(0), Ordering::Relaxed);
    }
}

/// One loop's filter. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct DeadlineFilter {
    /// The due time the filter was armed for (`None`: off).
    due: Cell<Option<Instant>>,
    /// The TSC read right before the clock read the filter was armed from.
    from: Cell<u64>,
    /// Before this TSC value, `due` has surely not come.
    until: Cell<u64>,
}

impl DeadlineFilter {
    /// Whether `due` is surely still to come, known without reading the clock.
    #[inline]
    pub(crate) fn surely_before(&self, due: Instant) -> bool {
        if self.due.get() != Some(due) {
            return false;
        }
        let t = tsc::read();
        self.from.get() <= t && t < self.until.get()
    }

    /// Reads the clock for the timers phase: `(anchor, now)`, the anchor being a TSC read taken
    /// right before (0 where there is no usable TSC).
    #[inline]
    pub(crate) fn read_clock(&self) -> (u64, Instant) {
        if !tsc::usable() {
            return (0, Instant::now());
        }
        let t1 = tsc::read();
        let now = Instant::now();
        if calibration::freq().is_none() {
            calibration::offer(t1, now, tsc::read());
        }
        (t1, now)
    }

    /// Arms the filter after the timers phase read the clock (`anchor`, `now`, from
    /// [`read_clock`](Self::read_clock)) and ran what was due: the handle is now due at `due`.
    #[inline]
    pub(crate) fn arm(&self, anchor: u64, now: Instant, due: Option<Instant>) {
        let (Some(due), Some(freq)) = (due, calibration::freq()) else {
            self.due.set(None);
            return;
        };
        let ns = due.saturating_duration_since(now).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(u64::MAX).min(MAX_HORIZON_NS);
        // `ns < 2^32` and `freq < 2^32` (a TSC under 256 GHz): no overflow.
        let ticks = (ns * freq) >> FREQ_SHIFT;
        self.due.set(Some(due));
        self.from.set(anchor);
        self.until
            .set(anchor.saturating_add(ticks.saturating_sub(SLACK_TICKS)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unarmed_filter_never_skips() {
        let f = DeadlineFilter::default();
        assert!(!f.surely_before(Instant::now() + Duration::from_secs(3600)));
        // Armed for no timer, or for a due time already past: still no skip.
        let (anchor, now) = f.read_clock();
        f.arm(anchor, now, None);
        assert!(!f.surely_before(now + Duration::from_secs(1)));
        f.arm(anchor, now, Some(now));
        assert!(!f.surely_before(now));
    }

    #[test]
    fn the_filter_skips_only_for_the_due_time_it_was_armed_for() {
        let f = DeadlineFilter::default();
        let due = Instant::now() + Duration::from_secs(3600);
        // Calibrate (where there is a usable TSC): a few milliseconds of samples natively; the
        // bound is for a loaded machine.
        let start = Instant::now();
        let mut armed = false;
        while !armed && start.elapsed() < Duration::from_secs(20) {
            let (anchor, now) = f.read_clock();
            f.arm(anchor, now, Some(due));
            armed = f.surely_before(due);
            if !tsc::usable() {
                break;
            }
        }
        assert_eq!(
            armed,
            tsc::usable(),
            "the filter works exactly where the TSC is usable"
        );
        // Another due time (a timer started or cleared since): read the clock.
        assert!(!f.surely_before(due - Duration::from_millis(1)));
        // A due time that comes: after it, the filter says so.
        let (anchor, now) = f.read_clock();
        let soon = now + Duration::from_millis(2);
        f.arm(anchor, now, Some(soon));
        while Instant::now() < soon {
            std::hint::spin_loop();
        }
        assert!(!f.surely_before(soon), "skipped a read after the due time");
    }
}
