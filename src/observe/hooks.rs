//! Hooks for seeing what the loop runs: every callback and task poll, with its phase and kind.
//!
//! A [`LoopObserver`] installed on a loop with [`EventLoop::add_observer`](crate::EventLoop::add_observer)
//! is told when each callback or task poll starts and ends, on the loop thread. With no observer
//! installed the cost is one branch per callback. The stall detector and the trace recorder are
//! observers.

use std::fmt;
use std::panic::Location;

/// Where in the loop iteration a callback runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The main closure of `run` or the first poll of `block_on`'s future.
    Main,
    /// The timers phase.
    Timers,
    /// The poll phase (I/O callbacks, wakes from other threads).
    Poll,
    /// The check phase (immediates, tasks resuming from `yield_now`).
    Check,
    /// The nextTick and microtask drain after a callback.
    Microtask,
}

impl Phase {
    /// Every phase, in the order of a loop iteration (main first), which is declaration order:
    /// `phase as usize` is its index here.
    pub const ALL: [Phase; 5] = [
        Phase::Main,
        Phase::Timers,
        Phase::Poll,
        Phase::Check,
        Phase::Microtask,
    ];

    /// A short lowercase name (`timers`, `poll`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Main => "main",
            Phase::Timers => "timers",
            Phase::Poll => "poll",
            Phase::Check => "check",
            Phase::Microtask => "microtask",
        }
    }
}

/// What kind of work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The main closure, or a poll of `block_on`'s future.
    Main,
    /// A `set_timeout` callback.
    Timeout,
    /// A `set_interval` callback.
    Interval,
    /// A `set_immediate` callback.
    Immediate,
    /// A `next_tick` callback.
    NextTick,
    /// A `queue_microtask` callback.
    Microtask,
    /// A poll of a spawned task.
    Task,
    /// A waker being woken (a future resuming through a foreign waker).
    Wake,
    /// An I/O callback: in the poll phase, the wake of what waits on a source the OS reported
    /// ready (the task it wakes then runs as the next span).
    Io,
}

impl Kind {
    /// Every kind, in declaration order: `kind as usize` is its index here.
    pub const ALL: [Kind; 9] = [
        Kind::Main,
        Kind::Timeout,
        Kind::Interval,
        Kind::Immediate,
        Kind::NextTick,
        Kind::Microtask,
        Kind::Task,
        Kind::Wake,
        Kind::Io,
    ];

    /// A short lowercase name (`timeout`, `task`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Main => "main",
            Kind::Timeout => "timeout",
            Kind::Interval => "interval",
            Kind::Immediate => "immediate",
            Kind::NextTick => "nextTick",
            Kind::Microtask => "microtask",
            Kind::Task => "task",
            Kind::Wake => "wake",
            Kind::Io => "io",
        }
    }
}

/// One callback or task poll that is about to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The phase it runs in.
    pub phase: Phase,
    /// What it is.
    pub kind: Kind,
    /// The task id (for `Task`), the timer id (for `Timeout`/`Interval`), else 0.
    pub id: u64,
    /// Where the task was spawned (for `Task`), or where the callback was queued (for
    /// `NextTick` and `Microtask`).
    pub location: Option<&'static Location<'static>>,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.phase.name(), self.kind.name())?;
        if self.id != 0 {
            write!(f, " #{}", self.id)?;
        }
        if let Some(l) = self.location {
            let how = if self.kind == Kind::Task {
                "spawned"
            } else {
                "queued"
            };
            write!(f, " {how} at {}:{}:{}", l.file(), l.line(), l.column())?;
        }
        Ok(())
    }
}

/// Told about every callback and task poll of a loop, on the loop's thread.
///
/// Implementations must not call back into the loop's scheduling API from these methods.
pub trait LoopObserver {
    /// `span` starts running.
    fn enter(&self, span: &Span);
    /// The span entered last has returned (or unwound).
    fn exit(&self);
    /// An interval fired (an instant event; its callback or task follows as a span).
    fn interval_tick(&self, _timer_id: u64) {}
    /// A nextTick/microtask drain begins: the spans until [`drain_end`](Self::drain_end) are
    /// its jobs (phase [`Phase::Microtask`]). Drains do not nest.
    fn drain_begin(&self) {}
    /// The drain begun last has ended (its queues are empty, its job limit was reached, or a
    /// job unwound).
    fn drain_end(&self) {}
}
