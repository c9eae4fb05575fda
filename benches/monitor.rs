//! What the monitors of issue 8 cost the loop they watch, side by side in one run: the stall
//! detector ([`StallDetector`], default 100 ms threshold), the trace recorder
//! ([`TraceRecorder`]) and the loop delay monitor ([`monitor_loop_delay`], 1 ms resolution),
//! against the same workload with nothing installed.
//!
//! Workloads (a fresh loop per run; only `block_on` is timed, the monitors are started before
//! and stopped or finished after the clock):
//! - `batch1000_100000`: the 100,000th prime searched with `Strategy::Batch(1000)` beside a 1 ms
//!   interval (`prime::probe_search`, as `benches/ticks.rs` runs it): plain, stall detector, trace
//!   recorder (default limit), delay monitor, all three. The target: recording costs
//!   under 10% here.
//! - `every_20000`: the 20,000th prime with `Strategy::Every` (one yield per candidate, about
//!   112,000 callbacks: the worst case for a per-callback observer): plain, "off" (a stall
//!   detector and a trace recorder installed, then removed, before the run), a no-op observer
//!   (what the loop's observer dispatch alone costs), stall detector, trace recorder, delay
//!   monitor.
//! - `yield_1000000`: one task doing `executor::yield_now().await` 1,000,000 times (as in
//!   `benches/core.rs`, no timer): the same six variants; the trace recorder gets a limit of
//!   2,000,000 so that every span is kept (about 40 MB of spans per run).
//!
//! Criterion times every variant; then the bench runs the variants again, interleaved round by
//! round (the order rotating), and prints per-round ratios to the plain run of the same round,
//! which hold better than sequential medians on a shared, noisy machine. "Off" is the plain
//! variant itself (a loop with no observer pays one branch per callback) and the `off` variant
//! (a loop whose observers were removed). The summary ends with the expected cost on the
//! `Batch(1000)` search of each observer, from its cost per span on `every_20000` (the direct
//! measurement there is smaller than the machine's noise), and the cost of one clock read.
//!
//! Run: `cargo bench --bench monitor`. docs/benchmarks.md records a run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use executor::EventLoop;
use executor::chunk::Strategy;
use executor::demo::prime::probe_search;
use executor::observe::ProbeConfig;
use executor::observe::{
    DelaySummary, StallDetector, TraceRecorder, TraceSpan, monitor_loop_delay,
};
use executor::observe::{LoopObserver, Span};

/// Yields in the yield microbenchmark.
const YIELDS: u32 = 1_000_000;

/// Span limit of the trace recorder in the yield microbenchmark (every span kept).
const YIELD_TRACE_LIMIT: usize = 2_000_000;

/// Rounds of the interleaved pass after criterion.
const ROUNDS: usize = 40;

/// One timed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// The `nth` prime with a strategy, beside the probe's 1 ms interval.
    Search(u32, Strategy),
    /// One task yielding this many times.
    Yields(u32),
}

impl Work {
    /// The criterion group (and summary) name.
    fn name(self) -> String {
        match self {
            Work::Search(nth, Strategy::Batch(n)) => format!("batch{n}_{nth}"),
            Work::Search(nth, s) => format!("{}_{nth}", s.name()),
            Work::Yields(n) => format!("yield_{n}"),
        }
    }

    /// The variants measured on this workload, plain first.
    fn variants(self) -> &'static [Variant] {
        match self {
            Work::Search(_, Strategy::Batch(_)) => &[
                Variant::Plain,
                Variant::Stall,
                Variant::Trace,
                Variant::Delay,
                Variant::All,
            ],
            _ => &[
                Variant::Plain,
                Variant::Off,
                Variant::Noop,
                Variant::Stall,
                Variant::Trace,
                Variant::Delay,
            ],
        }
    }

    /// The trace recorder's span limit for this workload.
    fn trace_limit(self) -> usize {
        match self {
            Work::Yields(_) => YIELD_TRACE_LIMIT,
            Work::Search(..) => executor::observe::DEFAULT_LIMIT,
        }
    }
}

/// The workloads, in the order they run.
const WORKS: [Work; 3] = [
    Work::Search(100_000, Strategy::Batch(1000)),
    Work::Search(20_000, Strategy::Every),
    Work::Yields(YIELDS),
];

/// What is installed on the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    /// Nothing.
    Plain,
    /// A stall detector and a trace recorder installed, then removed, before the run.
    Off,
    /// An observer that does nothing: the loop's dispatch to observers alone.
    Noop,
    /// A stall detector (default 100 ms threshold).
    Stall,
    /// A trace recorder.
    Trace,
    /// A loop delay monitor at 1 ms resolution, enabled for the whole run.
    Delay,
    /// The three at once.
    All,
}

impl Variant {
    /// Its name in the reports.
    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Off => "off",
            Variant::Noop => "noop",
            Variant::Stall => "stall",
            Variant::Trace => "trace",
            Variant::Delay => "delay",
            Variant::All => "all",
        }
    }

    fn stall(self) -> bool {
        matches!(self, Variant::Stall | Variant::All)
    }

    fn trace(self) -> bool {
        matches!(self, Variant::Trace | Variant::All)
    }

    fn delay(self) -> bool {
        matches!(self, Variant::Delay | Variant::All)
    }
}

/// An observer that does nothing.
struct Noop;

impl LoopObserver for Noop {
    fn enter(&self, span: &Span) {
        black_box(span);
    }

    fn exit(&self) {}
}

/// What one run measured besides its time.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    /// Time spent in `block_on`.
    took: Duration,
    /// Spans the trace recorder kept (trace variants).
    spans: Option<u64>,
    /// Spans and ticks past the recorder's limit.
    dropped: u64,
    /// Stalls the detector reported (stall variants).
    stalls: u64,
    /// What the delay monitor saw (delay variants).
    delay: Option<DelaySummary>,
}

/// Runs `work` once on a fresh loop with `variant`'s monitors installed.
fn run_once(work: Work, variant: Variant) -> Outcome {
    let ev = EventLoop::new();
    if variant == Variant::Off {
        StallDetector::start(&ev).stop();
        drop(TraceRecorder::install(&ev).finish());
    }
    if variant == Variant::Noop {
        ev.add_observer(Rc::new(Noop));
    }
    let stalls = Arc::new(AtomicU64::new(0));
    let detector = variant.stall().then(|| {
        let s = stalls.clone();
        StallDetector::builder()
            .on_stall(move |r| {
                if r.ongoing {
                    s.fetch_add(1, Ordering::Relaxed);
                }
            })
            .start(&ev)
    });
    let recorder = variant
        .trace()
        .then(|| TraceRecorder::with_limit(&ev, work.trace_limit()));
    let delay = variant
        .delay()
        .then(|| monitor_loop_delay(Duration::from_millis(1)));

    let t = Instant::now();
    let answer = ev.block_on(async {
        if let Some(d) = &delay {
            d.enable();
        }
        let answer = match work {
            Work::Search(nth, s) => {
                let config = ProbeConfig::every(Duration::from_millis(1));
                let (p, report) = probe_search(nth, s, config).await;
                black_box(report);
                p
            }
            Work::Yields(n) => {
                executor::spawn(async move {
                    for _ in 0..n {
                        executor::yield_now().await;
                    }
                })
                .await
                .unwrap();
                u64::from(n)
            }
        };
        if let Some(d) = &delay {
            d.disable();
        }
        answer
    });
    let took = t.elapsed();

    let expected = match work {
        Work::Search(100_000, _) => 1_299_709,
        Work::Search(20_000, _) => 224_737,
        _ => answer,
    };
    assert_eq!(
        black_box(answer),
        expected,
        "{} answered wrong",
        work.name()
    );
    let trace = recorder.map(TraceRecorder::finish);
    if let Some(d) = detector {
        d.stop();
    }
    Outcome {
        took,
        spans: trace.as_ref().map(|t| t.spans.len() as u64),
        dropped: trace.as_ref().map_or(0, |t| t.dropped),
        stalls: stalls.load(Ordering::Relaxed),
        delay: delay.map(|d| d.summary()),
    }
}

/// Per workload and variant: every time criterion took, and the last outcome.
type Seen = BTreeMap<(String, Variant), (Vec<Duration>, Outcome)>;

/// The median of `v` (not empty).
fn median<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The `q` quantile of `v` (not empty), nearest rank.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let testing = args.iter().any(|a| a == "--test");
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let seen: RefCell<Seen> = RefCell::default();
    for work in WORKS {
        let mut g = c.benchmark_group(format!("monitor/{}", work.name()));
        g.sampling_mode(SamplingMode::Flat);
        for &v in work.variants() {
            g.bench_function(BenchmarkId::from_parameter(v.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let o = run_once(work, v);
                        total += o.took;
                        let mut seen = seen.borrow_mut();
                        let e = seen.entry((work.name(), v)).or_default();
                        e.0.push(o.took);
                        e.1 = o;
                    }
                    total
                })
            });
        }
        g.finish();
    }
    c.final_summary();
    if listing {
        return;
    }
    let seen = seen.into_inner();

    // The interleaved pass: every variant once per round, rotating the order.
    let rounds = if testing { 1 } else { ROUNDS };
    let mut paired: BTreeMap<(String, Variant), Vec<Duration>> = BTreeMap::new();
    for work in WORKS {
        let vs = work.variants();
        for r in 0..rounds {
            for k in 0..vs.len() {
                let v = vs[(r + k) % vs.len()];
                let o = run_once(work, v);
                paired.entry((work.name(), v)).or_default().push(o.took);
            }
        }
    }

    // Fixed cost of a stall detector: starting and joining its watchdog thread.
    let cycles = if testing { 1 } else { 50 };
    let ev = EventLoop::new();
    let t = Instant::now();
    for _ in 0..cycles {
        StallDetector::start(&ev).stop();
    }
    let start_stop = t.elapsed() / cycles;

    // One clock read, as the observers take one or two per span.
    let reads = if testing { 1_000 } else { 5_000_000 };
    let t = Instant::now();
    for _ in 0..reads {
        black_box(Instant::now());
    }
    let clock_ns = t.elapsed().as_secs_f64() * 1e9 / f64::from(reads);

    println!(
        "\nmonitor costs: criterion median of every timed run, then {rounds} interleaved rounds \
         (ratio = variant / plain of the same round, median and quartiles; +ms = median extra \
         time per run; +ns/span = that / spans, shown from 10,000 spans a run)"
    );
    println!(
        "{:<17} {:<6} {:>8} {:>9} {:>7} {:>13} {:>7} {:>8} {:>8} {:>7} {:>6}",
        "workload",
        "variant",
        "crit ms",
        "rounds ms",
        "ratio",
        "p25-p75",
        "+ms",
        "spans",
        "+ns/span",
        "dropped",
        "stalls"
    );
    let dash = || String::from("-");
    let mut per_span_ns: BTreeMap<(String, Variant), f64> = BTreeMap::new();
    let mut spans_of: BTreeMap<String, u64> = BTreeMap::new();
    for work in WORKS {
        let name = work.name();
        let plain = &paired[&(name.clone(), Variant::Plain)];
        let spans = seen
            .get(&(name.clone(), Variant::Trace))
            .and_then(|(_, o)| o.spans.map(|s| s + o.dropped));
        if let Some(s) = spans {
            spans_of.insert(name.clone(), s);
        }
        for &v in work.variants() {
            let key = (name.clone(), v);
            // Absent when a criterion filter skipped it.
            let (crit, outcome) = seen.get(&key).cloned().unwrap_or_default();
            let times = &paired[&key];
            let ratios: Vec<f64> = times
                .iter()
                .zip(plain)
                .map(|(t, p)| t.as_secs_f64() / p.as_secs_f64())
                .collect();
            let extra_ns: Vec<f64> = times
                .iter()
                .zip(plain)
                .map(|(t, p)| (t.as_secs_f64() - p.as_secs_f64()) * 1e9)
                .collect();
            let extra = median(&extra_ns);
            let per_span = match spans {
                Some(s) if v != Variant::Plain && s >= 10_000 => {
                    let ns = extra / s as f64;
                    per_span_ns.insert(key.clone(), ns);
                    format!("{ns:.1}")
                }
                _ => dash(),
            };
            println!(
                "{:<17} {:<6} {:>8.2} {:>9.2} {:>6.3}x {:>6.3}-{:<6.3} {:>7.3} {:>8} {:>8} {:>7} {:>6}",
                name,
                v.name(),
                if crit.is_empty() {
                    f64::NAN
                } else {
                    ms(median(&crit))
                },
                ms(median(times)),
                median(&ratios),
                quantile(&ratios, 0.25),
                quantile(&ratios, 0.75),
                extra / 1e6,
                spans.map_or_else(dash, |s| s.to_string()),
                per_span,
                if v.trace() {
                    outcome.dropped.to_string()
                } else {
                    dash()
                },
                if v.stall() {
                    outcome.stalls.to_string()
                } else {
                    dash()
                },
            );
        }
        for &v in work.variants() {
            if let Some(d) = seen.get(&(name.clone(), v)).and_then(|(_, o)| o.delay) {
                println!("    {name} {:<5} (last run) {d}", v.name());
            }
        }
    }

    // The Batch(1000) search makes too few spans for its overhead to stand out of the noise:
    // the cost per span measured on the Every search, times its spans.
    let batch = WORKS[0].name();
    let every = WORKS[1].name();
    if let (Some(&spans), Some(plain)) = (
        spans_of.get(&batch),
        paired.get(&(batch.clone(), Variant::Plain)),
    ) {
        let plain_ns = median(plain).as_secs_f64() * 1e9;
        for v in [Variant::Noop, Variant::Stall, Variant::Trace] {
            if let Some(&ns) = per_span_ns.get(&(every.clone(), v)) {
                println!(
                    "expected on {batch}: {:<5} {spans} spans x {ns:.1} ns (from {every}) = \
                     {:.3} ms = {:.2}% of plain",
                    v.name(),
                    spans as f64 * ns / 1e6,
                    100.0 * spans as f64 * ns / plain_ns
                );
            }
        }
    }
    println!(
        "\nspans: callbacks and task polls per run, as the trace recorder counted them \
         (kept + dropped); a recorded span is {} bytes",
        std::mem::size_of::<TraceSpan>()
    );
    println!(
        "stall detector start + stop (watchdog thread spawned and joined): {:.1} us each, \
         mean of {cycles}",
        start_stop.as_secs_f64() * 1e6
    );
    println!("one Instant::now(): {clock_ns:.1} ns (mean of {reads})");
}
