//! Running a program on both sides: Node.js (`node tests/scenarios/run.js`, one process per
//! run, a few at a time) and our loop (`executor::demo::scenario::run`, in this process).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long one Node.js run may take before it counts as failed (generated programs run for
/// well under a second; this bounds a hung process).
const NODE_BOUND: Duration = Duration::from_secs(20);

/// Node.js processes run at once. Each is mostly start-up (~50 ms of CPU); two keep a 2-core
/// machine busy without starving the programs' own timing.
pub const NODE_JOBS: usize = 2;

fn run_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/run.js")
}

/// Whether `node` is on the PATH.
pub fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One run of `src` on Node.js: its labels, or `None` if Node.js failed or hung.
pub fn node(src: &str) -> Option<Vec<String>> {
    let mut child = Command::new("node")
        .arg(run_js())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(src.as_bytes()).ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < NODE_BOUND => {
                std::thread::sleep(Duration::from_millis(2))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

/// Runs every source once on Node.js, `NODE_JOBS` at a time; results in input order.
pub fn node_all(srcs: &[String]) -> Vec<Option<Vec<String>>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; srcs.len()]);
    std::thread::scope(|s| {
        for _ in 0..NODE_JOBS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= srcs.len() {
                        break;
                    }
                    let r = node(&srcs[i]);
                    results.lock().unwrap()[i] = r;
                }
            });
        }
    });
    results.into_inner().unwrap()
}

/// One run of `src` on our loop.
pub fn ours(src: &str) -> Vec<String> {
    let program = executor::demo::scenario::parse(src).expect("generated programs parse");
    executor::demo::scenario::run(&program)
}

/// What repeated runs of one program say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both sides agree.
    Same,
    /// Node.js itself gave different orders (or failed): the program is not deterministic
    /// enough to judge, and is set aside.
    Unstable,
    /// Node.js gave one order every time, and ours never gave it: a real difference.
    Differs {
        node: Vec<String>,
        ours: Vec<String>,
    },
}

/// Runs to confirm a difference: a first disagreement is re-run this many more times on each
/// side, spaced out, so a burst of machine load cannot make (or hide) a difference.
pub const CONFIRM_RUNS: usize = 3;

/// Judges a program whose first Node.js run gave `first_node` and first run of ours gave
/// `first_ours`, re-running both sides when they disagree.
pub fn judge(src: &str, first_node: Option<Vec<String>>, first_ours: Vec<String>) -> Verdict {
    let Some(node_out) = first_node else {
        return Verdict::Unstable;
    };
    if node_out == first_ours {
        return Verdict::Same;
    }
    for _ in 0..CONFIRM_RUNS {
        if node(src).as_ref() != Some(&node_out) {
            return Verdict::Unstable;
        }
        let o = ours(src);
        if o == node_out {
            // Ours can give Node's order: the first disagreement was timing, not order.
            return Verdict::Unstable;
        }
    }
    // An ordering rule does not depend on the time scale; a near-tie the generator let through
    // (a timer whose start a spin pushed back, due a few ms from another) flips with the load.
    // Stretch every delay and spin by `STRETCH`: if both sides then agree, the difference was
    // timing.
    let stretched = stretch(src, STRETCH);
    if let Some(n) = node(&stretched) {
        if ours(&stretched) == n {
            return Verdict::Unstable;
        }
    }
    Verdict::Differs {
        node: node_out,
        ours: first_ours,
    }
}

/// How much `judge` stretches a program's times to tell a near-tie from an ordering difference.
const STRETCH: u64 = 5;

/// `src` with every `timeout`/`interval` delay and every `busy` spin multiplied by `k` (labels,
/// counts and structure unchanged).
pub fn stretch(src: &str, k: u64) -> String {
    let words: Vec<&str> = src.split_whitespace().collect();
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        out.push(w.to_string());
        // `timeout L MS`, `interval L MS N`: the number two words on; `busy MS`: the next one.
        let at = match w {
            "timeout" | "interval" => Some(i + 2),
            "busy" => Some(i + 1),
            _ => None,
        };
        if let Some(at) = at {
            while i + 1 < at && i + 1 < words.len() {
                i += 1;
                out.push(words[i].to_string());
            }
            if let Some(ms) = words.get(at).and_then(|v| v.parse::<u64>().ok()) {
                out.push((ms * k).to_string());
                i = at;
            }
        }
        i += 1;
    }
    out.join(" ")
}
