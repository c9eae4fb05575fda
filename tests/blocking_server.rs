//! The blocked-server demonstration, measured with a real client: one slow `GET /primes` and,
//! meanwhile, `/home` every 10 ms. Sync mode makes `/home` wait for the whole search; chunked
//! and offload modes answer it while the search runs. Also: the server's answers to bad input.
//!
//! Only what cannot flake is asserted (orders and halves, not milliseconds); the figures are in
//! docs/benchmarks.md (`cargo bench --bench server`).

#![cfg(unix)]

mod common;
use common::bounded;

#[allow(dead_code)]
#[path = "../examples/blocking_server/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "support/side_by_side.rs"]
mod side_by_side;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use server::Mode;
use side_by_side::{Run, Server, TABLE_HEADER, get, measure, table_row};

/// About 0.3 s of blocking search in this build (measured: 60,000 takes ~45 ms in debug, 100,000
/// ~48 ms in release; the time grows as nth^1.5).
const NTH: u32 = if cfg!(debug_assertions) {
    200_000
} else {
    400_000
};

fn side_by_side(mode: Mode) -> Run {
    // One measurement at a time: two searches on two cores would measure each other.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let run = bounded(120, move || {
        measure(mode, NTH, Duration::from_millis(10), 3, 400)
    });
    println!("{TABLE_HEADER}\n{}", table_row(&run));
    assert_eq!(run.prime, executor::prime::find_nth_prime(NTH));
    assert!(
        run.homes.iter().all(|h| h.ok),
        "every /home is answered: {run:?}"
    );
    assert!(
        !run.during().is_empty(),
        "no /home was sent during the prime request"
    );
    run
}

#[test]
fn sync_mode_makes_home_wait_for_the_whole_search() {
    let run = side_by_side(Mode::Sync);
    let worst = run.latencies_during().last().copied().unwrap();
    // The first /home sent after the search began waits for (nearly) all of it.
    assert!(
        worst >= run.prime_time() / 2,
        "worst /home latency {worst:?} vs prime request {:?}",
        run.prime_time()
    );
}

/// The chunked and offload modes answer `/home` while the search runs, and quickly.
fn answers_home_while_the_search_runs(mode: Mode) {
    let run = side_by_side(mode);
    assert!(run.answered_before_prime() >= 1, "{run:?}");
    let l = run.latencies_during();
    let median = l[l.len() / 2];
    assert!(
        median < run.prime_time() / 4,
        "median /home latency {median:?} vs prime request {:?}",
        run.prime_time()
    );
}

#[test]
fn chunked_mode_answers_home_while_the_search_runs() {
    answers_home_while_the_search_runs(Mode::Chunked);
}

#[test]
fn offload_mode_answers_home_while_the_search_runs() {
    answers_home_while_the_search_runs(Mode::Offload);
}

/// Sends raw bytes on a new connection, closes its sending side, and returns everything the
/// server answers until it closes the connection.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    // (Fails if the server has answered and closed already.)
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn bad_input_gets_a_status_and_the_server_keeps_serving() {
    bounded(60, || {
        let server = Server::start(Mode::Chunked);
        let a = server.addr;
        assert_eq!(get(a, "/home").unwrap(), (200, "Welcome Home!\n".into()));
        assert_eq!(get(a, "/primes?nth=1000").unwrap(), (200, "7919\n".into()));
        for (path, status) in [
            ("/primes", 400),
            ("/primes?nth=", 400),
            ("/primes?nth=0", 400),
            ("/primes?nth=ten", 400),
            ("/primes?nth=-1", 400),
            ("/primes?nth=5000001", 400),
            ("/primes?nth=99999999999999999999", 400),
            ("/nowhere", 404),
            ("/", 404),
        ] {
            let (got, body) = get(a, path).unwrap();
            assert_eq!(got, status, "{path}: {body}");
            assert_eq!(body.lines().count(), 1, "a one-line reason: {body:?}");
        }
        let status = |r: &str| r.get(9..12).map(str::to_string);
        // Malformed request line, garbage, a bad header.
        for req in [
            &b"GET /home HTTP/9.9\r\n\r\n"[..],
            b"\x00\x01\x02 nonsense\r\n\r\n",
            b"GET /home HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET /home HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
        ] {
            assert_eq!(status(&raw(a, req)).as_deref(), Some("400"), "{req:?}");
        }
        // Too many headers, too long a head.
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let r = raw(a, format!("GET /home HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert_eq!(status(&r).as_deref(), Some("431"), "{r}");
        let long = "a".repeat(20_000);
        let r = raw(
            a,
            format!("GET /home HTTP/1.1\r\nX-Long: {long}\r\n\r\n").as_bytes(),
        );
        assert_eq!(status(&r).as_deref(), Some("431"), "{r}");
        let r = raw(a, b"POST /home HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(status(&r).as_deref(), Some("405"), "{r}");
        // A request cut short by the client closing its side.
        let r = raw(a, b"GET /home HTT");
        assert_eq!(status(&r).as_deref(), Some("400"), "{r}");
        // Still serving.
        assert_eq!(get(a, "/home").unwrap().0, 200);
        server.stop();
    });
}

#[test]
fn keep_alive_serves_several_requests_and_connection_close_ends_it() {
    bounded(30, || {
        let server = Server::start(Mode::Offload);
        // Three pipelined requests; the last says `Connection: close`, so the server answers
        // all three and closes (read_to_string returns).
        let r = raw(
            server.addr,
            b"GET /home HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /primes?nth=10 HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /home HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 3, "{r}");
        assert_eq!(r.matches("Connection: keep-alive").count(), 2, "{r}");
        assert!(
            r.ends_with("Connection: close\r\n\r\nWelcome Home!\n"),
            "{r}"
        );
        // HTTP/1.0 closes by default.
        let r = raw(server.addr, b"GET /primes?nth=10 HTTP/1.0\r\n\r\n");
        assert!(
            r.contains("Connection: close") && r.ends_with("29\n"),
            "{r}"
        );
        // HEAD: headers only.
        let r = raw(
            server.addr,
            b"HEAD /home HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(
            r.contains("Content-Length: 14") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        server.stop();
    });
}
