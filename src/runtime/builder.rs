//! [`Builder`]: the settings an [`EventLoop`] is built with (the offload pool's size, the
//! microtask drain bound).

use super::*;

/// Builds an [`EventLoop`] with non-default settings.
///
/// ```
/// let ev = executor::EventLoop::builder().build().expect("poller");
/// assert_eq!(ev.block_on(async { 2 + 2 }), 4);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    /// Threads of the offload pool; `None`: the machine's available parallelism.
    pub(super) offload_threads: Option<usize>,
    /// Jobs one nextTick/microtask drain may run; `None`: unbounded (Node.js).
    pub(super) max_jobs_per_drain: Option<std::num::NonZeroUsize>,
}

impl Builder {
    /// A builder with default settings.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Sets the number of threads of the pool that runs offloaded jobs (started on first use).
    ///
    /// # Panics
    /// If `n` is zero.
    pub fn offload_threads(&mut self, n: usize) -> &mut Self {
        assert!(
            n > 0,
            "executor::Builder::offload_threads: the pool needs at least one thread"
        );
        self.offload_threads = Some(n);
        self
    }

    /// Bounds how many jobs (nextTick callbacks, microtasks, woken tasks) one drain may run
    /// before the loop moves on: the jobs left run at the end of the current phase, after its
    /// other callbacks, and the poll phase does not sleep while any is left. tokio's
    /// `event_interval` plays this role.
    ///
    /// The default is unbounded, as in Node.js: an endless chain of continuations (two tasks
    /// waking each other, a microtask queueing itself) then starves the loop, exactly as it
    /// does a Node.js process, and the ordering matches Node.js's everywhere. With a bound, such
    /// a chain shares the loop (timers, I/O and immediates run between its batches) at the
    /// price of Node.js's guarantee that a callback's continuations all run before the next
    /// callback: past the bound, continuations are deferred behind the phase's other work.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ev = executor::EventLoop::builder().max_jobs_per_drain(64).build().unwrap();
    /// let fired = ev.block_on(async {
    ///     // A microtask that queues itself forever: unbounded, it would starve the timer.
    ///     fn again() { executor::queue_microtask(again) }
    ///     executor::queue_microtask(again);
    ///     executor::sleep(Duration::from_millis(1)).await;
    ///     true
    /// });
    /// assert!(fired);
    /// ```
    ///
    /// # Panics
    /// If `n` is zero.
    pub fn max_jobs_per_drain(&mut self, n: usize) -> &mut Self {
        let n = std::num::NonZeroUsize::new(n).expect(
            "executor::Builder::max_jobs_per_drain: a drain must be allowed at least one job",
        );
        self.max_jobs_per_drain = Some(n);
        self
    }

    /// Creates the loop. Fails only if the OS poller cannot be created (out of file descriptors).
    pub fn build(&self) -> io::Result<EventLoop> {
        Ok(EventLoop {
            inner: LoopState::new(Reactor::new()?, self),
        })
    }
}
