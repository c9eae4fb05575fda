//! The n-th prime by trial division: the classic CPU-bound job that blocks an event loop.
//!
//! Exactly the algorithm of the "don't block the event loop" article: the primes found so far
//! start as `[2, 3]`; candidates 5, 7, 9, ... are tested by dividing by the known odd primes up
//! to `ceil(sqrt(candidate))`. One candidate test is one unit of work for a
//! [`Chunker`].

use crate::chunk::{Chunker, Strategy};

/// The search state, advanced one candidate test at a time.
#[derive(Debug, Clone)]
pub struct PrimeSearch {
    /// Primes found so far, in order; starts as `[2, 3]`.
    primes: Vec<u64>,
    /// The next candidate (odd, >= 5).
    candidate: u64,
    /// How many primes to find.
    nth: usize,
}

impl PrimeSearch {
    /// A search for the `nth` prime (1-based: the 1st prime is 2).
    ///
    /// # Panics
    /// If `nth` is zero.
    pub fn new(nth: u32) -> Self {
        assert!(nth >= 1, "the n-th prime is defined for n >= 1");
        let nth = nth as usize;
        let mut primes = Vec::with_capacity(nth.max(2));
        primes.extend([2, 3]);
        PrimeSearch {
            primes,
            candidate: 5,
            nth,
        }
    }

    /// Whether `n` is prime, by trial division with the known odd primes up to `ceil(sqrt(n))`.
    #[inline]
    fn is_prime(&self, n: u64) -> bool {
        let limit = (n as f64).sqrt().ceil() as u64;
        for &p in &self.primes[1..] {
            if p > limit {
                break;
            }
            if n % p == 0 {
                return false;
            }
        }
        true
    }

    /// Tests one candidate. Returns the answer once the `nth` prime is known.
    #[inline]
    pub fn step(&mut self) -> Option<u64> {
        if self.primes.len() >= self.nth {
            return Some(self.primes[self.nth - 1]);
        }
        let n = self.candidate;
        self.candidate += 2;
        if self.is_prime(n) {
            self.primes.push(n);
            if self.primes.len() >= self.nth {
                return Some(n);
            }
        }
        None
    }

    /// Runs the search to the end without yielding.
    pub fn finish(mut self) -> u64 {
        loop {
            if let Some(p) = self.step() {
                return p;
            }
        }
    }
}

/// The `nth` prime, computed synchronously: blocks the loop until done (the baseline).
///
/// ```
/// assert_eq!(executor::prime::find_nth_prime(1), 2);
/// assert_eq!(executor::prime::find_nth_prime(100), 541);
/// ```
///
/// # Panics
/// If `nth` is zero.
pub fn find_nth_prime(nth: u32) -> u64 {
    PrimeSearch::new(nth).finish()
}

/// The `nth` prime, computed on the loop in chunks cut by `chunker` (one candidate test per
/// unit), yielding to the loop between chunks.
///
/// With [`Strategy::Offload`] the chunker never yields; use [`find_nth_prime_with`] to run that
/// strategy on a worker thread.
///
/// ```
/// use executor::chunk::{Chunker, Strategy};
/// let p = executor::block_on(async {
///     let mut chunker = Chunker::new(Strategy::Batch(50));
///     executor::prime::find_nth_prime_chunked(1000, &mut chunker).await
/// });
/// assert_eq!(p, 7919);
/// ```
pub async fn find_nth_prime_chunked(nth: u32, chunker: &mut Chunker) -> u64 {
    let mut search = PrimeSearch::new(nth);
    loop {
        if let Some(p) = search.step() {
            return p;
        }
        // `tick().await` spelled out, so the common case builds no future at all.
        if chunker.should_yield() {
            chunker.yield_now().await;
        }
    }
}

/// The `nth` prime with `strategy`: on the loop in chunks, or for [`Strategy::Sync`] in one
/// blocking piece, or for [`Strategy::Offload`] on the loop's worker pool ([`crate::offload`]).
pub async fn find_nth_prime_with(nth: u32, strategy: Strategy) -> u64 {
    let mut chunker = Chunker::new(strategy);
    find_nth_prime_observed(nth, &mut chunker).await
}

/// As [`find_nth_prime_with`], with a chunker the caller prepared (e.g. with an observer).
pub async fn find_nth_prime_observed(nth: u32, chunker: &mut Chunker) -> u64 {
    match chunker.strategy() {
        Strategy::Sync => find_nth_prime(nth),
        Strategy::Offload => offload_prime(nth).await,
        _ => find_nth_prime_chunked(nth, chunker).await,
    }
}

/// The synchronous search on the loop's worker pool, resolved on the loop when done.
async fn offload_prime(nth: u32) -> u64 {
    match crate::offload(move || find_nth_prime(nth)).await {
        Ok(p) => p,
        Err(e) => panic!("the offloaded prime search failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri and free of unsafe code")]
    fn known_primes() {
        let table = [
            (1, 2),
            (2, 3),
            (3, 5),
            (4, 7),
            (10, 29),
            (100, 541),
            (1000, 7919),
            (10_000, 104_729),
        ];
        for (n, p) in table {
            assert_eq!(find_nth_prime(n), p, "the {n}-th prime");
        }
    }
}
