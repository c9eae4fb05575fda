//! `Cluster`: work placed round-robin or on the least-loaded loop, results and panics through
//! blocking and awaitable handles, graceful `join` with per-loop counts, cancelling drop.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{LIMIT, within};
use executor::{threads::Cluster, threads::ClusterHandle, threads::Placement};

#[test]
fn cluster_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cluster>();
    assert_send_sync::<ClusterHandle<u64>>();
}

#[test]
fn round_robin_spreads_jobs_evenly_and_returns_results() {
    within(LIMIT, || {
        let cluster = Cluster::new(4).unwrap();
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                cluster.spawn(move || async move {
                    executor::yield_now().await;
                    (i * i, thread::current().name().map(str::to_owned))
                })
            })
            .collect();
        let indexes: Vec<usize> = handles.iter().map(ClusterHandle::loop_index).collect();
        assert_eq!(indexes, [0, 1, 2, 3, 0, 1, 2, 3]);
        for (i, h) in (0..8u64).zip(handles) {
            let index = h.loop_index();
            let (sq, name) = h.join().unwrap();
            assert_eq!(sq, i * i);
            assert_eq!(name.unwrap(), format!("executor-cluster-{index}"));
        }
        let report = cluster.join();
        assert_eq!(report.tasks_run, [2, 2, 2, 2]);
        assert_eq!(report.loop_stats.len(), 4);
    });
}

/// Places one job that stays pending until the returned sender fires, then `quick` short jobs
/// one at a time (each awaited), and returns the loops the short jobs went to.
fn place_around_a_slow_job(placement: Placement, quick: usize) -> (usize, Vec<usize>) {
    let cluster = Cluster::builder()
        .loops(2)
        .placement(placement)
        .build()
        .unwrap();
    let (release, released) = futures::channel::oneshot::channel::<()>();
    let slow = cluster.spawn(move || async move { released.await.is_ok() });
    let quick: Vec<usize> = (0..quick)
        .map(|_| {
            let h = cluster.spawn(|| async { executor::yield_now().await });
            let index = h.loop_index();
            h.join().unwrap();
            index
        })
        .collect();
    let slow_index = slow.loop_index();
    assert_eq!(cluster.loads()[slow_index], 1);
    release.send(()).unwrap();
    assert!(slow.join().unwrap());
    let report = cluster.join();
    assert_eq!(report.tasks_run.iter().sum::<u64>(), quick.len() as u64 + 1);
    (slow_index, quick)
}

#[test]
fn least_loaded_avoids_the_busy_loop() {
    within(LIMIT, || {
        let (slow, quick) = place_around_a_slow_job(Placement::LeastLoaded, 4);
        assert!(
            quick.iter().all(|&i| i != slow),
            "{quick:?} vs busy loop {slow}"
        );
    });
}

#[test]
fn round_robin_ignores_load() {
    within(LIMIT, || {
        let (slow, quick) = place_around_a_slow_job(Placement::RoundRobin, 4);
        assert_eq!(quick.iter().filter(|&&i| i == slow).count(), 2);
    });
}

#[test]
fn a_panic_comes_back_through_the_handle_and_counts_as_run() {
    within(LIMIT, || {
        let cluster = Cluster::new(2).unwrap();
        let bad = cluster.spawn(|| async {
            if true {
                panic!("job failed");
            }
            0u8
        });
        let good = cluster.spawn(|| async { 1u8 });
        let err = bad.join().unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some("job failed"));
        assert_eq!(good.join().unwrap(), 1);
        assert_eq!(cluster.join().tasks_run, [1, 1]);
    });
}

#[test]
fn handles_can_be_awaited_from_another_loop_and_from_the_cluster() {
    within(LIMIT, || {
        let cluster = Cluster::new(2).unwrap();
        let a = cluster.spawn(|| async {
            executor::sleep(Duration::from_millis(5)).await;
            "a"
        });
        assert_eq!(executor::block_on(a).unwrap(), "a");
        // A job awaiting another job's handle (placed on the other loop).
        let b = cluster.spawn(|| async { 40 });
        let (tx, rx) = mpsc::channel();
        tx.send(b).unwrap();
        let c = cluster.spawn(move || {
            let b = rx.recv().unwrap();
            async move { b.await.unwrap() + 2 }
        });
        assert_eq!(c.join().unwrap(), 42);
        cluster.join();
    });
}

#[test]
fn blocking_on_a_handle_from_its_own_loop_panics_instead_of_deadlocking() {
    within(LIMIT, || {
        let cluster = Cluster::new(1).unwrap();
        let (tx, rx) = mpsc::channel::<ClusterHandle<u8>>();
        let waiter = cluster.spawn(move || async move {
            let other = rx.recv().unwrap();
            other.join().map(|_| ())
        });
        tx.send(cluster.spawn(|| async { 7u8 })).unwrap();
        let err = waiter.join().unwrap_err();
        assert!(err.panic_message().unwrap().contains("deadlock"), "{err}");
        cluster.join();
    });
}

#[test]
fn join_waits_for_every_loop_to_go_idle() {
    within(LIMIT, || {
        let cluster = Cluster::new(2).unwrap();
        let fired = Arc::new(AtomicBool::new(false));
        let f = fired.clone();
        // Its handle is dropped, and the job leaves a timer behind: `join` still waits.
        drop(cluster.spawn(move || async move {
            executor::set_timeout(Duration::from_millis(50), move || {
                f.store(true, Ordering::SeqCst);
            });
        }));
        let report = cluster.join();
        assert!(
            fired.load(Ordering::SeqCst),
            "join returned before the timer fired"
        );
        assert_eq!(report.tasks_run.iter().sum::<u64>(), 1);
    });
}

#[test]
fn dropping_the_cluster_cancels_pending_work_without_waiting() {
    within(LIMIT, || {
        let cluster = Cluster::new(2).unwrap();
        let pending: Vec<_> = (0..4)
            .map(|_| cluster.spawn(|| executor::sleep(Duration::from_secs(3600))))
            .collect();
        let t = Instant::now();
        drop(cluster);
        assert!(t.elapsed() < Duration::from_secs(5));
        for h in pending {
            assert!(h.join().unwrap_err().is_cancelled());
        }
    });
}

#[test]
fn spawning_from_many_threads_works() {
    within(LIMIT, || {
        let cluster = Arc::new(
            Cluster::builder()
                .loops(3)
                .placement(Placement::LeastLoaded)
                .build()
                .unwrap(),
        );
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let cluster = cluster.clone();
                thread::spawn(move || {
                    let hs: Vec<_> = (0..50u64)
                        .map(|i| cluster.spawn(move || async move { t * 1000 + i }))
                        .collect();
                    for (i, h) in (0..50u64).zip(hs) {
                        assert_eq!(h.join().unwrap(), t * 1000 + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let cluster = Arc::into_inner(cluster).unwrap();
        assert_eq!(cluster.loads(), [0, 0, 0]);
        assert_eq!(cluster.join().tasks_run.iter().sum::<u64>(), 200);
    });
}

#[test]
fn new_jobs_skip_a_loop_whose_thread_died() {
    within(LIMIT, || {
        for placement in [Placement::RoundRobin, Placement::LeastLoaded] {
            let cluster = Cluster::builder()
                .loops(2)
                .placement(placement)
                .build()
                .unwrap();
            // A panicking callback is an uncaught exception: it ends its loop's thread.
            let h = cluster.spawn(|| async {
                executor::set_timeout(Duration::from_millis(1), || panic!("uncaught"));
            });
            let dead = h.loop_index();
            h.join().unwrap();
            while cluster.live_loops()[dead] {
                thread::sleep(Duration::from_millis(1));
            }
            let handles: Vec<_> = (0..10u32)
                .map(|i| cluster.spawn(move || async move { i }))
                .collect();
            for (i, h) in (0..10u32).zip(handles) {
                assert_ne!(
                    h.loop_index(),
                    dead,
                    "{placement:?}: job {i} sent to a dead loop"
                );
                assert_eq!(h.join().unwrap(), i, "{placement:?}");
            }
            // Dropping (not joining) does not re-raise the dead loop's panic.
            drop(cluster);
        }
    });
}

#[test]
fn the_last_owner_may_drop_the_cluster_from_one_of_its_loops() {
    within(LIMIT, || {
        let cluster = Arc::new(Cluster::new(2).unwrap());
        let (tx, rx) = mpsc::channel();
        let mine = cluster.clone();
        let h = cluster.spawn(move || async move {
            // Wait until the test has let go of its reference, then drop the last one here.
            rx.recv().unwrap();
            drop(mine);
            7
        });
        drop(cluster);
        tx.send(()).unwrap();
        assert_eq!(h.join().unwrap(), 7);
    });
}
