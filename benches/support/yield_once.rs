//! The runtime-neutral yield the core benchmarks measure: a future that wakes itself once and
//! returns `Pending` (the Rust yield idiom every executor must handle).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Wakes itself once and returns `Pending`, then `Ready`.
pub struct YieldOnce(pub bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
