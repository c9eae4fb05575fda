//! The blocked-server benchmark: the example's HTTP server in each mode (sync, chunked, offload)
//! on loopback, one `GET /primes?nth=N` and, meanwhile, `/home` every 10 ms from an open-loop
//! client; prints p50/p99/max `/home` latency of the requests sent while the prime was pending,
//! per mode and size (nth 200,000 and 1,000,000: ~0.2 s and ~1 s of blocking search).
//!
//! A plain harness (`harness = false`, no criterion): the figure is a latency distribution under
//! a workload, not the time of a repeatable closure.
//!
//! Run: `cargo bench --bench server` (sizes: `SERVER_BENCH_NTH=100000,1000000`).
//! docs/benchmarks.md records a run.

// (`unused_imports`: clippy builds this harness-less bench with `cfg(test)` but without the
// unit tests at the bottom of `server.rs`, which leaves their `use super::*` unused.)
#[allow(dead_code, unused_imports)]
#[path = "../examples/blocking_server/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../tests/support/side_by_side.rs"]
mod side_by_side;

use std::time::Duration;

use server::Mode;
use side_by_side::{TABLE_HEADER, measure, table_row};

fn main() {
    // `cargo bench` passes `--bench`; a filter or other flags mean nothing here.
    let sizes: Vec<u32> = std::env::var("SERVER_BENCH_NTH")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|s| {
                    s.trim()
                        .parse()
                        .expect("SERVER_BENCH_NTH: comma-separated numbers")
                })
                .collect()
        })
        .unwrap_or_else(|| vec![200_000, 1_000_000]);
    println!("blocked-server benchmark: {}", side_by_side::machine());
    println!("/home every 10 ms (open loop) while one /primes?nth=N is pending; latencies in ms");
    println!("`before`: /home answered before the prime response arrived\n");
    println!("{TABLE_HEADER}");
    for &nth in &sizes {
        for mode in Mode::ALL {
            let run = measure(mode, nth, Duration::from_millis(10), 5, 1000);
            assert!(run.homes.iter().all(|h| h.ok), "a /home request failed");
            println!("{}", table_row(&run));
        }
    }
}
