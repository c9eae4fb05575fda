//! The stall detector names a blocking callback or task poll while it still blocks, then reports
//! how long it lasted; short callbacks are never reported; stopping joins the watchdog.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{busy, within};
use executor::observe::{Kind, Phase};
use executor::observe::{StallDetector, StallReport};
use executor::{EventLoop, set_immediate, set_timeout, spawn};

const LIMIT: Duration = Duration::from_secs(60);
/// How long a test waits for a report before failing.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// A detector with the default threshold (100 ms) that sends every report down a channel and
/// raises `fired` on the first one.
fn detector(
    ev: &EventLoop,
) -> (
    StallDetector<'_>,
    mpsc::Receiver<StallReport>,
    Arc<AtomicBool>,
) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let d = StallDetector::builder()
        .on_stall(move |r| {
            f.store(true, Ordering::SeqCst);
            let _ = tx.lock().unwrap().send(*r);
        })
        .start(ev);
    assert_eq!(d.threshold(), Duration::from_millis(100));
    (d, rx, fired)
}

/// Blocks for 300 ms, and past that until the detector has spoken (at most `REPORT_WAIT`), then
/// says whether it had spoken by then: the report must come while the blocking goes on.
fn block_until_reported(fired: &AtomicBool) -> bool {
    let t = Instant::now();
    busy(Duration::from_millis(300));
    while !fired.load(Ordering::SeqCst) && t.elapsed() < REPORT_WAIT {
        std::hint::spin_loop();
    }
    fired.load(Ordering::SeqCst)
}

#[test]
fn a_blocking_timeout_is_reported_while_it_runs_then_with_its_duration() {
    let (first, second, fired_before_return, blocked) = within(LIMIT, || {
        let ev = EventLoop::new();
        let (d, rx, fired) = detector(&ev);
        let before_return = Rc::new(Cell::new(None));
        let blocked = Rc::new(Cell::new(Duration::ZERO));
        let (b, bl) = (before_return.clone(), blocked.clone());
        let timer_id = ev.run(|| {
            set_timeout(Duration::from_millis(1), move || {
                let t = Instant::now();
                b.set(Some(block_until_reported(&fired)));
                bl.set(t.elapsed());
            })
            .id()
        });
        let first = rx.recv_timeout(REPORT_WAIT).expect("a report while it ran");
        let second = rx
            .recv_timeout(REPORT_WAIT)
            .expect("a report once it ended");
        d.stop();
        assert!(rx.try_recv().is_err(), "two reports per stall");
        assert_eq!(
            first.span.id, timer_id,
            "the report names the timer the user holds"
        );
        (first, second, before_return.get(), blocked.get())
    });
    eprintln!("{first}\n{second}");
    assert_eq!(
        fired_before_return,
        Some(true),
        "reported while it still ran"
    );
    assert!(first.ongoing);
    assert_eq!(first.span.kind, Kind::Timeout);
    assert_eq!(first.span.phase, Phase::Timers);
    assert_ne!(first.span.id, 0, "a timer's span carries its timer id");
    assert_eq!(first.span.location, None);
    assert!(first.elapsed >= Duration::from_millis(100), "{first}");
    assert!(first.elapsed <= blocked, "{first}");
    assert!(!second.ongoing);
    assert_eq!((second.span, second.sequence), (first.span, first.sequence));
    assert!(second.elapsed >= Duration::from_millis(300), "{second}");
    assert!(second.elapsed >= blocked && second.elapsed < blocked + Duration::from_secs(1));
    assert!(second.to_string().contains("stall ended after"));
}

#[test]
fn a_blocking_task_poll_is_reported_with_its_id_and_spawn_location() {
    let (first, second, task_id, line) = within(LIMIT, || {
        let ev = EventLoop::new();
        let (d, rx, fired) = detector(&ev);
        let (task_id, line) = ev.block_on(async move {
            let line = line!() + 1;
            let h = spawn(async move { assert!(block_until_reported(&fired)) });
            let id = h.id();
            h.await.unwrap();
            (id, line)
        });
        let first = rx.recv_timeout(REPORT_WAIT).expect("a report while it ran");
        let second = rx
            .recv_timeout(REPORT_WAIT)
            .expect("a report once it ended");
        drop(d);
        (first, second, task_id, line)
    });
    eprintln!("{first}\n{second}");
    assert!(first.ongoing && !second.ongoing);
    assert_eq!(first.span.kind, Kind::Task);
    // A spawned task's first poll is queued as a microtask.
    assert_eq!(first.span.phase, Phase::Microtask);
    assert_eq!(first.span.id, task_id);
    let loc = first
        .span
        .location
        .expect("a task's span has its spawn location");
    assert_eq!((loc.file(), loc.line()), (file!(), line));
    assert!(first.to_string().contains("still running"), "{first}");
    assert!(
        first
            .to_string()
            .contains(&format!("task #{task_id} spawned at"))
    );
    assert_eq!(second.sequence, first.sequence);
    assert!(second.elapsed >= Duration::from_millis(300));
}

#[test]
fn short_callbacks_are_never_reported_and_stopping_joins_the_watchdog() {
    within(LIMIT, || {
        let ev = EventLoop::new();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let r = reports.clone();
        let d = StallDetector::builder()
            .threshold(Duration::from_millis(100))
            .check_every(Duration::from_millis(5))
            .on_stall(move |rep| r.lock().unwrap().push(*rep))
            .start(&ev);
        // 40 immediates of 5 ms each: the loop is busy for 200 ms, but no callback takes long.
        ev.run(|| {
            fn chain(n: u32) {
                busy(Duration::from_millis(5));
                if n > 1 {
                    set_immediate(move || chain(n - 1));
                }
            }
            set_immediate(|| chain(40));
        });
        assert_eq!(
            Arc::strong_count(&reports),
            2,
            "the watchdog holds the hook"
        );
        drop(d);
        assert_eq!(
            Arc::strong_count(&reports),
            1,
            "dropping the detector joined the watchdog (which dropped the hook)"
        );
        assert!(reports.lock().unwrap().is_empty(), "{:?}", reports.lock());
        // Removed from the loop too: a stall now goes unreported (and nothing crashes).
        ev.run(|| set_immediate(|| busy(Duration::from_millis(150))));
        assert!(reports.lock().unwrap().is_empty());
    });
}
