//! The stall detector: a watchdog thread that names the callback or task poll holding the loop
//! **while it still holds it**.
//!
//! (Over 400 lines with its tests: the detector, its builder, the watchdog and the publisher are
//! one protocol over the seqlock of `seqlock.rs`; the report types are `report.rs`.)
//!
//! # Implementation
//! An observer on the loop publishes the running span (its number, start time, phase, kind, id
//! and spawn location) to atomics shared with a watchdog thread, through a seqlock (`seqlock.rs`): the loop
//! thread is the only writer and never waits; the watchdog reads a consistent copy or, if it
//! raced a write, tries again at its next wake-up (the loop was clearly not stuck then).
//!
//! The watchdog wakes every `check_every` (a quarter of the threshold by default). When the same
//! span has been running for longer than the threshold, it sets the seqlock word's *reported*
//! bit with a compare-and-swap on the exact value it read, which succeeds only if the loop has
//! not written since: so the span is still running when it is reported, and reported once.
//! When that span ends, the loop thread sees the bit (its write starts with a `fetch_add` on the
//! same word), queues an end report with the exact duration and unparks the watchdog. Both
//! reports go through the hook on the watchdog thread, the end one after the first.
//!
//! A **drain** (the nextTick and microtask jobs run after one callback) can hold the loop as
//! long as a slow callback while each of its jobs is short: two tasks waking each other, a
//! microtask queueing itself. The observer also publishes the running drain (told by
//! [`LoopObserver::drain_begin`]): its start, its job count, and the two jobs that ran most in
//! it (counted with the Misra-Gries summary in `seqlock.rs`). When a drain has run longer than
//! the threshold and the span running in it has not, the watchdog reports the drain
//! ([`StallReport::drain`]), once, by a compare-and-swap on the drain's own word (which succeeds
//! only while that drain still runs); the loop thread sends its end report when it ends.
//!
//! Ground rules:
//! - the loop thread never blocks on the watchdog (the end-report queue's lock is only taken
//!   after a reported stall, and the watchdog holds it for a `mem::take`);
//! - spans do not nest in this loop, but the observer keeps a stack anyway: an inner span is
//!   published while it runs and the outer one again (with its start time and reported bit)
//!   when it ends;
//! - stopping (drop or [`StallDetector::stop`]) removes the observer, stops and joins the
//!   thread, and delivers end reports still queued.

mod report;
mod seqlock;

pub use report::{DrainStall, Requeuer, StallReport};

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use crate::EventLoop;
use crate::observe::{LoopObserver, Span};
use seqlock::{Open, OpenDrain, REPORTED, Shared};

/// The default threshold.
const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

/// The user's hook.
type Hook = Arc<dyn Fn(&StallReport) + Send + Sync>;

/// Sets up a [`StallDetector`].
#[derive(Clone)]
pub struct StallDetectorBuilder {
    threshold: Duration,
    check_every: Option<Duration>,
    hook: Option<Hook>,
}

impl fmt::Debug for StallDetectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StallDetectorBuilder")
            .field("threshold", &self.threshold)
            .field("check_every", &self.check_every)
            .field("hook", &self.hook.as_ref().map_or("stderr", |_| "custom"))
            .finish()
    }
}

impl Default for StallDetectorBuilder {
    fn default() -> Self {
        StallDetectorBuilder {
            threshold: DEFAULT_THRESHOLD,
            check_every: None,
            hook: None,
        }
    }
}

impl StallDetectorBuilder {
    /// Reports spans running longer than this (default 100 ms).
    ///
    /// # Panics
    /// If `threshold` is zero.
    pub fn threshold(mut self, threshold: Duration) -> Self {
        assert!(
            !threshold.is_zero(),
            "executor::observe::StallDetector: the threshold must be above zero"
        );
        self.threshold = threshold;
        self
    }

    /// How often the watchdog looks (default: a quarter of the threshold, at least 1 ms). A stall
    /// is reported at most this long after it passes the threshold (plus scheduling delays).
    ///
    /// # Panics
    /// If `every` is zero.
    pub fn check_every(mut self, every: Duration) -> Self {
        assert!(
            !every.is_zero(),
            "executor::observe::StallDetector: check_every must be above zero"
        );
        self.check_every = Some(every);
        self
    }

    /// Calls `hook` on the watchdog thread for each report (default: one line to stderr).
    pub fn on_stall(mut self, hook: impl Fn(&StallReport) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Installs the observer on `ev` and starts the watchdog thread.
    ///
    /// # Panics
    /// If the OS refuses to start a thread.
    pub fn start(self, ev: &EventLoop) -> StallDetector<'_> {
        let every = self
            .check_every
            .unwrap_or(self.threshold / 4)
            .max(Duration::from_millis(1));
        let hook = self
            .hook
            .unwrap_or_else(|| Arc::new(|r: &StallReport| eprintln!("{r}")));
        let shared = Arc::new(Shared::new(self.threshold));
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name("executor-stall-watchdog".into())
            .spawn(move || watch(&s, &*hook, every))
            .expect("executor::observe::StallDetector: cannot start the watchdog thread");
        let publisher = Rc::new(Publisher {
            shared: shared.clone(),
            watchdog: thread.thread().clone(),
            next: Cell::new(0),
            stack: RefCell::new(Vec::new()),
            drain: RefCell::new(None),
        });
        let observer: Rc<dyn LoopObserver> = publisher;
        ev.add_observer(observer.clone());
        StallDetector {
            ev,
            observer,
            shared,
            thread: Some(thread),
        }
    }
}

/// Reports callbacks and task polls that hold the loop longer than a threshold, while they still
/// do. See the module docs.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, Instant};
/// use executor::EventLoop;
/// use executor::observe::StallDetector;
///
/// let ev = EventLoop::new();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let detector = StallDetector::builder()
///     .threshold(Duration::from_millis(50))
///     .on_stall(move |r| s.lock().unwrap().push(*r))
///     .start(&ev);
/// ev.run(|| {
///     executor::set_timeout(Duration::from_millis(1), || {
///         let t = Instant::now();
///         while t.elapsed() < Duration::from_millis(300) {} // a blocking callback
///     });
/// });
/// detector.stop(); // joins the watchdog, delivering the end report
/// let seen = seen.lock().unwrap();
/// assert_eq!(seen.len(), 2);
/// assert!(seen[0].ongoing && !seen[1].ongoing);
/// assert_eq!(seen[1].span.kind, executor::observe::Kind::Timeout);
/// ```
pub struct StallDetector<'a> {
    ev: &'a EventLoop,
    observer: Rc<dyn LoopObserver>,
    shared: Arc<Shared>,
    /// The watchdog; `None` once joined.
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for StallDetector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StallDetector")
            .field("threshold", &self.shared.threshold)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl<'a> StallDetector<'a> {
    /// Starts a detector with the defaults (100 ms, one line to stderr) on `ev`.
    ///
    /// # Panics
    /// If the OS refuses to start a thread.
    pub fn start(ev: &'a EventLoop) -> Self {
        Self::builder().start(ev)
    }

    /// A builder for another threshold or hook.
    pub fn builder() -> StallDetectorBuilder {
        StallDetectorBuilder::default()
    }

    /// The threshold.
    pub fn threshold(&self) -> Duration {
        self.shared.threshold
    }

    /// Removes the observer, stops and joins the watchdog (as dropping does).
    ///
    /// Called from inside a stalling callback, it stops before that callback ends: the stall's
    /// first report (if it came) is delivered, its end report is not.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.ev.remove_observer(&self.observer);
        if let Some(t) = self.thread.take() {
            self.shared.stop.store(true, Ordering::Release);
            t.thread().unpark();
            // A panicking hook has already printed its message; nothing is left to clean up.
            let _ = t.join();
        }
    }
}

impl Drop for StallDetector<'_> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The watchdog thread's body.
fn watch(shared: &Shared, hook: &(dyn Fn(&StallReport) + Send + Sync), every: Duration) {
    let deliver_ended = || {
        let ended = std::mem::take(&mut *shared.ended.lock().unwrap_or_else(|e| e.into_inner()));
        for r in &ended {
            hook(r);
        }
    };
    while !shared.stop.load(Ordering::Acquire) {
        thread::park_timeout(every);
        deliver_ended();
        let Some(snap) = shared.snapshot() else {
            continue;
        };
        let now = shared.now_ns();
        let running = snap.number != 0;
        let elapsed = Duration::from_nanos(now.saturating_sub(snap.start_ns));
        if running && snap.word & REPORTED == 0 && elapsed >= shared.threshold {
            // Succeeds only if the loop has not written since the snapshot: the span still runs.
            if shared.mark_reported(snap.word) {
                hook(&StallReport {
                    span: snap.span,
                    sequence: snap.number,
                    elapsed,
                    ongoing: true,
                    drain: None,
                });
            }
            continue;
        }
        let Some(drain) = snap.drain else {
            continue;
        };
        let drain_elapsed = Duration::from_nanos(now.saturating_sub(drain.start_ns));
        if drain_elapsed < shared.threshold || (running && elapsed >= shared.threshold) {
            continue;
        }
        // Succeeds only while that drain still runs, and once.
        if shared.mark_drain_reported(drain.number) {
            hook(&StallReport {
                span: drain_span(&drain.stall),
                sequence: drain.number,
                elapsed: drain_elapsed,
                ongoing: true,
                drain: Some(drain.stall),
            });
        }
    }
    deliver_ended();
}

/// The span a drain report names: the busiest job, or a bare microtask if none ran yet.
fn drain_span(d: &DrainStall) -> Span {
    d.requeuers[0].map_or(
        Span {
            phase: crate::observe::Phase::Microtask,
            kind: crate::observe::Kind::Microtask,
            id: 0,
            location: None,
        },
        |r| r.span,
    )
}

/// The observer half, on the loop thread.
struct Publisher {
    shared: Arc<Shared>,
    /// Unparked when an end report is queued.
    watchdog: Thread,
    /// Last span number handed out.
    next: Cell<u64>,
    /// Spans entered and not exited, innermost last (at most one deep in practice).
    stack: RefCell<Vec<Open>>,
    /// The drain running, if one is.
    drain: RefCell<Option<OpenDrain>>,
}

impl LoopObserver for Publisher {
    fn enter(&self, span: &Span) {
        let number = self.next.get() + 1;
        self.next.set(number);
        let open = Open {
            number,
            start_ns: self.shared.now_ns(),
            span: *span,
            reported: false,
        };
        let mut drain = self.drain.borrow_mut();
        let mut stack = self.stack.borrow_mut();
        if stack.is_empty() {
            if let Some(d) = drain.as_mut() {
                d.count(span);
            }
        }
        let old = self.shared.begin_write();
        if let Some(outer) = stack.last_mut() {
            outer.reported |= old & REPORTED != 0;
        }
        self.shared.publish(old, Some(&open), drain.as_ref());
        stack.push(open);
    }

    fn exit(&self) {
        let mut stack = self.stack.borrow_mut();
        let Some(open) = stack.pop() else {
            return;
        };
        let old = self.shared.begin_write();
        self.shared
            .publish(old, stack.last(), self.drain.borrow().as_ref());
        drop(stack);
        if open.reported || old & REPORTED != 0 {
            let elapsed = Duration::from_nanos(self.shared.now_ns().saturating_sub(open.start_ns));
            self.shared
                .ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(StallReport {
                    span: open.span,
                    sequence: open.number,
                    elapsed,
                    ongoing: false,
                    drain: None,
                });
            self.watchdog.unpark();
        }
    }

    fn drain_begin(&self) {
        let number = self.next.get() + 1;
        self.next.set(number);
        let open = OpenDrain {
            number,
            start_ns: self.shared.now_ns(),
            jobs: 0,
            requeuers: [None, None],
        };
        let stack = self.stack.borrow();
        let old = self.shared.begin_write();
        self.shared.publish(old, stack.last(), Some(&open));
        self.shared.drain_word.store(number << 1, Ordering::Release);
        *self.drain.borrow_mut() = Some(open);
    }

    fn drain_end(&self) {
        let Some(open) = self.drain.borrow_mut().take() else {
            return;
        };
        let stack = self.stack.borrow();
        let old = self.shared.begin_write();
        self.shared.publish(old, stack.last(), None);
        drop(stack);
        if self.shared.drain_word.swap(0, Ordering::AcqRel) & 1 != 0 {
            let elapsed = Duration::from_nanos(self.shared.now_ns().saturating_sub(open.start_ns));
            let stall = open.stall();
            self.shared
                .ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(StallReport {
                    span: drain_span(&stall),
                    sequence: open.number,
                    elapsed,
                    ongoing: false,
                    drain: Some(stall),
                });
            self.watchdog.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Kind, Phase};
    use std::panic::Location;

    fn publisher() -> Publisher {
        Publisher {
            shared: Arc::new(Shared::new(Duration::from_millis(1))),
            watchdog: thread::current(),
            next: Cell::new(0),
            stack: RefCell::new(Vec::new()),
            drain: RefCell::new(None),
        }
    }

    #[test]
    fn snapshot_follows_enter_and_exit() {
        let p = publisher();
        assert_eq!(p.shared.snapshot().unwrap().number, 0);
        let span = Span {
            phase: Phase::Check,
            kind: Kind::Task,
            id: 7,
            location: Some(Location::caller()),
        };
        p.enter(&span);
        let s = p.shared.snapshot().unwrap();
        assert_eq!((s.number, s.span), (1, span));
        p.exit();
        assert_eq!(p.shared.snapshot().unwrap().number, 0);
        assert!(p.shared.ended.lock().unwrap().is_empty());
    }

    #[test]
    fn reported_span_gets_an_end_report_and_nesting_restores_the_outer_span() {
        let p = publisher();
        let outer = Span {
            phase: Phase::Main,
            kind: Kind::Main,
            id: 0,
            location: None,
        };
        let inner = Span {
            phase: Phase::Microtask,
            kind: Kind::Wake,
            id: 0,
            location: None,
        };
        p.enter(&outer);
        // What the watchdog does when the outer span is late.
        let s = p.shared.snapshot().unwrap();
        assert!(p.shared.mark_reported(s.word));
        p.enter(&inner);
        let s = p.shared.snapshot().unwrap();
        assert_eq!(
            (s.number, s.span.kind, s.word & REPORTED),
            (2, Kind::Wake, 0)
        );
        p.exit();
        assert!(
            p.shared.ended.lock().unwrap().is_empty(),
            "inner was not reported"
        );
        let s = p.shared.snapshot().unwrap();
        assert_eq!(s.number, 1, "the outer span is published again");
        assert_ne!(s.word & REPORTED, 0, "and stays reported");
        p.exit();
        let ended = p.shared.ended.lock().unwrap().clone();
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].sequence, ended[0].ongoing), (1, false));
        assert_eq!(p.shared.snapshot().unwrap().number, 0);
    }
}
