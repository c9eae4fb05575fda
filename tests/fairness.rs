//! Fairness: no ordinary Rust future, hot socket or self-waking task freezes the loop.
//!
//! Each test runs its loop on a thread bounded by `common::within`: a loop that hangs fails the
//! test instead of hanging the run. Nothing here asserts speed, only what ran and in which order.
//!
//! Ported from tokio (tokio/tests/rt_common.rs and time_rt.rs): `complete_block_on_under_load`,
//! `complete_task_under_load`, `io_driver_called_when_under_load`, `starving` (these pass with the
//! default settings: a self-wake resumes in the check phase) and `ping_pong_saturation` (which
//! needs `Builder::max_jobs_per_drain`: two tasks waking each other are promise continuations,
//! and an endless chain of those starves the loop by default, as in Node.js).

mod common;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use common::{LIMIT, Log, within};
use executor::{EventLoop, loop_stats, set_immediate, set_interval, sleep, spawn};

/// The Rust "yield" idiom: wake yourself and return `Pending` once (futures-lite's `yield_now`,
/// tokio's test helper `yield_once`).
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// tokio's "spin hard" task: yields with the Rust idiom (wake itself, return `Pending`) for ever.
fn spin_hard() {
    spawn(async {
        loop {
            yield_once().await;
        }
    })
    .detach();
}

// ----- program 1: the self-waking yield idiom ---------------------------------------------

#[test]
fn self_waking_yield_lets_timers_and_immediates_run() {
    let (spins, ticks) = within(LIMIT, || {
        EventLoop::new().block_on(async {
            let spins = Rc::new(Cell::new(0u64));
            let s = spins.clone();
            let spinner = spawn(async move {
                loop {
                    yield_once().await;
                    s.set(s.get() + 1);
                }
            });
            let ticks = Rc::new(Cell::new(0u32));
            let t = ticks.clone();
            let interval = set_interval(Duration::from_millis(1), move || t.set(t.get() + 1));
            while ticks.get() < 10 {
                sleep(Duration::from_millis(1)).await;
            }
            interval.clear();
            spinner.abort();
            (spins.get(), ticks.get())
        })
    });
    assert!(ticks >= 10);
    assert!(spins > 0, "the spinner ran too");
}

#[test]
fn a_self_wake_resumes_in_the_check_phase_and_a_wake_from_another_task_is_a_microtask() {
    let log = within(LIMIT, || {
        EventLoop::new().block_on(async {
            let log = Log::new();
            // Queued before the yielding task runs: the self-woken task resumes after it.
            let l = log.clone();
            set_immediate(move || l.push("immediate"));
            let l = log.clone();
            let me = spawn(async move {
                l.push("task: before yield_once");
                yield_once().await;
                l.push("task: after yield_once");
            });
            // A wake from another task: a promise continuation, polled in the same drain.
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            let l = log.clone();
            let waiter = spawn(async move {
                rx.await.unwrap();
                l.push("waiter: woken by the sender");
            });
            let l = log.clone();
            let sender = spawn(async move {
                l.push("sender: send");
                tx.send(()).unwrap();
                executor::queue_microtask({
                    let l = l.clone();
                    move || l.push("microtask queued after the send")
                });
            });
            me.await.unwrap();
            waiter.await.unwrap();
            sender.await.unwrap();
            log.snapshot()
        })
    });
    assert_eq!(
        log,
        [
            "task: before yield_once",
            "sender: send",
            "waiter: woken by the sender",
            "microtask queued after the send",
            "immediate",
            "task: after yield_once",
        ]
    );
}

/// tokio's `rt_common::complete_block_on_under_load`.
#[test]
fn complete_block_on_under_load() {
    within(LIMIT, || {
        EventLoop::new().block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel();
            spin_hard();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                tx.send(()).unwrap();
            });
            rx.await.unwrap();
        })
    });
}

/// tokio's `rt_common::complete_task_under_load`.
#[test]
fn complete_task_under_load() {
    within(LIMIT, || {
        EventLoop::new().block_on(async {
            let (tx1, rx1) = futures::channel::oneshot::channel();
            let (tx2, rx2) = futures::channel::oneshot::channel();
            spin_hard();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                tx1.send(()).unwrap();
            });
            spawn(async move {
                rx1.await.unwrap();
                tx2.send(()).unwrap();
            })
            .detach();
            rx2.await.unwrap();
        })
    });
}

/// tokio's `rt_common::io_driver_called_when_under_load`: a hundred self-waking spinners (tokio
/// uses its `yield_now`; here the bare idiom, which is what used to hang) and a client and a
/// server that must still get their I/O.
#[test]
#[cfg(all(unix, not(miri)))] // `executor::net` is compiled out under Miri
fn io_driver_called_when_under_load() {
    use executor::net::{TcpListener, TcpStream};
    use futures::{AsyncReadExt, AsyncWriteExt};
    within(LIMIT, || {
        let ev = EventLoop::new();
        let spinners: Vec<_> = (0..100)
            .map(|_| {
                ev.spawn(async {
                    loop {
                        yield_once().await;
                    }
                })
            })
            .collect();
        ev.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let srv = spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                stream.write_all(b"hello world").await.unwrap();
            });
            let cli = spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let mut dst = vec![0; 11];
                stream.read_exact(&mut dst).await.unwrap();
                assert_eq!(dst, b"hello world");
            });
            srv.await.unwrap();
            cli.await.unwrap();
        });
        for s in &spinners {
            s.abort();
        }
    });
}

/// tokio's `time_rt::starving`: a future that wakes itself every poll still sees its timer fire.
#[test]
fn starving() {
    struct Starve<T: Future<Output = ()> + Unpin>(T, u64);

    impl<T: Future<Output = ()> + Unpin> Future for Starve<T> {
        type Output = u64;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
            if Pin::new(&mut self.0).poll(cx).is_ready() {
                return Poll::Ready(self.1);
            }
            self.1 += 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    let polls = within(LIMIT, || {
        EventLoop::new().block_on(async {
            let when = Instant::now() + Duration::from_millis(10);
            let polls = Starve(Box::pin(executor::time::sleep_until(when)), 0).await;
            assert!(Instant::now() >= when);
            polls
        })
    });
    assert!(polls > 0);
}

// ----- program 2: a hot socket beside a 1 ms interval ---------------------------------------

/// A peer thread writes into the socket as fast as it can, so a read always finds data; the
/// reader must still leave room for the interval, and never makes more than 32 ready reads in
/// one loop iteration.
#[test]
#[cfg(all(unix, not(miri)))] // `executor::net` is compiled out under Miri
fn a_hot_socket_does_not_starve_a_1ms_interval() {
    use executor::net::TcpListener;
    use futures::AsyncReadExt;
    use std::io::Write;
    let (ticks, reads, most_in_one_iteration) = within(LIMIT, || {
        EventLoop::new().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let writer = thread::spawn(move || {
                let mut peer = std::net::TcpStream::connect(addr).unwrap();
                let chunk = vec![7u8; 64 * 1024];
                while !s.load(Ordering::Relaxed) {
                    if peer.write_all(&chunk).is_err() {
                        break;
                    }
                }
            });
            let (mut conn, _) = listener.accept().await.unwrap();
            // Fill the socket before reading, so the first reads all find data.
            while conn.peer_addr().is_err() {}
            thread::sleep(Duration::from_millis(20));
            let ticks = Rc::new(Cell::new(0u32));
            let t = ticks.clone();
            let interval = set_interval(Duration::from_millis(1), move || t.set(t.get() + 1));
            let reads = Rc::new(Cell::new(0u64));
            let most = Rc::new(Cell::new(0u32));
            let (r, m, t) = (reads.clone(), most.clone(), ticks.clone());
            let reader = spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let (mut iteration, mut in_iteration) = (u64::MAX, 0u32);
                while t.get() < 20 {
                    let n = conn.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the writer keeps writing");
                    r.set(r.get() + 1);
                    let now = loop_stats().iterations;
                    if now == iteration {
                        in_iteration += 1;
                    } else {
                        (iteration, in_iteration) = (now, 1);
                    }
                    m.set(m.get().max(in_iteration));
                }
            });
            reader.await.unwrap();
            interval.clear();
            stop.store(true, Ordering::Relaxed);
            writer.join().unwrap();
            (ticks.get(), reads.get(), most.get())
        })
    });
    assert!(ticks >= 20);
    assert!(reads > 0);
    assert!(
        most_in_one_iteration <= 32,
        "{most_in_one_iteration} ready reads in one loop iteration (the budget is 32)"
    );
}

// ----- program 3: two tasks waking each other -----------------------------------------------

/// A ping-pong of two tasks over a channel, with a drain bound, beside a timer.
#[test]
fn two_tasks_waking_each_other_share_the_loop_with_a_drain_bound() {
    let rounds = within(LIMIT, || {
        let ev = EventLoop::builder().max_jobs_per_drain(64).build().unwrap();
        ev.block_on(async {
            use futures::{SinkExt, StreamExt};
            let (mut ping_tx, mut ping_rx) = futures::channel::mpsc::channel::<()>(1);
            let (mut pong_tx, mut pong_rx) = futures::channel::mpsc::channel::<()>(1);
            let rounds = Rc::new(Cell::new(0u64));
            let r = rounds.clone();
            let a = spawn(async move {
                loop {
                    if ping_tx.send(()).await.is_err() || pong_rx.next().await.is_none() {
                        break;
                    }
                    r.set(r.get() + 1);
                }
            });
            let b = spawn(async move {
                while ping_rx.next().await.is_some() {
                    if pong_tx.send(()).await.is_err() {
                        break;
                    }
                }
            });
            sleep(Duration::from_millis(5)).await;
            a.abort();
            b.abort();
            rounds.get()
        })
    });
    assert!(rounds > 0);
}

/// tokio's `rt_common::ping_pong_saturation`, with `max_jobs_per_drain` (tokio's default
/// `event_interval`, 61).
#[test]
fn ping_pong_saturation() {
    use tokio::sync::mpsc;
    const NUM: usize = 100;
    within(LIMIT, || {
        let ev = EventLoop::builder().max_jobs_per_drain(61).build().unwrap();
        let running = Arc::new(AtomicBool::new(true));
        ev.block_on(async {
            let (spawned_tx, mut spawned_rx) = mpsc::unbounded_channel();
            let mut tasks = vec![];
            // Spawn a bunch of tasks that ping-pong between each other to saturate the loop.
            for _ in 0..NUM {
                let (tx1, mut rx1) = mpsc::unbounded_channel();
                let (tx2, mut rx2) = mpsc::unbounded_channel();
                let spawned_tx = spawned_tx.clone();
                let running = running.clone();
                tasks.push(spawn(async move {
                    spawned_tx.send(()).unwrap();
                    while running.load(Ordering::Relaxed) {
                        tx1.send(()).unwrap();
                        rx2.recv().await.unwrap();
                    }
                    // Close the channel and wait for the other task to exit.
                    drop(tx1);
                    assert!(rx2.recv().await.is_none());
                }));
                tasks.push(spawn(async move {
                    while rx1.recv().await.is_some() {
                        tx2.send(()).unwrap();
                    }
                }));
            }
            for _ in 0..NUM {
                spawned_rx.recv().await.unwrap();
            }
            // spawn another task and wait for it to complete
            let handle = spawn(async {
                for _ in 0..5 {
                    // Yielding forces it back into the queue.
                    executor::yield_now().await;
                }
            });
            handle.await.unwrap();
            running.store(false, Ordering::Relaxed);
            for t in tasks {
                t.await.unwrap();
            }
        });
    });
}

/// Without a bound the same ping-pong is an endless drain (Node.js semantics); the stall
/// detector names it: a drain, how many jobs, and the two tasks that kept re-queueing.
#[test]
fn the_stall_detector_reports_a_long_drain_with_its_jobs_and_requeuers() {
    use executor::observe::StallDetector;
    let reports = within(LIMIT, || {
        let ev = EventLoop::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reported = Arc::new(AtomicBool::new(false));
        let (s, r) = (seen.clone(), reported.clone());
        let detector = StallDetector::builder()
            .threshold(Duration::from_millis(50))
            .on_stall(move |report| {
                s.lock().unwrap().push(*report);
                // (A single job preempted past the threshold is reported as a span: not this.)
                if report.drain.is_some() {
                    r.store(true, Ordering::Release);
                }
            })
            .start(&ev);
        ev.block_on(async {
            use futures::{SinkExt, StreamExt};
            let (mut ping_tx, mut ping_rx) = futures::channel::mpsc::channel::<()>(0);
            let (mut pong_tx, mut pong_rx) = futures::channel::mpsc::channel::<()>(0);
            // Ends by itself once the drain has been reported (the bound of `within` fails the
            // test if it never is), so the drain ends and its end report comes.
            let a = spawn(async move {
                while !reported.load(Ordering::Acquire) {
                    ping_tx.send(()).await.unwrap();
                    pong_rx.next().await.unwrap();
                }
            });
            let b = spawn(async move {
                while ping_rx.next().await.is_some() {
                    if pong_tx.send(()).await.is_err() {
                        break;
                    }
                }
            });
            a.await.unwrap();
            b.await.unwrap();
        });
        detector.stop();
        seen.lock().unwrap().clone()
    });
    let drains: Vec<_> = reports.iter().filter(|r| r.drain.is_some()).collect();
    assert!(
        drains.len() >= 2,
        "an ongoing and an end report of the drain: {reports:?}"
    );
    let (first, last) = (drains[0], drains[drains.len() - 1]);
    assert!(first.ongoing && !last.ongoing);
    assert_eq!(first.sequence, last.sequence, "the same drain");
    let d = last.drain.unwrap();
    assert!(d.jobs > 100, "many short jobs, not one long one: {d:?}");
    let culprits: Vec<_> = d.requeuers.iter().flatten().collect();
    assert_eq!(culprits.len(), 2, "the two tasks: {d:?}");
    for c in &culprits {
        assert_eq!(c.span.kind, executor::observe::Kind::Task, "{reports:?}");
        assert!(c.span.location.unwrap().file().ends_with("fairness.rs"));
        assert!(c.jobs * 3 > d.jobs, "each ran about half the jobs: {d:?}");
    }
    assert!(last.to_string().contains("drain"), "{last}");
}

/// A chain of continuations shorter than the bound keeps Node.js's order (every one runs before
/// the next phase); a longer one is cut into batches, with the loop's other work between them.
#[test]
fn a_drain_bound_cuts_only_chains_longer_than_it() {
    let run = |limit: Option<usize>| {
        let mut b = EventLoop::builder();
        if let Some(n) = limit {
            b.max_jobs_per_drain(n);
        }
        let ev = b.build().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        ev.run(move || {
            let l2 = l.clone();
            set_immediate(move || l2.borrow_mut().push(100));
            fn chain(l: Rc<RefCell<Vec<u32>>>, n: u32) {
                l.borrow_mut().push(n);
                if n < 10 {
                    executor::queue_microtask(move || chain(l, n + 1));
                }
            }
            executor::queue_microtask(move || chain(l, 0));
        });
        log.take()
    };
    let node = run(None);
    assert_eq!(node, (0..=10).chain([100]).collect::<Vec<_>>());
    assert_eq!(run(Some(64)), node, "a chain shorter than the bound");
    // A bound of 4 cuts it: one more batch of 4 runs at the end of the poll phase, then the
    // immediate runs, and the rest in the drain after it.
    let cut: Vec<u32> = (0..=7).chain([100]).chain(8..=10).collect();
    assert_eq!(run(Some(4)), cut);
}
