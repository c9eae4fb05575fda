//! The `scenario` example on hostile input: nesting far past the limit, numbers past their
//! maxima and one very long line each end with a clear message and exit 2 (or the labels), never
//! a stack overflow or a minutes-long spin.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs the scenario example on `src`: its exit status, stdout and stderr.
fn scenario(src: String) -> (Option<i32>, String, String) {
    let exe = common::example("scenario");
    common::bounded(60, move || {
        let mut child = Command::new(exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Written on its own thread: the child may exit (and stop reading) before the end.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(src.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
}

#[test]
fn nesting_past_the_limit_exits_2_with_a_clear_error() {
    // 18,000 levels aborted the old recursive parser with a stack overflow (exit 134).
    let src = "tick t { ".repeat(18_000) + &"} ".repeat(18_000);
    let (code, _, err) = scenario(src);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at most 200 nested blocks"), "{err}");
}

#[test]
fn numbers_past_their_maxima_exit_2() {
    for (src, expect) in [
        ("busy 1000000000", "0..=10000"),
        ("timeout t 1000000000 { }", "0..=60000"),
        ("interval i 1 1000000000 { }", "1..=100000"),
    ] {
        let (code, _, err) = scenario(src.to_string());
        assert_eq!(code, Some(2), "{src}: {err}");
        assert!(err.contains(expect), "{src}: {err}");
    }
}

#[test]
fn a_line_of_100k_tokens_runs() {
    // 3 s of tokenizing before (quadratic); the bound is `bounded`'s, not a speed claim.
    let (code, out, err) = scenario("log a ".repeat(50_000));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 50_000);
}
