//! Readiness wakes run as I/O callbacks: the woken task is polled in the poll phase, right after
//! its event, so inside it `set_immediate` runs before `set_timeout(0)`, as inside a Node.js I/O
//! callback (`fs.readFile(f, () => { setTimeout(a, 0); setImmediate(b) })` prints b, a).

#![cfg(unix)]

mod common;
use common::bounded;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use futures::AsyncReadExt;

use executor::net::TcpListener;
use executor::observe::{Kind, LoopObserver, Phase, Span};
use executor::{
    EventLoop, next_tick, queue_microtask, set_immediate, set_timeout, spawn, yield_now,
};

type Log = Rc<RefCell<Vec<String>>>;

fn push(l: &Log, s: &str) {
    l.borrow_mut().push(s.to_string());
}

/// Queues, from inside an I/O callback, a timeout of 0, an immediate, a tick and a microtask.
///
/// The task resumes as a promise continuation does (it is polled from the microtask queue, after
/// the poll phase's wake), so its microtask runs before its nextTick, as after an `await` in
/// Node.js; both run before the immediate, and the immediate before the timeout.
fn schedule_all(l: &Log) {
    let (a, b, c, d) = (l.clone(), l.clone(), l.clone(), l.clone());
    set_timeout(Duration::ZERO, move || push(&a, "timeout 0"));
    set_immediate(move || push(&b, "immediate"));
    queue_microtask(move || push(&c, "microtask"));
    next_tick(move || push(&d, "nextTick"));
}

/// Records the phase and kind of every span.
#[derive(Default)]
struct Spans(RefCell<Vec<(Phase, Kind)>>);

impl LoopObserver for Spans {
    fn enter(&self, span: &Span) {
        self.0.borrow_mut().push((span.phase, span.kind));
    }
    fn exit(&self) {}
}

#[test]
fn in_accept_callback_immediate_runs_before_timeout_zero() {
    let (log, spans) = bounded(10, || {
        let l: Log = Rc::default();
        let spans = Rc::new(Spans::default());
        let ev = EventLoop::new();
        ev.add_observer(spans.clone());
        let (go_tx, go_rx) = mpsc::channel::<std::net::SocketAddr>();
        let client = thread::spawn(move || {
            let addr = go_rx.recv().unwrap();
            std::net::TcpStream::connect(addr).unwrap()
        });
        let l2 = l.clone();
        // `run`, not `block_on`: the loop must go on after the server task to run what it queued.
        ev.run(move || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            spawn(async move {
                let (_conn, _) = listener.accept().await.unwrap();
                push(&l2, "accepted");
                schedule_all(&l2);
            })
            .detach();
            spawn(async move {
                // The server task has polled `accept` (pending) by the time this resumes: only
                // now may the client connect, so the connection arrives as a readiness event.
                yield_now().await;
                go_tx.send(addr).unwrap();
            })
            .detach();
        });
        client.join().unwrap();
        let spans = spans.0.borrow().clone();
        (l.borrow().clone(), spans)
    });
    assert_eq!(
        log,
        [
            "accepted",
            "microtask",
            "nextTick",
            "immediate",
            "timeout 0"
        ]
    );
    // The accept ran as an I/O callback in the poll phase, then the task's poll.
    let i = spans
        .iter()
        .position(|&s| s == (Phase::Poll, Kind::Io))
        .expect("no I/O callback in the poll phase");
    assert_eq!(spans[i + 1].1, Kind::Task, "{spans:?}");
}

#[test]
fn in_read_callback_immediate_runs_before_timeout_zero() {
    let log = bounded(10, || {
        let l: Log = Rc::default();
        let ev = EventLoop::new();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            go_rx.recv().unwrap();
            s.write_all(b"ping").unwrap();
        });
        let l2 = l.clone();
        let conn = ev.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            listener.accept().await.unwrap().0
        });
        ev.run(move || {
            let mut conn = conn;
            spawn(async move {
                let mut buf = [0; 4];
                conn.read_exact(&mut buf).await.unwrap();
                push(&l2, "read");
                schedule_all(&l2);
            })
            .detach();
            spawn(async move {
                yield_now().await; // the reader is waiting: now the data may come
                go_tx.send(()).unwrap();
            })
            .detach();
        });
        client.join().unwrap();
        l.borrow().clone()
    });
    assert_eq!(
        log,
        ["read", "microtask", "nextTick", "immediate", "timeout 0"]
    );
}
