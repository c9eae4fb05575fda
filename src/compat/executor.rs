//! [`LoopExecutor`]: hyper's `Executor`, spawning on the running loop.

use std::future::Future;

/// Spawns hyper's background futures (HTTP/2 streams, client connection tasks) on the loop
/// running on the calling thread, detached: the futures need not be `Send`.
///
/// A unit struct, so `Send + Sync + Clone` as hyper-util's pooled client asks, but it spawns
/// wherever it is called: call it on the loop's thread (hyper does, from the connection that
/// runs there).
///
/// # Panics
/// `execute` panics if no loop is running on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopExecutor;

impl LoopExecutor {
    /// The executor.
    pub fn new() -> Self {
        LoopExecutor
    }
}

impl<F> hyper::rt::Executor<F> for LoopExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    #[track_caller]
    fn execute(&self, fut: F) {
        crate::spawn(fut).detach();
    }
}
