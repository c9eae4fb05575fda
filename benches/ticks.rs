//! Tick-count benchmarks: the n-th prime search (nth 20,000 and 100,000) beside a 1 ms interval
//! that counts its ticks, cut by each strategy, on three runtimes in one run:
//! - **executor** (this crate): every `Strategy` and `Mode`, measured by the `TickProbe`;
//! - **tokio** current-thread (a `LocalSet`): `tokio::task::yield_now` after every candidate,
//!   after every 1,000, and after 500 us of work (the clock read every 8 candidates), beside a
//!   `tokio::time::interval` of 1 ms with `MissedTickBehavior::Delay` (Node.js's rule: the next
//!   tick is due a period after the late one ran), its ticks stamped as they run;
//! - **node** (when `node` is on the PATH; otherwise the rows are skipped with a printed line):
//!   `benches/ticks_node.js`, the seed's `findNthPrimeAsync` (a `setImmediate` per candidate),
//!   its batch and time-slice variants and the blocking search, beside a `setInterval(1 ms)`.
//!
//! Every run gives the same figures: elapsed time, CPU time (the loop thread's; Node.js's whole
//! process), chunks, ticks, the ideal tick count `floor(elapsed / 1 ms)`, fidelity (ticks /
//! ideal) and the longest gap without a tick (counting the run's start and end). Criterion
//! times our rows and tokio's (medians of 10 runs); Node.js's are the medians of 7 runs of the
//! script (its start-up excluded: the script times itself). Ratios are to this crate's sync
//! search in the same run, in wall time and in CPU time (the machine is shared: CPU time moves
//! less with the load). Written to `target/ticks-report.jsonl` (one object per row) and drawn
//! in `target/ticks-chart.svg` (overhead and fidelity per row, one panel per size).
//!
//! Run: `cargo bench --bench ticks`. docs/benchmarks.md records a run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use executor::EventLoop;
use executor::chunk::Strategy;
use executor::demo::prime::{Mode, PrimeSearch, probe_search};
use executor::observe::ProbeConfig;

const SIZES: [u32; 2] = [20_000, 100_000];
const PERIOD: Duration = Duration::from_millis(1);
const NODE_RUNS: usize = 7;

fn strategies() -> Vec<Mode> {
    let us = Duration::from_micros;
    vec![
        Mode::Sync,
        Strategy::Every.into(),
        Strategy::Batch(1000).into(),
        Strategy::Slice(us(500)).into(),
        Strategy::Adaptive { target: us(500) }.into(),
        Mode::Offload,
    ]
}

/// What one run did to the interval beside it.
#[derive(Clone, Debug)]
struct Figures {
    elapsed: Duration,
    chunks: u64,
    ticks: u64,
    ideal: u64,
    fidelity: f64,
    max_gap: Duration,
}

impl Figures {
    /// From tick offsets (ns from the start) and the run's length.
    fn from_ticks(tick_at: &[u64], elapsed: Duration, chunks: u64) -> Figures {
        let end = elapsed.as_nanos() as u64;
        let ideal = end / PERIOD.as_nanos() as u64;
        let ticks = tick_at.len() as u64;
        let mut max_gap = 0;
        let mut prev = 0;
        for &t in tick_at.iter().chain([end].iter()) {
            max_gap = max_gap.max(t.saturating_sub(prev));
            prev = t;
        }
        Figures {
            elapsed,
            chunks,
            ticks,
            ideal,
            fidelity: if ideal == 0 {
                1.0
            } else {
                ticks as f64 / ideal as f64
            },
            max_gap: Duration::from_nanos(max_gap),
        }
    }
}

/// One run: wall time, CPU time (`None` where the thread's CPU time misses the work), figures.
type Run = (Duration, Option<Duration>, Figures);

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant the OS knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn ours(nth: u32, s: Mode) -> Run {
    let (t, c) = (Instant::now(), thread_cpu());
    let config = ProbeConfig::every(PERIOD);
    let (p, r) = EventLoop::new().block_on(probe_search(nth, s, config));
    let (wall, cpu) = (t.elapsed(), thread_cpu() - c);
    std::hint::black_box(p);
    let f = Figures::from_ticks(&r.tick_at, r.elapsed, r.chunks);
    (wall, (s != Mode::Offload).then_some(cpu), f)
}

/// tokio's counterparts of our strategies.
#[derive(Clone, Copy)]
enum TokioCut {
    Every,
    Batch(u32),
    Slice(Duration),
}

impl TokioCut {
    fn name(self) -> String {
        match self {
            TokioCut::Every => "every".into(),
            TokioCut::Batch(n) => format!("batch({n})"),
            TokioCut::Slice(d) => format!("slice({}us)", d.as_micros()),
        }
    }
}

fn tokio_run(nth: u32, cut: TokioCut) -> Run {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let (t, c) = (Instant::now(), thread_cpu());
    let (p, f) = local.block_on(&rt, async move {
        let t0 = Instant::now();
        let ticks = Rc::new(RefCell::new(Vec::new()));
        let tk = ticks.clone();
        let ticker = tokio::task::spawn_local(async move {
            let mut iv = tokio::time::interval(PERIOD);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            iv.tick().await; // tokio's first tick is immediate; Node.js's comes a period later
            loop {
                iv.tick().await;
                tk.borrow_mut().push(t0.elapsed().as_nanos() as u64);
            }
        });
        let mut search = PrimeSearch::new(nth);
        let mut chunks = 1;
        let mut since = 0u32;
        let mut slice_start = Instant::now();
        let p = loop {
            if let Some(p) = search.step() {
                break p;
            }
            since += 1;
            let end = match cut {
                TokioCut::Every => true,
                TokioCut::Batch(n) => since == n,
                TokioCut::Slice(d) => since % 8 == 0 && slice_start.elapsed() >= d,
            };
            if end {
                tokio::task::yield_now().await;
                chunks += 1;
                since = 0;
                slice_start = Instant::now();
            }
        };
        let elapsed = t0.elapsed();
        ticker.abort();
        let f = Figures::from_ticks(&ticks.borrow(), elapsed, chunks);
        (p, f)
    });
    let (wall, cpu) = (t.elapsed(), thread_cpu() - c);
    std::hint::black_box(p);
    (wall, Some(cpu), f)
}

/// Node.js's rows: `NODE_RUNS` runs of each strategy, or `None` without `node`.
fn node_runs(nth: u32) -> Option<Vec<(String, Vec<Run>)>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ticks_node.js");
    let cuts = [
        ("sync", "sync".to_string()),
        ("every", "every".to_string()),
        ("batch:1000", "batch(1000)".to_string()),
        ("slice:500", "slice(500us)".to_string()),
    ];
    let mut out = Vec::new();
    for (arg, name) in cuts {
        let res = Command::new("node")
            .arg(script)
            .arg(nth.to_string())
            .arg(arg)
            .arg(NODE_RUNS.to_string())
            .output();
        let output = match res {
            Ok(o) if o.status.success() => o,
            Ok(o) => panic!(
                "node {script} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(_) => return None,
        };
        let runs = String::from_utf8(output.stdout)
            .expect("node printed UTF-8")
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("node printed JSON");
                let ms = |k: &str| Duration::from_secs_f64(v[k].as_f64().unwrap() / 1e3);
                let ticks: Vec<u64> = v["ticks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| (t.as_f64().unwrap() * 1e6) as u64)
                    .collect();
                let elapsed = ms("elapsed_ms");
                let chunks = v["chunks"].as_u64().unwrap();
                (
                    elapsed,
                    Some(ms("cpu_ms")),
                    Figures::from_ticks(&ticks, elapsed, chunks),
                )
            })
            .collect();
        out.push((name, runs));
    }
    Some(out)
}

/// One table row: the run of median wall time (its figures), and the median CPU time.
struct Row {
    runtime: &'static str,
    strategy: String,
    wall: Duration,
    cpu: Option<Duration>,
    f: Figures,
}

fn row(runtime: &'static str, strategy: String, mut runs: Vec<Run>) -> Row {
    runs.sort_by_key(|r| r.0);
    let mid = runs[runs.len() / 2].clone();
    let mut cpus: Vec<Duration> = runs.iter().filter_map(|r| r.1).collect();
    cpus.sort();
    Row {
        runtime,
        strategy,
        wall: mid.0,
        cpu: cpus.get(cpus.len() / 2).copied(),
        f: mid.2,
    }
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    type Key = (u32, &'static str, String);
    let runs: RefCell<BTreeMap<Key, Vec<Run>>> = RefCell::default();
    let mut order: Vec<Key> = Vec::new();
    let timed = |iters: u64, key: &Key, f: &dyn Fn() -> Run| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let r = f();
            total += r.0;
            runs.borrow_mut().entry(key.clone()).or_default().push(r);
        }
        total
    };
    let tokio_cuts = [
        TokioCut::Every,
        TokioCut::Batch(1000),
        TokioCut::Slice(Duration::from_micros(500)),
    ];
    for nth in SIZES {
        let mut g = c.benchmark_group(format!("ticks/{nth}"));
        for s in strategies() {
            let key = (nth, "executor", s.to_string());
            order.push(key.clone());
            g.bench_function(BenchmarkId::new("executor", s), |b| {
                b.iter_custom(|iters| timed(iters, &key, &|| ours(nth, s)))
            });
        }
        for cut in tokio_cuts {
            let key = (nth, "tokio", cut.name());
            order.push(key.clone());
            g.bench_function(BenchmarkId::new("tokio", cut.name()), |b| {
                b.iter_custom(|iters| timed(iters, &key, &|| tokio_run(nth, cut)))
            });
        }
        g.finish();
    }
    c.final_summary();

    let mut rows: BTreeMap<u32, Vec<Row>> = BTreeMap::new();
    let mut runs = runs.into_inner();
    for key in order {
        let r = runs.remove(&key).expect("every benchmark ran");
        rows.entry(key.0).or_default().push(row(key.1, key.2, r));
    }
    let mut node_missing = false;
    for nth in SIZES {
        match node_runs(nth) {
            Some(list) => {
                for (name, r) in list {
                    rows.entry(nth).or_default().push(row("node", name, r));
                }
            }
            None => node_missing = true,
        }
    }
    if node_missing {
        println!("\n`node` is not on the PATH: the Node.js rows are skipped");
    }

    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = std::path::Path::new(&dir);
    let mut file =
        std::fs::File::create(dir.join("ticks-report.jsonl")).expect("create the ticks report");
    println!(
        "\n{:>7} {:<9} {:<16} {:>9} {:>7} {:>8} {:>7} {:>6} {:>6} {:>8} {:>8}",
        "nth",
        "runtime",
        "strategy",
        "median ms",
        "vs sync",
        "cpu/sync",
        "chunks",
        "ticks",
        "ideal",
        "fidelity",
        "max gap"
    );
    let mut ratios: BTreeMap<u32, Vec<(String, f64, f64)>> = BTreeMap::new();
    for (&nth, list) in &rows {
        let sync = list
            .iter()
            .find(|r| r.runtime == "executor" && r.strategy == "sync")
            .expect("the sync row ran");
        let (sync_wall, sync_cpu) = (sync.wall.as_secs_f64(), sync.cpu.unwrap().as_secs_f64());
        for r in list {
            let ratio = r.wall.as_secs_f64() / sync_wall;
            let cpu_ratio = r.cpu.map(|c| c.as_secs_f64() / sync_cpu);
            let cpu_col = cpu_ratio.map_or("-".to_string(), |x| format!("{x:.2}x"));
            println!(
                "{:>7} {:<9} {:<16} {:>9.2} {:>6.2}x {:>8} {:>7} {:>6} {:>6} {:>8.3} {:>6.2}ms",
                nth,
                r.runtime,
                r.strategy,
                r.wall.as_secs_f64() * 1e3,
                ratio,
                cpu_col,
                r.f.chunks,
                r.f.ticks,
                r.f.ideal,
                r.f.fidelity,
                r.f.max_gap.as_secs_f64() * 1e3,
            );
            writeln!(
                file,
                "{{\"nth\":{nth},\"runtime\":\"{}\",\"strategy\":\"{}\",\"median_ms\":{:.3},\
                 \"ratio_vs_sync\":{ratio:.4},\"cpu_ratio_vs_sync\":{},\"elapsed_ms\":{:.3},\
                 \"chunks\":{},\"ticks\":{},\"ideal_ticks\":{},\"fidelity\":{:.4},\
                 \"max_gap_ms\":{:.3}}}",
                r.runtime,
                r.strategy,
                r.wall.as_secs_f64() * 1e3,
                cpu_ratio.map_or("null".to_string(), |x| format!("{x:.4}")),
                r.f.elapsed.as_secs_f64() * 1e3,
                r.f.chunks,
                r.f.ticks,
                r.f.ideal,
                r.f.fidelity,
                r.f.max_gap.as_secs_f64() * 1e3,
            )
            .unwrap();
            ratios.entry(nth).or_default().push((
                format!("{} {}", r.runtime, r.strategy),
                ratio,
                r.f.fidelity,
            ));
        }
    }
    let svg = chart(&ratios);
    std::fs::write(dir.join("ticks-chart.svg"), svg).expect("write the chart");
    println!(
        "\nrows written to {}, chart to {}",
        dir.join("ticks-report.jsonl").display(),
        dir.join("ticks-chart.svg").display()
    );
}

/// Horizontal bars, one panel per size: the time against the sync search (log scale, 1x to
/// 32x) and the interval's fidelity (0 to 1), one row per runtime and strategy.
fn chart(panels: &BTreeMap<u32, Vec<(String, f64, f64)>>) -> String {
    let (label_w, bar_w, gap, row_h) = (190.0, 300.0, 40.0, 18.0);
    let rows: usize = panels.values().map(Vec::len).max().unwrap_or(0);
    let panel_h = 40.0 + rows as f64 * row_h;
    let width = label_w + 2.0 * bar_w + gap + 90.0;
    let height = 50.0 + panels.len() as f64 * (panel_h + 20.0);
    let colour = |name: &str| match name.split(' ').next() {
        Some("executor") => "#2b6cb0",
        Some("tokio") => "#c05621",
        _ => "#2f855a",
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\">n-th prime beside a 1 ms \
         interval: time vs this crate's sync search (log scale) and interval fidelity</text>\n"
    );
    let mut y0 = 40.0;
    for (nth, list) in panels {
        let x1 = label_w;
        let x2 = label_w + bar_w + gap;
        let _ = write!(
            s,
            "<text x=\"10\" y=\"{}\" font-weight=\"bold\">nth = {nth}</text>\n\
             <text x=\"{x1}\" y=\"{}\">time / sync (1x to 32x)</text>\n\
             <text x=\"{x2}\" y=\"{}\">fidelity (0 to 1)</text>\n",
            y0 + 12.0,
            y0 + 28.0,
            y0 + 28.0
        );
        for k in [1.0f64, 2.0, 4.0, 8.0, 16.0, 32.0] {
            let x = x1 + bar_w * k.log2() / 5.0;
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" fill=\"#999\" text-anchor=\"middle\">{k}x</text>",
                y0 + 32.0,
                y0 + panel_h,
                y0 + panel_h + 10.0
            );
        }
        for (i, (name, ratio, fidelity)) in list.iter().enumerate() {
            let y = y0 + 34.0 + i as f64 * row_h;
            let w1 = bar_w * ratio.max(1.0).log2().min(5.0) / 5.0;
            let w2 = bar_w * fidelity.clamp(0.0, 1.0);
            let c = colour(name);
            let _ = writeln!(
                s,
                "<text x=\"10\" y=\"{:.1}\">{name}</text>\
                 <rect x=\"{x1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{c}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{ratio:.2}x</text>\
                 <rect x=\"{x2}\" y=\"{y:.1}\" width=\"{w2:.1}\" height=\"{:.1}\" fill=\"{c}\" \
                 fill-opacity=\"0.6\"/><text x=\"{:.1}\" y=\"{:.1}\">{fidelity:.3}</text>",
                y + 12.0,
                w1.max(1.0),
                row_h - 4.0,
                x1 + w1.max(1.0) + 4.0,
                y + 12.0,
                row_h - 4.0,
                x2 + w2 + 4.0,
                y + 12.0,
            );
        }
        y0 += panel_h + 20.0;
    }
    s.push_str("</svg>\n");
    s
}
