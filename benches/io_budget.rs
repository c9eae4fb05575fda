//! The I/O budget: a task reading a saturated loopback socket beside a 1 ms interval.
//!
//! A writer thread keeps the socket full (64 KiB writes), so reads find data; the reader task
//! reads 16 KiB at a time for `SECS` seconds while `set_interval(1 ms)` counts its ticks.
//! Printed: the reader's throughput and the interval's fidelity (ticks run / ticks due), the
//! median of `RUNS` runs. Built against a tree without the budget (the commit before it), the
//! same file measures the throughput the budget costs; there the interval hardly runs.
//!
//! On a shared machine the loop thread is also preempted, and no loop ticks while it waits for
//! a CPU: so fidelity is printed twice, against wall time (`raw`) and against the time the
//! thread was not waiting on a run queue (`on-cpu`, from `/proc/thread-self/schedstat`). The
//! line `reference` is what the machine allows any cooperative job: the same interval beside a
//! task that computes for 25 µs and yields, no I/O.
//!
//! Run: `cargo bench --bench io_budget` (env `RUNS`, default 7; `SECS`, default 1).

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use executor::net::TcpListener;
use futures::AsyncReadExt;

/// The writer's writes.
const WRITE: usize = 64 * 1024;
/// The reader's reads: smaller than the writes, so the writer stays ahead and reads find data.
const READ: usize = 16 * 1024;

/// Nanoseconds this thread has waited on a run queue (0 where schedstat is unavailable).
fn run_delay_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// What one run measured.
struct Run {
    bytes_per_sec: f64,
    /// Bytes per second of the time the thread was not waiting for a CPU.
    bytes_per_cpu_sec: f64,
    /// Ticks run / ticks due in wall time.
    raw: f64,
    /// Ticks run / ticks due in the time the thread was not waiting for a CPU.
    on_cpu: f64,
    reads: u64,
}

/// Fidelity of `ticks` over `took`, raw and without `waited_ns` of run-queue wait.
fn fidelity(ticks: u64, took: Duration, waited_ns: u64) -> (f64, f64) {
    let due = took.as_secs_f64() * 1e3;
    let on_cpu = (took.as_secs_f64() - waited_ns as f64 / 1e9).max(1e-3) * 1e3;
    (ticks as f64 / due, (ticks as f64 / on_cpu).min(1.0))
}

/// The reference: the interval beside a task computing 25 µs between yields.
fn reference(secs: f64) -> (f64, f64) {
    executor::EventLoop::new().block_on(async {
        let ticks = Rc::new(Cell::new(0u64));
        let t = ticks.clone();
        let interval = executor::set_interval(Duration::from_millis(1), move || t.set(t.get() + 1));
        let limit = Duration::from_secs_f64(secs);
        let waited = run_delay_ns();
        let start = Instant::now();
        while start.elapsed() < limit {
            let chunk = Instant::now();
            while chunk.elapsed() < Duration::from_micros(25) {}
            executor::yield_now().await;
        }
        let took = start.elapsed();
        interval.clear();
        fidelity(ticks.get(), took, run_delay_ns() - waited)
    })
}

/// One run of the reader.
fn run(secs: f64) -> Run {
    let ev = executor::EventLoop::new();
    ev.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let writer = thread::spawn(move || {
            let mut peer = std::net::TcpStream::connect(addr).unwrap();
            let chunk = vec![1u8; WRITE];
            while !s.load(Ordering::Relaxed) && peer.write_all(&chunk).is_ok() {}
        });
        let (mut conn, _) = listener.accept().await.unwrap();
        thread::sleep(Duration::from_millis(50)); // let the writer fill the socket
        let ticks = Rc::new(Cell::new(0u64));
        let t = ticks.clone();
        let interval = executor::set_interval(Duration::from_millis(1), move || t.set(t.get() + 1));
        let limit = Duration::from_secs_f64(secs);
        let reader = executor::spawn(async move {
            let mut buf = vec![0u8; READ];
            let (mut bytes, mut reads) = (0u64, 0u64);
            let waited = run_delay_ns();
            let start = Instant::now();
            // The reader stops itself: without a budget no timer would ever run to stop it.
            while start.elapsed() < limit {
                bytes += conn.read(&mut buf).await.unwrap() as u64;
                reads += 1;
            }
            (bytes, reads, start.elapsed(), run_delay_ns() - waited)
        });
        let (bytes, reads, took, waited) = reader.await.unwrap();
        interval.clear();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let (raw, on_cpu) = fidelity(ticks.get(), took, waited);
        Run {
            bytes_per_sec: bytes as f64 / took.as_secs_f64(),
            bytes_per_cpu_sec: bytes as f64 / (took.as_secs_f64() - waited as f64 / 1e9).max(1e-3),
            raw,
            on_cpu,
            reads,
        }
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let secs: f64 = std::env::var("SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let (mut tput, mut raw, mut on_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut tput_cpu = Vec::new();
    let (mut ref_raw, mut ref_cpu) = (Vec::new(), Vec::new());
    let mut reads = 0;
    for _ in 0..runs {
        let r = run(secs);
        tput.push(r.bytes_per_sec);
        tput_cpu.push(r.bytes_per_cpu_sec);
        raw.push(r.raw);
        on_cpu.push(r.on_cpu);
        reads += r.reads;
        let (a, b) = reference(secs);
        ref_raw.push(a);
        ref_cpu.push(b);
    }
    println!(
        "io_budget: reader raw {:.0} MiB/s on-cpu {:.0} MiB/s ({} reads of 16 KiB per run), 1 ms \
         interval fidelity raw {:.3} on-cpu {:.3}; reference raw {:.3} on-cpu {:.3} (medians of \
         {runs} runs of {secs} s)",
        median(&mut tput) / (1024.0 * 1024.0),
        median(&mut tput_cpu) / (1024.0 * 1024.0),
        reads / runs as u64,
        median(&mut raw),
        median(&mut on_cpu),
        median(&mut ref_raw),
        median(&mut ref_cpu),
    );
}
