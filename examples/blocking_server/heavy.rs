//! The limit on concurrent heavy requests (`/primes`): a flood of them cannot queue unbounded
//! CPU time or memory; past the limit the server answers 503 with `Retry-After` at once.
//!
//! A [`Permit`] is `Send`, so an offloaded search carries its own into the worker: the slot is
//! freed when the work has really stopped (finished, cancelled at its next check, or removed
//! from the pool's queue unrun), not merely when the handler stopped waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// At most `max` heavy requests at a time. A clone shares the limit (the loops of a cluster
/// share one).
#[derive(Clone, Debug)]
pub struct HeavyLimit {
    in_flight: Arc<AtomicUsize>,
    max: usize,
}

/// One heavy request's slot; freed on drop.
#[derive(Debug)]
pub struct Permit(Arc<AtomicUsize>);

impl HeavyLimit {
    /// A limit of `max` (at least 1) concurrent heavy requests.
    pub fn new(max: usize) -> Self {
        HeavyLimit {
            in_flight: Arc::new(AtomicUsize::new(0)),
            max: max.max(1),
        }
    }

    /// A slot, or `None` if `max` are taken.
    pub fn try_acquire(&self) -> Option<Permit> {
        // The increment claims a slot before the check; losing it is undone. Two loops racing
        // for the last slot cannot both win; one may lose to a claim that is undone just after
        // (a rare early 503, never more than `max` permits).
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if n >= self.max {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Permit(self.in_flight.clone()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_permits_and_dropping_one_frees_its_slot() {
        let limit = HeavyLimit::new(2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        // Released on another thread, as an offloaded search's permit is.
        std::thread::spawn(move || drop(a)).join().unwrap();
        assert!(limit.try_acquire().is_some());
    }
}
