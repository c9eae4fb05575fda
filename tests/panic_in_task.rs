//! Panics: in a task they become a JoinError and the loop carries on; in a plain callback they
//! propagate out of `run` like an uncaught exception, and the loop stays usable and droppable.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

use executor::{EventLoop, set_immediate, set_timeout, sleep, spawn};

#[test]
fn panic_in_task_resolves_join_handle_and_loop_keeps_running() {
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let err = EventLoop::new().block_on(async move {
        let bad = spawn(async {
            sleep(Duration::from_millis(1)).await;
            panic!("boom in task");
        });
        let good = spawn(async {
            sleep(Duration::from_millis(3)).await;
            7
        });
        let e = bad.await.unwrap_err();
        assert_eq!(good.await.unwrap(), 7);
        a.set(true);
        e
    });
    assert!(after.get());
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("boom in task"));
    assert_eq!(err.to_string(), "task panicked: boom in task");
}

/// Counts live instances, to prove that dropping the loop frees what it held.
struct Tracked(Rc<Cell<usize>>);
impl Tracked {
    fn new(c: &Rc<Cell<usize>>) -> Self {
        c.set(c.get() + 1);
        Tracked(c.clone())
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

#[test]
fn panic_in_callback_propagates_and_drop_frees_everything() {
    let live = Rc::new(Cell::new(0));
    let ev = EventLoop::new();
    let l = live.clone();
    let r = catch_unwind(AssertUnwindSafe(|| {
        ev.run(move || {
            let t1 = Tracked::new(&l);
            let t2 = Tracked::new(&l);
            let t3 = Tracked::new(&l);
            spawn(async move {
                let _t = t1;
                sleep(Duration::from_secs(3600)).await;
            })
            .detach();
            set_timeout(Duration::from_secs(3600), move || {
                let _held = &t2;
            });
            set_immediate(move || {
                let _t = t3;
                panic!("uncaught in callback");
            });
        })
    }));
    let msg = *r.unwrap_err().downcast::<&str>().unwrap();
    assert_eq!(msg, "uncaught in callback");
    assert_eq!(live.get(), 2, "the task and the timer are still held");
    assert!(ev.is_alive());
    drop(ev);
    assert_eq!(
        live.get(),
        0,
        "dropping the loop frees every task and timer"
    );
}

#[test]
fn loop_runs_again_after_a_callback_panic_without_losing_queued_work() {
    let ev = EventLoop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let r = catch_unwind(AssertUnwindSafe(|| {
        ev.run(move || {
            let (a, b) = (l.clone(), l.clone());
            set_immediate(move || {
                a.borrow_mut().push("first");
                panic!("first immediate fails");
            });
            set_immediate(move || b.borrow_mut().push("second"));
        })
    }));
    assert!(r.is_err());
    assert_eq!(*log.borrow(), ["first"]);
    ev.run(|| {});
    assert_eq!(
        *log.borrow(),
        ["first", "second"],
        "the queued immediate was not lost"
    );
}

#[test]
fn abort_cancels_a_task_and_drops_its_future() {
    let live = Rc::new(Cell::new(0));
    let l = live.clone();
    EventLoop::new().block_on(async move {
        let t = Tracked::new(&l);
        let h = spawn(async move {
            let _t = t;
            sleep(Duration::from_secs(3600)).await;
        });
        sleep(Duration::from_millis(1)).await;
        assert_eq!(l.get(), 1);
        h.abort();
        assert_eq!(l.get(), 0, "the future is dropped at once");
        let e = h.await.unwrap_err();
        assert!(e.is_cancelled());
    });
}

#[test]
fn a_task_can_abort_itself() {
    EventLoop::new().block_on(async {
        let slot: Rc<RefCell<Option<executor::JoinHandle<()>>>> = Rc::default();
        let s = slot.clone();
        let h = spawn(async move {
            executor::yield_now().await;
            s.borrow().as_ref().unwrap().abort();
            // Still running until this poll returns; then cancelled.
            executor::yield_now().await;
            unreachable!("aborted task resumed");
        });
        *slot.borrow_mut() = Some(h);
        executor::sleep(Duration::from_millis(2)).await;
        let h = slot.borrow_mut().take().unwrap();
        assert!(h.is_finished());
        assert!(h.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn wakes_from_another_thread_behind_a_panicking_callback_are_not_lost() {
    let log = common::bounded(20, || {
        let ev = EventLoop::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let (tx_a, rx_a) = futures::channel::oneshot::channel::<()>();
        let (tx_b, rx_b) = futures::channel::oneshot::channel::<()>();
        let r = catch_unwind(AssertUnwindSafe(|| {
            ev.run(|| {
                let (a, b) = (log.clone(), log.clone());
                let _a = spawn(async move {
                    rx_a.await.unwrap();
                    a.borrow_mut().push("a");
                    executor::queue_microtask(|| panic!("a callback fails"));
                });
                let _b = spawn(async move {
                    rx_b.await.unwrap();
                    b.borrow_mut().push("b");
                });
                // Both wakes arrive from another thread while the loop is busy here, so the next
                // poll phase takes them as one batch: a, then b.
                let mut senders = Some((tx_a, tx_b));
                set_timeout(Duration::from_millis(1), move || {
                    let (tx_a, tx_b) = senders.take().unwrap();
                    std::thread::spawn(move || {
                        tx_a.send(()).unwrap();
                        tx_b.send(()).unwrap();
                    })
                    .join()
                    .unwrap();
                });
            })
        }));
        assert!(r.is_err(), "the callback's panic propagates out of run");
        assert_eq!(*log.borrow(), ["a"]);
        // `b` was woken in the same batch: it runs when the loop runs again (a lost wake would
        // leave its task pending for ever and the bound would fail the test).
        ev.run(|| {});
        log.take()
    });
    assert_eq!(log, ["a", "b"]);
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor fails");
    }
}

#[test]
fn a_panicking_destructor_neither_escapes_abort_nor_stops_the_loop_freeing_tasks() {
    common::bounded(20, || {
        // Through abort: the panic is the task's result.
        let ev = EventLoop::new();
        let err = ev.block_on(async {
            let h = spawn(async {
                let _p = PanicOnDrop;
                std::future::pending::<()>().await;
            });
            executor::yield_now().await;
            h.abort();
            h.await.unwrap_err()
        });
        assert!(err.is_panic(), "{err:?}");
        assert_eq!(err.panic_message(), Some("destructor fails"));

        // Through the loop's drop: the tasks after the panicking one are freed too.
        let ev = EventLoop::new();
        let live = Rc::new(Cell::new(0));
        let (ha, hb) = ev.block_on(async {
            let ha = spawn(async {
                let _p = PanicOnDrop;
                std::future::pending::<()>().await;
            });
            let t = Tracked::new(&live);
            let hb = spawn(async move {
                let _t = t;
                std::future::pending::<()>().await;
            });
            executor::yield_now().await;
            (ha, hb)
        });
        assert_eq!(live.get(), 1);
        drop(ev);
        assert_eq!(live.get(), 0, "the task after the panicking one was freed");
        assert!(ha.is_finished() && hb.is_finished());
        let ev = EventLoop::new();
        assert!(ev.block_on(ha).unwrap_err().is_panic());
        assert!(ev.block_on(hb).unwrap_err().is_cancelled());
    });
}

#[test]
fn an_interval_whose_callback_panics_is_still_armed_when_the_loop_runs_again() {
    let ticks = common::bounded(20, || {
        let ev = EventLoop::new();
        let ticks = Rc::new(Cell::new(0));
        let t = ticks.clone();
        let r = catch_unwind(AssertUnwindSafe(|| {
            ev.run(|| {
                let handle: Rc<RefCell<Option<executor::node::TimerHandle>>> = Rc::default();
                let h = handle.clone();
                *handle.borrow_mut() = Some(executor::set_interval(
                    Duration::from_millis(2),
                    move || {
                        t.set(t.get() + 1);
                        if t.get() == 1 {
                            panic!("first tick fails");
                        }
                        if t.get() == 3 {
                            h.borrow_mut().take().unwrap().clear();
                        }
                    },
                ));
            })
        }));
        assert!(r.is_err());
        assert_eq!(ticks.get(), 1);
        // As in Node.js, where the interval is re-armed in a `finally`: it goes on.
        ev.run(|| {});
        ticks.get()
    });
    assert_eq!(ticks, 3);
}

#[test]
fn dropping_the_loop_frees_a_fired_timeout_that_holds_its_own_handle() {
    let live = Rc::new(Cell::new(0));
    let ev = EventLoop::new();
    ev.run(|| {
        let t = Tracked::new(&live);
        let me: Rc<RefCell<Option<executor::node::TimerHandle>>> = Rc::default();
        let m = me.clone();
        // The callback keeps its handle (to `refresh` it later, say): a cycle through the timer.
        *me.borrow_mut() = Some(executor::set_timeout_mut(
            Duration::from_millis(1),
            move || {
                let _keep = (&t, &m);
            },
        ));
    });
    assert_eq!(live.get(), 1, "the fired callback is kept for refresh");
    drop(ev);
    assert_eq!(live.get(), 0, "the loop's drop broke the cycle");
}
