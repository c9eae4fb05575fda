//! Misuse of the API gets a clear message instead of a hang or a silent surprise.

use std::panic::catch_unwind;
use std::time::Duration;

use executor::{EventLoop, set_immediate, set_timeout, sleep};

fn panic_message(r: std::thread::Result<()>) -> String {
    let p = r.expect_err("expected a panic");
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn api_without_a_running_loop_names_the_call() {
    let m = panic_message(catch_unwind(|| {
        set_timeout(Duration::from_millis(1), || {});
    }));
    assert!(
        m.contains("set_timeout") && m.contains("needs a running event loop"),
        "{m}"
    );
    let m = panic_message(catch_unwind(|| {
        drop(executor::spawn(async {}));
    }));
    assert!(m.contains("spawn"), "{m}");
    let m = panic_message(catch_unwind(|| {
        drop(sleep(Duration::from_millis(1)));
    }));
    assert!(m.contains("sleep"), "{m}");
    let m = panic_message(catch_unwind(|| {
        drop(executor::time::timeout(Duration::from_millis(1), async {}));
    }));
    assert!(
        m.contains("executor::time::timeout needs a running event loop"),
        "{m}"
    );
}

#[test]
fn nested_block_on_is_refused_with_a_clear_message() {
    let m = panic_message(catch_unwind(|| {
        EventLoop::new().block_on(async {
            EventLoop::new().block_on(async {});
        });
    }));
    assert!(m.contains("block_on") && m.contains("deadlock"), "{m}");
}

#[test]
fn block_on_inside_run_callback_is_refused() {
    let m = panic_message(catch_unwind(|| {
        EventLoop::new().run(|| {
            set_immediate(|| executor::block_on(async {}));
        });
    }));
    assert!(
        m.contains("executor::block_on called from inside a running event loop"),
        "the message names the free function that was called: {m}"
    );
}

#[test]
fn zero_interval_is_refused() {
    let m = panic_message(catch_unwind(|| {
        executor::block_on(async {
            let _ = executor::time::interval(Duration::ZERO);
        });
    }));
    assert!(m.contains("period must be non-zero"), "{m}");
}

#[test]
fn huge_callback_delay_is_refused() {
    let m = panic_message(catch_unwind(|| {
        EventLoop::new().run(|| {
            set_timeout(Duration::MAX, || {});
        });
    }));
    assert!(m.contains("longer than the maximum"), "{m}");
}

#[test]
fn duration_max_sleep_means_never_and_does_not_panic() {
    let r = executor::block_on(async {
        executor::time::timeout(Duration::from_millis(2), sleep(Duration::MAX)).await
    });
    assert!(r.is_err());
}

#[test]
fn clearing_twice_reports_false_and_changes_nothing() {
    EventLoop::new().run(|| {
        let t = set_timeout(Duration::from_millis(50), || panic!("cleared timer fired"));
        assert!(t.clear());
        assert!(!t.clear());
        assert!(
            !t.refresh().is_active(),
            "a cleared timer cannot be re-armed"
        );
        let i = set_immediate(|| panic!("cleared immediate ran"));
        assert!(i.clear());
        assert!(!i.clear());
    });
}

#[test]
fn huge_interval_periods_are_refused_or_mean_never() {
    let m = panic_message(catch_unwind(|| {
        EventLoop::new().run(|| {
            executor::set_interval(Duration::MAX, || {});
        });
    }));
    assert!(
        m.contains("set_interval") && m.contains("longer than the maximum"),
        "{m}"
    );
    // The async interval, like `sleep`, has no Node.js limit to honour: a period too long to
    // represent means a first tick that never comes (and no panic).
    let never = EventLoop::new().block_on(async {
        use futures::StreamExt;
        let mut iv = executor::time::interval(Duration::MAX);
        executor::time::timeout(Duration::from_millis(5), iv.next())
            .await
            .is_err()
    });
    assert!(never, "an interval of Duration::MAX ticked");
}

#[test]
fn monitor_misuse_gets_a_clear_message() {
    use executor::observe::{StallDetector, monitor_loop_delay};
    let m = panic_message(catch_unwind(|| {
        monitor_loop_delay(Duration::from_millis(1)).enable();
    }));
    assert!(
        m.contains("LoopDelayMonitor::enable needs a running event loop"),
        "{m}"
    );
    let m = panic_message(catch_unwind(|| {
        monitor_loop_delay(Duration::MAX);
    }));
    assert!(
        m.contains("monitor_loop_delay") && m.contains("longer than the maximum"),
        "{m}"
    );
    let m = panic_message(catch_unwind(|| {
        let _ = StallDetector::builder().threshold(Duration::ZERO);
    }));
    assert!(m.contains("threshold"), "{m}");
    let m = panic_message(catch_unwind(|| {
        let _ = StallDetector::builder().check_every(Duration::ZERO);
    }));
    assert!(m.contains("check_every"), "{m}");
}

#[test]
fn a_sleep_awaited_on_another_loop_is_refused_instead_of_hanging() {
    let a = EventLoop::new();
    // (In a tuple: a future that returns a future would trip clippy's async_yields_async.)
    let (s,) = a.block_on(async { (sleep(Duration::from_secs(60)),) });
    let m = panic_message(catch_unwind(std::panic::AssertUnwindSafe(|| {
        EventLoop::new().block_on(s);
    })));
    assert!(m.contains("different event loop"), "{m}");
    let (s,) = a.block_on(async { (sleep(Duration::from_secs(60)),) });
    let m = panic_message(catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(s);
    })));
    assert!(m.contains("no event loop running"), "{m}");
}
