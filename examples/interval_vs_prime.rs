//! Runs the n-th prime search with every chunking strategy beside a 1 ms interval and shows, in
//! one table, what each does to the interval: `cargo run --release --example interval_vs_prime`.

#[path = "support/cli.rs"]
mod cli;

use std::process::ExitCode;
use std::time::Duration;

use executor::chunk::Strategy;
use executor::demo::prime::{Mode, probe_search};
use executor::observe::{ProbeConfig, ProbeReport, render_profile_svg};
use executor::observe::{Trace, TraceFormat, TraceRecorder, write_trace_file};
use executor::{EventLoop, time::MissedTickBehavior};

const USAGE: &str = "\
usage: interval_vs_prime [options]
  --nth N              which prime to find (1..=2000000, default 100000)
  --interval-us N      the interval's period in microseconds (50..=1000000, default 1000)
  --strategies LIST    comma-separated: sync,every,batch,slice,adaptive,offload (default: all)
  --batch N            batch size for `batch` (1..=100000000, default 1000)
  --slice-us N         slice length for `slice` in microseconds (1..=1000000, default 500)
  --target-us N        chunk target for `adaptive` in microseconds (1..=1000000, default 500)
  --missed skip|burst  what the interval does with missed ticks (default skip, as Node.js)
  --json               one JSON object per strategy per line instead of the table
  --svg FILE           also draw the execution profile of every run to FILE (whole runs,
                       and a zoom on the first five interval periods); FILE must be writable
                       at startup
  --trace FILE         also record every callback and task poll of every listed strategy's run
                       (one trace per run) to FILE: Chrome Trace Event JSON if FILE ends in .json
                       (one process per strategy; open in ui.perfetto.dev or chrome://tracing),
                       an SVG timeline if it ends in .svg (one block of phase lanes per strategy);
                       the recorder's small cost is included in the timings; FILE must be
                       writable at startup
  --trace-limit N      spans kept per run, later ones only counted (1..=10000000, default 100000)
  --help               this text";

struct Args {
    nth: u32,
    interval: Duration,
    strategies: Vec<Mode>,
    missed: MissedTickBehavior,
    json: bool,
    svg: Option<String>,
    trace: Option<String>,
    trace_limit: usize,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut nth = 100_000;
    let mut interval_us = 1000;
    let mut names: Vec<String> = ["sync", "every", "batch", "slice", "adaptive", "offload"]
        .map(String::from)
        .to_vec();
    let (mut batch, mut slice_us, mut target_us) = (1000, 500, 500);
    let mut missed = MissedTickBehavior::Skip;
    let (mut json, mut svg, mut trace) = (false, None, None);
    let mut trace_limit = 100_000;
    let number = cli::whole;
    let mut it = cli::utf8_args()?.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nth" => nth = number(&a, it.next(), 1, 2_000_000)? as u32,
            "--interval-us" => interval_us = number(&a, it.next(), 50, 1_000_000)?,
            "--batch" => batch = number(&a, it.next(), 1, 100_000_000)? as u32,
            "--slice-us" => slice_us = number(&a, it.next(), 1, 1_000_000)?,
            "--target-us" => target_us = number(&a, it.next(), 1, 1_000_000)?,
            "--strategies" => {
                let v = it.next().ok_or(
                    "--strategies needs a value (comma-separated: sync, every, batch, slice, \
                     adaptive, offload)",
                )?;
                names = v.split(',').map(|s| s.trim().to_string()).collect();
            }
            "--missed" => {
                missed = match it.next().as_deref() {
                    Some("skip") => MissedTickBehavior::Skip,
                    Some("burst") => MissedTickBehavior::Burst,
                    Some(other) => {
                        return Err(format!("--missed: expected skip or burst, got `{other}`"));
                    }
                    None => return Err("--missed needs a value (skip or burst)".into()),
                }
            }
            "--json" => json = true,
            "--svg" => {
                let f = it.next().ok_or("--svg needs a file name")?;
                cli::check_writable("--svg", &f)?;
                svg = Some(f);
            }
            "--trace" => {
                let f = it
                    .next()
                    .ok_or("--trace needs a file name (ending in .json or .svg)")?;
                if TraceFormat::from_path(&f).is_none() {
                    return Err(format!("--trace: `{f}` must end in .json or .svg"));
                }
                cli::check_writable("--trace", &f)?;
                trace = Some(f);
            }
            "--trace-limit" => trace_limit = number(&a, it.next(), 1, 10_000_000)? as usize,
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown option `{other}` (the options are below)")),
        }
    }
    let mut strategies = Vec::new();
    for n in &names {
        strategies.push(match n.as_str() {
            "sync" => Mode::Sync,
            "every" => Mode::Chunked(Strategy::Every),
            "batch" => Mode::Chunked(Strategy::Batch(batch)),
            "slice" => Mode::Chunked(Strategy::Slice(Duration::from_micros(slice_us))),
            "adaptive" => Mode::Chunked(Strategy::Adaptive {
                target: Duration::from_micros(target_us),
            }),
            "offload" => Mode::Offload,
            other => {
                return Err(format!(
                    "--strategies: unknown strategy `{other}` (sync, every, batch, slice, \
                     adaptive, offload)"
                ));
            }
        });
    }
    Ok(Some(Args {
        nth,
        interval: Duration::from_micros(interval_us),
        strategies,
        missed,
        json,
        svg,
        trace,
        trace_limit,
    }))
}

/// Runs one search with `strategy` beside the probe's interval, on a fresh loop, recording its
/// trace (at most `trace_limit` spans) if asked.
fn run(
    nth: u32,
    mode: Mode,
    config: ProbeConfig,
    trace_limit: Option<usize>,
) -> (u64, ProbeReport, Option<Trace>) {
    let ev = EventLoop::new();
    let recorder = trace_limit.map(|n| TraceRecorder::with_limit(&ev, n));
    let (p, report) = ev.block_on(probe_search(nth, mode, config));
    (p, report, recorder.map(TraceRecorder::finish))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("interval_vs_prime: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = ProbeConfig {
        period: args.interval,
        missed: args.missed,
    };
    let limit = |s: Mode| {
        args.trace
            .as_ref()
            .filter(|_| args.strategies.contains(&s))
            .map(|_| args.trace_limit)
    };
    // The sync run is the baseline every overhead is measured against, printed or not.
    let (sync_prime, sync_report, mut sync_trace) =
        run(args.nth, Mode::Sync, config, limit(Mode::Sync));
    let sync_ms = sync_report.elapsed.as_secs_f64() * 1e3;
    if !args.json {
        println!(
            "n-th prime search, nth = {}, beside a {} us interval (missed ticks: {:?})\n",
            args.nth,
            args.interval.as_micros(),
            args.missed
        );
        println!(
            "{:<16} {:>8} {:>9} {:>6} {:>6} {:>6} {:>9} {:>8} {:>16} {:>10} {:>9}",
            "strategy",
            "prime",
            "elapsed",
            "vs",
            "chunks",
            "ticks",
            "ideal",
            "fidelity",
            "max gap",
            "ticks/gap",
            "chunk p99"
        );
        println!(
            "{:<16} {:>8} {:>9} {:>6} {:>6} {:>6} {:>9} {:>8} {:>16} {:>10} {:>9}",
            "", "", "ms", "sync", "", "", "", "", "ms", "min/mean/max", "ms"
        );
    }
    let mut runs = Vec::new();
    let mut traces: Vec<(String, Trace)> = Vec::new();
    for &s in &args.strategies {
        let (prime, r, trace) = if s == Mode::Sync {
            (sync_prime, sync_report.clone(), sync_trace.take())
        } else {
            run(args.nth, s, config, limit(s))
        };
        if let Some(t) = trace {
            traces.push((s.to_string(), t));
        }
        assert_eq!(prime, sync_prime, "{s} found a different prime");
        let ms = r.elapsed.as_secs_f64() * 1e3;
        if args.json {
            println!(
                "{}",
                r.to_json(&[
                    ("strategy", format!("\"{s}\"")),
                    ("nth", args.nth.to_string()),
                    ("prime", prime.to_string()),
                    ("overhead_vs_sync", format!("{:.4}", ms / sync_ms)),
                ])
            );
        } else {
            println!(
                "{:<16} {:>8} {:>9.1} {:>5.2}x {:>6} {:>6} {:>6} {:>9.3} {:>8.2} {:>5}/{:<4.2}/{:<5} {:>9.3}",
                s.to_string(),
                prime,
                ms,
                ms / sync_ms,
                r.chunks,
                r.ticks,
                r.ideal_ticks,
                r.fidelity,
                r.max_gap.as_secs_f64() * 1e3,
                r.between_min,
                r.between_mean,
                r.between_max,
                r.chunk_p99.as_secs_f64() * 1e3
            );
        }
        runs.push((s.to_string(), r));
    }
    if !args.json {
        println!(
            "\nfidelity = ticks / floor(elapsed / period); ticks/gap = interval ticks that ran \
             between two chunks\n(at most 1 with Node.js's skip behaviour: an interval runs once \
             per timers phase)."
        );
    }
    if let Some(path) = &args.svg {
        let refs: Vec<(String, &ProbeReport)> = runs.iter().map(|(n, r)| (n.clone(), r)).collect();
        let title = format!(
            "nth prime {} beside a {} us interval",
            args.nth,
            args.interval.as_micros()
        );
        if let Err(e) = std::fs::write(
            path,
            render_profile_svg(&title, &refs, Some(args.interval * 5)),
        ) {
            eprintln!("interval_vs_prime: cannot write {path}: {e}");
            return ExitCode::from(1);
        }
        if !args.json {
            println!("execution profile written to {path}");
        }
    }
    if let Some(path) = &args.trace {
        let refs: Vec<(&str, &Trace)> = traces.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let title = format!(
            "nth prime {} beside a {} us interval: what the loop ran",
            args.nth,
            args.interval.as_micros()
        );
        if let Err(e) = write_trace_file(path, &title, &refs) {
            eprintln!("interval_vs_prime: cannot write {path}: {e}");
            return ExitCode::from(1);
        }
        if !args.json {
            let dropped: u64 = traces.iter().map(|(_, t)| t.dropped).sum();
            println!(
                "trace of {} runs written to {path}{}",
                traces.len(),
                if dropped > 0 {
                    format!(" ({dropped} spans past --trace-limit not kept)")
                } else {
                    String::new()
                }
            );
        }
    }
    ExitCode::SUCCESS
}
