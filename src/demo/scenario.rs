//! The scenario language: tiny event-loop programs that mean the same thing here and in Node.js,
//! so Node.js can serve as the oracle for ordering.
//!
//! ```text
//! program := op*
//! op      := "log" LABEL
//!          | "timeout"   LABEL MS       "{" op* "}"   # setTimeout(cb, MS)
//!          | "interval"  LABEL MS COUNT "{" op* "}"   # setInterval(cb, MS), cleared after COUNT runs
//!          | "immediate" LABEL          "{" op* "}"   # setImmediate(cb)
//!          | "tick"      LABEL          "{" op* "}"   # process.nextTick(cb)
//!          | "micro"     LABEL          "{" op* "}"   # queueMicrotask(cb)
//!          | "busy" MS                                 # spin for MS milliseconds
//!          | "clear" LABEL | "unref" LABEL | "ref" LABEL | "refresh" LABEL
//! ```
//! `#` starts a comment. A callback records its label when it starts, then runs its body. An
//! interval records its label on every run, runs its body, and clears itself after its COUNT-th
//! run. `clear`, `unref`, `ref` and `refresh` act on the most recent handle made with that label
//! by `timeout`, `interval` or `immediate` (a label without one is a no-op, as in Node.js).
//!
//! # Limits
//! A scenario is a small test program, and the parser refuses what no such program needs,
//! with a [`ParseError`] naming the limit (the `scenario` example then exits 2):
//! - blocks nest at most [`MAX_DEPTH`] deep (the parser, and dropping the parsed program, recurse
//!   once per level: 18,000 levels overflowed the stack);
//! - `timeout` delays and `interval` periods are at most [`MAX_DELAY_MS`] ms, `busy` spins at
//!   most [`MAX_BUSY_MS`] ms, and an `interval` runs at most [`MAX_COUNT`] times.
//!
//! Tokenizing and parsing take time linear in the input's length.
//!
//! ```
//! let program = executor::scenario::parse("log main tick t { } micro m { }").unwrap();
//! assert_eq!(executor::scenario::run(&program), ["main", "t", "m"]);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::{
    EventLoop, ImmediateHandle, TimerHandle, next_tick, queue_microtask, set_immediate,
    set_interval, set_timeout_mut,
};

/// How deep blocks may nest (a top-level `timeout t 0 { }` is depth 1).
pub const MAX_DEPTH: usize = 200;
/// The longest `timeout` delay or `interval` period, in ms: a minute.
pub const MAX_DELAY_MS: u64 = 60_000;
/// The longest `busy` spin, in ms.
pub const MAX_BUSY_MS: u64 = 10_000;
/// The most runs of one `interval`.
pub const MAX_COUNT: u64 = 100_000;

/// One operation of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Record a label.
    Log(String),
    /// `setTimeout`.
    Timeout {
        /// Label recorded when the callback runs.
        label: String,
        /// Delay in milliseconds.
        ms: u64,
        /// The callback's body.
        body: Rc<[Op]>,
    },
    /// `setInterval`, cleared after `count` runs.
    Interval {
        /// Label recorded on every run.
        label: String,
        /// Period in milliseconds.
        ms: u64,
        /// Number of runs (at least 1).
        count: u64,
        /// The callback's body.
        body: Rc<[Op]>,
    },
    /// `setImmediate`.
    Immediate {
        /// Label recorded when the callback runs.
        label: String,
        /// The callback's body.
        body: Rc<[Op]>,
    },
    /// `process.nextTick`.
    Tick {
        /// Label recorded when the callback runs.
        label: String,
        /// The callback's body.
        body: Rc<[Op]>,
    },
    /// `queueMicrotask`.
    Micro {
        /// Label recorded when the callback runs.
        label: String,
        /// The callback's body.
        body: Rc<[Op]>,
    },
    /// Spin for this many milliseconds.
    Busy(u64),
    /// Clear the labelled handle.
    Clear(String),
    /// Unref the labelled handle.
    Unref(String),
    /// Ref the labelled handle.
    Ref(String),
    /// Refresh the labelled timer.
    Refresh(String),
}

/// A malformed scenario: what was expected, what was found, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the offending token (or of the end of input).
    pub line: usize,
    /// 1-based column of the offending token.
    pub column: usize,
    /// The offending token, or `None` at the end of input.
    pub token: Option<String>,
    /// What was expected.
    pub expected: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.token {
            Some(t) => write!(
                f,
                "line {}, column {}: expected {}, found `{}`",
                self.line, self.column, self.expected, t
            ),
            None => write!(
                f,
                "line {}, column {}: expected {}, found the end of the input",
                self.line, self.column, self.expected
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// A token with its position.
struct Token<'a> {
    text: &'a str,
    line: usize,
    column: usize,
}

/// Splits `src` into tokens (whitespace-separated words; `{` and `}` are tokens of their own;
/// `#` comments dropped), each with its line and column, in one pass over the input. Also
/// returns the position just past the input's end.
fn tokenize(src: &str) -> (Vec<Token<'_>>, (usize, usize)) {
    let mut out = Vec::new();
    let mut end = (1, 1);
    for (i, raw_line) in src.lines().enumerate() {
        let line = raw_line.split('#').next().unwrap_or("");
        // The byte offset and column of the word being read, if any.
        let mut word: Option<(usize, usize)> = None;
        let mut column = 0;
        for (j, c) in line.char_indices() {
            column += 1;
            let brace = c == '{' || c == '}';
            if !(brace || c.is_whitespace()) {
                word.get_or_insert((j, column));
                continue;
            }
            if let Some((start, col)) = word.take() {
                out.push(Token {
                    text: &line[start..j],
                    line: i + 1,
                    column: col,
                });
            }
            if brace {
                out.push(Token {
                    text: &line[j..j + 1],
                    line: i + 1,
                    column,
                });
            }
        }
        if let Some((start, col)) = word {
            out.push(Token {
                text: &line[start..],
                line: i + 1,
                column: col,
            });
        }
        end = (i + 1, raw_line.chars().count() + 1);
    }
    (out, end)
}

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    pos: usize,
    end: (usize, usize),
    /// How many blocks enclose the current position.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, expected: &str) -> ParseError {
        match self.tokens.get(self.pos) {
            Some(t) => ParseError {
                line: t.line,
                column: t.column,
                token: Some(t.text.to_string()),
                expected: expected.to_string(),
            },
            None => ParseError {
                line: self.end.0,
                column: self.end.1,
                token: None,
                expected: expected.to_string(),
            },
        }
    }

    fn label(&mut self, op: &str) -> Result<String, ParseError> {
        let expected = format!("a label after `{op}`");
        match self.tokens.get(self.pos) {
            Some(t) if t.text != "{" && t.text != "}" => {
                self.pos += 1;
                Ok(t.text.to_string())
            }
            _ => Err(self.error(&expected)),
        }
    }

    fn number(&mut self, what: &str, min: u64, max: u64) -> Result<u64, ParseError> {
        let expected = format!("{what} (a whole number in {min}..={max})");
        match self.tokens.get(self.pos) {
            Some(t) if t.text.bytes().all(|b| b.is_ascii_digit()) => match t.text.parse::<u64>() {
                Ok(n) if n >= min && n <= max => {
                    self.pos += 1;
                    Ok(n)
                }
                _ => Err(self.error(&expected)),
            },
            _ => Err(self.error(&expected)),
        }
    }

    fn block(&mut self, op: &str) -> Result<Rc<[Op]>, ParseError> {
        if self.tokens.get(self.pos).map(|t| t.text) != Some("{") {
            return Err(self.error(&format!("`{{` to open the body of `{op}`")));
        }
        if self.depth >= MAX_DEPTH {
            return Err(self.error(&format!(
                "at most {MAX_DEPTH} nested blocks (the scenario language's limit)"
            )));
        }
        self.pos += 1;
        self.depth += 1;
        let body = self.ops(true)?;
        self.depth -= 1;
        Ok(body.into())
    }

    /// Parses ops until `}` (consumed) when `nested`, or the end of input.
    fn ops(&mut self, nested: bool) -> Result<Vec<Op>, ParseError> {
        let mut ops = Vec::new();
        loop {
            let Some(t) = self.tokens.get(self.pos) else {
                if nested {
                    return Err(self.error("`}` to close the block"));
                }
                return Ok(ops);
            };
            let word = t.text;
            if word == "}" {
                if nested {
                    self.pos += 1;
                    return Ok(ops);
                }
                return Err(self.error("an operation (there is no block to close)"));
            }
            self.pos += 1;
            let op = match word {
                "log" => Op::Log(self.label(word)?),
                "timeout" => {
                    let label = self.label(word)?;
                    let ms = self.number("a delay in ms after the label", 0, MAX_DELAY_MS)?;
                    Op::Timeout {
                        label,
                        ms,
                        body: self.block(word)?,
                    }
                }
                "interval" => {
                    let label = self.label(word)?;
                    let ms = self.number("a period in ms after the label", 0, MAX_DELAY_MS)?;
                    let count = self.number("a run count after the period", 1, MAX_COUNT)?;
                    Op::Interval {
                        label,
                        ms,
                        count,
                        body: self.block(word)?,
                    }
                }
                "immediate" | "tick" | "micro" => {
                    let label = self.label(word)?;
                    let body = self.block(word)?;
                    match word {
                        "immediate" => Op::Immediate { label, body },
                        "tick" => Op::Tick { label, body },
                        _ => Op::Micro { label, body },
                    }
                }
                "busy" => Op::Busy(self.number("a duration in ms after `busy`", 0, MAX_BUSY_MS)?),
                "clear" => Op::Clear(self.label(word)?),
                "unref" => Op::Unref(self.label(word)?),
                "ref" => Op::Ref(self.label(word)?),
                "refresh" => Op::Refresh(self.label(word)?),
                _ => {
                    self.pos -= 1;
                    return Err(self.error(
                        "an operation (log, timeout, interval, immediate, tick, micro, busy, \
                         clear, unref, ref, refresh)",
                    ));
                }
            };
            ops.push(op);
        }
    }
}

/// Parses a scenario.
///
/// ```
/// let err = executor::scenario::parse("timeout t x { }").unwrap_err();
/// assert_eq!((err.line, err.column, err.token.as_deref()), (1, 11, Some("x")));
/// ```
pub fn parse(src: &str) -> Result<Vec<Op>, ParseError> {
    let (tokens, end) = tokenize(src);
    let mut p = Parser {
        tokens,
        pos: 0,
        end,
        depth: 0,
    };
    p.ops(false)
}

/// A handle made by a scenario op.
#[derive(Clone)]
enum Handle {
    Timer(TimerHandle),
    Immediate(ImmediateHandle),
}

/// The interpreter's state, shared by every callback.
#[derive(Default)]
struct State {
    out: RefCell<Vec<String>>,
    handles: RefCell<HashMap<String, Handle>>,
}

impl State {
    fn callback(self: &Rc<Self>, label: &str, body: &Rc<[Op]>) -> impl FnMut() + 'static {
        let (st, label, body) = (self.clone(), label.to_string(), body.clone());
        move || {
            st.out.borrow_mut().push(label.clone());
            st.exec(&body);
        }
    }

    fn handle(&self, label: &str) -> Option<Handle> {
        self.handles.borrow().get(label).cloned()
    }

    fn exec(self: &Rc<Self>, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Log(l) => self.out.borrow_mut().push(l.clone()),
                Op::Timeout { label, ms, body } => {
                    let h = set_timeout_mut(Duration::from_millis(*ms), self.callback(label, body));
                    self.handles
                        .borrow_mut()
                        .insert(label.clone(), Handle::Timer(h));
                }
                Op::Interval {
                    label,
                    ms,
                    count,
                    body,
                } => {
                    let me: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
                    let (runs, count, slot) = (Cell::new(0), *count, me.clone());
                    let mut cb = self.callback(label, body);
                    let h = set_interval(Duration::from_millis(*ms), move || {
                        runs.set(runs.get() + 1);
                        cb();
                        if runs.get() >= count {
                            if let Some(h) = slot.borrow_mut().take() {
                                h.clear();
                            }
                        }
                    });
                    *me.borrow_mut() = Some(h.clone());
                    self.handles
                        .borrow_mut()
                        .insert(label.clone(), Handle::Timer(h));
                }
                Op::Immediate { label, body } => {
                    let cb = self.callback(label, body);
                    let h = set_immediate(cb);
                    self.handles
                        .borrow_mut()
                        .insert(label.clone(), Handle::Immediate(h));
                }
                Op::Tick { label, body } => {
                    let cb = self.callback(label, body);
                    next_tick(cb);
                }
                Op::Micro { label, body } => {
                    let cb = self.callback(label, body);
                    queue_microtask(cb);
                }
                Op::Busy(ms) => {
                    let end = Instant::now() + Duration::from_millis(*ms);
                    while Instant::now() < end {
                        std::hint::spin_loop();
                    }
                }
                Op::Clear(l) => match self.handle(l) {
                    Some(Handle::Timer(h)) => {
                        h.clear();
                    }
                    Some(Handle::Immediate(h)) => {
                        h.clear();
                    }
                    None => {}
                },
                Op::Unref(l) => match self.handle(l) {
                    Some(Handle::Timer(h)) => {
                        h.unref();
                    }
                    Some(Handle::Immediate(h)) => {
                        h.unref();
                    }
                    None => {}
                },
                Op::Ref(l) => match self.handle(l) {
                    Some(Handle::Timer(h)) => {
                        h.keep_alive();
                    }
                    Some(Handle::Immediate(h)) => {
                        h.keep_alive();
                    }
                    None => {}
                },
                Op::Refresh(l) => {
                    if let Some(Handle::Timer(h)) = self.handle(l) {
                        h.refresh();
                    }
                }
            }
        }
    }
}

/// Runs a scenario as the main script of a new loop, until the loop is idle, and returns the
/// labels in the order they were recorded.
pub fn run(program: &[Op]) -> Vec<String> {
    let st = Rc::new(State::default());
    let ev = EventLoop::new();
    ev.run(|| st.exec(program));
    // Handles may hold callbacks that hold the state: drop them before reading it.
    st.handles.borrow_mut().clear();
    drop(ev);
    st.out.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_blocks_and_comments() {
        let p = parse("# c\ntimeout a 5 { tick b { } } # x\ninterval i 1 2 {log z}").unwrap();
        assert_eq!(p.len(), 2);
        match &p[1] {
            Op::Interval { count, body, .. } => {
                assert_eq!(*count, 2);
                assert_eq!(&**body, &[Op::Log("z".into())]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_token_and_position() {
        let e = parse("log a\n  frobnicate x").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(e.token.as_deref(), Some("frobnicate"));
        let e = parse("timeout t 5 { log a").unwrap_err();
        assert_eq!(e.token, None);
        assert!(e.to_string().contains("`}`"), "{e}");
        let e = parse("interval i 5 0 { }").unwrap_err();
        assert_eq!(e.token.as_deref(), Some("0"));
        let e = parse("busy -3").unwrap_err();
        assert_eq!(e.token.as_deref(), Some("-3"));
        let e = parse("}").unwrap_err();
        assert_eq!(e.token.as_deref(), Some("}"));
        let e = parse("tick { }").unwrap_err();
        assert!(e.expected.contains("label"), "{e}");
    }

    /// `depth` blocks, each a `tick` inside the previous one.
    fn nested(depth: usize) -> String {
        "tick t { ".repeat(depth) + &"} ".repeat(depth)
    }

    #[test]
    fn nesting_is_limited_with_a_clear_error_not_a_stack_overflow() {
        let ok = parse(&nested(MAX_DEPTH)).unwrap();
        assert_eq!(run(&ok).len(), MAX_DEPTH);
        let e = parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(e.token.as_deref(), Some("{"));
        assert_eq!(e.column, 9 * MAX_DEPTH + 8, "{e}");
        assert!(e.to_string().contains("at most 200 nested blocks"), "{e}");
        // Far deeper than the stack allows a recursive parser to go: the same error.
        let e = parse(&nested(100_000)).unwrap_err();
        assert!(e.expected.contains("nested blocks"), "{e}");
    }

    #[test]
    fn numbers_have_documented_maxima() {
        for (src, max) in [
            ("timeout t N { }", MAX_DELAY_MS),
            ("interval i N 1 { }", MAX_DELAY_MS),
            ("interval i 0 N { }", MAX_COUNT),
            ("busy N", MAX_BUSY_MS),
        ] {
            let at = src.replacen('N', &max.to_string(), 1);
            assert!(parse(&at).is_ok(), "{at}");
            let over = src.replacen('N', &(max + 1).to_string(), 1);
            let e = parse(&over).unwrap_err();
            assert_eq!(e.token, Some((max + 1).to_string()), "{over}");
            assert!(e.expected.contains(&format!("..={max})")), "{e}");
        }
        let e = parse("busy 1000000000").unwrap_err();
        assert!(e.to_string().contains("a whole number in 0..=10000"), "{e}");
    }

    #[test]
    fn tokens_keep_their_columns_with_braces_unicode_and_comments() {
        let (tokens, end) = tokenize("é{log  a}# x {\n\tbusy 5");
        let got: Vec<(&str, usize, usize)> =
            tokens.iter().map(|t| (t.text, t.line, t.column)).collect();
        assert_eq!(
            got,
            [
                ("é", 1, 1),
                ("{", 1, 2),
                ("log", 1, 3),
                ("a", 1, 8),
                ("}", 1, 9),
                ("busy", 2, 2),
                ("5", 2, 7)
            ]
        );
        assert_eq!(end, (2, 8));
    }

    /// Linear, checked by counting rather than timing: the tokenizer visits each character once
    /// (the old one counted a line's characters again for every token: 100,000 tokens on one
    /// line took 3 s). Here 200,000 tokens on one line, positions right at the far end.
    #[test]
    #[cfg_attr(miri, ignore = "large input; no unsafe code")]
    fn one_long_line_tokenizes_with_right_columns() {
        let src = "log a ".repeat(100_000);
        let (tokens, _) = tokenize(&src);
        assert_eq!(tokens.len(), 200_000);
        let last = tokens.last().unwrap();
        assert_eq!((last.text, last.column), ("a", 6 * 99_999 + 5));
        assert_eq!(parse(&src).unwrap().len(), 100_000);
    }
}
