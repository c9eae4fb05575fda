//! `yield_now`: hand control back to the loop and resume in the check phase.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::context;

/// Lets the loop run its other phases, resuming in the next **check phase**: the equivalent of
/// `await new Promise(r => setImmediate(r))`. Timers that fell due, I/O and wakes from other
/// threads all get their turn before the task continues.
///
/// On the task's own waker this costs no allocation and no atomic read-modify-write beyond one
/// flag; inside combinators (`select!`, `join!`) that pass their own wakers it still works, at
/// the price of a waker clone.
///
/// # Panics
/// When polled with no loop running on this thread.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// executor::block_on(async move {
///     let l2 = l.clone();
///     executor::set_immediate(move || l2.borrow_mut().push("immediate"));
///     executor::yield_now().await;
///     l.borrow_mut().push("resumed");
/// });
/// assert_eq!(*log.borrow(), ["immediate", "resumed"]);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow {
        resume_at: None,
        done: false,
    }
}

/// The future made by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct YieldNow {
    /// The check-phase epoch after which the task may go on; `None` before the first poll.
    resume_at: Option<u64>,
    /// Whether `poll` returned `Ready` (for `FusedFuture`).
    done: bool,
}

impl futures::future::FusedFuture for YieldNow {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl Future for YieldNow {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        context::with_current("yield_now", |inner| match self.resume_at {
            None => {
                self.resume_at = Some(inner.yield_to_check(cx.waker()));
                Poll::Pending
            }
            // A spurious wake before our check phase: stay queued there.
            Some(epoch) if inner.immediates.epoch.get() < epoch => Poll::Pending,
            Some(_) => {
                self.done = true;
                Poll::Ready(())
            }
        })
    }
}
