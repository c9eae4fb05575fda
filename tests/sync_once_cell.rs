//! `sync::OnceCell`: exactly one initialiser completes; a failed, panicking or cancelled one is
//! retried by the next caller in line.

mod common;

use std::cell::Cell;
use std::future::pending;
use std::rc::Rc;

use common::{Log, run_bounded, settle};
use executor::sync::{OnceCell, SetError};
use executor::{spawn, yield_now};

#[test]
fn a_thousand_concurrent_callers_run_one_initialiser() {
    const CALLERS: usize = 1000;
    run_bounded(async {
        let cell = Rc::new(OnceCell::new());
        let inits = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (cell, inits) = (cell.clone(), inits.clone());
                spawn(async move {
                    *cell
                        .get_or_init(|| async move {
                            inits.set(inits.get() + 1);
                            // Everyone else arrives while this initialiser is in progress.
                            yield_now().await;
                            yield_now().await;
                            i
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(
                t.await.unwrap(),
                0,
                "every caller sees the first caller's value"
            );
        }
        assert_eq!(inits.get(), 1);
        assert_eq!(cell.get(), Some(&0));
    });
}

/// Spawns a caller that logs when its initialiser starts and ends, and how it finishes.
fn caller(
    cell: &Rc<OnceCell<&'static str>>,
    log: &Log<String>,
    name: &'static str,
    init: impl AsyncFnOnce() -> &'static str + 'static,
) -> executor::JoinHandle<&'static str> {
    let (cell, log) = (cell.clone(), log.clone());
    spawn(async move {
        let v = cell
            .get_or_init(|| async {
                log.push(format!("{name}: init starts"));
                let v = init().await;
                log.push(format!("{name}: init completes"));
                v
            })
            .await;
        log.push(format!("{name}: got {v}"));
        *v
    })
}

#[test]
fn a_panicking_initialiser_is_retried_by_the_next_caller() {
    let log = Log::new();
    run_bounded(async {
        let cell = Rc::new(OnceCell::new());
        let a = caller(&cell, &log, "a", async || {
            yield_now().await;
            panic!("init failed");
        });
        let b = caller(&cell, &log, "b", async || {
            yield_now().await;
            "from b"
        });
        let c = caller(&cell, &log, "c", async || "from c");
        let err = a.await.unwrap_err();
        assert_eq!(err.panic_message(), Some("init failed"));
        assert_eq!(b.await.unwrap(), "from b");
        assert_eq!(c.await.unwrap(), "from b");
    });
    assert_eq!(
        log.snapshot(),
        [
            "a: init starts",
            "b: init starts",
            "b: init completes",
            "b: got from b",
            "c: got from b"
        ]
    );
}

#[test]
fn a_cancelled_initialiser_is_retried_by_the_next_caller() {
    let log = Log::new();
    run_bounded(async {
        let cell = Rc::new(OnceCell::new());
        let a = caller(&cell, &log, "a", async || pending().await);
        let b = caller(&cell, &log, "b", async || "from b");
        settle().await;
        assert!(!a.is_finished() && !b.is_finished());
        a.abort();
        assert!(a.await.unwrap_err().is_cancelled());
        assert_eq!(b.await.unwrap(), "from b");
    });
    assert_eq!(
        log.snapshot(),
        [
            "a: init starts",
            "b: init starts",
            "b: init completes",
            "b: got from b"
        ]
    );
}

#[test]
fn a_failed_try_init_returns_its_error_and_the_next_caller_tries() {
    run_bounded(async {
        let cell = Rc::new(OnceCell::<u32>::new());
        let attempts = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let (cell, attempts) = (cell.clone(), attempts.clone());
                spawn(async move {
                    cell.get_or_try_init(|| async move {
                        attempts.set(attempts.get() + 1);
                        yield_now().await;
                        if i == 0 {
                            Err("first attempt fails")
                        } else {
                            Ok(i)
                        }
                    })
                    .await
                    .copied()
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results, [Err("first attempt fails"), Ok(1), Ok(1)]);
        assert_eq!(attempts.get(), 2);
    });
}

#[test]
fn set_is_refused_while_an_initialiser_runs_and_after_the_value_is_set() {
    run_bounded(async {
        let cell = Rc::new(OnceCell::new());
        let init = spawn({
            let cell = cell.clone();
            async move {
                *cell
                    .get_or_init(|| async {
                        yield_now().await;
                        1
                    })
                    .await
            }
        });
        settle().await;
        assert_eq!(cell.get(), None);
        assert_eq!(cell.set(2), Err(SetError::Initializing(2)));
        assert_eq!(init.await.unwrap(), 1);
        assert_eq!(cell.set(3), Err(SetError::AlreadyInitialized(3)));
        assert_eq!(cell.get(), Some(&1));
    });
}

#[test]
fn a_value_set_directly_is_what_later_callers_get() {
    run_bounded(async {
        let mut cell = OnceCell::new();
        cell.set("direct").unwrap();
        assert_eq!(*cell.get_or_init(|| async { "init" }).await, "direct");
        assert_eq!(cell.take(), Some("direct"));
        assert_eq!(*cell.get_or_init(|| async { "again" }).await, "again");
        assert_eq!(cell.into_inner(), Some("again"));
    });
}
