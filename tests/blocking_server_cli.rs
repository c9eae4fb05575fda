//! The blocked server's command line and process: bad arguments (non-UTF-8 included) exit 2
//! with a message naming what is allowed, an unwritable `--trace` is refused before the server
//! starts, and at the descriptor limit the server pauses accepting and logs about once a
//! second instead of a hundred times.

#![cfg(unix)]

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;
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
            "--mode needs a value (sync, chunked or offload)",
        ),
        (
            &["--mode", "fast"][..],
            "expected sync, chunked or offload, got `fast`",
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
            .arg(&exe);
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
