//! `sync::RwLock`: readers share, requests are served in arrival order, writers are not starved.

mod common;

use std::rc::Rc;

use common::{Log, run_bounded, settle};
use executor::sync::RwLock;
use executor::{spawn, yield_now};

#[test]
fn a_reader_arriving_while_a_writer_waits_queues_behind_it() {
    let log = Log::new();
    run_bounded(async {
        let lock = Rc::new(RwLock::new(0));
        let reading = lock.read().await;
        let writer = spawn({
            let (lock, log) = (lock.clone(), log.clone());
            async move {
                let mut w = lock.write().await;
                log.push("writer in");
                yield_now().await;
                *w += 1;
                log.push("writer out");
            }
        });
        settle().await;
        // Readers could share with `reading`, but the queued writer comes first.
        assert!(
            lock.try_read().is_err(),
            "try_read jumped ahead of a queued writer"
        );
        let late_reader = spawn({
            let (lock, log) = (lock.clone(), log.clone());
            async move {
                let r = lock.read().await;
                log.push("late reader in");
                *r
            }
        });
        settle().await;
        log.push("first reader out");
        drop(reading);
        writer.await.unwrap();
        let v = late_reader.await.unwrap();
        assert_eq!(v, 1);
    });
    assert_eq!(
        log.snapshot(),
        [
            "first reader out",
            "writer in",
            "writer out",
            "late reader in"
        ]
    );
}

#[test]
fn readers_queued_together_are_admitted_together_and_a_later_writer_waits_for_all() {
    let log = Log::new();
    run_bounded(async {
        let lock = Rc::new(RwLock::new(()));
        let writing = lock.write().await;
        let mut tasks = Vec::new();
        for name in ["r1", "r2", "r3"] {
            let (lock, log) = (lock.clone(), log.clone());
            tasks.push(spawn(async move {
                let _r = lock.read().await;
                log.push(format!("{name} in"));
                yield_now().await;
                log.push(format!("{name} out"));
            }));
        }
        let (l, lg) = (lock.clone(), log.clone());
        tasks.push(spawn(async move {
            let _w = l.write().await;
            lg.push("w2 in".to_string());
        }));
        settle().await;
        drop(writing);
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(
        log.snapshot(),
        [
            "r1 in", "r2 in", "r3 in", "r1 out", "r2 out", "r3 out", "w2 in"
        ]
    );
}

#[test]
fn a_writer_is_not_starved_by_a_stream_of_readers() {
    const READERS: usize = 8;
    const ROUNDS: usize = 10;
    let log = Log::new();
    run_bounded(async {
        let lock = Rc::new(RwLock::new(()));
        let mut readers = Vec::new();
        for i in 0..READERS {
            let (lock, log) = (lock.clone(), log.clone());
            readers.push(spawn(async move {
                for round in 0..ROUNDS {
                    let _r = lock.read().await;
                    log.push(format!("r{i}.{round}"));
                    // Readers overlap: someone always holds a read guard.
                    yield_now().await;
                }
            }));
        }
        settle().await;
        let (l, lg) = (lock.clone(), log.clone());
        let writer = spawn(async move {
            let _w = l.write().await;
            lg.push("writer".to_string());
        });
        writer.await.unwrap();
        for r in readers {
            r.await.unwrap();
        }
    });
    let log = log.snapshot();
    let at = log.iter().position(|e| e == "writer").unwrap();
    // The writer queued while the readers held their round-1 guards; each reader's next
    // request queued behind it, so no reader got past round 1 first.
    assert!(
        log[..at]
            .iter()
            .all(|e| e.ends_with(".0") || e.ends_with(".1")),
        "writer waited behind later readers: {log:?}"
    );
}

#[test]
fn downgrade_lets_queued_readers_in_but_not_queued_writers() {
    let log = Log::new();
    run_bounded(async {
        let lock = Rc::new(RwLock::new(0));
        let mut w = lock.write().await;
        let reader = spawn({
            let (lock, log) = (lock.clone(), log.clone());
            async move { log.push(format!("reader saw {}", *lock.read().await)) }
        });
        settle().await;
        *w = 7;
        let r = w.downgrade();
        reader.await.unwrap();
        assert!(lock.try_write().is_err());
        drop(r);
        assert!(lock.try_write().is_ok());
    });
    assert_eq!(log.snapshot(), ["reader saw 7"]);
}
