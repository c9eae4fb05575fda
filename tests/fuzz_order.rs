//! Differential fuzzing of the loop's order against Node.js (see tests/fuzz/ and "Generated
//! programs" in tests/scenarios/README.md).
//!
//! - `quick_fuzz_matches_node`: a fixed seed and a few hundred programs, part of `cargo test`
//!   wherever `node` is on the PATH (it prints a line and passes without `node`).
//! - `long_fuzz` (ignored): the long run, one command:
//!   `FUZZ_SEED=7 FUZZ_COUNT=2000 cargo test --release --test fuzz_order -- --ignored --nocapture`
//!   (`FUZZ_SEED` defaults to the clock, printed so a run can be repeated; `FUZZ_COUNT` to
//!   1000; `FUZZ_SHRINK=0` skips minimizing). Each confirmed difference is printed with its
//!   minimized program, ready to become a scenario.

mod fuzz;

use std::time::{SystemTime, UNIX_EPOCH};

/// The quick run's seed and size.
const QUICK_SEED: u64 = 13;
const QUICK_COUNT: u64 = 200;

#[test]
fn quick_fuzz_matches_node() {
    if !fuzz::oracle::node_available() {
        eprintln!("skipping quick_fuzz_matches_node: `node` is not on the PATH");
        return;
    }
    let report = fuzz::campaign(QUICK_SEED, QUICK_COUNT, false);
    eprintln!("{report}");
    assert!(
        report.differences.is_empty(),
        "the loop's order differs from Node.js's:\n{report}"
    );
    // Judged programs, not set-aside ones, make the run mean something.
    assert!(
        report.same * 2 >= report.programs,
        "too few programs could be judged:\n{report}"
    );
}

#[test]
fn stretching_scales_delays_and_spins_only() {
    let src =
        "timeout t2 40 { refresh t5 busy 35 } interval v3 10 2 { } micro m1 { busy 20 } unref t2";
    assert_eq!(
        fuzz::oracle::stretch(src, 3),
        "timeout t2 120 { refresh t5 busy 105 } interval v3 30 2 { } micro m1 { busy 60 } unref t2"
    );
    // The stretched program is still a valid scenario.
    executor::demo::scenario::parse(&fuzz::oracle::stretch(src, 3)).unwrap();
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a non-negative integer, not {v:?}"))
    })
}

#[test]
#[ignore = "long run: FUZZ_SEED=.. FUZZ_COUNT=.. cargo test --release --test fuzz_order -- --ignored --nocapture"]
fn long_fuzz() {
    assert!(
        fuzz::oracle::node_available(),
        "the long fuzz run needs `node` on the PATH"
    );
    let seed = env_u64("FUZZ_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let count = env_u64("FUZZ_COUNT").unwrap_or(1000);
    let shrink = env_u64("FUZZ_SHRINK") != Some(0);
    eprintln!("fuzz: FUZZ_SEED={seed} FUZZ_COUNT={count}");
    let report = fuzz::campaign(seed, count, shrink);
    eprintln!("{report}");
    assert!(report.differences.is_empty(), "{report}");
}
