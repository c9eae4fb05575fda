//! The SVG timeline of recorded traces: for each run, one lane per phase and a lane of interval
//! ticks, on a shared time axis, readable in any browser.
//!
//! Spans closer than a pixel in one lane are merged into one bar (coloured by the kind that
//! spent most time in it), so a trace of a million spans stays a small file; hovering a bar
//! shows what it stands for.

use std::fmt::Write as _;

use super::svg::{self, Plot, esc};
use super::trace::{Trace, TraceSpan};
use crate::observe::{Kind, Phase};

/// Width of the drawing.
const W: f64 = 1100.0;
/// Width of the label column.
const LEFT: f64 = 130.0;
/// Height of one lane.
const LANE: f64 = 16.0;

fn colour(k: Kind) -> &'static str {
    match k {
        Kind::Main => "#6c757d",
        Kind::Timeout => "#f0ad4e",
        Kind::Interval => "#0275d8",
        Kind::Immediate => "#5cb85c",
        Kind::NextTick => "#9b59b6",
        Kind::Microtask => "#e83e8c",
        Kind::Task => "#d9534f",
        Kind::Wake => "#17a2b8",
        Kind::Io => "#20c997",
    }
}

/// Bars merged from spans closer than a pixel.
#[derive(Debug)]
struct Bar {
    start: u64,
    end: u64,
    spans: u64,
    busy: u64,
    /// Time per kind (indexed as [`Kind::ALL`]).
    by_kind: [u64; Kind::ALL.len()],
    /// The label of the first span (shown when the bar is one span).
    label: String,
}

impl Bar {
    fn new(s: &TraceSpan) -> Self {
        let mut b = Bar {
            start: s.start_ns,
            end: s.end_ns(),
            spans: 0,
            busy: 0,
            by_kind: [0; Kind::ALL.len()],
            label: s.label(),
        };
        b.add(s);
        b
    }

    fn add(&mut self, s: &TraceSpan) {
        self.end = self.end.max(s.end_ns());
        self.spans += 1;
        self.busy += s.dur_ns;
        self.by_kind[s.kind as usize] += s.dur_ns.max(1);
    }

    fn kind(&self) -> Kind {
        let (i, _) = self
            .by_kind
            .iter()
            .enumerate()
            .max_by_key(|&(_, t)| *t)
            .unwrap_or((0, &0));
        Kind::ALL[i]
    }
}

/// Draws `runs` (label, trace) as an SVG document. See the module docs.
///
/// ```
/// use executor::EventLoop;
/// use executor::observe::{TraceRecorder, render_timeline_svg};
///
/// let ev = EventLoop::new();
/// let rec = TraceRecorder::install(&ev);
/// ev.run(|| executor::set_immediate(|| {}));
/// let trace = rec.finish();
/// let svg = render_timeline_svg("one immediate", &[("run", &trace)]);
/// assert!(svg.starts_with("<svg") && svg.contains(">check</text>"));
/// ```
pub fn render_timeline_svg(title: &str, runs: &[(&str, &Trace)]) -> String {
    let span_ns = runs
        .iter()
        .map(|(_, t)| {
            t.elapsed_ns
                .max(t.spans.iter().map(TraceSpan::end_ns).max().unwrap_or(0))
        })
        .fold(1, u64::max) as f64;
    let plot = Plot {
        left: LEFT,
        right: W - 10.0,
        span_ns,
    };
    let px_ns = plot.px_ns();
    let run_h = LANE * (Phase::ALL.len() + 1) as f64 + 24.0;
    let height = 78.0 + runs.len() as f64 * run_h + 30.0;
    let mut s = String::new();
    svg::open(
        &mut s,
        W,
        height,
        11,
        title,
        "each bar: callbacks and task polls running on the loop, one lane per phase (spans \
         under a pixel apart merged; hover for details) · ticks: interval firings",
    );
    let mut lx = 10.0;
    for k in Kind::ALL {
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"48\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"57\">{}</text>",
            colour(k),
            lx + 13.0,
            k.name()
        );
        lx += 13.0 + 7.0 * k.name().len() as f64 + 14.0;
    }
    let mut y = 72.0;
    for (name, trace) in runs {
        let busy = trace.busy_ns() as f64;
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">{}</text>\
             <text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#555\">{} spans{}, {} ticks, loop busy \
             {:.1} of {:.1} ms</text>",
            y + 10.0,
            esc(name),
            y + 10.0,
            trace.spans.len(),
            if trace.dropped > 0 {
                format!(" ({} more past the limit)", trace.dropped)
            } else {
                String::new()
            },
            trace.ticks.len(),
            busy / 1e6,
            trace.elapsed_ns as f64 / 1e6
        );
        y += 16.0;
        for phase in Phase::ALL {
            let _ = writeln!(
                s,
                "<text x=\"20\" y=\"{:.1}\" fill=\"#333\">{}</text>\
                 <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
                y + LANE - 4.0,
                phase.name(),
                W - 10.0,
                y + LANE - 1.0,
                y + LANE - 1.0
            );
            let mut bars: Vec<Bar> = Vec::new();
            for sp in trace.spans.iter().filter(|sp| sp.phase == phase) {
                match bars.last_mut() {
                    Some(b) if (sp.start_ns as f64) - (b.end as f64) < px_ns => b.add(sp),
                    _ => bars.push(Bar::new(sp)),
                }
            }
            for b in &bars {
                let kind = b.kind();
                let tip = if b.spans == 1 {
                    format!("{}: {:.3} ms", b.label, b.busy as f64 / 1e6)
                } else {
                    format!(
                        "{} spans, mostly {}, {:.3} ms busy in {:.3} ms",
                        b.spans,
                        kind.name(),
                        b.busy as f64 / 1e6,
                        (b.end - b.start) as f64 / 1e6
                    )
                };
                plot.bar(
                    &mut s,
                    (b.start as f64, b.end as f64),
                    (y, LANE - 3.0),
                    colour(kind),
                    Some(&tip),
                );
            }
            y += LANE;
        }
        let _ = writeln!(
            s,
            "<text x=\"20\" y=\"{:.1}\" fill=\"#333\">ticks</text>",
            y + LANE - 4.0
        );
        plot.ticks(
            &mut s,
            trace.ticks.iter().map(|t| t.at_ns),
            (y, LANE - 3.0),
            colour(Kind::Interval),
        );
        y += LANE + 8.0;
    }
    plot.axis(&mut s, y, 1);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start_ns: u64, dur_ns: u64, phase: Phase, kind: Kind) -> TraceSpan {
        TraceSpan {
            start_ns,
            dur_ns,
            phase,
            kind,
            id: 0,
            location: None,
            depth: 0,
        }
    }

    #[test]
    fn close_spans_merge_and_far_ones_do_not() {
        // 1 ms drawn over ~960 px: a pixel is about 1 µs.
        let mut spans: Vec<TraceSpan> = (0..100)
            .map(|i| span(i * 500, 400, Phase::Check, Kind::Task))
            .collect();
        spans.push(span(900_000, 100_000, Phase::Timers, Kind::Interval));
        let trace = Trace {
            spans,
            ticks: Vec::new(),
            dropped: 0,
            elapsed_ns: 1_000_000,
        };
        let svg = render_timeline_svg("t <&>", &[("a&b", &trace)]);
        assert_eq!(
            svg.matches("<rect").count(),
            1 + Kind::ALL.len() + 2,
            "{svg}"
        );
        assert!(svg.contains("100 spans, mostly task, 0.040 ms busy"));
        assert!(svg.contains("interval: 0.100 ms"));
        assert!(svg.contains("t &lt;&amp;&gt;") && svg.contains("a&amp;b"));
    }

    #[test]
    fn every_kind_is_drawn_in_its_phase_lane() {
        // One 0.1 ms span of each kind, 0.2 ms apart: none merge.
        let spans: Vec<TraceSpan> = Kind::ALL
            .iter()
            .zip(0u64..)
            .map(|(&k, i)| span(i * 200_000, 100_000, Phase::Poll, k))
            .collect();
        let trace = Trace {
            spans,
            ticks: Vec::new(),
            dropped: 0,
            elapsed_ns: 2_000_000,
        };
        let svg = render_timeline_svg("kinds", &[("all", &trace)]);
        for k in Kind::ALL {
            assert!(
                svg.contains(&format!("{}: 0.100 ms", k.name())),
                "{k:?}: {svg}"
            );
        }
    }
}
