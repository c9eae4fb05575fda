//! `examples/hyper_server` as a process (feature `hyper`): in each `--mode` it answers `/home`
//! and `/primes?nth=N` (and a bad `nth` with 400), and a client that sends only part of a
//! request head is cut off by `header_read_timeout` (`--header-timeout-ms`).

#![cfg(all(unix, feature = "hyper"))]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one wait of this test may take before it fails.
const WAIT: Duration = Duration::from_secs(20);

/// The running server; killed (by its own id) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the example on port 0 and reads the address it prints.
fn start(mode: &str, header_timeout_ms: u64) -> Server {
    let exe = common::example_with_features("hyper_server", &["hyper"]);
    let mut child = Command::new(exe)
        .args(["--port", "0", "--mode", mode])
        .args(["--header-timeout-ms", &header_timeout_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start hyper_server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(WAIT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("hyper_server printed no address within {WAIT:?}");
        }
    };
    let addr = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    assert!(
        line.to_lowercase().contains(&format!("(mode {mode})")),
        "{line:?}"
    );
    Server { child, addr }
}

/// One `GET path` on its own connection (`Connection: close`): status line and body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out)
        .unwrap_or_else(|e| panic!("GET {path}: {e} (after {out:?})"));
    let (head, body) = out
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no head in {out:?}"));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn every_mode_answers_home_and_primes() {
    for mode in ["sync", "chunked", "offload"] {
        let server = start(mode, 10_000);
        assert_eq!(
            get(server.addr, "/home"),
            ("HTTP/1.1 200 OK".into(), "Welcome Home!\n".into()),
            "mode {mode}"
        );
        assert_eq!(
            get(server.addr, "/primes?nth=1000"),
            ("HTTP/1.1 200 OK".into(), "7919\n".into()),
            "mode {mode}"
        );
        let (status, body) = get(server.addr, "/primes?nth=0");
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "mode {mode}: {body}");
        assert!(body.contains("nth must be a whole number"), "{body}");
    }
}

#[test]
fn a_partial_request_head_is_cut_off_by_the_header_timeout() {
    let server = start("offload", 300);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let start = Instant::now();
    // No blank line: the head never ends.
    s.write_all(b"GET /home HTTP/1.1\r\nHost: test\r\n")
        .unwrap();
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    let waited = start.elapsed();
    assert!(
        r.is_ok() || matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "not cut off within {WAIT:?}: {r:?}"
    );
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 408"),
        "a reply to half a head: {got:?}"
    );
    assert!(
        waited >= Duration::from_millis(250),
        "cut off after {waited:?}, before the 300 ms timeout"
    );
    // The server goes on serving others.
    assert_eq!(get(server.addr, "/home").1, "Welcome Home!\n");
}
