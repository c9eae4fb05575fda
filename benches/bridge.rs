//! Round-trip latency of one trivial async call made from synchronous code, three ways side by
//! side: through a persistent `Bridge` worker, on a fresh thread running a new `EventLoop`'s
//! `block_on` (spawned and joined per call), and in a fresh child process per call
//! (this bench binary itself, run with `EXECUTOR_BRIDGE_CHILD=X` set: it then makes one call and
//! prints `X + 1`; spawned and waited for as Node.js's `spawnSync` would).
//! Then the bridge under 1, 2 and 4 concurrent callers (time per call).
//!
//! `cargo bench --bench bridge`

use std::hint::black_box;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use executor::{EventLoop, threads::Bridge};

/// Set in the child process's environment: be the child (one call, print the result).
const CHILD: &str = "EXECUTOR_BRIDGE_CHILD";

/// The trivial async function every path calls (the child process too).
async fn trivial(x: u64) -> u64 {
    executor::yield_now().await;
    x + 1
}

fn sync_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync_call");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let bridge = Bridge::new().expect("bridge");
    let exe = std::env::current_exe().expect("the bench's own path");
    g.bench_function("bridge", |b| {
        b.iter(|| {
            let x = black_box(1);
            bridge.call(move || trivial(x)).unwrap()
        })
    });
    g.bench_function("thread_per_call", |b| {
        b.iter(|| {
            let x = black_box(1);
            thread::spawn(move || EventLoop::new().block_on(trivial(x)))
                .join()
                .unwrap()
        })
    });
    g.bench_function("process_per_call", |b| {
        b.iter(|| {
            let out = Command::new(&exe)
                .env(CHILD, "1")
                .output()
                .expect("spawn the child process");
            assert!(out.status.success());
            out.stdout
        })
    });
    g.finish();
}

/// `callers` threads share one bridge; reports the wall time per call.
fn bridge_concurrent(c: &mut Criterion) {
    let mut g = c.benchmark_group("bridge_concurrent");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    let bridge = Arc::new(Bridge::new().expect("bridge"));
    for callers in [1u64, 2, 4] {
        g.bench_with_input(
            BenchmarkId::from_parameter(callers),
            &callers,
            |b, &callers| {
                b.iter_custom(|iters| {
                    // At least 2,000 calls per sample, so starting and joining the callers
                    // does not swamp the tiny samples criterion asks for while warming up.
                    let per_caller = iters.max(2000).div_ceil(callers);
                    let start = Arc::new(Barrier::new(callers as usize + 1));
                    let threads: Vec<_> = (0..callers)
                        .map(|_| {
                            let (bridge, start) = (bridge.clone(), start.clone());
                            thread::spawn(move || {
                                start.wait();
                                for _ in 0..per_caller {
                                    bridge.call(|| trivial(black_box(1))).unwrap();
                                }
                            })
                        })
                        .collect();
                    start.wait();
                    let t = Instant::now();
                    for th in threads {
                        th.join().unwrap();
                    }
                    // Scaled back to `iters` calls (the sample made `per_caller * callers`).
                    t.elapsed()
                        .mul_f64(iters as f64 / (per_caller * callers) as f64)
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, sync_call, bridge_concurrent);

fn main() {
    if let Some(x) = std::env::var_os(CHILD) {
        let x: u64 = x
            .to_str()
            .and_then(|x| x.parse().ok())
            .expect("a number in the env");
        println!("{}", executor::block_on(trivial(x)));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
