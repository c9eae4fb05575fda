//! The trace recorder's Chrome Trace Event JSON parses back, holds every span and interval tick,
//! and its spans nest properly and never overlap on the loop thread; the SVG timeline draws
//! every phase.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use common::{busy, within};
use executor::observe::{Trace, TraceRecorder, chrome_trace_json, render_timeline_svg};
use executor::{
    EventLoop, next_tick, node::TimerHandle, queue_microtask, set_immediate, set_interval,
    set_timeout, sleep, spawn, yield_now,
};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// A bit of everything: main, ticks, microtasks, timeouts, an interval firing 3 times,
/// immediates, tasks that sleep and yield.
fn workload() -> Trace {
    let ev = EventLoop::new();
    let rec = TraceRecorder::install(&ev);
    ev.block_on(async {
        next_tick(|| queue_microtask(|| busy(Duration::from_micros(50))));
        set_timeout(Duration::from_millis(2), || {
            set_immediate(|| busy(Duration::from_micros(200)));
        });
        let runs = Rc::new(Cell::new(0));
        let handle = Rc::new(Cell::new(None::<TimerHandle>));
        let h = handle.clone();
        // The workload ends after the third tick, however late a loaded machine runs it.
        let (third_tx, third) = futures::channel::oneshot::channel::<()>();
        let mut third_tx = Some(third_tx);
        handle.set(Some(set_interval(Duration::from_millis(1), move || {
            runs.set(runs.get() + 1);
            busy(Duration::from_micros(100));
            if runs.get() == 3 {
                h.take().unwrap().clear();
                let _ = third_tx.take().unwrap().send(());
            }
        })));
        let a = spawn(async {
            for _ in 0..3 {
                busy(Duration::from_micros(100));
                yield_now().await;
            }
        });
        let b = spawn(async { sleep(Duration::from_millis(5)).await });
        a.await.unwrap();
        b.await.unwrap();
        third.await.unwrap();
    });
    rec.finish()
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

#[test]
fn chrome_json_round_trips_and_spans_never_overlap() {
    let trace = within(LIMIT, workload);
    let json = trace.to_chrome_json();
    let doc: Value = serde_json::from_str(&json).expect("the trace is valid JSON");
    let events = doc["traceEvents"].as_array().expect("a traceEvents array");

    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    let instants: Vec<&Value> = events.iter().filter(|e| e["ph"] == "i").collect();
    let meta = events.iter().filter(|e| e["ph"] == "M").count();
    assert_eq!(complete.len(), trace.spans.len());
    assert_eq!(instants.len(), trace.ticks.len());
    assert_eq!(meta, 2, "process and thread names");
    assert_eq!(complete.len() + instants.len() + meta, events.len());
    assert_eq!(trace.dropped, 0);

    let phases = ["main", "timers", "poll", "check", "microtask"];
    let mut kinds = BTreeSet::new();
    for e in &complete {
        assert_eq!((e["pid"].as_u64(), e["tid"].as_u64()), (Some(1), Some(1)));
        assert!(e["name"].is_string());
        let cat = e["cat"].as_str().unwrap();
        assert!(phases.contains(&cat), "{e}");
        assert_eq!(e["args"]["phase"], cat);
        assert!(f(e, "ts") >= 0.0 && f(e, "dur") >= 0.0, "{e}");
        kinds.insert(e["args"]["kind"].as_str().unwrap().to_string());
        match e["args"]["kind"].as_str().unwrap() {
            "timeout" | "interval" => assert_eq!(cat, "timers", "{e}"),
            "immediate" => assert_eq!(cat, "check", "{e}"),
            "nextTick" | "microtask" => assert_eq!(cat, "microtask", "{e}"),
            "task" => assert!(e["args"]["spawned_at"].as_str().unwrap().contains(file!())),
            _ => {}
        }
    }
    for k in [
        "main",
        "timeout",
        "interval",
        "immediate",
        "nextTick",
        "microtask",
        "task",
    ] {
        assert!(kinds.contains(k), "no `{k}` span in {kinds:?}");
    }

    // Sorted by start; each span either ends before the next starts or contains it (1 ns of
    // slack for the decimal round trip).
    const EPS: f64 = 0.001;
    let mut open: Vec<f64> = Vec::new();
    let mut prev_ts = 0.0;
    for e in &complete {
        let (ts, end) = (f(e, "ts"), f(e, "ts") + f(e, "dur"));
        assert!(ts + EPS >= prev_ts, "spans out of order at {e}");
        prev_ts = ts;
        while open.last().is_some_and(|&o| o <= ts + EPS) {
            open.pop();
        }
        if let Some(&outer) = open.last() {
            assert!(end <= outer + EPS, "{e} overlaps a span it started in");
        }
        open.push(end);
    }
    // In this loop nothing runs inside anything else.
    assert!(trace.spans.iter().all(|s| s.depth == 0));
    assert!(trace.busy_ns() <= trace.elapsed_ns);

    // Three interval ticks, each right before a span of its interval.
    assert_eq!(instants.len(), 3);
    for t in &instants {
        assert_eq!(t["s"], "t");
        let id = t["args"]["timer"].as_u64().unwrap();
        let ts = f(t, "ts");
        let next = complete
            .iter()
            .find(|e| f(e, "ts") + EPS >= ts)
            .expect("a span after the tick");
        assert_eq!(next["args"]["kind"], "interval");
        assert_eq!(next["args"]["id"].as_u64(), Some(id));
    }
}

#[test]
fn several_runs_are_several_processes_and_the_svg_draws_every_phase() {
    let (a, b) = within(LIMIT, || (workload(), workload()));
    let doc: Value = serde_json::from_str(&chrome_trace_json(&[("first", &a), ("second", &b)]))
        .expect("valid JSON");
    let events = doc["traceEvents"].as_array().unwrap();
    let names: Vec<(u64, &str)> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| {
            (
                e["pid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [(1, "first"), (2, "second")]);
    let in_pid = |pid| {
        events
            .iter()
            .filter(|e| e["pid"] == pid && e["ph"] == "X")
            .count()
    };
    assert_eq!((in_pid(1), in_pid(2)), (a.spans.len(), b.spans.len()));

    let svg = render_timeline_svg("two runs", &[("first", &a), ("second", &b)]);
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    for lane in ["main", "timers", "poll", "check", "microtask", "ticks"] {
        assert_eq!(
            svg.matches(&format!(">{lane}</text>")).count(),
            2 + usize::from(lane == "main" || lane == "microtask"),
            "lane `{lane}` once per run (plus the legend's kind of that name)"
        );
    }
    assert_eq!(
        svg.matches("<title>").count(),
        svg.matches("</title>").count()
    );
}

#[test]
fn finishing_from_inside_the_loop_closes_the_running_spans() {
    let trace = within(LIMIT, || {
        let ev = EventLoop::new();
        let rec = TraceRecorder::install(&ev);
        let trace = ev.block_on(async {
            set_immediate(|| {});
            yield_now().await;
            // Inside the main future's poll: that span is still running.
            rec.finish()
        });
        // The loop went on after the recorder left it: nothing is recorded, nothing panics.
        ev.run(|| set_immediate(|| {}));
        trace
    });
    let last = trace.spans.last().expect("spans were recorded");
    assert_eq!(last.kind.name(), "main");
    assert!(last.end_ns() <= trace.elapsed_ns);
    assert!(trace.spans.iter().any(|s| s.kind.name() == "immediate"));
}
