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
        (&["--missed", "sometimes"][..], "expected skip or burst"),
        (&["--frobnicate"][..], "unknown option"),
        (&["--svg"][..], "needs a file name"),
    ] {
        let out = Command::new(&exe).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
