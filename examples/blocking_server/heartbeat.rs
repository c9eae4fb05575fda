//! A loop's heartbeat, as the cluster's acceptor reads it from another thread: since when the
//! loop has been inside one callback (if it is in one), and how many handed-over connections it
//! has taken from its inbox.
//!
//! The loop publishes it through a [`LoopObserver`] (`Publisher`): entering a span stores its
//! start time, leaving it stores "idle". One word is enough for "stuck since": the stall detector
//! (`executor::observe::StallDetector`) publishes the whole span (kind, id, spawn location)
//! through a seqlock because it names the culprit; the dispatcher only needs to know *whether*
//! to send work there, so a relaxed atomic store per callback (one `Instant::now()`, ~20 ns)
//! does it. A loop waiting in the OS poller is not in a span: idle.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use executor::observe::{LoopObserver, Span};

/// What one loop publishes. Shared (`Arc`) by the loop's [`Publisher`] and the acceptor.
#[derive(Debug)]
pub struct Heartbeat {
    /// The origin of `busy_since`.
    epoch: Instant,
    /// `0` while the loop is not running a callback; otherwise 1 + the nanoseconds from
    /// `epoch` to the start of the outermost callback it is running.
    busy_since: AtomicU64,
    /// Connections the loop has taken from its inbox so far (never decreases).
    taken: AtomicU64,
}

impl Heartbeat {
    /// An idle heartbeat.
    pub fn new() -> Arc<Heartbeat> {
        Arc::new(Heartbeat {
            epoch: Instant::now(),
            busy_since: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        })
    }

    /// How long the loop has been inside its current callback at `now` (zero when idle).
    pub fn stuck_for(&self, now: Instant) -> Duration {
        match self.busy_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            t => now.saturating_duration_since(self.epoch + Duration::from_nanos(t - 1)),
        }
    }

    /// Counts a connection taken from the inbox (called by the loop).
    pub fn took_connection(&self) {
        self.taken.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections taken from the inbox so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    fn enter(&self) {
        let ns = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos() as u64;
        self.busy_since.store(ns + 1, Ordering::Relaxed);
    }

    fn leave(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }
}

/// The observer that publishes a loop's [`Heartbeat`]; install it on the loop it describes.
#[derive(Debug)]
pub struct Publisher {
    beat: Arc<Heartbeat>,
    /// Spans entered and not yet left: only the outermost one publishes (this loop does not
    /// nest spans, but an observer must not assume it).
    depth: Cell<u32>,
}

impl Publisher {
    /// A publisher for `beat`.
    pub fn new(beat: Arc<Heartbeat>) -> Publisher {
        Publisher {
            beat,
            depth: Cell::new(0),
        }
    }
}

impl LoopObserver for Publisher {
    fn enter(&self, _span: &Span) {
        if self.depth.get() == 0 {
            self.beat.enter();
        }
        self.depth.set(self.depth.get() + 1);
    }

    fn exit(&self) {
        let d = self.depth.get().saturating_sub(1);
        self.depth.set(d);
        if d == 0 {
            self.beat.leave();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_for_counts_from_the_outermost_callback_and_idle_is_zero() {
        let beat = Heartbeat::new();
        assert_eq!(beat.stuck_for(Instant::now()), Duration::ZERO);
        let ev = executor::EventLoop::new();
        ev.add_observer(std::rc::Rc::new(Publisher::new(beat.clone())));
        let inside = ev.run(|| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(3) {}
            beat.stuck_for(Instant::now())
        });
        assert!(inside >= Duration::from_millis(3), "{inside:?}");
        assert_eq!(beat.stuck_for(Instant::now()), Duration::ZERO);
    }
}
