//! `offload`: results and panics come back, a dropped job never runs, a pending job keeps the
//! loop alive and wakes it at once, and the loop's drop joins the pool.

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{EXIT_FLAG, LIMIT, SlowDropFlag, within};
use executor::{EventLoop, offload, threads::Offload};

fn pool_of(n: usize) -> EventLoop {
    let mut b = EventLoop::builder();
    b.offload_threads(n);
    b.build().unwrap()
}

#[test]
fn results_come_back_through_the_pool() {
    within(LIMIT, || {
        let ev = pool_of(2);
        let sums = ev.block_on(async {
            let jobs: Vec<_> = (0..8u64)
                .map(|k| offload(move || (0..=k * 1000).sum::<u64>()))
                .collect();
            futures::future::join_all(jobs).await
        });
        let sums: Vec<u64> = sums.into_iter().map(Result::unwrap).collect();
        let expected: Vec<u64> = (0..8u64).map(|k| (0..=k * 1000).sum()).collect();
        assert_eq!(sums, expected);
    });
}

#[test]
fn the_pool_is_persistent_and_bounded() {
    within(LIMIT, || {
        let ev = pool_of(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let ids = ev.block_on(async {
            let jobs: Vec<_> = (0..12)
                .map(|_| {
                    let (running, peak) = (running.clone(), peak.clone());
                    offload(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                        thread::current().id()
                    })
                })
                .collect();
            futures::future::join_all(jobs).await
        });
        let threads: HashSet<_> = ids.into_iter().map(Result::unwrap).collect();
        assert!(threads.len() <= 2, "12 jobs used {} threads", threads.len());
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert!(
            !threads.contains(&thread::current().id()),
            "ran on the loop thread"
        );
    });
}

#[test]
fn a_panic_comes_back_as_an_error_and_the_pool_carries_on() {
    within(LIMIT, || {
        let ev = pool_of(1);
        let (err, after) = ev.block_on(async {
            let err = offload(|| -> u32 { panic!("job exploded") })
                .await
                .unwrap_err();
            (err, offload(|| 5).await)
        });
        assert!(err.is_panic() && !err.is_cancelled());
        assert_eq!(err.panic_message(), Some("job exploded"));
        assert_eq!(err.to_string(), "task panicked: job exploded");
        assert_eq!(after.unwrap(), 5);
    });
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_job_dropped_before_it_started_never_runs() {
    within(LIMIT, || {
        let ev = pool_of(1);
        let ran = Arc::new(AtomicBool::new(false));
        let captures_dropped = Arc::new(AtomicBool::new(false));
        ev.block_on(async {
            // Occupy the only worker until released.
            let (started_tx, started_rx) = mpsc::channel();
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let blocker = offload(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            started_rx.recv().unwrap();

            let (r, flag) = (ran.clone(), DropFlag(captures_dropped.clone()));
            let queued = offload(move || {
                let _flag = &flag;
                r.store(true, Ordering::SeqCst);
            });
            drop(queued);
            assert!(
                captures_dropped.load(Ordering::SeqCst),
                "removing the job drops its closure at once"
            );

            release_tx.send(()).unwrap();
            blocker.await.unwrap();
            // FIFO with one worker: had the dropped job stayed queued, it would run before this.
            offload(|| ()).await.unwrap();
        });
        assert!(!ran.load(Ordering::SeqCst), "the dropped job ran");
    });
}

#[test]
fn an_unawaited_job_keeps_run_alive_until_it_finishes() {
    within(LIMIT, || {
        let ev = pool_of(1);
        let done = Arc::new(AtomicBool::new(false));
        let stash: Rc<RefCell<Option<Offload<()>>>> = Rc::default();
        let (d, s) = (done.clone(), stash.clone());
        let started = Instant::now();
        ev.run(move || {
            // Nothing else is referenced: only the job can keep the loop running.
            *s.borrow_mut() = Some(offload(move || {
                thread::sleep(Duration::from_millis(100));
                d.store(true, Ordering::SeqCst);
            }));
        });
        assert!(
            done.load(Ordering::SeqCst),
            "run() returned before the job finished"
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(!ev.is_alive());
        drop(stash);
    });
}

#[test]
fn a_job_whose_future_was_dropped_while_running_still_keeps_the_loop_alive() {
    within(LIMIT, || {
        let ev = pool_of(1);
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        ev.run(move || {
            let (started_tx, started_rx) = mpsc::channel();
            let running = offload(move || {
                started_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(50));
                d.store(true, Ordering::SeqCst);
            });
            started_rx.recv().unwrap();
            drop(running);
        });
        assert!(
            done.load(Ordering::SeqCst),
            "run() returned while the job ran"
        );
    });
}

#[test]
fn a_finished_job_wakes_a_sleeping_loop_at_once() {
    within(LIMIT, || {
        let ev = pool_of(1);
        let elapsed = ev.block_on(async {
            // The loop's next timer is 5 s away: it sleeps in the poll phase until woken.
            executor::spawn(executor::sleep(Duration::from_secs(5))).detach();
            let t = Instant::now();
            offload(|| thread::sleep(Duration::from_millis(20)))
                .await
                .unwrap();
            t.elapsed()
        });
        assert!(elapsed < Duration::from_secs(2), "woke after {elapsed:?}");
    });
}

#[test]
fn dropping_the_loop_joins_the_pool_threads() {
    within(LIMIT, || {
        let ev = pool_of(2);
        let exited: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::default()).collect();
        let seen = Arc::new(Mutex::new(HashSet::new()));
        ev.block_on(async {
            // Mark both workers: jobs rendezvous so each worker gets one.
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let jobs: Vec<_> = exited
                .iter()
                .map(|flag| {
                    let (flag, barrier, seen) = (flag.clone(), barrier.clone(), seen.clone());
                    offload(move || {
                        barrier.wait();
                        seen.lock().unwrap().insert(thread::current().id());
                        EXIT_FLAG.with(|f| *f.borrow_mut() = Some(SlowDropFlag(flag)));
                    })
                })
                .collect();
            for r in futures::future::join_all(jobs).await {
                r.unwrap();
            }
        });
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert!(exited.iter().all(|f| !f.load(Ordering::SeqCst)));
        drop(ev);
        assert!(
            exited.iter().all(|f| f.load(Ordering::SeqCst)),
            "a pool thread was still alive after the loop was dropped"
        );
    });
}

#[test]
fn jobs_still_queued_when_the_loop_drops_are_cancelled_not_run() {
    within(LIMIT, || {
        let ev = pool_of(1);
        let ran = Arc::new(AtomicBool::new(false));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let r = ran.clone();
        let (running, queued) = ev.block_on(async move {
            let running = offload(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                1
            });
            started_rx.recv().unwrap();
            let queued = offload(move || r.store(true, Ordering::SeqCst));
            (running, queued)
        });
        // The drop waits for the running job, so release it from elsewhere.
        let releaser = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            release_tx.send(()).unwrap();
        });
        drop(ev);
        releaser.join().unwrap();
        // Both futures outlived their loop (they are `Send` and safe to poll anywhere).
        assert_eq!(futures::executor::block_on(running).unwrap(), 1);
        let err = futures::executor::block_on(queued).unwrap_err();
        assert!(err.is_cancelled());
        assert!(!ran.load(Ordering::SeqCst));
    });
}

#[test]
fn offload_outside_a_loop_panics_with_a_clear_message() {
    let err = std::panic::catch_unwind(|| offload(|| 1)).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("executor::offload needs a running event loop"),
        "{msg}"
    );
}
