//! Calls an async function from synchronous code three ways and prints the median round trip of
//! each: a persistent `Bridge` worker, a fresh thread per call, a fresh process per call.
//!
//! ```text
//! cargo run --release --example sync_bridge [-- --calls N] [--json]
//! ```

use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use executor::{EventLoop, threads::Bridge};

/// The trivial async function every path calls (the same one `--child` runs in the process path).
async fn trivial(x: u64) -> u64 {
    executor::yield_now().await;
    x + 1
}

const USAGE: &str = "usage: sync_bridge [--calls N] [--json]
  --calls N   calls per path, N >= 1 (default 200); the median is reported
  --json      print one JSON object {\"bridge_us\", \"thread_us\", \"process_us\"}";

/// What the command line asked for.
enum Mode {
    /// Time the three paths.
    Measure { calls: usize, json: bool },
    /// Be the child process of the third path: make one call, print the result.
    Child(u64),
    /// Print the usage.
    Help,
}

fn parse_args(args: &[String]) -> Result<Mode, String> {
    let (mut calls, mut json) = (200, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--calls" => {
                let v = it.next().ok_or("--calls needs a value")?;
                calls = match v.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("--calls: expected an integer >= 1, got {v:?}")),
                };
            }
            // Internal: how the example runs itself as the per-call child process.
            "--child" => {
                let v = it.next().ok_or("--child needs a value")?;
                return match v.parse::<u64>() {
                    Ok(x) if x < u64::MAX => Ok(Mode::Child(x)),
                    _ => Err(format!(
                        "--child: X must be an unsigned integer below {}, got {v:?}",
                        u64::MAX
                    )),
                };
            }
            "-h" | "--help" => return Ok(Mode::Help),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Mode::Measure { calls, json })
}

/// Median of `calls` timed runs of `call` (after a short warm-up), in microseconds.
fn median_us(calls: usize, mut call: impl FnMut() -> u64) -> f64 {
    for _ in 0..calls.min(10) {
        assert_eq!(call(), 2);
    }
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            let out = call();
            let elapsed = t.elapsed();
            assert_eq!(out, 2, "wrong result");
            elapsed
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2].as_secs_f64() * 1e6
}

fn measure(calls: usize, json: bool) -> ExitCode {
    let bridge = match Bridge::new() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("sync_bridge: cannot start the bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sync_bridge: cannot find my own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bridge_us = median_us(calls, || bridge.call(|| trivial(1)).expect("bridge call"));
    let thread_us = median_us(calls, || {
        thread::spawn(|| EventLoop::new().block_on(trivial(1)))
            .join()
            .expect("thread call")
    });
    // As `spawnSync` would: start a process, wait for it, read its answer from stdout.
    let process_us = median_us(calls, || {
        let out = Command::new(&exe)
            .args(["--child", "1"])
            .output()
            .expect("spawn the child process");
        assert!(out.status.success(), "child failed: {:?}", out.status);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("child printed a number")
    });
    if json {
        println!(
            "{{\"bridge_us\": {bridge_us:.2}, \"thread_us\": {thread_us:.2}, \"process_us\": {process_us:.2}}}"
        );
    } else {
        println!("sync call round trip: median of {calls} calls of a trivial async fn\n");
        println!("{:<22} {:>12} {:>10}", "path", "median", "vs bridge");
        for (name, us) in [
            ("bridge (persistent)", bridge_us),
            ("thread per call", thread_us),
            ("process per call", process_us),
        ] {
            println!("{name:<22} {us:>9.1} µs {:>9.1}x", us / bridge_us);
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(std::ffi::OsString::into_string)
        .collect();
    let Ok(args) = args else {
        eprintln!("sync_bridge: an argument is not valid UTF-8\n{USAGE}");
        return ExitCode::from(2);
    };
    match parse_args(&args) {
        Ok(Mode::Measure { calls, json }) => measure(calls, json),
        Ok(Mode::Child(x)) => {
            println!("{}", executor::block_on(trivial(x)));
            ExitCode::SUCCESS
        }
        Ok(Mode::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("sync_bridge: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
