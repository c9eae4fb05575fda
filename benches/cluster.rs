//! The pitfall of "more nodes", in numbers: `/home` p50/p99/max while k = 0, 1, ..., N+1 heavy
//! `/primes?nth=N` run at once, for the example server as a cluster of N loops (inner sync, with
//! each dispatch: Node.js's round-robin, `SO_REUSEPORT`, load-aware; inner chunked) beside one
//! loop in chunked and offload modes. The measurement is `tests/support/pitfall.rs`.
//!
//! A plain harness (`harness = false`): the figure is a latency distribution under a workload.
//!
//! Run: `cargo bench --bench cluster` (`CLUSTER_BENCH_LOOPS=2`, `CLUSTER_BENCH_NTH=1000000`).
//! With `CLUSTER_BENCH_ADDR=host:port` it measures that server instead (k = 0 ..=
//! `CLUSTER_BENCH_MAX_K`, default 3, rows labelled `CLUSTER_BENCH_LABEL`): `benches/balanced.sh`
//! points it at a load balancer. docs/benchmarks.md records a run.

// (`unused_imports`: clippy builds this harness-less bench with `cfg(test)` but without the
// unit tests at the bottom of the included files, which leaves their `use super::*` unused.)
#[allow(dead_code, unused_imports)]
#[path = "../examples/blocking_server/cluster.rs"]
mod cluster;
#[allow(dead_code)]
#[path = "../tests/support/cluster_server.rs"]
mod cluster_server;
#[allow(dead_code)]
#[path = "../tests/support/pitfall.rs"]
mod pitfall;
#[allow(dead_code, unused_imports)]
#[path = "../examples/blocking_server/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../tests/support/side_by_side.rs"]
mod side_by_side;

use std::net::SocketAddr;
use std::time::Duration;

use cluster::ClusterConfig;
use cluster::dispatch::Policy;
use cluster_server::ClusterServer;
use server::{Config, Mode};

/// `/home` every 10 ms.
const PERIOD: Duration = Duration::from_millis(10);
/// `/home` requests when no heavy one runs.
const IDLE_HOMES: usize = 100;
/// At most this many `/home` per measurement (a minute).
const MAX_HOMES: usize = 6000;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).map_or(default, |v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: cannot parse `{v}`"))
    })
}

/// What to measure.
enum Target {
    OneLoop(Mode),
    Cluster(Mode, Policy),
}

fn main() {
    let nth: u32 = env("CLUSTER_BENCH_NTH", 1_000_000);
    println!("the pitfall of more loops: {}", side_by_side::machine());
    println!(
        "k heavy /primes?nth={nth} at once; /home every {} ms meanwhile (open loop)\n",
        PERIOD.as_millis()
    );
    println!("{}", pitfall::HEADER);
    if let Ok(addr) = std::env::var("CLUSTER_BENCH_ADDR") {
        let addr: SocketAddr = addr.parse().expect("CLUSTER_BENCH_ADDR: host:port");
        let label = std::env::var("CLUSTER_BENCH_LABEL").unwrap_or_else(|_| addr.to_string());
        for k in 0..=env("CLUSTER_BENCH_MAX_K", 3usize) {
            let p = pitfall::measure(addr, k, nth, PERIOD, IDLE_HOMES, MAX_HOMES);
            println!("{}", pitfall::row(&label, &p));
        }
        return;
    }
    let loops: usize = env("CLUSTER_BENCH_LOOPS", 2);
    let targets = [
        Target::Cluster(Mode::Sync, Policy::RoundRobin),
        Target::Cluster(Mode::Sync, Policy::ReusePort),
        Target::Cluster(Mode::Sync, Policy::LoadAware),
        Target::Cluster(Mode::Chunked, Policy::LoadAware),
        Target::OneLoop(Mode::Chunked),
        Target::OneLoop(Mode::Offload),
    ];
    for target in &targets {
        for k in 0..=loops + 1 {
            let mut config = Config::new(Mode::Sync);
            // Room for every heavy request: the limit would otherwise answer 503 at k > cores.
            config.max_heavy = 64;
            let (label, p) = match *target {
                Target::OneLoop(mode) => {
                    config.mode = mode;
                    let server = side_by_side::Server::start_with(config);
                    let p = pitfall::measure(server.addr, k, nth, PERIOD, IDLE_HOMES, MAX_HOMES);
                    server.stop();
                    (format!("{}, 1 loop", mode.name()), p)
                }
                Target::Cluster(inner, policy) => {
                    config.mode = inner;
                    let c = ClusterConfig {
                        loops,
                        policy,
                        trace_limit: None,
                    };
                    let server = ClusterServer::start(config, c);
                    let p = pitfall::measure(server.addr, k, nth, PERIOD, IDLE_HOMES, MAX_HOMES);
                    let (outcome, _) = server.stop();
                    outcome.expect("the cluster failed");
                    (
                        format!("cluster {loops}x{}, {}", inner.name(), policy.name()),
                        p,
                    )
                }
            };
            println!("{}", pitfall::row(&label, &p));
        }
    }
}
