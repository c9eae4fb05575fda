//! Not the executor itself: the demo workload and the test language that the examples, tests
//! and benchmarks share.
//!
//! - [`prime`]: the n-th prime by trial division, the CPU-bound job of the "don't block the
//!   event loop" article, in every strategy;
//! - [`scenario`]: tiny event-loop programs that mean the same thing here and in Node.js, so
//!   Node.js can serve as the oracle for ordering.

pub mod prime;
pub mod scenario;
