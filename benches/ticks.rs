//! Tick-count benchmarks: the n-th prime search (nth 20,000 and 100,000) with every strategy
//! beside a 1 ms interval. Criterion times each search; every run's tick figures (fidelity, max
//! gap, ticks between chunks, chunk p99) are kept, written to `target/ticks-report.jsonl` (one
//! JSON object per strategy and size, from the last run) and printed as a table beside the
//! time, as a ratio to the sync search measured in the same run. For scale, tokio's
//! current-thread runtime yielding once per candidate (`tokio::task::yield_now`) runs too.
//!
//! Run: `cargo bench --bench ticks`. docs/benchmarks.md records a run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use executor::EventLoop;
use executor::chunk::Strategy;
use executor::demo::prime::{Mode, PrimeSearch, probe_search};
use executor::observe::{ProbeConfig, ProbeReport};

const SIZES: [u32; 2] = [20_000, 100_000];

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

fn probed(nth: u32, s: Mode) -> ProbeReport {
    let config = ProbeConfig::every(Duration::from_millis(1));
    let (p, report) = EventLoop::new().block_on(probe_search(nth, s, config));
    std::hint::black_box(p);
    report
}

/// tokio's current-thread runtime, `yield_now` after every candidate, a 1 ms interval beside it.
fn tokio_every(nth: u32) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let ticker = tokio::task::spawn_local(async {
            let mut iv = tokio::time::interval(Duration::from_millis(1));
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
            }
        });
        let mut search = PrimeSearch::new(nth);
        let p = loop {
            if let Some(p) = search.step() {
                break p;
            }
            tokio::task::yield_now().await;
        };
        ticker.abort();
        p
    })
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let reports: RefCell<BTreeMap<(u32, String), (ProbeReport, Duration)>> = RefCell::default();
    let times: RefCell<BTreeMap<(u32, String), Vec<Duration>>> = RefCell::default();
    for nth in SIZES {
        let mut g = c.benchmark_group(format!("ticks/{nth}"));
        for s in strategies() {
            g.bench_function(BenchmarkId::from_parameter(s), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let r = probed(nth, s);
                        let took = t.elapsed();
                        total += took;
                        times
                            .borrow_mut()
                            .entry((nth, s.to_string()))
                            .or_default()
                            .push(took);
                        reports.borrow_mut().insert((nth, s.to_string()), (r, took));
                    }
                    total
                })
            });
        }
        g.bench_function("tokio_yield_every", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    std::hint::black_box(tokio_every(nth));
                    let took = t.elapsed();
                    total += took;
                    times
                        .borrow_mut()
                        .entry((nth, "tokio_yield_every".into()))
                        .or_default()
                        .push(took);
                }
                total
            })
        });
        g.finish();
    }
    c.final_summary();

    let median = |v: &Vec<Duration>| {
        let mut v = v.clone();
        v.sort();
        v[v.len() / 2]
    };
    let times = times.into_inner();
    let reports = reports.into_inner();
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = std::path::Path::new(&dir).join("ticks-report.jsonl");
    let mut file = std::fs::File::create(&path).expect("create the ticks report");
    println!(
        "\n{:>7} {:<18} {:>10} {:>7} {:>8} {:>9} {:>9} {:>14} {:>10}",
        "nth",
        "strategy",
        "median ms",
        "vs sync",
        "chunks",
        "fidelity",
        "max gap",
        "ticks/gap",
        "chunk p99"
    );
    for nth in SIZES {
        let sync = median(&times[&(nth, "sync".to_string())]);
        let mut names: Vec<String> = strategies().iter().map(|s| s.to_string()).collect();
        names.push("tokio_yield_every".into());
        for name in names {
            let Some(t) = times.get(&(nth, name.clone())) else {
                continue;
            };
            let m = median(t);
            let ratio = m.as_secs_f64() / sync.as_secs_f64();
            match reports.get(&(nth, name.clone())) {
                Some((r, _)) => {
                    println!(
                        "{:>7} {:<18} {:>10.2} {:>6.2}x {:>8} {:>9.3} {:>7.2}ms {:>4}/{:.2}/{:<4} {:>8.3}ms",
                        nth,
                        name,
                        m.as_secs_f64() * 1e3,
                        ratio,
                        r.chunks,
                        r.fidelity,
                        r.max_gap.as_secs_f64() * 1e3,
                        r.between_min,
                        r.between_mean,
                        r.between_max,
                        r.chunk_p99.as_secs_f64() * 1e3
                    );
                    let line = r.to_json(&[
                        ("strategy", format!("\"{name}\"")),
                        ("nth", nth.to_string()),
                        ("median_ms", format!("{:.3}", m.as_secs_f64() * 1e3)),
                        ("ratio_vs_sync", format!("{ratio:.4}")),
                    ]);
                    writeln!(file, "{line}").unwrap();
                }
                None => println!(
                    "{:>7} {:<18} {:>10.2} {:>6.2}x   (no probe: for scale)",
                    nth,
                    name,
                    m.as_secs_f64() * 1e3,
                    ratio
                ),
            }
        }
    }
    println!(
        "\ntick figures of every strategy written to {}",
        path.display()
    );
}
