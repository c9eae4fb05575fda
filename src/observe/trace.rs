//! The execution-profile recorder: every callback and task poll as a span, and every interval
//! tick as an instant, exported as Chrome Trace Event JSON (Perfetto, `chrome://tracing`) or
//! drawn as an SVG timeline ([`render_timeline_svg`](super::render_timeline_svg)).
//!
//! # Implementation
//! An observer reads the clock when a span enters and when it exits. A span is stored when it
//! enters (so spans stay in start order, a parent before its children) and its duration is
//! filled in when it exits; a stack of indices pairs exits with enters. Past the span limit
//! (default [`DEFAULT_LIMIT`]) spans are counted, not stored, so a job that yields a million
//! times cannot exhaust memory; the exports say how many were dropped.
//!
//! Invariants of a finished [`Trace`] (checked by `tests/monitor_trace.rs`): spans are sorted
//! by start; two spans on the loop thread either nest (one contains the other, deeper `depth`
//! inside) or do not overlap.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::time::Instant;

use super::json::{Micros, Object};
use crate::EventLoop;
use crate::observe::{Kind, LoopObserver, Phase, Span};

/// The default span limit of a recorder (about 40 MB of spans, at 40 bytes each).
pub const DEFAULT_LIMIT: usize = 1_000_000;

/// Duration of a span that has not exited yet.
const OPEN: u64 = u64::MAX;

/// One callback or task poll the loop ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceSpan {
    /// Start, in ns since the recorder was installed.
    pub start_ns: u64,
    /// Duration in ns.
    pub dur_ns: u64,
    /// The phase it ran in.
    pub phase: Phase,
    /// What it was.
    pub kind: Kind,
    /// Task id (tasks) or timer id (timeouts, intervals), else 0.
    pub id: u64,
    /// Where the task was spawned (tasks).
    pub location: Option<&'static Location<'static>>,
    /// Spans it ran inside (0: at the loop's top level, which is every span in practice).
    pub depth: u32,
}

impl TraceSpan {
    /// A short label: the kind, then `#id` when there is one (`task #3`, `timeout #12`).
    pub fn label(&self) -> String {
        if self.id == 0 {
            self.kind.name().to_string()
        } else {
            format!("{} #{}", self.kind.name(), self.id)
        }
    }

    /// End, in ns since the recorder was installed.
    pub fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.dur_ns)
    }
}

/// An interval that fired (its callback or task poll follows as a span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalTick {
    /// When, in ns since the recorder was installed.
    pub at_ns: u64,
    /// The interval's timer id (the `id` of its callback's span).
    pub timer_id: u64,
}

/// What a [`TraceRecorder`] recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// Spans in start order.
    pub spans: Vec<TraceSpan>,
    /// Interval ticks in time order.
    pub ticks: Vec<IntervalTick>,
    /// Spans and ticks that were not stored because the limit was reached.
    pub dropped: u64,
    /// From installing the recorder to finishing it, in ns.
    pub elapsed_ns: u64,
}

impl Trace {
    /// Total time spent in top-level spans (the loop running user code), in ns.
    pub fn busy_ns(&self) -> u64 {
        self.spans
            .iter()
            .filter(|s| s.depth == 0)
            .map(|s| s.dur_ns)
            .sum()
    }

    /// This trace as Chrome Trace Event JSON, as one process named `executor` (see
    /// [`chrome_trace_json`]).
    pub fn to_chrome_json(&self) -> String {
        chrome_trace_json(&[("executor", self)])
    }
}

/// The recorder's state on the loop thread.
#[derive(Debug)]
struct Recorder {
    /// Time origin.
    epoch: Instant,
    /// Stored spans; an open span's `dur_ns` is [`OPEN`].
    spans: RefCell<Vec<TraceSpan>>,
    /// Stored ticks.
    ticks: RefCell<Vec<IntervalTick>>,
    /// One entry per entered, not yet exited span: its index in `spans`, or `None` if dropped.
    stack: RefCell<Vec<Option<usize>>>,
    /// Most spans (and, separately, ticks) stored.
    limit: usize,
    /// Spans and ticks not stored.
    dropped: Cell<u64>,
}

impl Recorder {
    #[inline]
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }
}

impl LoopObserver for Recorder {
    fn enter(&self, span: &Span) {
        let start_ns = self.now_ns();
        let mut stack = self.stack.borrow_mut();
        let mut spans = self.spans.borrow_mut();
        if spans.len() < self.limit {
            stack.push(Some(spans.len()));
            spans.push(TraceSpan {
                start_ns,
                dur_ns: OPEN,
                phase: span.phase,
                kind: span.kind,
                id: span.id,
                location: span.location,
                depth: (stack.len() - 1) as u32,
            });
        } else {
            stack.push(None);
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    fn exit(&self) {
        let end = self.now_ns();
        // After `finish` (called from inside a span) the stack is empty and the spans gone:
        // the exits of the spans that were running then have nothing left to close.
        if let Some(Some(i)) = self.stack.borrow_mut().pop()
            && let Some(s) = self.spans.borrow_mut().get_mut(i)
        {
            s.dur_ns = end.saturating_sub(s.start_ns);
        }
    }

    fn interval_tick(&self, timer_id: u64) {
        let at_ns = self.now_ns();
        let mut ticks = self.ticks.borrow_mut();
        if ticks.len() < self.limit {
            ticks.push(IntervalTick { at_ns, timer_id });
        } else {
            self.dropped.set(self.dropped.get() + 1);
        }
    }
}

/// Records what a loop runs, from [`install`](Self::install) to [`finish`](Self::finish).
/// See the module docs.
///
/// ```
/// use std::time::Duration;
/// use executor::EventLoop;
/// use executor::observe::TraceRecorder;
///
/// let ev = EventLoop::new();
/// let recorder = TraceRecorder::install(&ev);
/// ev.run(|| {
///     executor::set_timeout(Duration::from_millis(1), || {});
///     executor::set_immediate(|| {});
/// });
/// let trace = recorder.finish();
/// let kinds: Vec<&str> = trace.spans.iter().map(|s| s.kind.name()).collect();
/// assert_eq!(kinds.first(), Some(&"main"));
/// assert!(kinds.contains(&"timeout") && kinds.contains(&"immediate"));
/// std::fs::write(std::env::temp_dir().join("doc-trace.json"), trace.to_chrome_json()).unwrap();
/// ```
pub struct TraceRecorder<'a> {
    ev: &'a EventLoop,
    rec: Rc<Recorder>,
    observer: Rc<dyn LoopObserver>,
}

impl fmt::Debug for TraceRecorder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceRecorder")
            .field("spans", &self.rec.spans.borrow().len())
            .field("ticks", &self.rec.ticks.borrow().len())
            .field("dropped", &self.rec.dropped.get())
            .field("limit", &self.rec.limit)
            .finish()
    }
}

impl<'a> TraceRecorder<'a> {
    /// Starts recording what `ev` runs, keeping at most [`DEFAULT_LIMIT`] spans.
    pub fn install(ev: &'a EventLoop) -> Self {
        Self::with_limit(ev, DEFAULT_LIMIT)
    }

    /// Starts recording what `ev` runs, keeping at most `limit` spans (and `limit` ticks); later
    /// ones are only counted.
    pub fn with_limit(ev: &'a EventLoop, limit: usize) -> Self {
        let rec = Rc::new(Recorder {
            epoch: Instant::now(),
            spans: RefCell::new(Vec::new()),
            ticks: RefCell::new(Vec::new()),
            stack: RefCell::new(Vec::new()),
            limit,
            dropped: Cell::new(0),
        });
        let observer: Rc<dyn LoopObserver> = rec.clone();
        ev.add_observer(observer.clone());
        TraceRecorder { ev, rec, observer }
    }

    /// Stops recording and returns the trace. Spans still running (when called from inside the
    /// loop) end now.
    pub fn finish(self) -> Trace {
        self.ev.remove_observer(&self.observer);
        let end = self.rec.now_ns();
        // The spans running now are closed below; their exits, still to come, must find nothing.
        self.rec.stack.borrow_mut().clear();
        let mut spans = self.rec.spans.take();
        for s in spans.iter_mut().filter(|s| s.dur_ns == OPEN) {
            s.dur_ns = end.saturating_sub(s.start_ns);
        }
        Trace {
            spans,
            ticks: self.rec.ticks.take(),
            dropped: self.rec.dropped.get(),
            elapsed_ns: end,
        }
    }
}

impl Drop for TraceRecorder<'_> {
    fn drop(&mut self) {
        self.ev.remove_observer(&self.observer);
    }
}

/// Several traces as one Chrome Trace Event JSON document (`{"traceEvents":[...]}`), one
/// process per trace (pid 1, 2, ... named after its label), the loop as thread 1 of each.
///
/// Spans are complete events (`"ph":"X"`) named by [`TraceSpan::label`], with the phase as
/// category and phase, kind, id and spawn location as arguments; interval ticks are
/// thread-scoped instant events (`"ph":"i"`). Times are microseconds with nanosecond decimals,
/// from each recorder's installation. Opens in Perfetto (ui.perfetto.dev) and `chrome://tracing`.
pub fn chrome_trace_json(runs: &[(&str, &Trace)]) -> String {
    let events: usize = runs
        .iter()
        .map(|(_, t)| t.spans.len() + t.ticks.len())
        .sum();
    let mut out = String::with_capacity(200 * events + 256);
    out.push_str("{\"traceEvents\":[");
    let mut first = true;
    // Each event on a line of its own, comma-separated.
    let mut event = |out: &mut String| {
        if !first {
            out.push_str(",\n");
        }
        first = false;
    };
    for (i, (name, trace)) in runs.iter().enumerate() {
        let pid = i + 1;
        event(&mut out);
        let mut e = Object::open(&mut out);
        e.str("name", "process_name")
            .str("ph", "M")
            .raw("pid", pid)
            .raw("tid", 1);
        e.object("args").str("name", name);
        e.end();
        event(&mut out);
        let mut e = Object::open(&mut out);
        e.str("name", "thread_name")
            .str("ph", "M")
            .raw("pid", pid)
            .raw("tid", 1);
        e.object("args").str("name", "event loop");
        e.end();
        if trace.dropped > 0 {
            event(&mut out);
            let mut e = Object::open(&mut out);
            e.str("name", "process_labels")
                .str("ph", "M")
                .raw("pid", pid)
                .raw("tid", 1);
            let labels = format!(
                "{} spans or ticks past the recorder's limit not recorded",
                trace.dropped
            );
            e.object("args").str("labels", &labels);
            e.end();
        }
        for s in &trace.spans {
            event(&mut out);
            let mut e = Object::open(&mut out);
            e.str("name", &s.label())
                .str("cat", s.phase.name())
                .str("ph", "X")
                .raw("ts", Micros(s.start_ns))
                .raw("dur", Micros(s.dur_ns))
                .raw("pid", pid)
                .raw("tid", 1);
            let mut args = e.object("args");
            args.str("phase", s.phase.name())
                .str("kind", s.kind.name())
                .raw("id", s.id);
            if let Some(l) = s.location {
                let at = format!("{}:{}:{}", l.file(), l.line(), l.column());
                args.str("spawned_at", &at);
            }
            args.end();
            e.end();
        }
        for t in &trace.ticks {
            event(&mut out);
            let mut e = Object::open(&mut out);
            e.str("name", "interval tick")
                .str("cat", "timers")
                .str("ph", "i")
                .str("s", "t")
                .raw("ts", Micros(t.at_ns))
                .raw("pid", pid)
                .raw("tid", 1);
            e.object("args").raw("timer", t.timer_id);
            e.end();
        }
    }
    out.push_str("],\"displayTimeUnit\":\"ms\"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_past_the_limit_are_counted_and_exits_pair_with_enters() {
        let ev = EventLoop::new();
        let rec = TraceRecorder::with_limit(&ev, 2);
        let span = |kind| Span {
            phase: Phase::Check,
            kind,
            id: 0,
            location: None,
        };
        let r = rec.rec.clone();
        r.enter(&span(Kind::Immediate));
        r.enter(&span(Kind::Wake)); // nested
        r.exit();
        r.enter(&span(Kind::Task)); // nested, past the limit
        r.exit();
        r.exit();
        r.enter(&span(Kind::Immediate)); // past the limit
        r.exit();
        r.interval_tick(9);
        let t = rec.finish();
        assert_eq!(t.spans.len(), 2);
        assert_eq!(t.dropped, 2);
        assert_eq!((t.spans[0].depth, t.spans[1].depth), (0, 1));
        assert!(t.spans.iter().all(|s| s.dur_ns != OPEN));
        assert!(t.spans[0].end_ns() >= t.spans[1].end_ns());
        assert_eq!(
            t.ticks,
            [IntervalTick {
                at_ns: t.ticks[0].at_ns,
                timer_id: 9
            }]
        );
        let json = t.to_chrome_json();
        assert!(json.contains("\"labels\":\"2 spans or ticks past"));
    }
}
