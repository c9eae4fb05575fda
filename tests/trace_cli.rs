//! `--trace FILE` on the two examples that have it: `interval_vs_prime` writes one Chrome trace
//! process (or SVG block) per strategy, and `blocking_server` writes what its loop ran when
//! SIGTERM stops it, after answering every request it had accepted.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// A fresh path under the target directory for this test's output.
fn out_file(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// The `ph == "X"` events of a Chrome trace, grouped by process id.
fn complete_events(json: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(json).expect("the trace is valid JSON");
    doc["traceEvents"]
        .as_array()
        .expect("a traceEvents array")
        .iter()
        .filter(|e| e["ph"] == "X")
        .cloned()
        .collect()
}

#[test]
fn interval_vs_prime_writes_one_trace_process_per_strategy() {
    let exe = common::example("interval_vs_prime");
    let json = out_file("ivp.json");
    let out = Command::new(&exe)
        .args([
            "--nth",
            "2000",
            "--strategies",
            "sync,batch,every",
            "--trace",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("trace of 3 runs written to"), "{stdout}");
    let text = std::fs::read_to_string(&json).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sync", "batch(1000)", "every"]);
    // `every` yields after each of its ~8,700 candidates: its process holds far more spans
    // than the sync run's.
    let events = complete_events(&text);
    let count = |pid: u64| events.iter().filter(|e| e["pid"] == pid).count();
    assert!(
        count(3) > 1000 && count(3) > 10 * count(1),
        "{} {}",
        count(1),
        count(3)
    );

    let svg = out_file("ivp.svg");
    let out = Command::new(&exe)
        .args(["--nth", "2000", "--strategies", "slice", "--trace"])
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg ") && text.contains(">slice(500us)<"),
        "{text:.300}"
    );

    let bad = Command::new(&exe)
        .args(["--trace", "profile.txt"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must end in .json or .svg"));
}

/// Starts the server example with `args`, returns it, its stdout (past the first line) and the
/// address that line announced.
fn start_server(
    exe: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let mut cmd = Command::new(exe);
    cmd.args(args).stderr(std::process::Stdio::piped());
    common::start_server(cmd)
}

/// One `GET path` on a new connection (`Connection: close`); the whole response.
fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

#[test]
fn blocking_server_writes_its_trace_when_sigterm_stops_it() {
    let exe = common::example("blocking_server");
    let json = out_file("server.json");
    let (served, text) = common::bounded(60, move || {
        let (mut child, mut stdout, addr) = start_server(
            &exe,
            &[
                "--mode".as_ref(),
                "chunked".as_ref(),
                "--trace".as_ref(),
                json.as_os_str(),
            ],
        );
        for path in ["/home", "/primes?nth=5000", "/home"] {
            let resp = get(&addr, path);
            assert!(resp.starts_with("HTTP/1.1 200"), "{path}: {resp}");
        }
        // SAFETY: `kill` with a live child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let status = child.wait().unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert!(status.success(), "{status:?} {rest}");
        (rest, std::fs::read_to_string(&json).unwrap())
    });
    assert!(served.contains("served 3 responses"), "{served}");
    assert!(served.contains("spans written to"), "{served}");
    let events = complete_events(&text);
    let phases: Vec<&str> = events.iter().map(|e| e["cat"].as_str().unwrap()).collect();
    // Readiness of the listener and the streams runs in the poll phase; the chunked search
    // resumes in the check phase.
    assert!(phases.contains(&"poll"), "{phases:?}");
    assert!(
        events
            .iter()
            .any(|e| e["cat"] == "poll" && e["args"]["kind"] == "io"),
        "no I/O callback in the trace"
    );
    assert!(phases.contains(&"check"), "{phases:?}");
}

#[test]
fn blocking_server_draws_its_io_in_an_svg_timeline() {
    let exe = common::example("blocking_server");
    let svg = out_file("server.svg");
    let (status, text) = common::bounded(60, move || {
        let (mut child, _stdout, addr) = start_server(
            &exe,
            &[
                "--max-requests".as_ref(),
                "2".as_ref(),
                "--trace".as_ref(),
                svg.as_os_str(),
            ],
        );
        // The first connection may be accepted at once (it can arrive before the server first
        // tries to accept), but the server goes back to waiting on its listener before it
        // answers: the second connection wakes it in the poll phase.
        for _ in 0..2 {
            let resp = get(&addr, "/home");
            assert!(resp.contains("Welcome Home!"), "{resp}");
        }
        (
            child.wait().unwrap(),
            std::fs::read_to_string(&svg).unwrap(),
        )
    });
    assert!(status.success(), "{status:?}");
    assert!(text.starts_with("<svg ") && text.ends_with("</svg>\n"));
    // The second accept ran as an I/O callback: drawn, with its kind named.
    assert!(
        text.contains("<title>io") || text.contains("mostly io,"),
        "{text}"
    );
}
