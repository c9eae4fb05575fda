//! The n-th prime by trial division: the classic CPU-bound job that blocks an event loop.
//!
//! Exactly the algorithm of the "don't block the event loop" article: candidates 5, 7, 9, ...
//! are tested by dividing by the known odd primes up to `ceil(sqrt(candidate))`. One candidate
//! test is one unit of work for a [`Chunker`].
//!
//! # Memory
//! The article keeps every prime found (`Vec::with_capacity(nth)`: 40 MB for the 5,000,000-th).
//! Trial division only ever divides by primes up to the square root of the largest candidate,
//! and the largest candidate is the answer, which is below Rosser's bound
//! `p_n < n (ln n + ln ln n)` (n >= 6). So a search keeps only the primes up to
//! `ceil(sqrt(bound))` (about 1,150 primes, 9 KB, for the 5,000,000-th) and counts the rest: the
//! divisions done, and so the time, are unchanged.
//!
//! # Cancelling
//! A chunked search stops when its future is dropped (at the chunk boundary it is suspended at).
//! A blocking one can be asked to stop: [`find_nth_prime_until`] checks a flag every
//! [`CANCEL_CHECK_EVERY`] candidates; the offloaded search of [`find_nth_prime_with`] sets that
//! flag when its future is dropped, so the worker stops soon after nobody waits for it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::chunk::{Chunker, Strategy};
use crate::observe::{ProbeConfig, ProbeReport, TickProbe};

/// How many candidates [`find_nth_prime_until`] tests between two looks at its flag (about 10 ms
/// of search at the 5,000,000-th prime, far less for small ones).
pub const CANCEL_CHECK_EVERY: u32 = 4096;

/// The search state, advanced one candidate test at a time.
#[derive(Debug, Clone)]
pub struct PrimeSearch {
    /// The odd primes found so far that a candidate up to the bound can need as divisors
    /// (those up to `keep_up_to`), in order; starts as `[3]`.
    divisors: Vec<u64>,
    /// Primes larger than this are counted, not kept: no candidate of this search needs them.
    keep_up_to: u64,
    /// How many primes have been found (2 and 3 included).
    found: usize,
    /// The largest prime found.
    last: u64,
    /// The next candidate (odd, >= 5).
    candidate: u64,
    /// How many primes to find.
    nth: usize,
}

/// An upper bound of the `nth` prime: Rosser's `n (ln n + ln ln n)` for n >= 6 (11 below),
/// rounded up with a margin against floating-point error.
fn nth_prime_bound(nth: usize) -> u64 {
    if nth < 6 {
        return 11;
    }
    let n = nth as f64;
    (n * (n.ln() + n.ln().ln())).ceil() as u64 + 16
}

impl PrimeSearch {
    /// A search for the `nth` prime (1-based: the 1st prime is 2).
    ///
    /// # Panics
    /// If `nth` is zero.
    pub fn new(nth: u32) -> Self {
        assert!(nth >= 1, "the n-th prime is defined for n >= 1");
        let nth = nth as usize;
        // Every candidate tested is at most the answer, so at most the bound: its divisors are
        // at most ceil(sqrt(bound)) (+1 against rounding in the square root).
        let keep_up_to = (nth_prime_bound(nth) as f64).sqrt().ceil() as u64 + 1;
        PrimeSearch {
            divisors: vec![3],
            keep_up_to,
            found: 2,
            last: 3,
            candidate: 5,
            nth,
        }
    }

    /// The `nth` prime if the search has found it.
    #[inline]
    fn answer(&self) -> Option<u64> {
        match self.nth {
            1 => Some(2),
            2 => Some(3),
            _ if self.found >= self.nth => Some(self.last),
            _ => None,
        }
    }

    /// Whether `n` is prime, by trial division with the known odd primes up to `ceil(sqrt(n))`.
    #[inline]
    fn is_prime(&self, n: u64) -> bool {
        let limit = (n as f64).sqrt().ceil() as u64;
        for &p in &self.divisors {
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
        if let Some(p) = self.answer() {
            return Some(p);
        }
        let n = self.candidate;
        self.candidate += 2;
        if self.is_prime(n) {
            self.found += 1;
            self.last = n;
            if n <= self.keep_up_to {
                self.divisors.push(n);
            }
            if self.found >= self.nth {
                return Some(n);
            }
        }
        None
    }

    /// How many primes the search holds in memory (for tests of its bound).
    pub fn primes_kept(&self) -> usize {
        self.divisors.len()
    }

    /// Runs the search to the end without yielding.
    pub fn finish(mut self) -> u64 {
        loop {
            if let Some(p) = self.step() {
                return p;
            }
        }
    }

    /// Runs the search until it has the answer (`Some`) or `stop` returns true (`None`); `stop`
    /// is called every `every` candidates (at least 1).
    pub fn finish_unless(mut self, every: u32, mut stop: impl FnMut() -> bool) -> Option<u64> {
        let every = every.max(1);
        loop {
            for _ in 0..every {
                if let Some(p) = self.step() {
                    return Some(p);
                }
            }
            if stop() {
                return None;
            }
        }
    }
}

/// The `nth` prime, computed synchronously: blocks the loop until done (the baseline).
///
/// ```
/// assert_eq!(executor::demo::prime::find_nth_prime(1), 2);
/// assert_eq!(executor::demo::prime::find_nth_prime(100), 541);
/// ```
///
/// # Panics
/// If `nth` is zero.
pub fn find_nth_prime(nth: u32) -> u64 {
    PrimeSearch::new(nth).finish()
}

/// The `nth` prime, computed synchronously unless `cancel` is set: `None` if it was seen set
/// (it is read every [`CANCEL_CHECK_EVERY`] candidates), for a search another thread can stop.
///
/// ```
/// use std::sync::atomic::AtomicBool;
/// assert_eq!(executor::demo::prime::find_nth_prime_until(1000, &AtomicBool::new(false)), Some(7919));
/// assert_eq!(executor::demo::prime::find_nth_prime_until(5_000_000, &AtomicBool::new(true)), None);
/// ```
///
/// # Panics
/// If `nth` is zero.
pub fn find_nth_prime_until(nth: u32, cancel: &AtomicBool) -> Option<u64> {
    PrimeSearch::new(nth).finish_unless(CANCEL_CHECK_EVERY, || cancel.load(Ordering::Relaxed))
}

/// The `nth` prime, computed on the loop in chunks cut by `chunker` (one candidate test per
/// unit), yielding to the loop between chunks.
///
/// ```
/// use executor::chunk::{Chunker, Strategy};
/// let p = executor::block_on(async {
///     let mut chunker = Chunker::new(Strategy::Batch(50));
///     executor::demo::prime::find_nth_prime_chunked(1000, &mut chunker).await
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

/// How a search runs: the seed article's blocking search and its two cures on one loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In one piece on the loop: it blocks the loop until it is done (the baseline, and the bad
    /// example).
    Sync,
    /// On the loop, cut into chunks by a [`Chunker`] with this strategy, yielding between them.
    Chunked(Strategy),
    /// On the loop's worker pool ([`offload`](crate::offload)); the loop is never blocked.
    Offload,
}

impl Mode {
    /// The short name used on command lines (`sync`, `every`, `batch`, ..., `offload`).
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Chunked(s) => s.name(),
            Mode::Offload => "offload",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Chunked(s) => s.fmt(f),
            other => f.write_str(other.name()),
        }
    }
}

impl From<Strategy> for Mode {
    fn from(s: Strategy) -> Self {
        Mode::Chunked(s)
    }
}

/// The `nth` prime, run as `mode` says.
///
/// ```
/// use executor::chunk::Strategy;
/// use executor::demo::prime::{Mode, find_nth_prime_with};
/// for mode in [Mode::Sync, Mode::Chunked(Strategy::Batch(10)), Mode::Offload] {
///     assert_eq!(executor::block_on(find_nth_prime_with(1000, mode)), 7919);
/// }
/// ```
pub async fn find_nth_prime_with(nth: u32, mode: impl Into<Mode>) -> u64 {
    match mode.into() {
        Mode::Sync => find_nth_prime(nth),
        Mode::Chunked(s) => find_nth_prime_chunked(nth, &mut Chunker::new(s)).await,
        Mode::Offload => offload_prime(nth).await,
    }
}

/// Finds the `nth` prime as `mode` says on the running loop, beside a [`TickProbe`] configured
/// by `config`, and returns the prime and what the probe saw (a sync search is one chunk, an
/// offloaded one reports none).
///
/// ```
/// use std::time::Duration;
/// use executor::chunk::Strategy;
/// use executor::demo::prime::probe_search;
/// use executor::observe::ProbeConfig;
/// let (p, report) = executor::block_on(probe_search(
///     10_000,
///     Strategy::Batch(100),
///     ProbeConfig::every(Duration::from_millis(1)),
/// ));
/// assert_eq!(p, 104_729);
/// assert!(report.chunks >= 100);
/// ```
pub async fn probe_search(
    nth: u32,
    mode: impl Into<Mode>,
    config: ProbeConfig,
) -> (u64, ProbeReport) {
    let probe = TickProbe::start(config);
    let p = match mode.into() {
        Mode::Chunked(s) => {
            let mut chunker = Chunker::new(s);
            chunker.set_observer(probe.observer());
            find_nth_prime_chunked(nth, &mut chunker).await
        }
        // The blocking search is one chunk, from here to the probe's finish.
        Mode::Sync => {
            probe.observer().chunk_start();
            find_nth_prime(nth)
        }
        Mode::Offload => offload_prime(nth).await,
    };
    (p, probe.finish())
}

/// Sets its flag when dropped: tells an offloaded search that nobody waits for it any more.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The synchronous search on the loop's worker pool, resolved on the loop when done. Dropping
/// the future removes the job if it has not started ([`crate::offload`]) and otherwise sets the
/// flag the running search checks, so the worker is free again within [`CANCEL_CHECK_EVERY`]
/// candidates.
async fn offload_prime(nth: u32) -> u64 {
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = cancel.0.clone();
    match crate::offload(move || find_nth_prime_until(nth, &flag)).await {
        Ok(Some(p)) => p,
        // `cancel` is set only when this future is dropped, and then nobody reads this.
        Ok(None) => unreachable!("an offloaded search stopped while awaited"),
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

    /// The n-th prime by the simplest possible test, for comparison.
    fn reference(n: usize) -> u64 {
        (2u64..)
            .filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0))
            .nth(n - 1)
            .unwrap()
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri and free of unsafe code")]
    fn keeping_only_the_needed_divisors_changes_no_answer() {
        // Every n up to 3000 (all the small bounds, where rounding would show) and a few more.
        let mut primes =
            (2u64..).filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0));
        for n in 1..=3000u32 {
            assert_eq!(
                find_nth_prime(n),
                primes.next().unwrap(),
                "the {n}-th prime"
            );
        }
        assert_eq!(find_nth_prime(20_000), reference(20_000));
    }

    #[test]
    #[cfg_attr(miri, ignore = "too slow under Miri and free of unsafe code")]
    fn memory_is_bounded_by_the_square_root_not_by_nth() {
        let mut s = PrimeSearch::new(100_000);
        let p = loop {
            if let Some(p) = s.step() {
                break p;
            }
        };
        assert_eq!(p, 1_299_709);
        // The odd primes up to ceil(sqrt(bound)) ~ 1,190: under 200 of them, not 100,000.
        assert!(s.primes_kept() < 200, "{} primes kept", s.primes_kept());
        // For the server's largest search: divisors up to ~9,400 (about 1,160 primes).
        let big = PrimeSearch::new(5_000_000);
        assert!(
            (9_000..10_000).contains(&big.keep_up_to),
            "{}",
            big.keep_up_to
        );
        assert!(big.divisors.capacity() < 16);
    }

    #[test]
    fn a_set_flag_stops_the_search_at_its_next_check() {
        let flag = AtomicBool::new(true);
        let mut checks = 0;
        let out = PrimeSearch::new(5_000_000).finish_unless(10, || {
            checks += 1;
            flag.load(Ordering::Relaxed)
        });
        assert_eq!((out, checks), (None, 1));
        // Unset, it runs to the answer.
        assert_eq!(find_nth_prime_until(10, &AtomicBool::new(false)), Some(29));
    }
}
