//! The chunked prime search: right answers with every strategy, ticks run while it runs,
//! cancellation stops it, and the chunker's clock reads are amortised. No wall-clock assertions.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use executor::EventLoop;
use executor::chunk::{ChunkObserver, Chunker, Strategy};
use executor::demo::prime::{Mode, probe_search};
use executor::demo::prime::{find_nth_prime, find_nth_prime_chunked, find_nth_prime_with};
use executor::observe::{ProbeConfig, TickProbe};

fn strategies() -> Vec<Mode> {
    vec![
        Mode::Sync,
        Strategy::Every.into(),
        Strategy::Batch(1000).into(),
        Strategy::Slice(Duration::from_micros(500)).into(),
        Strategy::Adaptive {
            target: Duration::from_micros(500),
        }
        .into(),
        Mode::Offload,
    ]
}

/// Known values (https://oeis.org/A000040 and standard prime tables).
const TABLE: [(u32, u64); 6] = [
    (1, 2),
    (2, 3),
    (3, 5),
    (10, 29),
    (1000, 7919),
    (100_000, 1_299_709),
];

#[test]
fn every_strategy_finds_the_right_prime() {
    for (n, p) in TABLE {
        assert_eq!(find_nth_prime(n), p, "sync, nth {n}");
        for s in strategies() {
            let got = EventLoop::new().block_on(find_nth_prime_with(n, s));
            assert_eq!(got, p, "{s}, nth {n}");
        }
    }
}

#[test]
fn every_strategy_but_sync_lets_ticks_run_during_the_search() {
    for s in strategies() {
        let config = ProbeConfig::every(Duration::from_micros(200));
        let (p, report) = EventLoop::new().block_on(probe_search(200_000, s, config));
        assert_eq!(p, 2_750_159);
        if s == Mode::Sync {
            assert_eq!(report.ticks, 0, "a blocking search lets no tick run");
            assert_eq!(report.chunks, 1);
        } else {
            assert!(report.ticks > 0, "{s}: no tick ran during the search");
        }
        // Node.js semantics: with skip, at most one tick per gap between chunks.
        assert!(report.between_max <= 1, "{s}: {report:?}");
    }
}

#[test]
fn burst_lets_late_ticks_catch_up_between_chunks() {
    // Chunks of 20,000 candidate tests (over 1 ms even in release builds) beside a 200 us
    // interval: under skip one tick per gap, under burst the missed ones run back to back.
    // (`Batch`, unlike `Slice` and `Adaptive`, does not end its chunks when a timer falls due.)
    let run = |missed| {
        EventLoop::new().block_on(async move {
            let probe = TickProbe::start(ProbeConfig {
                period: Duration::from_micros(200),
                missed,
            });
            let mut chunker = Chunker::new(Strategy::Batch(20_000));
            chunker.set_observer(probe.observer());
            find_nth_prime_chunked(150_000, &mut chunker).await;
            probe.finish()
        })
    };
    let skip = run(executor::time::MissedTickBehavior::Skip);
    let burst = run(executor::time::MissedTickBehavior::Burst);
    assert!(skip.between_max <= 1, "{skip:?}");
    assert!(burst.between_max > 1, "{burst:?}");
}

struct Counter(Cell<u64>);
impl ChunkObserver for Counter {
    fn chunk_end(&self) {}
    fn chunk_start(&self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_the_search_stops_it_and_the_loop_stays_usable() {
    let ev = EventLoop::new();
    let seen = Rc::new(Counter(Cell::new(0)));
    let s2 = seen.clone();
    let r = ev.block_on(async move {
        let mut chunker = Chunker::new(Strategy::Batch(100));
        chunker.set_observer(s2);
        // Far too big to finish before the timeout.
        let search = async move { find_nth_prime_chunked(50_000_000, &mut chunker).await };
        executor::time::timeout(Duration::from_millis(20), search).await
    });
    assert!(r.is_err(), "the search cannot have finished");
    let chunks_at_drop = seen.0.get();
    assert!(chunks_at_drop > 1);
    // The loop goes on: more iterations, and the dropped search does not run again.
    let p = ev.block_on(async {
        executor::sleep(Duration::from_millis(5)).await;
        find_nth_prime_with(1000, Strategy::Every).await
    });
    assert_eq!(p, 7919);
    assert_eq!(seen.0.get(), chunks_at_drop, "the dropped search ran again");
}

#[test]
fn a_cancelled_probed_search_leaves_no_interval_behind() {
    let idle = common::bounded(20, || {
        let ev = EventLoop::new();
        let r = ev.block_on(async {
            let search = probe_search(
                50_000_000,
                Strategy::Batch(1000),
                ProbeConfig::every(Duration::from_millis(1)),
            );
            executor::time::timeout(Duration::from_millis(20), search).await
        });
        assert!(r.is_err(), "the search cannot have finished");
        // The probe's interval went with the probe: nothing keeps the loop alive (a forgotten
        // interval would make this run for ever, and the bound fail the test).
        ev.run(|| {});
        !ev.is_alive()
    });
    assert!(idle);
}

#[test]
fn slice_reads_the_clock_only_every_k_steps() {
    let (units, reads, chunks) = EventLoop::new().block_on(async {
        let mut c = Chunker::new(Strategy::Slice(Duration::from_micros(300)));
        find_nth_prime_chunked(100_000, &mut c).await;
        (c.units(), c.clock_reads(), c.chunks())
    });
    assert!(chunks > 1);
    // Tuned to about CLOCK_READS_PER_SLICE reads per chunk; allow the first chunks to tune.
    let budget = (chunks + 1) * (executor::chunk::CLOCK_READS_PER_SLICE * 4) + 64;
    assert!(
        reads <= budget && reads * 8 <= units,
        "{reads} clock reads for {units} units in {chunks} chunks"
    );
}

#[test]
fn adaptive_reads_the_clock_about_once_per_chunk_and_batch_never() {
    let (reads, chunks) = EventLoop::new().block_on(async {
        let mut c = Chunker::new(Strategy::Adaptive {
            target: Duration::from_micros(300),
        });
        find_nth_prime_chunked(100_000, &mut c).await;
        (c.clock_reads(), c.chunks())
    });
    assert!(reads <= 2 * chunks + 1, "{reads} reads for {chunks} chunks");
    let reads = EventLoop::new().block_on(async {
        let mut c = Chunker::new(Strategy::Batch(10));
        find_nth_prime_chunked(10_000, &mut c).await;
        c.clock_reads()
    });
    assert_eq!(reads, 0, "Batch never reads the clock");
}

#[test]
fn adaptive_tunes_its_batch_towards_the_target() {
    let batch = EventLoop::new().block_on(async {
        let mut c = Chunker::new(Strategy::Adaptive {
            target: Duration::from_micros(500),
        });
        find_nth_prime_chunked(100_000, &mut c).await;
        c.batch()
    });
    // It starts at 16 units per chunk; 500 us holds thousands of candidate tests.
    assert!(batch > 64, "batch stayed at {batch}");
}

#[test]
fn slice_and_adaptive_end_chunks_when_a_timer_falls_due() {
    // A 300 us interval beside 50 ms slices: the chunks must be cut at the timer's due times,
    // so chunks are far more numerous than elapsed / 50 ms. Uncut, there would be about one
    // chunk per slice; cut, about one per tick (~160 per slice on an idle machine). The 3x
    // bound leaves a 50x margin for a loaded machine, where the process runs for a fraction
    // of the wall time the slices are measured in.
    for s in [
        Strategy::Slice(Duration::from_millis(50)),
        Strategy::Adaptive {
            target: Duration::from_millis(50),
        },
    ] {
        let r = EventLoop::new().block_on(async move {
            let probe = TickProbe::start(ProbeConfig::every(Duration::from_micros(300)));
            let mut chunker = Chunker::new(s);
            chunker.set_observer(probe.observer());
            find_nth_prime_chunked(100_000, &mut chunker).await;
            probe.finish()
        });
        let slices = r.elapsed.as_millis() as u64 / 50 + 1;
        assert!(
            r.chunks > 3 * slices,
            "{s}: {} chunks in {:?}: not cut at the timer's due times",
            r.chunks,
            r.elapsed
        );
        assert!(r.ticks > 0);
    }
}

/// Dropping an offloaded search frees its worker: on a one-thread pool, a job queued after a
/// dropped 5,000,000-th-prime search (minutes of work in a debug build) still runs at once,
/// whether the search had been removed from the queue or had started and saw its flag.
#[test]
fn a_dropped_offloaded_search_frees_its_worker() {
    common::bounded(60, || {
        let ev = executor::Builder::new().offload_threads(1).build().unwrap();
        ev.block_on(async {
            let search = executor::spawn(find_nth_prime_with(5_000_000, Mode::Offload));
            // Give the worker time to pick the job up, so the running path is the one usually
            // taken (either path must free the worker).
            executor::sleep(Duration::from_millis(50)).await;
            search.abort();
            let next =
                executor::time::timeout(Duration::from_secs(30), executor::offload(|| 42)).await;
            assert_eq!(
                next.expect("the worker is still busy with the dropped search")
                    .unwrap(),
                42
            );
        });
    });
}
