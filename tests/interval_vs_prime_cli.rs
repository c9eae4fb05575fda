//! The main example's command line: right primes in its JSON lines, every documented key, and a
//! clear message with exit status 2 on bad arguments.

mod common;

use std::process::Command;

#[test]
fn json_lines_carry_the_right_prime_and_every_key() {
    let exe = common::example("interval_vs_prime");
    let out = Command::new(exe)
        .args(["--nth", "1000", "--json", "--interval-us", "200"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "one line per strategy: {text}");
    for (line, strategy) in lines
        .iter()
        .zip(["sync", "every", "batch", "slice", "adaptive", "offload"])
    {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(
            line.contains(&format!("\"strategy\":\"{strategy}")),
            "{line}"
        );
        assert!(line.contains("\"prime\":7919,"), "{line}");
        for key in [
            "nth",
            "elapsed_ms",
            "chunks",
            "ticks",
            "ideal_ticks",
            "fidelity",
            "max_gap_ms",
            "ticks_between_chunks_mean",
            "chunk_p99_ms",
        ] {
            assert!(
                line.contains(&format!("\"{key}\":")),
                "{key} missing in {line}"
            );
        }
    }
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let exe = common::example("interval_vs_prime");
    for (args, expect) in [
        (&["--nth", "0"][..], "--nth: 0 is out of range"),
        (&["--nth", "ten"][..], "is not a whole number"),
        (&["--interval-us", "10"][..], "out of range"),
        (
            &["--strategies", "every,fastest"][..],
            "unknown strategy `fastest`",
        ),
        (
            &["--nth", "+5"][..],
            "`+5` is not a whole number in 1..=2000000",
        ),
        (
            &["--nth"][..],
            "--nth needs a value (a whole number in 1..=2000000)",
        ),
        (
            &["--missed", "sometimes"][..],
            "expected skip or burst, got `sometimes`",
        ),
        (&["--missed"][..], "--missed needs a value (skip or burst)"),
        (
            &["--trace", "/nonexistent-dir/trace.json"][..],
            "--trace: cannot write `/nonexistent-dir/trace.json`",
        ),
        (
            &["--svg", "/nonexistent-dir/profile.svg"][..],
            "--svg: cannot write `/nonexistent-dir/profile.svg`",
        ),
        (&["--frobnicate"][..], "unknown option"),
        (&["--svg"][..], "needs a file name"),
    ] {
        let out = Command::new(&exe).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        // Rust's debug output of an Option is no message for a user.
        assert!(
            !err.contains("Some(") && !err.contains("None"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_non_utf8_argument_is_a_clear_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let exe = common::example("interval_vs_prime");
    for args in [
        vec![std::ffi::OsStr::from_bytes(b"--n\xffth")],
        vec![
            "--trace".as_ref(),
            std::ffi::OsStr::from_bytes(b"t\xff.json"),
        ],
    ] {
        let out = Command::new(&exe).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not valid UTF-8"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
