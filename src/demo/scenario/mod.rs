//! The scenario language: tiny event-loop programs that mean the same thing here and in Node.js,
//! so Node.js can serve as the oracle for ordering. `parse.rs` turns text into [`Op`]s; this file
//! runs them on a loop ([`run`], [`try_run`]).
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
//! let program = executor::demo::scenario::parse("log main tick t { } micro m { }").unwrap();
//! assert_eq!(executor::demo::scenario::run(&program), ["main", "t", "m"]);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod parse;

pub use parse::{ParseError, parse};

use crate::{
    EventLoop, next_tick, node::ImmediateHandle, node::TimerHandle, node::set_timeout_mut,
    queue_microtask, set_immediate, set_interval,
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
                Op::Refresh(l) => match self.handle(l) {
                    Some(Handle::Timer(h)) => {
                        h.refresh();
                    }
                    // Node.js throws (`TypeError: ....refresh is not a function`): an
                    // `Immediate` has no `refresh`. The program stops there, like an uncaught
                    // exception; `resume_unwind` skips the panic hook, and `try_run` catches it.
                    Some(Handle::Immediate(_)) => {
                        std::panic::resume_unwind(Box::new(RefreshedImmediate(l.clone())))
                    }
                    None => {}
                },
            }
        }
    }
}

/// The panic payload that stops a program which refreshed an immediate.
struct RefreshedImmediate(String);

/// A scenario that stopped with an error, as Node.js stops on an uncaught exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// The labels recorded before the error (Node.js still prints them at exit).
    pub labels: Vec<String>,
    /// The label whose handle the failing op named.
    pub label: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`refresh {}` names an immediate, which has no refresh (Node.js throws a TypeError)",
            self.label
        )
    }
}

impl std::error::Error for RunError {}

/// Runs a scenario as the main script of a new loop, until the loop is idle, and returns the
/// labels in the order they were recorded.
///
/// # Panics
/// If the program fails at run time (see [`try_run`]).
pub fn run(program: &[Op]) -> Vec<String> {
    try_run(program).unwrap_or_else(|e| panic!("scenario failed: {e}"))
}

/// Runs a scenario like [`run`], or returns the error that stopped it: `refresh` of a label
/// whose most recent handle is an immediate, which Node.js rejects with a `TypeError`.
///
/// ```
/// let program = executor::demo::scenario::parse("log a immediate i { } refresh i log b").unwrap();
/// let err = executor::demo::scenario::try_run(&program).unwrap_err();
/// assert_eq!(err.labels, ["a"]);
/// ```
pub fn try_run(program: &[Op]) -> Result<Vec<String>, RunError> {
    let st = Rc::new(State::default());
    let ev = EventLoop::new();
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run(|| st.exec(program))));
    // Handles may hold callbacks that hold the state: drop them before reading it.
    st.handles.borrow_mut().clear();
    drop(ev);
    let labels = st.out.take();
    match result {
        Ok(()) => Ok(labels),
        Err(payload) => match payload.downcast::<RefreshedImmediate>() {
            Ok(e) => Err(RunError { labels, label: e.0 }),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}
