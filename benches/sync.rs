//! Async mutexes side by side: `executor::sync::Mutex` against `futures::lock::Mutex` (on our
//! loop), `tokio::sync::Mutex` (on tokio's current-thread runtime, in a `LocalSet`) and the
//! article's timer-retry spin lock (on our loop, retrying every 1 ms).
//!
//! - `uncontended`: one task locks and unlocks 1,000 times in a row (one iteration = 1,000
//!   lock/unlock pairs, run inside the lock's runtime).
//! - `contended/N`: N tasks (N = 2, 100) each run R rounds of lock → yield to the runtime →
//!   unlock → yield until another task has taken the lock. So the lock is always held across a
//!   scheduler turn, N - 1 tasks wait for it, and every acquisition is a hand-off from one task
//!   to another, even for locks that would let the releaser take it straight back. One iteration
//!   spawns the N tasks and waits for them; criterion's throughput is acquisitions (N × R) per
//!   second, so time per hand-off = 1 / throughput. The spin lock runs fewer rounds (its figure
//!   is per hand-off too), or the run would take minutes.
//!
//! `cargo bench --bench sync`

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

#[path = "../examples/support/spin_lock.rs"]
mod spin_lock;
use spin_lock::SpinLock;

/// Lock/unlock pairs per `uncontended` iteration.
const UNCONTENDED_OPS: u64 = 1_000;
/// Task counts of the `contended` groups.
const TASKS: [usize; 2] = [2, 100];
/// Acquisitions per `contended` iteration (rounds = this / tasks), for the waker-based locks.
const CONTENDED_OPS: usize = 2_000;
/// The same for the spin lock, whose waiters sleep 1 ms between attempts.
const SPIN_OPS: usize = 200;
/// The spin lock's retry period (the article's N ms).
const SPIN_RETRY: Duration = Duration::from_millis(1);

fn tokio_rt() -> (tokio::runtime::Runtime, tokio::task::LocalSet) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    (rt, tokio::task::LocalSet::new())
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended");
    g.throughput(Throughput::Elements(UNCONTENDED_OPS));
    let ev = executor::EventLoop::new();
    let (rt, local) = tokio_rt();

    g.bench_function("executor::sync::Mutex", |b| {
        let m = executor::sync::Mutex::new(0u64);
        b.iter(|| {
            ev.block_on(async {
                for _ in 0..UNCONTENDED_OPS {
                    *m.lock().await += 1;
                }
            })
        });
        black_box(m.into_inner());
    });
    g.bench_function("futures::lock::Mutex", |b| {
        let m = futures::lock::Mutex::new(0u64);
        b.iter(|| {
            ev.block_on(async {
                for _ in 0..UNCONTENDED_OPS {
                    *m.lock().await += 1;
                }
            })
        });
        black_box(m.into_inner());
    });
    g.bench_function("tokio::sync::Mutex", |b| {
        let m = tokio::sync::Mutex::new(0u64);
        b.iter(|| {
            local.block_on(&rt, async {
                for _ in 0..UNCONTENDED_OPS {
                    *m.lock().await += 1;
                }
            })
        });
        black_box(m.into_inner());
    });
    g.bench_function("timer-retry spin lock", |b| {
        let m = SpinLock::new(0u64, SPIN_RETRY);
        b.iter(|| {
            ev.block_on(async {
                for _ in 0..UNCONTENDED_OPS {
                    *m.lock().await += 1;
                }
            })
        });
    });
    g.finish();
}

/// One `contended` run: `$tasks` tasks, `$rounds` rounds each, on the runtime whose spawn and
/// yield are given. `$lock` makes the shared lock.
///
/// After unlocking, a task yields until another task has taken the lock (unless it is the last
/// one left), so every acquisition is a hand-off to a waiting task, whether the lock hands over
/// (ours, tokio's) or lets the releaser take it straight back (futures', the spin lock).
macro_rules! contended_run {
    ($spawn:path, $yield:expr, $lock:expr, $tasks:expr, $rounds:expr) => {{
        let m = Rc::new($lock);
        let acquisitions = Rc::new(Cell::new(0u64));
        let active = Rc::new(Cell::new($tasks));
        let handles: Vec<_> = (0..$tasks)
            .map(|_| {
                let (m, acquisitions, active) = (m.clone(), acquisitions.clone(), active.clone());
                $spawn(async move {
                    for round in 0..$rounds {
                        let mut g = m.lock().await;
                        *g += 1;
                        acquisitions.set(acquisitions.get() + 1);
                        let mine = acquisitions.get();
                        $yield.await;
                        drop(g);
                        while round + 1 < $rounds && acquisitions.get() == mine && active.get() > 1
                        {
                            $yield.await;
                        }
                    }
                    active.set(active.get() - 1);
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }};
}

fn contended(c: &mut Criterion) {
    let ev = executor::EventLoop::new();
    let (rt, local) = tokio_rt();
    for tasks in TASKS {
        let mut g = c.benchmark_group(format!("contended/{tasks}"));
        let rounds = CONTENDED_OPS / tasks;
        g.throughput(Throughput::Elements((tasks * rounds) as u64));
        g.bench_function("executor::sync::Mutex", |b| {
            b.iter(|| {
                ev.block_on(async {
                    contended_run!(
                        executor::spawn,
                        executor::yield_now(),
                        executor::sync::Mutex::new(0u64),
                        tasks,
                        rounds
                    )
                })
            })
        });
        g.bench_function("futures::lock::Mutex", |b| {
            b.iter(|| {
                ev.block_on(async {
                    contended_run!(
                        executor::spawn,
                        executor::yield_now(),
                        futures::lock::Mutex::new(0u64),
                        tasks,
                        rounds
                    )
                })
            })
        });
        g.bench_function("tokio::sync::Mutex", |b| {
            b.iter(|| {
                local.block_on(&rt, async {
                    contended_run!(
                        tokio::task::spawn_local,
                        tokio::task::yield_now(),
                        tokio::sync::Mutex::new(0u64),
                        tasks,
                        rounds
                    )
                })
            })
        });
        // Fewer rounds for the spin lock; the figure stays per acquisition.
        let spin_rounds = (SPIN_OPS / tasks).max(1);
        g.throughput(Throughput::Elements((tasks * spin_rounds) as u64));
        g.sampling_mode(SamplingMode::Flat).sample_size(10);
        g.bench_function("timer-retry spin lock", |b| {
            b.iter(|| {
                ev.block_on(async {
                    contended_run!(
                        executor::spawn,
                        executor::yield_now(),
                        SpinLock::new(0u64, SPIN_RETRY),
                        tasks,
                        spin_rounds
                    )
                })
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = uncontended, contended
}
criterion_main!(benches);
