//! The execution profile of tick-probed runs as an SVG: for each run, a lane of the job's chunks
//! and a lane of interval ticks on one time axis, like the Gantt charts drawn to explain a
//! blocked event loop.

use std::fmt::Write as _;
use std::time::Duration;

use super::probe::ProbeReport;
use super::svg::{self, Plot, esc};

/// Draws execution profiles as an SVG: for each run, a lane of chunks (the job holding the loop)
/// and a lane of interval ticks, on one time axis, like the Gantt charts drawn to explain a
/// blocked event loop. The first panel shows whole runs (chunks closer than a pixel merge into
/// one bar); when `zoom` is given, a second panel shows the first `zoom` of every run, where
/// single chunks and the gaps between them are visible.
pub fn render_profile_svg(
    title: &str,
    runs: &[(String, &ProbeReport)],
    zoom: Option<Duration>,
) -> String {
    let full_ns = runs
        .iter()
        .map(|(_, r)| r.elapsed.as_nanos() as f64)
        .fold(1.0, f64::max);
    let mut panels = vec![(
        format!("whole runs (0 to {:.1} ms)", full_ns / 1e6),
        full_ns,
    )];
    if let Some(z) = zoom {
        let z = (z.as_nanos() as f64).min(full_ns);
        panels.push((format!("zoom: the first {:.2} ms", z / 1e6), z));
    }
    let panel_h = 30.0 + runs.len() as f64 * (2.0 * LANE + 16.0) + 30.0;
    let height = 50.0 + panels.len() as f64 * panel_h;
    let mut s = String::new();
    svg::open(
        &mut s,
        W,
        height,
        12,
        title,
        "red: the job holding the loop (chunks in alternating shades; dark red: many chunks \
         under a pixel each) · blue: interval ticks",
    );
    let mut y = 50.0;
    for (name, span_ns) in &panels {
        panel(&mut s, y, name, runs, *span_ns);
        y += panel_h;
    }
    s.push_str("</svg>\n");
    s
}

const W: f64 = 1000.0;
const LEFT: f64 = 170.0;
const LANE: f64 = 18.0;

/// One panel of `render_profile_svg`: every run's lanes over `[0, span_ns]`.
fn panel(s: &mut String, top: f64, name: &str, runs: &[(String, &ProbeReport)], span_ns: f64) {
    let plot = Plot {
        left: LEFT,
        right: W - 10.0,
        span_ns,
    };
    let px_ns = plot.px_ns();
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
        top + 14.0,
        esc(name)
    );
    let mut y = top + 25.0;
    for (label, r) in runs {
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.1}\">{}</text>",
            y + LANE - 5.0,
            esc(label)
        );
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.1}\" fill=\"#555\">ticks {}/{}</text>",
            y + 2.0 * LANE - 5.0,
            r.ticks,
            r.ideal_ticks
        );
        // A chunk at least a pixel wide gets its own bar, in alternating shades so adjacent
        // chunks stay apart; runs of narrower chunks less than a pixel apart merge into one bar,
        // so a million chunks stay a readable (and small) file.
        let mut rects: Vec<(f64, f64, &str)> = Vec::new();
        let mut shade = 0;
        for &(a, b) in &r.chunk_spans {
            let (a, b) = (a as f64, b as f64);
            if a > span_ns {
                break;
            }
            if b - a >= px_ns {
                shade ^= 1;
                rects.push((a, b, ["#d9534f", "#ee9a97"][shade]));
            } else {
                match rects.last_mut() {
                    Some((_, e, "#c9302c")) if a - *e < px_ns => *e = b,
                    _ => rects.push((a, b, "#c9302c")),
                }
            }
        }
        for (a, b, fill) in rects {
            plot.bar(s, (a, b), (y, LANE - 3.0), fill, None);
        }
        plot.ticks(
            s,
            r.tick_at.iter().copied(),
            (y + LANE, LANE - 3.0),
            "#0275d8",
        );
        y += 2.0 * LANE + 16.0;
    }
    plot.axis(s, y, 2);
}
