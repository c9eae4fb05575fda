//! A socket's registration with its loop's reactor, and the "try, else wait" step every socket
//! operation goes through.
//!
//! # The I/O budget
//! A source that always has data (a saturated socket) would otherwise never make an operation
//! return `Pending`, and the task reading it would hold the loop forever: no timer, immediate or
//! other socket would run again. So, as libuv's `uv__read` (src/unix/stream.c) reads at most 32
//! times per readiness event before returning to the loop, each direction of a source makes a
//! **batch** of ready operations per loop iteration: at most [`IO_BUDGET`] operations, and none
//! started once the batch has made two and held the loop for [`IO_BUDGET_TIME`] (two, so that
//! an ordinary exchange, a read and the read that finds the next message or would block, never
//! meets the bound). The next operation returns
//! `Pending` without a system call and the task resumes in a check phase of a later iteration
//! (as after [`yield_now`](crate::yield_now)), so the timers phase and the poll phase run
//! between two batches. An operation that would block (the task then waits for readiness)
//! ends the batch too. A listener's `accept` is not budgeted: libuv's `uv__server_io` accepts
//! until `EAGAIN`, and the listen backlog bounds that batch.
//!
//! Why a time bound as well as libuv's count: 32 reads of 64 KiB from a loopback socket take
//! about 1.5 ms, so a 1 ms interval beside the reader would run at two thirds of its rate; a
//! batch cut after 25 µs (or two operations, if they take longer) keeps it within a few
//! percent, and costs one clock read per batch
//! (tens of nanoseconds beside the batch's system calls) and one loop turn per batch (a few
//! hundred nanoseconds). See docs/benchmarks.md for the measured figures.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::io::poller::OsPoller;
use crate::io::reactor::{Direction, Source};
use crate::runtime::LoopState;
use crate::runtime::context;

/// The most ready operations in one batch (see the module docs): libuv's figure, `uv__read`'s
/// `count = 32`. With small operations (1 KiB reads of about a microsecond) this is the bound
/// that applies, and it makes the loop turn between two batches (a few hundred nanoseconds,
/// perhaps an `epoll_wait(0)`) cost a few percent at most. (tokio's budget, 128, counts every
/// resource a task touches in one poll, not one source per iteration.)
pub(crate) const IO_BUDGET: u32 = 32;

/// No operation of a batch starts once the batch has made two and run this long (see the
/// module docs): a timer due while a hot source is read is late by at most this or two
/// operations, and a 1 ms interval's ticks stay within a few percent of their rate.
pub(crate) const IO_BUDGET_TIME: Duration = Duration::from_micros(25);

/// The batch one direction of a source is making.
#[derive(Clone, Copy, Default)]
struct Spent {
    /// The loop iteration the batch belongs to.
    iteration: u64,
    /// Ready operations in the batch.
    ops: u32,
    /// When its first operation started (`None` before it).
    since: Option<Instant>,
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

    /// Runs `op` until it does not say "would block"; when it does (or `dir` is already known
    /// to be drained, see `reactor.rs`: then `op` is not run), registers the task's waker for
    /// `dir` and returns `Pending` (the poll phase wakes the task when the socket is ready).
    /// When `dir`'s batch of this loop iteration is over ([`IO_BUDGET`] operations, or
    /// [`IO_BUDGET_TIME`]), returns `Pending` without running `op`, and the task resumes in the
    /// check phase of a later iteration (see the module docs).
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_with(dir, cx, op, true, |_| false)
    }

    /// [`poll_io`](Self::poll_io) for a read or write of `len` bytes: one that moves fewer
    /// (but some) also marks `dir` drained, as tokio's `PollEvented::poll_read` does, so the
    /// next attempt waits for the next edge instead of making a system call that would block.
    pub(crate) fn poll_io_len(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_io_with(dir, cx, op, true, |&n| n > 0 && n < len)
    }

    /// [`poll_io`](Self::poll_io) without the budget, for `accept`: libuv's `uv__server_io`
    /// accepts until `EAGAIN` too (the listen backlog bounds the batch), so a burst of
    /// connections is accepted in one go rather than 32 per iteration behind other work.
    pub(crate) fn poll_io_unbudgeted<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_with(dir, cx, op, false, |_| false)
    }

    fn poll_io_with<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> io::Result<R>,
        budget: bool,
        drained: impl Fn(&R) -> bool,
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
            s = Spent {
                iteration,
                ..Spent::default()
            };
        }
        if budget {
            if s.ops == 0 {
                s.since = Some(Instant::now());
            } else if s.ops >= IO_BUDGET
                || (s.ops >= 2 && s.since.is_some_and(|t| t.elapsed() >= IO_BUDGET_TIME))
            {
                inner.yield_to_check(cx.waker());
                return Poll::Pending;
            }
        }
        let reactor = &inner.reactor;
        // Known drained: no system call, wait for the next edge.
        while reactor.is_ready(&self.source, dir) {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    reactor.clear_ready(&self.source, dir);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => {
                    if r.as_ref().is_ok_and(&drained) {
                        reactor.clear_ready(&self.source, dir);
                    }
                    s.ops += 1;
                    spent.set(s);
                    return Poll::Ready(r);
                }
            }
        }
        spent.set(Spent {
            iteration,
            ..Spent::default()
        });
        inner.add_keep_alive(reactor.wait_for(&self.source, dir, cx.waker()));
        Poll::Pending
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
