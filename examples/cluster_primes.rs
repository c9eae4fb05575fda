//! Runs K independent prime searches on a `Cluster` of 1, 2, ..., N loops and prints how the
//! wall time scales. CPU-bound work scales with cores, not loops: on a 2-core machine expect
//! about 2x at best.
//!
//! ```text
//! cargo run --release --example cluster_primes [-- --jobs K] [--loops N] [--nth M] [--least-loaded]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use executor::{threads::Cluster, threads::Placement};

const USAGE: &str = "usage: cluster_primes [--jobs K] [--loops N] [--nth M] [--least-loaded]
  --jobs K        independent searches per run (1..=10000, default 8)
  --loops N       run on 1..=N loops (N in 1..=256, default 4)
  --nth M         each search finds the M-th prime (1..=2000000, default 100000)
  --least-loaded  place jobs on the least-loaded loop (default: round-robin)";

/// The command line.
struct Args {
    /// Searches per run.
    jobs: usize,
    /// Largest cluster size tried.
    loops: usize,
    /// Which prime each search finds.
    nth: usize,
    /// Placement policy.
    placement: Placement,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut out = Args {
        jobs: 8,
        loops: 4,
        nth: 100_000,
        placement: Placement::RoundRobin,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut count = |name: &str, max: usize| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{name}: expected an integer in 1..={max}, got {v:?}"
                )),
            }
        };
        match arg.as_str() {
            "--jobs" => out.jobs = count("--jobs", 10_000)?,
            "--loops" => out.loops = count("--loops", 256)?,
            "--nth" => out.nth = count("--nth", 2_000_000)?,
            "--least-loaded" => out.placement = Placement::LeastLoaded,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(out))
}

/// Runs `jobs` searches on a cluster of `loops` loops; returns the wall time, the answers and
/// the tasks each loop ran.
fn run(args: &Args, loops: usize) -> std::io::Result<(Duration, Vec<u64>, Vec<u64>)> {
    let cluster = Cluster::builder()
        .loops(loops)
        .placement(args.placement)
        .build()?;
    let nth = args.nth;
    let start = Instant::now();
    let handles: Vec<_> = (0..args.jobs)
        .map(|_| {
            cluster.spawn(move || async move { executor::demo::prime::find_nth_prime(nth as u32) })
        })
        .collect();
    let answers = handles
        .into_iter()
        .map(|h| h.join().expect("a search panicked"))
        .collect();
    let elapsed = start.elapsed();
    Ok((elapsed, answers, cluster.join().tasks_run))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("cluster_primes: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} searches for the {}th prime, {:?} placement, {cores} cores available\n",
        args.jobs, args.nth, args.placement
    );
    println!(
        "{:>5} {:>10} {:>8}  tasks per loop",
        "loops", "time", "speedup"
    );
    let mut baseline = None;
    for loops in 1..=args.loops {
        let (elapsed, answers, per_loop) = match run(&args, loops) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cluster_primes: cannot start {loops} loops: {e}");
                return ExitCode::FAILURE;
            }
        };
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "searches disagree"
        );
        let base = *baseline.get_or_insert(elapsed);
        println!(
            "{loops:>5} {:>8.1}ms {:>7.2}x  {per_loop:?}",
            elapsed.as_secs_f64() * 1e3,
            base.as_secs_f64() / elapsed.as_secs_f64()
        );
    }
    if args.loops > cores {
        println!("\n(beyond {cores} loops, the loops share {cores} cores: no further speedup)");
    }
    ExitCode::SUCCESS
}
