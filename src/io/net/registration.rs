//! A socket's registration with its loop's reactor, and the "try, else wait" step every socket
//! operation goes through.
//!
//! # The I/O budget
//! A source that always has data (a saturated socket) would otherwise never make an operation
//! return `Pending`, and the task reading it would hold the loop forever: no timer, immediate or
//! other socket would run again. So, as libuv's `uv__read` (src/unix/stream.c) reads at most 32
//! times per readiness event before returning to the loop, each direction of a source allows
//! [`IO_BUDGET`] consecutive ready operations per loop iteration; the next one returns `Pending`
//! without a system call and the task resumes in the next check phase (as after
//! [`yield_now`](crate::yield_now)), and its operations count again from zero once the loop has
//! moved on to another iteration, so the timers phase and the poll phase run between. An
//! operation that would block (the task then waits for readiness) resets the count.

use std::cell::Cell;
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

/// Consecutive ready operations one direction of a source may make in one loop iteration before
/// the next returns `Pending` (see the module docs). libuv's figure (`uv__read`'s `count = 32`):
/// at 64 KiB per read that is 2 MiB per iteration, which makes the cost of the loop turn taken
/// between two batches (a clock read, perhaps one `epoll_wait(0)`) small beside 32 system calls,
/// while a 1 ms interval beside the reader waits at most 32 reads. (tokio's budget, 128, counts
/// every resource a task touches in one poll, not one source per iteration.)
pub(crate) const IO_BUDGET: u32 = 32;

/// What one direction of a source has spent of its [`IO_BUDGET`].
#[derive(Clone, Copy, Default)]
struct Spent {
    /// The loop iteration the count belongs to.
    iteration: u64,
    /// Ready operations in a row in that iteration.
    ops: u32,
}

/// A registered source. Must be dropped before the descriptor is closed: the socket types declare
/// it as their first field (fields drop in declaration order).
pub(crate) struct Registration {
    /// The reactor's record of the source.
    source: Rc<Source>,
    /// The budget spent by reads (`[0]`) and writes (`[1]`).
    spent: [Cell<Spent>; 2],
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
                spent: Default::default(),
                inner: inner.weak_self.clone(),
                poller: inner.reactor.poller.clone(),
            })
        })
    }

    /// Runs `op` until it does not say "would block"; when it does, registers the task's waker
    /// for `dir` and returns `Pending` (the poll phase wakes the task when the socket is ready).
    /// When `dir` has spent its [`IO_BUDGET`] in this loop iteration, returns `Pending` without
    /// running `op`, and the task resumes in the next check phase (see the module docs).
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let Some(inner) = self.inner.upgrade() else {
            return Poll::Ready(Err(io::Error::other(
                "executor: the event loop this socket was registered with is gone",
            )));
        };
        let spent = &self.spent[dir as usize];
        let iteration = inner.iteration();
        let mut s = spent.get();
        if s.iteration != iteration {
            s = Spent { iteration, ops: 0 };
        }
        if s.ops >= IO_BUDGET {
            inner.yield_to_check(cx.waker());
            return Poll::Pending;
        }
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => {
                    s.ops += 1;
                    spent.set(s);
                    return Poll::Ready(r);
                }
            }
        }
        spent.set(Spent { iteration, ops: 0 });
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
