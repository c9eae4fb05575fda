//! Seeing and counting what the loop runs: how late it runs timers, what blocks it right now,
//! what it ran, and what a chunked job does to an interval beside it.
//!
//! Every tool is opt-in and costs nothing until it is turned on:
//!
//! | tool | what it answers | how |
//! |---|---|---|
//! | [`LoopDelayMonitor`] ([`monitor_loop_delay`]) | how late does the loop run timers? | an unreferenced interval records its lateness in an HDR histogram (Node.js's `perf_hooks.monitorEventLoopDelay`) |
//! | [`StallDetector`] | which callback (or drain of many short jobs) is blocking the loop *now*? | an observer publishes the running span and drain to a watchdog thread |
//! | [`TraceRecorder`] | what did the loop run, when, for how long? | an observer records every span; exports Chrome Trace Event JSON ([`chrome_trace_json`]) and an SVG timeline ([`render_timeline_svg`]) |
//! | [`TickProbe`] | how many interval ticks ran between a job's chunks, and the longest gap? | an interval beside the job, told of its chunk boundaries by its [`Chunker`](crate::chunk::Chunker); an SVG profile ([`render_profile_svg`]) |
//! | [`LoopObserver`] | your own tool | told when each callback or task poll starts and ends, with its [`Phase`] and [`Kind`] |
//!
//! The stall detector and the trace recorder are [`LoopObserver`]s: with none installed the loop
//! pays one branch per callback. The delay monitor and the tick probe are timers.
//!
//! Files: `hooks.rs` (the observer trait and what it is told), one file per tool (`delay.rs`,
//! `stall.rs`, `trace.rs`, `probe.rs`), and the exporters (`json.rs` and `svg.rs`, the drawings
//! `timeline.rs` and `profile.rs`, `file.rs` choosing one by file name).
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use executor::EventLoop;
//! use executor::observe::{StallDetector, TraceRecorder, monitor_loop_delay};
//!
//! let ev = EventLoop::new();
//! let stalls = StallDetector::builder()
//!     .threshold(Duration::from_millis(200))
//!     .start(&ev);
//! let recorder = TraceRecorder::install(&ev);
//! let delay = monitor_loop_delay(Duration::from_millis(1));
//! ev.block_on(async {
//!     delay.enable();
//!     executor::sleep(Duration::from_millis(20)).await;
//!     delay.disable();
//! });
//! let trace = recorder.finish();
//! stalls.stop();
//! assert!(delay.summary().count > 0);
//! assert!(trace.to_chrome_json().starts_with("{\"traceEvents\":["));
//! ```

mod delay;
mod file;
mod hooks;
mod json;
mod meter;
mod probe;
mod profile;
mod stall;
pub(crate) mod svg;
mod timeline;
mod trace;

pub use delay::{DelaySummary, LoopDelayMonitor, monitor_loop_delay};
pub use file::{TraceFormat, write_trace_file};
pub use hooks::{Kind, LoopObserver, Phase, Span};
pub use probe::{ProbeConfig, ProbeReport, TickProbe};
pub use profile::render_profile_svg;
pub use stall::{DrainStall, Requeuer, StallDetector, StallDetectorBuilder, StallReport};
pub use timeline::render_timeline_svg;
pub use trace::{DEFAULT_LIMIT, IntervalTick, Trace, TraceRecorder, TraceSpan, chrome_trace_json};
