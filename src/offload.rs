//! Off-loading CPU-bound work to a pool of persistent threads (placeholder until the worker pool
//! lands: the loop already owns a pool slot, started on first use and joined on drop).

/// The loop's worker pool, if started.
#[derive(Debug, Default)]
pub(crate) struct PoolSlot {
    /// Requested number of threads (`None`: available parallelism).
    threads: Option<usize>,
}

impl PoolSlot {
    pub(crate) fn new(threads: Option<usize>) -> Self {
        PoolSlot { threads }
    }

    /// Stops and joins the pool's threads, if any were started.
    pub(crate) fn shutdown(&self) {
        let _ = self.threads;
    }
}
