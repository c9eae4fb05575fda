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

use server::{Config, Mode};
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
    assert_eq!(run.prime, executor::demo::prime::find_nth_prime(NTH));
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

/// Sends raw bytes on a new connection, keeps its sending side open, and returns everything the
/// server answers until it closes the connection (the request must make it close).
fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
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
            b"GET /home HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n",
            // RFC 9112 section 3.2: HTTP/1.1 needs exactly one Host.
            b"GET /home HTTP/1.1\r\n\r\n",
            b"GET /home HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            assert_eq!(
                status(&common::raw(a, req)).as_deref(),
                Some("400"),
                "{req:?}"
            );
        }
        // Too many headers, too long a head.
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let r = common::raw(a, format!("GET /home HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert_eq!(status(&r).as_deref(), Some("431"), "{r}");
        let long = "a".repeat(20_000);
        let r = common::raw(
            a,
            format!("GET /home HTTP/1.1\r\nX-Long: {long}\r\n\r\n").as_bytes(),
        );
        assert_eq!(status(&r).as_deref(), Some("431"), "{r}");
        let r = common::raw(a, b"POST /home HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(status(&r).as_deref(), Some("405"), "{r}");
        // A request cut short by the client closing its side.
        let r = common::raw(a, b"GET /home HTT");
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
        // (The sending side stays open: a client that ends its stream has gone, and a /primes
        // it was waiting for is abandoned, as in Go's net/http and Node.js.)
        let r = exchange(
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
        let r = exchange(server.addr, b"GET /primes?nth=10 HTTP/1.0\r\n\r\n");
        assert!(
            r.contains("Connection: close") && r.ends_with("29\n"),
            "{r}"
        );
        // HEAD: headers only.
        let r = common::raw(
            server.addr,
            b"HEAD /home HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(
            r.contains("Content-Length: 14") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        server.stop();
    });
}

/// A server in `mode` with `edit` applied to the default configuration.
fn start(mode: Mode, edit: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::new(mode);
    edit(&mut config);
    Server::start_with(config)
}

/// Writes `head` at once, then `body_byte` once every `every` until the server answers (or the
/// write fails), and returns the whole answer. The client's schedule, not a wait for the server:
/// a server without a request deadline would keep reading for `every × 1,000,000`.
fn trickle(addr: std::net::SocketAddr, head: &[u8], every: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head).unwrap();
    let mut writer = s.try_clone().unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = answered.clone();
    let trickler = std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            if writer.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(every);
        }
    });
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    answered.store(true, std::sync::atomic::Ordering::Release);
    trickler.join().unwrap();
    out
}

#[test]
fn a_slow_head_or_body_gets_408_at_the_request_deadline() {
    bounded(60, || {
        let server = start(Mode::Chunked, |c| {
            c.request_timeout = Duration::from_millis(300);
        });
        // A body of 1,000,000 bytes would be refused (413); 60,000 at one byte per 20 ms is 20
        // minutes of trickle: each byte comes well within the idle timeout.
        let r = trickle(
            server.addr,
            b"GET /home HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n",
            Duration::from_millis(20),
        );
        assert!(r.starts_with("HTTP/1.1 408 Request Timeout"), "{r}");
        assert!(r.ends_with("request body not received in time\n"), "{r}");
        assert!(r.contains("Connection: close"), "{r}");
        // The head, a byte at a time (`x` never ends a header line).
        let r = trickle(
            server.addr,
            b"GET /home HTTP/1.1\r\nX-Slow: ",
            Duration::from_millis(20),
        );
        assert!(r.starts_with("HTTP/1.1 408"), "{r}");
        assert!(r.ends_with("request head not received in time\n"), "{r}");
        // A prompt request on a fresh connection is unaffected.
        assert_eq!(get(server.addr, "/home").unwrap().0, 200);
        server.stop();
    });
}

#[test]
fn a_client_that_never_reads_is_dropped_at_the_write_deadline() {
    bounded(90, || {
        let server = start(Mode::Chunked, |c| {
            c.write_timeout = Duration::from_millis(200);
        });
        let mut s = TcpStream::connect(server.addr).unwrap();
        // Our writes block once the server stops reading (it waits on its own write): a server
        // without a write deadline would leave the next write blocked, and this fails it.
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let batch = b"GET /home HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
        let mut sent = 0u64;
        let err = loop {
            match s.write_all(&batch) {
                Ok(()) => sent += 1000,
                Err(e) => break e,
            }
            assert!(
                sent < 10_000_000,
                "10,000,000 requests sent, never read, never dropped"
            );
        };
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "after {sent} requests: {err:?} (a timeout means the server kept the connection)"
        );
        assert_eq!(get(server.addr, "/home").unwrap().0, 200);
        server.stop();
    });
}

/// The whole response to `GET path` on a new connection (`Connection: close`).
fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Calls `probe` until it returns true, every 10 ms, failing after `limit`.
fn eventually(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !probe() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// With `--max-heavy 1`, a pending 5,000,000-th-prime search (tens of seconds of work) makes
/// `/primes` answer 503 with `Retry-After` while `/home` is served; once its client hangs up, a
/// new `/primes` is served again, and the search is never answered: it was stopped (dropped at
/// its next chunk, or stopped on the worker by its flag; the offloaded search's slot is freed
/// only when the worker lets go of it). An answered search would show in the server's count of
/// responses sent (writing to a client that has just gone succeeds once).
fn an_abandoned_search_stops_and_frees_its_slot(mode: Mode) {
    bounded(150, move || {
        let server = start(mode, |c| c.max_heavy = 1);
        let a = server.addr;
        let mut answered = 0;
        let mut heavy = TcpStream::connect(a).unwrap();
        heavy
            .write_all(b"GET /primes?nth=5000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut busy = String::new();
        eventually(Duration::from_secs(60), "503 while the search runs", || {
            busy = get_raw(a, "/primes?nth=10");
            answered += 1;
            busy.starts_with("HTTP/1.1 503")
        });
        assert!(busy.contains("Retry-After: 1\r\n"), "{busy}");
        assert!(busy.contains("--max-heavy"), "{busy}");
        assert_eq!(get(a, "/home").unwrap(), (200, "Welcome Home!\n".into()));
        answered += 1;
        drop(heavy);
        eventually(
            Duration::from_secs(60),
            "the slot freed after hang-up",
            || {
                answered += 1;
                get_raw(a, "/primes?nth=10").ends_with("\r\n\r\n29\n")
            },
        );
        assert_eq!(server.stop(), answered, "the abandoned search was answered");
    });
}

#[test]
fn chunked_an_abandoned_search_stops_and_frees_its_slot() {
    an_abandoned_search_stops_and_frees_its_slot(Mode::Chunked);
}

#[test]
fn offload_an_abandoned_search_stops_and_frees_its_slot() {
    an_abandoned_search_stops_and_frees_its_slot(Mode::Offload);
}

/// Sync mode blocks the loop, so nothing else is served while the search runs; the search peeks
/// at its client's socket every few thousand candidates and stops when it has gone. The search's
/// request is written before `/home` connects, so the server reads it first and starts the
/// search before it can answer `/home`; then only `/home` is answered (an answered search would
/// show in the count of responses sent).
#[test]
fn sync_an_abandoned_search_stops() {
    bounded(150, || {
        let server = start(Mode::Sync, |_| {});
        let mut heavy = TcpStream::connect(server.addr).unwrap();
        heavy
            .write_all(b"GET /primes?nth=5000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        drop(heavy);
        assert_eq!(get(server.addr, "/home").unwrap().0, 200);
        assert_eq!(server.stop(), 1, "the abandoned search was answered");
    });
}
