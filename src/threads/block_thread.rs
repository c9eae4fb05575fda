//! Blocking a plain thread on a future by parking it: how [`Bridge::call`](crate::threads::Bridge::call)
//! and [`ClusterHandle::join`](crate::threads::ClusterHandle::join) wait for another thread's loop.
//!
//! `futures::executor::block_on` does the same but refuses to run inside another `futures`
//! executor; this waiter has no such rule (the caller may be anywhere, even inside one of our
//! loops, which it then blocks, as `Atomics.wait` blocks a Node.js thread).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Unparks the waiting thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this thread, parking (no spinning) between polls, until it is ready.
///
/// A spurious unpark only costs one extra poll: the future, not the park, says when we are done.
pub(crate) fn block_thread_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waits_for_a_value_sent_from_another_thread() {
        let (tx, rx) = futures::channel::oneshot::channel();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            tx.send(7).unwrap();
        });
        assert_eq!(block_thread_on(rx), Ok(7));
        sender.join().unwrap();
    }
}
