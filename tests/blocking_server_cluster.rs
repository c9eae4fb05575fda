//! `blocking_server --mode cluster`, in-process: a loop blocked by a sync search does not stop
//! the others; the load-aware dispatch skips it while Node.js's round-robin rule hands it one
//! connection; every loop answers, bad requests included; a loop that panics leaves the others
//! serving; a stop answers the request in flight.
//!
//! Only orders and counts are asserted, never latencies: a blocked loop cannot answer until its
//! search ends, and the searches here end only when their client hangs up.

#![cfg(unix)]

mod common;
use common::bounded;

#[allow(dead_code)]
#[path = "../examples/blocking_server/cluster.rs"]
mod cluster;
#[allow(dead_code)]
#[path = "support/cluster_server.rs"]
mod cluster_server;
#[allow(dead_code)]
#[path = "../examples/blocking_server/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "support/side_by_side.rs"]
mod side_by_side;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cluster::ClusterConfig;
use cluster::dispatch::Policy;
use cluster_server::ClusterServer;
use server::{Config, Mode};
use side_by_side::get;

/// A search of tens of seconds even in release: it ends only because its client hangs up.
const ENDLESS: &str = "GET /primes?nth=5000000 HTTP/1.1\r\nHost: x\r\n\r\n";

fn start(inner: Mode, loops: usize, policy: Policy) -> ClusterServer {
    let mut config = Config::new(inner);
    config.max_heavy = 16;
    ClusterServer::start(
        config,
        ClusterConfig {
            loops,
            policy,
            trace_limit: None,
        },
    )
}

/// Calls `probe` until it returns true, every millisecond, failing after `limit`.
fn eventually(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let start = Instant::now();
    while !probe() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends an endless search and returns its connection once a loop is stuck in it, with the
/// index of that loop.
fn block_one_loop(server: &ClusterServer) -> (TcpStream, usize) {
    let mut heavy = TcpStream::connect(server.addr).unwrap();
    heavy.write_all(ENDLESS.as_bytes()).unwrap();
    let mut stuck = None;
    eventually(
        Duration::from_secs(60),
        "a loop stuck in the search",
        || {
            stuck = server.control.stuck().iter().position(|&s| s);
            stuck.is_some()
        },
    );
    (heavy, stuck.unwrap())
}

/// Whether `conn` has received nothing yet (asked without waiting).
fn nothing_received(conn: &TcpStream) -> bool {
    conn.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let r = conn.peek(&mut byte);
    conn.set_nonblocking(false).unwrap();
    matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

fn served(reports: &[cluster::LoopReport]) -> Vec<u64> {
    reports.iter().map(|r| r.served).collect()
}

#[test]
fn load_aware_dispatch_serves_home_on_loop_b_while_loop_a_is_blocked() {
    bounded(150, || {
        let server = start(Mode::Sync, 2, Policy::LoadAware);
        let (heavy, stuck) = block_one_loop(&server);
        for _ in 0..6 {
            assert_eq!(
                get(server.addr, "/home").unwrap(),
                (200, "Welcome Home!\n".into())
            );
        }
        // Every /home was answered while the search still runs.
        assert!(nothing_received(&heavy), "the endless search was answered");
        assert!(
            server.control.stuck()[stuck],
            "the search still holds its loop"
        );
        drop(heavy); // the search peeks at its socket and stops
        let (outcome, reports) = server.stop();
        assert_eq!(outcome, Ok(()));
        let mut expect = vec![6, 6];
        expect[stuck] = 0;
        assert_eq!(served(&reports), expect, "a /home went to the stuck loop");
    });
}

/// Node.js's rule: a loop is handed the next connection in turn once it has taken its last one,
/// blocked or not. So the blocked loop captures exactly one `/home`, answered only after its
/// search ends; the next ones go to the other loop and are answered first.
#[test]
fn round_robin_hands_the_blocked_loop_one_connection_which_waits_for_the_search() {
    bounded(150, || {
        let server = start(Mode::Sync, 2, Policy::RoundRobin);
        let (heavy, stuck) = block_one_loop(&server);
        let addr = server.addr;
        let (done_tx, done) = mpsc::channel();
        let clients: Vec<_> = (0..3)
            .map(|i| {
                let done_tx = done_tx.clone();
                std::thread::spawn(move || {
                    let r = get(addr, "/home");
                    let _ = done_tx.send(i);
                    r
                })
            })
            .collect();
        let wait = Duration::from_secs(60);
        let first = done.recv_timeout(wait).expect("a /home answered");
        let second = done.recv_timeout(wait).expect("two /home answered");
        // The third is on the blocked loop: it cannot be answered before the hang-up below.
        assert!(
            done.try_recv().is_err(),
            "all three /home answered while a loop is blocked"
        );
        assert!(nothing_received(&heavy));
        drop(heavy);
        let third = done
            .recv_timeout(wait)
            .expect("the captured /home, after the hang-up");
        let mut order = [first, second, third];
        order.sort();
        assert_eq!(order, [0, 1, 2]);
        for c in clients {
            assert_eq!(c.join().unwrap().unwrap().0, 200);
        }
        let (outcome, reports) = server.stop();
        assert_eq!(outcome, Ok(()));
        let mut expect = vec![2, 2];
        expect[stuck] = 1;
        assert_eq!(served(&reports), expect);
    });
}

/// Round-robin with one request at a time alternates exactly, so each request below reaches
/// each loop once.
#[test]
fn every_loop_answers_and_gives_bad_requests_their_4xx() {
    bounded(120, || {
        let server = start(Mode::Chunked, 2, Policy::RoundRobin);
        let a = server.addr;
        let mut sent = 0;
        for _ in 0..2 {
            assert_eq!(get(a, "/home").unwrap(), (200, "Welcome Home!\n".into()));
            assert_eq!(get(a, "/primes?nth=1000").unwrap(), (200, "7919\n".into()));
            sent += 2;
        }
        for (path, status) in [
            ("/primes?nth=0", 400),
            ("/primes?nth=ten", 400),
            ("/nowhere", 404),
        ] {
            for _ in 0..2 {
                assert_eq!(get(a, path).unwrap().0, status, "{path}");
                sent += 1;
            }
        }
        for (req, status) in [
            (&b"GET /home HTTP/1.1\r\n\r\n"[..], "400"),
            (
                b"POST /home HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                "405",
            ),
            (
                b"GET /home HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
                "413",
            ),
        ] {
            for _ in 0..2 {
                let r = common::raw(a, req);
                assert_eq!(r.get(9..12), Some(status), "{r}");
                sent += 1;
            }
        }
        let (outcome, reports) = server.stop();
        assert_eq!(outcome, Ok(()));
        assert_eq!(served(&reports), [sent / 2, sent / 2]);
    });
}

#[test]
fn a_loop_that_panics_does_not_take_the_others_down() {
    bounded(60, || {
        let server = start(Mode::Offload, 2, Policy::LoadAware);
        assert!(server.control.run_on(0, || panic!("boom on loop 0")));
        eventually(Duration::from_secs(30), "loop 0 ended", || {
            server.control.live() == [false, true]
        });
        for _ in 0..4 {
            assert_eq!(get(server.addr, "/home").unwrap().0, 200);
        }
        assert_eq!(
            get(server.addr, "/primes?nth=10").unwrap(),
            (200, "29\n".into())
        );
        let (outcome, reports) = server.stop();
        assert_eq!(outcome, Ok(()));
        assert_eq!(reports[0].panic.as_deref(), Some("boom on loop 0"));
        assert_eq!(reports[1].panic, None);
        assert_eq!(served(&reports), [0, 5]);
    });
}

/// The stop comes while `/primes` is in flight on a chunked loop: its answer is still sent, and
/// says `Connection: close`, which a response written before the stop would not. An idle
/// keep-alive connection is closed without an answer.
#[test]
fn a_stop_answers_the_request_in_flight_and_closes_idle_connections() {
    bounded(120, || {
        let server = start(Mode::Chunked, 2, Policy::LoadAware);
        let keep = |s: &mut TcpStream| {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.write_all(b"GET /home HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap();
            assert!(buf[..n].ends_with(b"Welcome Home!\n"));
        };
        // Both connections are accepted and served once, so they sit on their loops.
        let mut idle = TcpStream::connect(server.addr).unwrap();
        keep(&mut idle);
        let mut busy = TcpStream::connect(server.addr).unwrap();
        keep(&mut busy);
        let nth = if cfg!(debug_assertions) {
            600_000
        } else {
            1_500_000
        };
        write!(busy, "GET /primes?nth={nth} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (outcome, reports) = server.stop();
        assert_eq!(outcome, Ok(()));
        let mut answer = String::new();
        busy.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        let prime = executor::demo::prime::find_nth_prime(nth);
        assert!(answer.ends_with(&format!("\r\n\r\n{prime}\n")), "{answer}");
        let mut rest = Vec::new();
        assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0, "closed, no answer");
        assert_eq!(served(&reports).iter().sum::<u64>(), 3);
        assert!(reports.iter().all(|r| r.left_open == 0));
    });
}
