//! Load-independent costs: run one workload `N` times, for `valgrind --tool=callgrind` to count
//! the instructions. Two counts with different `N` give the cost of one operation (their
//! difference over the difference in `N`), free of start-up costs and of the machine's load.
//!
//! Workloads (the same as `core`'s executor rows): `yield` (one task awaits `yield_now` N
//! times), `main_yield` (the same in the `block_on` future, as the chunked prime search runs),
//! `spawn` (N tiny tasks spawned, run and awaited), `self_wake` (one task wakes itself and
//! returns `Pending` N times: the Rust yield idiom, which resumes in the check phase). The peers
//! the core goals name, counted the same way: `localpool_yield` (futures' `LocalPool`, one task
//! re-queued N times) and `async_executor_spawn` (async-executor's `LocalExecutor`, N tiny tasks).
//!
//! Run: `cargo bench --bench instructions --no-run`, then
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null <binary> yield 100000` (and 200000).

#[path = "support/yield_once.rs"]
mod yield_once;
use yield_once::YieldOnce;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "yield".into());
    let n: u32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    // `cargo bench` runs every bench binary with `--bench`: do nothing then.
    if what.starts_with("--") {
        return;
    }
    match what.as_str() {
        "localpool_yield" => {
            return futures::executor::LocalPool::new().run_until(async move {
                for _ in 0..n {
                    YieldOnce(false).await;
                }
            });
        }
        "async_executor_spawn" => {
            let ex = async_executor::LocalExecutor::new();
            return futures::executor::block_on(ex.run(async {
                let handles: Vec<_> = (0..n).map(|i| ex.spawn(async move { i })).collect();
                for h in handles {
                    std::hint::black_box(h.await);
                }
            }));
        }
        _ => {}
    }
    let ev = executor::EventLoop::new();
    match what.as_str() {
        "yield" => ev
            .block_on(ev.spawn(async move {
                for _ in 0..n {
                    executor::yield_now().await;
                }
            }))
            .unwrap(),
        "main_yield" => ev.block_on(async move {
            for _ in 0..n {
                executor::yield_now().await;
            }
        }),
        "self_wake" => ev
            .block_on(ev.spawn(async move {
                for _ in 0..n {
                    YieldOnce(false).await;
                }
            }))
            .unwrap(),
        "spawn" => ev.block_on(async move {
            let handles: Vec<_> = (0..n).map(|i| executor::spawn(async move { i })).collect();
            for h in handles {
                std::hint::black_box(h.await.unwrap());
            }
        }),
        other => panic!(
            "unknown workload `{other}` (yield, main_yield, self_wake, spawn, localpool_yield, async_executor_spawn)"
        ),
    }
}
