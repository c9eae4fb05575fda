//! The loop delay monitor: how late the loop runs a timer, as an HDR histogram (Node.js's
//! `perf_hooks.monitorEventLoopDelay`).
//!
//! # Implementation
//! While enabled, an **unreferenced** meter (`meter.rs`: a [`set_interval`](crate::set_interval)
//! told when each tick was due and when it ran, as loop times) of period `resolution` runs on
//! the loop, and records the difference. No extra clock read is taken.
//!
//! Unlike Node.js, which records the time between two callbacks (so an idle loop reports about
//! `resolution`), this records only the **lateness** past the due time: an idle loop reports
//! about zero, plus the OS timer slack (the poll phase sleeps in whole milliseconds).
//!
//! Ground rules:
//! - the interval is `unref`'d: a loop whose only handle is the monitor ends, as in Node.js;
//! - the callback API clamps periods to at least 1 ms, so `resolution` is raised to 1 ms;
//! - values are kept in nanoseconds (3 significant digits, up to one hour; longer delays are
//!   counted as one hour) and reported in microseconds.

use std::cell::RefCell;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::meter;
use crate::runtime::context;
use crate::{node::TIMEOUT_MAX, node::TIMEOUT_MIN, node::TimerHandle, time::MissedTickBehavior};

/// The longest delay the histogram tells apart (longer ones are recorded as this), in ns.
const HIGHEST_NS: u64 = 3_600 * 1_000_000_000;

/// Significant decimal digits kept by the histogram (0.1% relative error).
const SIGFIG: u8 = 3;

/// Creates a loop delay monitor sampling every `resolution` (raised to 1 ms if below); it starts
/// disabled, as Node.js's `monitorEventLoopDelay()` does: call
/// [`enable`](LoopDelayMonitor::enable) on the loop it should watch.
///
/// The monitor records the **lateness** of each sample past its due time, not (as Node.js) the
/// lateness plus `resolution`: an idle loop reports about zero.
///
/// ```
/// use std::time::{Duration, Instant};
/// let m = executor::observe::monitor_loop_delay(Duration::from_millis(1));
/// executor::block_on(async {
///     m.enable();
///     executor::sleep(Duration::from_millis(10)).await;
///     // Block the loop for 5 ms: the next sample is about 5 ms late.
///     let t = Instant::now();
///     while t.elapsed() < Duration::from_millis(5) {}
///     executor::sleep(Duration::from_millis(5)).await;
/// });
/// let s = m.summary();
/// assert!(s.count > 0);
/// assert!(s.max_us >= 4_000.0);
/// println!("{s}");
/// ```
///
/// # Panics
/// If `resolution` exceeds [`TIMEOUT_MAX`](crate::node::TIMEOUT_MAX).
#[track_caller]
pub fn monitor_loop_delay(resolution: Duration) -> LoopDelayMonitor {
    LoopDelayMonitor::new(resolution)
}

/// The monitor's state, shared with its timer callback (which holds it weakly).
#[derive(Debug)]
struct State {
    /// Lateness samples in nanoseconds.
    hist: RefCell<Histogram<u64>>,
}

/// Samples how late the loop runs an unreferenced timer. See [`monitor_loop_delay`] and the
/// module docs.
///
/// It belongs to the loop thread. Dropping it disables it.
pub struct LoopDelayMonitor {
    resolution: Duration,
    state: Rc<State>,
    /// The sampling interval while enabled.
    timer: RefCell<Option<TimerHandle>>,
}

impl fmt::Debug for LoopDelayMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopDelayMonitor")
            .field("resolution", &self.resolution)
            .field("enabled", &self.is_enabled())
            .field("summary", &self.summary())
            .finish()
    }
}

impl LoopDelayMonitor {
    /// A disabled monitor sampling every `resolution` once enabled (raised to 1 ms if below).
    ///
    /// # Panics
    /// If `resolution` exceeds [`TIMEOUT_MAX`], the longest timer period.
    #[track_caller]
    pub fn new(resolution: Duration) -> Self {
        assert!(
            resolution <= TIMEOUT_MAX,
            "executor::observe::monitor_loop_delay: a resolution of {resolution:?} is longer than the \
             maximum of {TIMEOUT_MAX:?}"
        );
        let hist = Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG)
            .expect("constant histogram bounds are valid");
        LoopDelayMonitor {
            resolution: resolution.max(TIMEOUT_MIN),
            state: Rc::new(State {
                hist: RefCell::new(hist),
            }),
            timer: RefCell::new(None),
        }
    }

    /// The sampling period (after raising to 1 ms).
    pub fn resolution(&self) -> Duration {
        self.resolution
    }

    /// Starts sampling on the running loop. Returns `false` (and does nothing) if already
    /// enabled (on this loop or on another one that still exists).
    ///
    /// # Panics
    /// If no loop is running on this thread.
    #[track_caller]
    pub fn enable(&self) -> bool {
        if !context::is_running() {
            panic!(
                "executor: LoopDelayMonitor::enable needs a running event loop on this thread \
                 (call it inside EventLoop::run or block_on)"
            );
        }
        if self.is_enabled() {
            return false;
        }
        let weak: Weak<State> = Rc::downgrade(&self.state);
        let handle = meter::start(
            "LoopDelayMonitor::enable",
            self.resolution,
            MissedTickBehavior::Skip,
            move |tick| {
                let Some(state) = weak.upgrade() else { return };
                // A sample due while the loop was not running (between two `run` or `block_on`
                // calls) is late only from when the loop started running again.
                let run_started =
                    context::with_current("LoopDelayMonitor", |l| l.run_started.get());
                let due = tick.due.max(run_started);
                let late = tick.ran.saturating_duration_since(due).as_nanos();
                let late = u64::try_from(late).unwrap_or(u64::MAX);
                state.hist.borrow_mut().saturating_record(late);
            },
        );
        handle.unref();
        *self.timer.borrow_mut() = Some(handle);
        true
    }

    /// Stops sampling (the samples are kept). Returns `false` if it was not enabled.
    pub fn disable(&self) -> bool {
        let Some(handle) = self.timer.borrow_mut().take() else {
            return false;
        };
        handle.clear();
        true
    }

    /// Whether it is sampling: enabled, and its loop still exists (a monitor whose loop was
    /// dropped can be enabled again on another loop).
    pub fn is_enabled(&self) -> bool {
        self.timer
            .borrow()
            .as_ref()
            .is_some_and(TimerHandle::is_active)
    }

    /// Forgets every sample.
    pub fn reset(&self) {
        self.state.hist.borrow_mut().reset();
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.state.hist.borrow().len()
    }

    /// Smallest lateness, in µs (0 without samples).
    pub fn min_us(&self) -> f64 {
        ns_to_us(self.state.hist.borrow().min())
    }

    /// Largest lateness, in µs (0 without samples).
    pub fn max_us(&self) -> f64 {
        ns_to_us(self.state.hist.borrow().max())
    }

    /// Mean lateness, in µs (0 without samples).
    pub fn mean_us(&self) -> f64 {
        self.state.hist.borrow().mean() / 1e3
    }

    /// Standard deviation of the lateness, in µs (0 without samples).
    pub fn stddev_us(&self) -> f64 {
        self.state.hist.borrow().stdev() / 1e3
    }

    /// The lateness at `percentile` (0 to 100, as Node.js's `percentile(p)`), in µs: the
    /// smallest recorded value (within the histogram's 0.1% resolution) that `percentile`% of
    /// samples do not exceed.
    ///
    /// # Panics
    /// If `percentile` is not within 0..=100.
    pub fn percentile_us(&self, percentile: f64) -> f64 {
        assert!(
            (0.0..=100.0).contains(&percentile),
            "executor::observe: percentile {percentile} is not within 0..=100"
        );
        ns_to_us(self.state.hist.borrow().value_at_percentile(percentile))
    }

    /// A copy of the histogram, in nanoseconds, for anything the methods above do not give.
    pub fn histogram_ns(&self) -> Histogram<u64> {
        self.state.hist.borrow().clone()
    }

    /// The usual figures at once.
    pub fn summary(&self) -> DelaySummary {
        let h = self.state.hist.borrow();
        let p = |q: f64| ns_to_us(h.value_at_percentile(q));
        DelaySummary {
            count: h.len(),
            min_us: ns_to_us(h.min()),
            max_us: ns_to_us(h.max()),
            mean_us: h.mean() / 1e3,
            stddev_us: h.stdev() / 1e3,
            p50_us: p(50.0),
            p90_us: p(90.0),
            p99_us: p(99.0),
            p999_us: p(99.9),
        }
    }
}

impl Drop for LoopDelayMonitor {
    fn drop(&mut self) {
        self.disable();
    }
}

fn ns_to_us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// The figures of a [`LoopDelayMonitor`] at one moment, in microseconds (all 0 without samples).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DelaySummary {
    /// Number of samples.
    pub count: u64,
    /// Smallest lateness.
    pub min_us: f64,
    /// Largest lateness.
    pub max_us: f64,
    /// Mean lateness.
    pub mean_us: f64,
    /// Standard deviation.
    pub stddev_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
}

impl fmt::Display for DelaySummary {
    /// One line, in milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |us: f64| us / 1e3;
        write!(
            f,
            "loop delay over {} samples (ms): min {:.3} mean {:.3} stddev {:.3} p50 {:.3} \
             p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
            self.count,
            ms(self.min_us),
            ms(self.mean_us),
            ms(self.stddev_us),
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_is_raised_to_one_millisecond() {
        let m = LoopDelayMonitor::new(Duration::from_micros(10));
        assert_eq!(m.resolution(), Duration::from_millis(1));
        assert!(!m.is_enabled());
        assert!(!m.disable());
    }

    #[test]
    #[cfg_attr(miri, ignore = "minutes under Miri (hdrhistogram); no unsafe code")]
    fn summary_of_known_samples() {
        let m = LoopDelayMonitor::new(Duration::from_millis(1));
        for us in [100u64, 200, 300, 400, 20_000] {
            m.state.hist.borrow_mut().record(us * 1000).unwrap();
        }
        let s = m.summary();
        assert_eq!(s.count, 5);
        // 3 significant digits: within 0.1%.
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.001 + 0.001;
        assert!(close(s.min_us, 100.0), "{s:?}");
        assert!(close(s.max_us, 20_000.0), "{s:?}");
        assert!(close(s.p50_us, 300.0), "{s:?}");
        assert!(close(s.p99_us, 20_000.0), "{s:?}");
        assert!(close(s.mean_us, 4_200.0), "{s:?}");
        m.reset();
        assert_eq!(m.summary(), DelaySummary::default());
    }

    #[test]
    #[should_panic(expected = "not within 0..=100")]
    fn percentile_out_of_range() {
        LoopDelayMonitor::new(Duration::from_millis(1)).percentile_us(101.0);
    }
}
