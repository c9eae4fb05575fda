//! Core costs of the loop, side by side with tokio's current-thread runtime (with a `LocalSet`),
//! async-executor's `LocalExecutor` and futures' `LocalPool`, in one run:
//! - `yield`: one task yields N times (N = 100,000 and 1,000,000); ours resumes in the check
//!   phase, the others re-queue the task;
//! - `spawn`: spawn N tiny tasks (N = 10,000 and 100,000), run them and await every result;
//! - `timers`: N sleeps (N = 10,000 and 100,000) of 1 ms registered, 10% dropped (cancelled),
//!   the rest awaited (tokio only: async-executor and futures have no timers); plus our callback
//!   API (`set_timeout` + `clear`) doing the same.
//!
//! `yield` and `spawn` measure the bench thread's CPU time (`support/cpu_time.rs`: all four
//! runtimes run these on the calling thread), so that the load of a shared machine does not
//! move the ratios; `timers` measures wall time (its sleeps are real time).
//!
//! Run: `cargo bench --bench core`. Figures and ratios are recorded in docs/benchmarks.md.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::CpuTime;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

#[path = "support/yield_once.rs"]
mod yield_once;
use yield_once::YieldOnce;

fn tokio_rt() -> (tokio::runtime::Runtime, tokio::task::LocalSet) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    (rt, tokio::task::LocalSet::new())
}

fn yields(c: &mut Criterion<CpuTime>) {
    let mut g = c.benchmark_group("yield");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for n in [100_000u32, 1_000_000] {
        g.bench_with_input(BenchmarkId::new("executor", n), &n, |b, &n| {
            let ev = executor::EventLoop::new();
            b.iter(|| {
                ev.block_on(ev.spawn(async move {
                    for _ in 0..n {
                        executor::yield_now().await;
                    }
                }))
                .unwrap()
            });
        });
        g.bench_with_input(BenchmarkId::new("tokio_local", n), &n, |b, &n| {
            let (rt, local) = tokio_rt();
            b.iter(|| {
                local.block_on(&rt, async move {
                    tokio::task::spawn_local(async move {
                        for _ in 0..n {
                            tokio::task::yield_now().await;
                        }
                    })
                    .await
                    .unwrap()
                })
            });
        });
        g.bench_with_input(BenchmarkId::new("async_executor", n), &n, |b, &n| {
            let ex = async_executor::LocalExecutor::new();
            b.iter(|| {
                futures::executor::block_on(ex.run(ex.spawn(async move {
                    for _ in 0..n {
                        YieldOnce(false).await;
                    }
                })))
            });
        });
        g.bench_with_input(BenchmarkId::new("futures_localpool", n), &n, |b, &n| {
            b.iter(|| {
                futures::executor::LocalPool::new().run_until(async move {
                    for _ in 0..n {
                        YieldOnce(false).await;
                    }
                })
            });
        });
    }
    g.finish();
}

fn spawns(c: &mut Criterion<CpuTime>) {
    let mut g = c.benchmark_group("spawn");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for n in [10_000u64, 100_000] {
        g.bench_with_input(BenchmarkId::new("executor", n), &n, |b, &n| {
            let ev = executor::EventLoop::new();
            b.iter(|| {
                ev.block_on(async move {
                    let hs: Vec<_> = (0..n).map(|i| executor::spawn(async move { i })).collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            });
        });
        g.bench_with_input(BenchmarkId::new("tokio_local", n), &n, |b, &n| {
            let (rt, local) = tokio_rt();
            b.iter(|| {
                local.block_on(&rt, async move {
                    let hs: Vec<_> = (0..n)
                        .map(|i| tokio::task::spawn_local(async move { i }))
                        .collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            });
        });
        g.bench_with_input(BenchmarkId::new("async_executor", n), &n, |b, &n| {
            let ex = async_executor::LocalExecutor::new();
            b.iter(|| {
                futures::executor::block_on(ex.run(async {
                    let hs: Vec<_> = (0..n).map(|i| ex.spawn(async move { i })).collect();
                    let mut sum = 0;
                    for h in hs {
                        sum += h.await;
                    }
                    sum
                }))
            });
        });
    }
    g.finish();
}

fn timers(c: &mut Criterion) {
    let mut g = c.benchmark_group("timers");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let ms = Duration::from_millis(1);
    for n in [10_000usize, 100_000] {
        g.bench_with_input(BenchmarkId::new("executor_sleep", n), &n, |b, &n| {
            let ev = executor::EventLoop::new();
            b.iter(|| {
                ev.block_on(async move {
                    let mut all: Vec<_> = (0..n).map(|_| Some(executor::sleep(ms))).collect();
                    for s in all.iter_mut().step_by(10) {
                        *s = None;
                    }
                    let mut set: FuturesUnordered<_> = all.into_iter().flatten().collect();
                    let mut fired = 0;
                    while set.next().await.is_some() {
                        fired += 1;
                    }
                    assert_eq!(fired, n - n / 10);
                })
            });
        });
        g.bench_with_input(BenchmarkId::new("executor_set_timeout", n), &n, |b, &n| {
            let ev = executor::EventLoop::new();
            b.iter(|| {
                let fired = std::rc::Rc::new(std::cell::Cell::new(0usize));
                let f = fired.clone();
                ev.run(move || {
                    let hs: Vec<_> = (0..n)
                        .map(|_| {
                            let f = f.clone();
                            executor::set_timeout(ms, move || f.set(f.get() + 1))
                        })
                        .collect();
                    for h in hs.iter().step_by(10) {
                        h.clear();
                    }
                });
                assert_eq!(fired.get(), n - n / 10);
            });
        });
        g.bench_with_input(BenchmarkId::new("tokio_sleep", n), &n, |b, &n| {
            let (rt, local) = tokio_rt();
            b.iter(|| {
                local.block_on(&rt, async move {
                    let mut all: Vec<_> = (0..n)
                        .map(|_| Some(Box::pin(tokio::time::sleep(ms))))
                        .collect();
                    for s in all.iter_mut().step_by(10) {
                        *s = None;
                    }
                    let mut set: FuturesUnordered<_> = all.into_iter().flatten().collect();
                    let mut fired = 0;
                    while set.next().await.is_some() {
                        fired += 1;
                    }
                    assert_eq!(fired, n - n / 10);
                })
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = yields, spawns
}
criterion_group!(wall, timers);
criterion_main!(cpu, wall);
