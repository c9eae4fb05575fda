//! Writing traces to a file whose name says the format, as `--trace FILE` options want.

use std::io;
use std::path::Path;

use super::timeline::render_timeline_svg;
use super::trace::{Trace, chrome_trace_json};

/// The file formats a [`Trace`] is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// Chrome Trace Event JSON (Perfetto, `chrome://tracing`): [`chrome_trace_json`].
    ChromeJson,
    /// An SVG timeline, one lane per phase: [`render_timeline_svg`].
    Svg,
}

impl TraceFormat {
    /// The format a file name asks for: `.json` or `.svg` (any case); `None` otherwise.
    ///
    /// ```
    /// use executor::observe::TraceFormat;
    /// assert_eq!(TraceFormat::from_path("run.json"), Some(TraceFormat::ChromeJson));
    /// assert_eq!(TraceFormat::from_path("out/run.SVG"), Some(TraceFormat::Svg));
    /// assert_eq!(TraceFormat::from_path("run.txt"), None);
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Option<Self> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(TraceFormat::ChromeJson),
            "svg" => Some(TraceFormat::Svg),
            _ => None,
        }
    }
}

/// Writes `runs` (label, trace) to `path` in the format its name asks for
/// ([`TraceFormat::from_path`]); `title` heads the SVG timeline.
///
/// # Errors
/// `InvalidInput` if the name ends in neither `.json` nor `.svg`; otherwise the write's error.
pub fn write_trace_file(
    path: impl AsRef<Path>,
    title: &str,
    runs: &[(&str, &Trace)],
) -> io::Result<()> {
    let path = path.as_ref();
    let body = match TraceFormat::from_path(path) {
        Some(TraceFormat::ChromeJson) => chrome_trace_json(runs),
        Some(TraceFormat::Svg) => render_timeline_svg(title, runs),
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: a trace file must end in .json or .svg", path.display()),
            ));
        }
    };
    std::fs::write(path, body)
}
