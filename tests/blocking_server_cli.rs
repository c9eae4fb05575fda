//! The blocked server's command line and process: bad arguments (non-UTF-8 included) exit 2
//! with a message naming what is allowed, an unwritable `--trace` is refused before the server
//! starts, at the descriptor limit the server pauses accepting and logs about once a second
//! instead of a hundred times, and SIGTERM stops a cluster after answering the request in flight.

#![cfg(unix)]

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the server with `args`, which must make it refuse to start: its exit status and stderr.
fn refused(args: &[&OsStr]) -> (Option<i32>, String, Vec<u8>) {
    let exe = common::example("blocking_server");
    let out = common::bounded(30, {
        let args: Vec<std::ffi::OsString> = args.iter().map(|a| a.to_os_string()).collect();
        move || Command::new(exe).args(args).output().unwrap()
    });
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.stdout,
    )
}

#[test]
fn bad_arguments_exit_2_before_listening() {
    for (args, expect) in [
        (
            &["--port", "+5"][..],
            "`+5` is not a whole number in 0..=65535",
        ),
        (
            &["--port", "70000"][..],
            "70000 is out of range (0..=65535)",
        ),
        (
            &["--mode"][..],
            "--mode needs a value (sync, chunked, offload or cluster)",
        ),
        (
            &["--mode", "fast"][..],
            "expected sync, chunked, offload or cluster, got `fast`",
        ),
        (
            &["--mode", "cluster", "--loops", "0"][..],
            "--loops: 0 is out of range (1..=256)",
        ),
        (
            &["--mode", "cluster", "--loops", "-2"][..],
            "--loops: `-2` is not a whole number in 1..=256",
        ),
        (
            &["--mode", "cluster", "--inner", "cluster"][..],
            "--inner: expected sync, chunked or offload, got `cluster`",
        ),
        (
            &["--mode", "cluster", "--dispatch", "random"][..],
            "--dispatch: expected load-aware, round-robin or reuseport, got `random`",
        ),
        (
            &["--mode", "chunked", "--inner", "sync"][..],
            "--inner applies to --mode cluster only",
        ),
        (
            &["--loops", "2"][..],
            "--loops applies to --mode cluster only",
        ),
        (
            &["--dispatch", "reuseport", "--mode", "offload"][..],
            "--dispatch applies to --mode cluster only",
        ),
        (
            &["--max-heavy", "0"][..],
            "--max-heavy: 0 is out of range (1..=1024)",
        ),
        (&["--max-nth", "5000001"][..], "out of range (1..=5000000)"),
        (
            &["--request-timeout-ms", "0"][..],
            "out of range (1..=3600000)",
        ),
        (
            &["--write-timeout-ms", "x"][..],
            "is not a whole number in 1..=3600000",
        ),
        (&["--frobnicate"][..], "unknown option `--frobnicate`"),
        (
            &["--trace", "/nonexistent-dir/server.json"][..],
            "--trace: cannot write `/nonexistent-dir/server.json`",
        ),
    ] {
        let os: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let (code, err, stdout) = refused(&os);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("Some(") && !err.contains("None"), "{err}");
        assert!(stdout.is_empty(), "{args:?}: it started");
    }
}

#[test]
fn a_non_utf8_argument_is_a_clear_error_not_a_panic() {
    for args in [
        vec![OsStr::from_bytes(b"--m\xffode")],
        vec![OsStr::new("--trace"), OsStr::from_bytes(b"t\xff.json")],
    ] {
        let (code, err, _) = refused(&args);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("is not valid UTF-8"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The server under `ulimit -n 48` with 80 idle connections open: accepts fail with EMFILE for
/// as long as they stay open (2 s here). The old loop retried every 10 ms and printed each
/// failure (~200 lines); now it pauses 100 ms per failure and prints at most one line a second,
/// with the count of the others. When the clients close, the server serves again.
#[test]
fn at_the_descriptor_limit_accepts_pause_and_the_log_is_rate_limited() {
    let exe = common::example("blocking_server");
    let lines = common::bounded(60, move || {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("ulimit -n 48 && exec \"$0\" --mode chunked --idle-timeout-ms 60000")
            .arg(&exe)
            .stderr(Stdio::piped());
        let (mut child, _stdout, addr) = common::start_server(cmd);
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // The kernel completes these handshakes from the listen backlog whether or not the
        // server accepts them.
        let idle: Vec<TcpStream> = (0..80)
            .map(|_| TcpStream::connect(&addr).unwrap())
            .collect();
        let flood = Instant::now();
        while flood.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(50)); // the attack's length, not a wait
        }
        drop(idle);
        // Served again once the descriptors are back (bounded by `bounded`).
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /home HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        // SAFETY: `kill` with a live child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        child.wait().unwrap();
        log.join().unwrap()
    });
    let accepts: Vec<&String> = lines.iter().filter(|l| l.contains("accept:")).collect();
    assert!(
        !accepts.is_empty(),
        "no accept error at the fd limit: {lines:?}"
    );
    assert!(
        accepts[0].contains("Too many open files") && accepts[0].contains("pausing accepts"),
        "{accepts:?}"
    );
    // About 2 s of errors (plus however long the clients take to close): one line a second.
    assert!(accepts.len() <= 5, "{} lines: {accepts:#?}", accepts.len());
    if accepts.len() > 1 {
        assert!(
            accepts[1].contains("more since the last message"),
            "{accepts:?}"
        );
    }
}

/// `--mode cluster`: SIGTERM stops every loop; the `/primes` written before the signal (on a
/// connection already being served) is answered, the process exits 0 with its counts, and the
/// trace has one process per loop and one for the acceptor.
#[test]
fn sigterm_stops_the_cluster_after_answering_the_request_in_flight() {
    let exe = common::example("blocking_server");
    let trace = std::env::temp_dir().join(format!("cluster-{}.json", std::process::id()));
    let t = trace.clone();
    let (answer, status, stdout) = common::bounded(120, move || {
        let mut cmd = Command::new(exe);
        cmd.args([
            "--mode", "cluster", "--loops", "2", "--inner", "sync", "--trace",
        ])
        .arg(&t)
        .stderr(Stdio::null());
        let (mut child, mut out, addr) = common::start_server(cmd);
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        // Served once, so the connection sits on a loop (not in the listen backlog).
        s.write_all(b"GET /home HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 512];
        let n = s.read(&mut first).unwrap();
        assert!(first[..n].ends_with(b"Welcome Home!\n"));
        let nth = if cfg!(debug_assertions) {
            300_000
        } else {
            800_000
        };
        write!(s, "GET /primes?nth={nth} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        // SAFETY: `kill` with a live child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = child.wait().unwrap();
        let mut stdout = String::new();
        out.read_to_string(&mut stdout).unwrap();
        (
            (answer, executor::demo::prime::find_nth_prime(nth)),
            status,
            stdout,
        )
    });
    let ((answer, prime), status, stdout) = (answer, status, stdout);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with(&format!("\r\n\r\n{prime}\n")), "{answer}");
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("served 2 responses (per loop: "),
        "{stdout}"
    );
    assert!(stdout.contains("from 3 loops written to"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let _ = std::fs::remove_file(&trace);
    let mut processes: Vec<String> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect();
    processes.sort();
    assert_eq!(processes, ["acceptor", "loop 0", "loop 1"]);
}
