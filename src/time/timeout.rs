//! [`Timeout`]: a future with a deadline ([`timeout`], [`timeout_at`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::FusedFuture;
use pin_project_lite::pin_project;

use super::sleep::{Sleep, sleep, sleep_until};

/// The error of a [`timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

pin_project! {
    /// A future with a deadline. Made by [`timeout`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
        // Whether `poll` returned `Ready` (for `FusedFuture`).
        done: bool,
    }
}

/// Runs `future` with a deadline `duration` from now: `Err(Elapsed)` if it has not completed by
/// then (the future is then dropped with the `Timeout`).
///
/// # Panics
/// If no loop is running on this thread.
///
/// ```
/// use std::time::Duration;
/// executor::block_on(async {
///     let slow = executor::sleep(Duration::from_secs(60));
///     assert!(executor::time::timeout(Duration::from_millis(1), slow).await.is_err());
///     assert_eq!(executor::time::timeout(Duration::from_secs(1), async { 5 }).await, Ok(5));
/// });
/// ```
#[track_caller]
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    // Name this call, not the `sleep` inside it, when no loop runs.
    crate::runtime::context::with_current("time::timeout", |_| ());
    Timeout {
        future,
        sleep: sleep(duration),
        done: false,
    }
}

/// Runs `future` with a deadline at `deadline`: `Err(Elapsed)` if it has not completed by then
/// (tokio's `timeout_at`). A deadline already past still lets a future that is ready at its
/// first poll complete (the future is polled before the deadline is looked at).
///
/// # Panics
/// If no loop is running on this thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// executor::block_on(async {
///     let soon = Instant::now() + Duration::from_millis(1);
///     let slow = executor::sleep(Duration::from_secs(60));
///     assert!(executor::time::timeout_at(soon, slow).await.is_err());
///     assert_eq!(executor::time::timeout_at(Instant::now(), async { 5 }).await, Ok(5));
/// });
/// ```
#[track_caller]
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    crate::runtime::context::with_current("time::timeout_at", |_| ());
    Timeout {
        future,
        sleep: sleep_until(deadline),
        done: false,
    }
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }
}

impl<F: Future> FusedFuture for Timeout<F> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            *this.done = true;
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => {
                *this.done = true;
                Poll::Ready(Err(Elapsed(())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
