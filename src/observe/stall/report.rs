//! What the stall detector reports: the callback or task poll holding the loop
//! ([`StallReport`]), or a nextTick/microtask drain that ran too long ([`DrainStall`], with the
//! [`Requeuer`]s that kept it going).

use std::fmt;
use std::time::Duration;

use crate::observe::Span;

/// What the watchdog is told about a stall, twice: while it lasts, and when it has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallReport {
    /// The callback or task poll holding the loop.
    pub span: Span,
    /// The span's number on this loop since the detector started (pairs the two reports).
    pub sequence: u64,
    /// How long it has held the loop (so far, or in all once it ended).
    pub elapsed: Duration,
    /// `true` while the span still runs, `false` in the report sent after it ended.
    pub ongoing: bool,
    /// `Some` when what holds the loop is a nextTick/microtask drain of many jobs rather than
    /// one callback: then `span` is the job that ran most in it, and `sequence` numbers the
    /// drain.
    pub drain: Option<DrainStall>,
}

/// A drain that held the loop: how many jobs it ran and which ones kept coming back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainStall {
    /// Jobs (callbacks and task polls) the drain ran (so far, or in all once it ended).
    pub jobs: u64,
    /// The (at most) two jobs that ran most, busiest first: what kept re-queueing. Their counts
    /// are exact when the drain ran at most two distinct jobs, and otherwise lower bounds, short
    /// by at most a third of `jobs` (a Misra-Gries summary).
    pub requeuers: [Option<Requeuer>; 2],
}

/// A job that ran many times in one drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requeuer {
    /// The job: a task (its id and spawn location) or a callback (where it was queued).
    pub span: Span,
    /// How many times it ran in the drain.
    pub jobs: u64,
}

impl fmt::Display for DrainStall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} jobs", self.jobs)?;
        for (i, r) in self.requeuers.iter().flatten().enumerate() {
            let sep = if i == 0 { ", mostly" } else { " and" };
            write!(f, "{sep} {} ({} runs)", r.span, r.jobs)?;
        }
        Ok(())
    }
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_secs_f64() * 1e3;
        if let Some(d) = &self.drain {
            return if self.ongoing {
                write!(
                    f,
                    "executor: loop held for {ms:.1} ms so far (still running) by one \
                     nextTick/microtask drain: {d}"
                )
            } else {
                write!(
                    f,
                    "executor: nextTick/microtask drain ended after {ms:.1} ms: {d}"
                )
            };
        }
        if self.ongoing {
            write!(
                f,
                "executor: loop blocked for {ms:.1} ms so far (still running) by {}",
                self.span
            )
        } else {
            write!(
                f,
                "executor: loop stall ended after {ms:.1} ms: {}",
                self.span
            )
        }
    }
}
