//! `sync::Notify`: one stored permit, FIFO `notify_one`, `notify_waiters` for those registered,
//! and no notification lost to a dropped waiter.

mod common;

use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use common::{Log, run_bounded, settle};
use executor::spawn;
use executor::sync::Notify;

fn waiter(
    notify: &Rc<Notify>,
    log: &Log<&'static str>,
    name: &'static str,
) -> executor::JoinHandle<()> {
    let (notify, log) = (notify.clone(), log.clone());
    spawn(async move {
        notify.notified().await;
        log.push(name);
    })
}

#[test]
fn notify_one_wakes_waiters_in_arrival_order() {
    let log = Log::new();
    run_bounded(async {
        let n = Rc::new(Notify::new());
        let tasks: Vec<_> = ["a", "b", "c"].map(|name| waiter(&n, &log, name)).into();
        settle().await;
        for _ in 0..3 {
            n.notify_one();
            settle().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(log.snapshot(), ["a", "b", "c"]);
}

#[test]
fn notify_one_without_waiters_stores_a_single_permit() {
    let n = Notify::new();
    n.notify_one();
    n.notify_one();
    let cx = &mut Context::from_waker(Waker::noop());
    assert_eq!(pin!(n.notified()).poll(cx), Poll::Ready(()));
    assert_eq!(
        pin!(n.notified()).poll(cx),
        Poll::Pending,
        "permits accumulated"
    );
}

#[test]
fn notify_waiters_wakes_those_created_before_and_no_one_after() {
    let n = Notify::new();
    let cx = &mut Context::from_waker(Waker::noop());
    let mut polled = pin!(n.notified());
    let created = pin!(n.notified());
    assert!(polled.as_mut().poll(cx).is_pending());
    n.notify_waiters();
    let later = pin!(n.notified());
    assert!(polled.poll(cx).is_ready());
    assert!(
        created.poll(cx).is_ready(),
        "a future created before the call must complete"
    );
    assert!(
        later.poll(cx).is_pending(),
        "notify_waiters must not store a permit"
    );
}

#[test]
fn a_waiter_dropped_after_notify_one_chose_it_passes_the_notification_on() {
    let log = Log::new();
    run_bounded(async {
        let n = Rc::new(Notify::new());
        let a = waiter(&n, &log, "a");
        let b = waiter(&n, &log, "b");
        settle().await;
        n.notify_one(); // chooses `a`...
        a.abort(); // ...which is dropped before it runs
        b.await.unwrap();
    });
    assert_eq!(log.snapshot(), ["b"]);
}
