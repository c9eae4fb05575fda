//! Seeing the loop: how late it runs, what blocks it right now, and what it ran.
//!
//! Three opt-in tools, each costing nothing until it is turned on:
//!
//! | tool | what it answers | how |
//! |---|---|---|
//! | [`LoopDelayMonitor`] ([`monitor_loop_delay`]) | how late does the loop run timers? | an unreferenced interval records its lateness in an HDR histogram (Node.js's `perf_hooks.monitorEventLoopDelay`) |
//! | [`StallDetector`] | which callback is blocking the loop *now*? | an observer publishes the running span to a watchdog thread |
//! | [`TraceRecorder`] | what did the loop run, when, for how long? | an observer records every span; exports Chrome Trace Event JSON and an SVG timeline |
//!
//! The stall detector and the trace recorder are [`LoopObserver`](crate::observe::LoopObserver)s:
//! with neither installed the loop pays one branch per callback. The delay monitor is a timer.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use executor::EventLoop;
//! use executor::monitor::{StallDetector, TraceRecorder, monitor_loop_delay};
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
mod stall;
mod timeline;
mod trace;

pub use delay::{DelaySummary, LoopDelayMonitor, monitor_loop_delay};
pub use file::{TraceFormat, write_trace_file};
pub use stall::{StallDetector, StallDetectorBuilder, StallReport};
pub use timeline::render_timeline_svg;
pub use trace::{DEFAULT_LIMIT, IntervalTick, Trace, TraceRecorder, TraceSpan, chrome_trace_json};
