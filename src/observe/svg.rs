//! The one SVG writer of the drawings ([`render_profile_svg`](super::render_profile_svg),
//! [`render_timeline_svg`](super::render_timeline_svg)): a document head with a title and a
//! caption, a time scale ([`Plot`]) that draws bars, tick lanes and its axis, and text escaping.
//! Drawings are written as text; a drawing library would be a dependency for a few dozen
//! `<rect>`s.

use std::fmt::Write as _;

/// Escapes `s` for SVG/XML text content (not for attribute values: quotes are kept).
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Opens an SVG document `width` x `height` on a white background, with `title` (escaped) and a
/// grey one-line `caption` (written as given) above the drawing, which starts at y = 50.
pub(crate) fn open(
    s: &mut String,
    width: f64,
    height: f64,
    font_size: u32,
    title: &str,
    caption: &str,
) {
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"{font_size}\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"20\" font-size=\"15\">{}</text>",
        esc(title)
    );
    let _ = writeln!(s, "<text x=\"10\" y=\"38\" fill=\"#555\">{caption}</text>");
}

/// A horizontal time scale: nanoseconds `0..=span_ns` drawn from `left` to `right` pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plot {
    pub(crate) left: f64,
    pub(crate) right: f64,
    pub(crate) span_ns: f64,
}

impl Plot {
    /// The x position of `ns` (times past the span are drawn at its end).
    pub(crate) fn x(&self, ns: f64) -> f64 {
        self.left + (ns.min(self.span_ns) / self.span_ns) * (self.right - self.left)
    }

    /// Nanoseconds per pixel: spans closer than this are drawn as one bar.
    pub(crate) fn px_ns(&self) -> f64 {
        self.span_ns / (self.right - self.left)
    }

    /// A bar over `[a, b]` ns at height `y`, at least half a pixel wide, with a hover `tip`.
    pub(crate) fn bar(
        &self,
        s: &mut String,
        (a, b): (f64, f64),
        (y, h): (f64, f64),
        fill: &str,
        tip: Option<&str>,
    ) {
        let _ = write!(
            s,
            "<rect x=\"{:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{h:.1}\" fill=\"{fill}\"",
            self.x(a),
            (self.x(b) - self.x(a)).max(0.5),
        );
        match tip {
            Some(t) => {
                let _ = writeln!(s, "><title>{}</title></rect>", esc(t));
            }
            None => s.push_str("/>\n"),
        }
    }

    /// A lane of tick marks at height `y`, one line per tick in `ticks_ns` (sorted); ticks past
    /// the span are not drawn, nor ticks less than half a pixel after the last one drawn.
    pub(crate) fn ticks(
        &self,
        s: &mut String,
        ticks_ns: impl IntoIterator<Item = u64>,
        (y, h): (f64, f64),
        stroke: &str,
    ) {
        let mut last_px = f64::NEG_INFINITY;
        for t in ticks_ns {
            let t = t as f64;
            if t > self.span_ns {
                break;
            }
            let px = self.x(t);
            if px - last_px < 0.5 {
                continue;
            }
            last_px = px;
            let _ = writeln!(
                s,
                "<line x1=\"{px:.2}\" x2=\"{px:.2}\" y1=\"{y:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\"/>",
                y + h
            );
        }
    }

    /// The time axis at height `y`: a line and six labels from 0 to the span, in ms with
    /// `decimals` decimals.
    pub(crate) fn axis(&self, s: &mut String, y: f64, decimals: usize) {
        let _ = writeln!(
            s,
            "<line x1=\"{}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"black\"/>",
            self.left, self.right
        );
        for i in 0..=5 {
            let ns = self.span_ns * f64::from(i) / 5.0;
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.*} ms</text>",
                self.x(ns),
                y + 15.0,
                decimals,
                ns / 1e6
            );
        }
    }
}
