//! The little SVG both drawings need (`probe::render_svg`, `monitor::render_timeline_svg`):
//! a document head with a title and a caption, and text escaping. Drawings are written as text;
//! a drawing library would be a dependency for a few dozen `<rect>`s.

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

/// Draws a time axis at height `y` from `left` to `right`: a line and six labels from 0 to
/// `span_ns`, in ms with `decimals` decimals, placed by `x` (ns to px).
pub(crate) fn time_axis(
    s: &mut String,
    (left, right, y): (f64, f64, f64),
    span_ns: f64,
    x: impl Fn(f64) -> f64,
    decimals: usize,
) {
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" x2=\"{right:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"black\"/>"
    );
    for i in 0..=5 {
        let ns = span_ns * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.*} ms</text>",
            x(ns),
            y + 15.0,
            decimals,
            ns / 1e6
        );
    }
}
