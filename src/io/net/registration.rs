//! A socket's registration with its loop's reactor, and the "try, else wait" step every socket
//! operation goes through.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::io::poller::OsPoller;
use crate::io::reactor::{Direction, Source};
use crate::runtime::LoopState;
use crate::runtime::context;

/// A registered source. Must be dropped before the descriptor is closed: the socket types declare
/// it as their first field (fields drop in declaration order).
pub(crate) struct Registration {
    /// The reactor's record of the source.
    source: Rc<Source>,
    /// The loop it is registered with.
    inner: Weak<LoopState>,
    /// That loop's poller, so the descriptor can be deleted from it even after the loop is gone.
    poller: Arc<OsPoller>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl Registration {
    /// Registers `io` with the running loop.
    ///
    /// # Safety
    /// `io`'s descriptor must stay open until the returned registration is dropped.
    ///
    /// # Panics
    /// If no loop is running on this thread (`api` names the caller).
    #[track_caller]
    pub(crate) unsafe fn new(io: &impl AsFd, api: &str) -> io::Result<Registration> {
        let fd = io.as_fd().as_raw_fd();
        context::with_current(api, |inner| {
            // SAFETY: our caller keeps the descriptor open until this registration is dropped,
            // and dropping it deregisters (or deletes from the poller if the loop is gone).
            let source = unsafe { inner.reactor.register(fd)? };
            Ok(Registration {
                source,
                inner: inner.weak_self.clone(),
                poller: inner.reactor.poller.clone(),
            })
        })
    }

    /// Runs `op` until it does not say "would block"; when it does, registers the task's waker
    /// for `dir` and returns `Pending` (the poll phase wakes the task when the socket is ready).
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return Poll::Ready(r),
            }
        }
        let Some(inner) = self.inner.upgrade() else {
            return Poll::Ready(Err(io::Error::other(
                "executor: the event loop this socket was registered with is gone",
            )));
        };
        match inner.reactor.wait_for(&self.source, dir, cx.waker()) {
            Ok(delta) => {
                inner.add_keep_alive(delta);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        match self.inner.upgrade() {
            Some(inner) => {
                let delta = inner.reactor.deregister(&self.source);
                inner.add_keep_alive(delta);
            }
            // The loop is gone, its poller perhaps not (a waker may hold it).
            None => {
                let _ = self.poller.delete(self.source.fd());
            }
        }
    }
}
