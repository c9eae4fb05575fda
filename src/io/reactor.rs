//! The poll phase's wait and the I/O sources registered with its poller (`poller.rs`), the
//! loop's only place to sleep.
//!
//! When the poll phase must not sleep (immediates or yielded tasks are waiting) and no source has
//! a waiter, there is nothing the poller could report that the loop does not already see (remote
//! wakes are counted in an atomic), so the system call is skipped: a loop iteration of a CPU-bound
//! job that yields costs tens of nanoseconds, not a syscall. With a waiter (a listening server, a
//! stream waiting for data), each such iteration makes one `epoll_wait(0)`.
//!
//! # I/O sources
//! Ground rules:
//! - A source is added to the poller once, edge-triggered for both directions, when its socket
//!   is wrapped ([`Reactor::register`]), under its key in the slab of sources; it is deleted
//!   from the poller ([`Reactor::deregister`]) before its descriptor is closed (the `net` types
//!   own both and drop the registration first).
//! - **Readiness is kept here** (tokio's `ScheduledIo`, mio's edge-triggered registration): each
//!   source has a readable and a writable bit, set by the events [`Reactor::dispatch`] hands
//!   out, cleared by the socket code when an operation finds the direction drained (it would
//!   block, or a read or write moved fewer bytes than asked: the kernel's buffer is then empty,
//!   or full). An operation on a direction that is not ready skips its system call and waits.
//!   No wake is lost: an edge that comes after the operation that drained the direction stays in
//!   the kernel's ready list until the next wait reports it, and between a wait and its
//!   dispatch no user code runs. The end of the stream, a hang-up or an error sets a sticky
//!   "closed" bit for the direction, never cleared: a short read before the end is reached must
//!   not make the next read (which would see the end) wait for an edge that will not come.
//!   A socket starts ready both ways, so its first operation is always tried.
//! - One reader and one writer waker per source: a second waiter in the same direction replaces
//!   the first (as with tokio's `poll_read_ready`).
//! - **Liveness**: a source with a waiter is a referenced handle. The counts returned by
//!   `wait_for`, `dispatch` and `deregister` go to `LoopState::add_keep_alive`. So a listener waiting
//!   for connections or a stream waiting for data keeps the loop alive (a listening Node.js
//!   server, a reading socket), and an idle, open source does not.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use slab::Slab;

use super::poller::{OsPoller, Ready};

/// A direction of readiness a task can wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Readable (data, a connection to accept, end of stream, an error).
    Read,
    /// Writable (room in the send buffer, a finished connect, an error).
    Write,
}

/// The tasks waiting on one source.
#[derive(Default)]
struct Waiters {
    /// Woken when the source becomes readable.
    reader: Option<Waker>,
    /// Woken when the source becomes writable.
    writer: Option<Waker>,
}

/// A source's readiness bits (see the module docs).
const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
const READ_CLOSED: u8 = 4;
const WRITE_CLOSED: u8 = 8;

impl Direction {
    /// The readiness bit of this direction, and its sticky "closed" bit.
    fn bits(self) -> (u8, u8) {
        match self {
            Direction::Read => (READABLE, READ_CLOSED),
            Direction::Write => (WRITABLE, WRITE_CLOSED),
        }
    }
}

impl Waiters {
    fn any(&self) -> bool {
        self.reader.is_some() || self.writer.is_some()
    }
}

/// A registered I/O source, shared by the reactor's slab and the socket that owns it.
pub(crate) struct Source {
    /// The descriptor. Invariant: open for as long as the source is in the slab.
    fd: RawFd,
    /// Its key in the slab and in the poller's events.
    key: usize,
    /// Who waits for readiness. Never borrowed while a waker is cloned, woken or dropped.
    waiters: RefCell<Waiters>,
    /// `READABLE | WRITABLE | READ_CLOSED | WRITE_CLOSED` bits (see the module docs).
    readiness: Cell<u8>,
}

impl Source {
    /// The descriptor, borrowed.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor stays open while the source is registered, and a `Source` is
        // only used by its owner (which closes the descriptor only after deregistering) and by
        // the reactor while it is in the slab.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.waiters.borrow();
        f.debug_struct("Source")
            .field("fd", &self.fd)
            .field("key", &self.key)
            .field("reader", &w.reader.is_some())
            .field("writer", &w.writer.is_some())
            .field("readiness", &self.readiness.get())
            .finish()
    }
}

/// The poller and the sources registered with it. Lives in the loop's `LoopState`; everything but
/// the poller is used on the loop's thread only.
pub(crate) struct Reactor {
    /// Shared with the loop's `Inbox`, which calls `notify` on it, and with the sockets, which
    /// delete themselves from it even after the loop is gone.
    pub(crate) poller: Arc<OsPoller>,
    /// Registered sources by key. Never borrowed while a waker is woken or dropped.
    sources: RefCell<Slab<Rc<Source>>>,
    /// Number of sources with at least one waiter.
    waiting: Cell<usize>,
    /// The events of the last wait, until dispatched.
    ready: RefCell<Vec<Ready>>,
    /// Reused buffer for the wakers a dispatch takes.
    wake_buf: RefCell<Vec<Waker>>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("sources", &self.sources.borrow().len())
            .field("waiting", &self.waiting.get())
            .finish()
    }
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Reactor {
            poller: Arc::new(OsPoller::new()?),
            sources: RefCell::new(Slab::new()),
            waiting: Cell::new(0),
            ready: RefCell::new(Vec::new()),
            wake_buf: RefCell::new(Vec::new()),
        })
    }

    /// Whether a zero-timeout poll can be skipped: no task waits on a source, so an event could
    /// only set a readiness bit nobody is waiting for (the edge then stays in the kernel until
    /// a wait that matters reports it), and the remote queue's length already tells
    /// notifications.
    #[inline]
    pub(crate) fn can_skip_zero_wait(&self) -> bool {
        self.waiting.get() == 0
    }

    /// Waits for readiness or a notification, at most `timeout` (`None`: until woken), and keeps
    /// the events for [`dispatch`](Self::dispatch).
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        let mut ready = self.ready.borrow_mut();
        debug_assert!(
            ready.is_empty(),
            "events of the last wait were not dispatched"
        );
        self.poller.wait(timeout, &mut ready);
    }

    /// Registers `fd` (edge-triggered, both directions), ready both ways until an operation
    /// finds otherwise.
    ///
    /// # Safety
    /// `fd` must stay open until the returned source is passed to
    /// [`deregister`](Self::deregister) (or, if this reactor is gone by then, deleted from
    /// [`poller`](Self::poller)).
    pub(crate) unsafe fn register(&self, fd: RawFd) -> io::Result<Rc<Source>> {
        let mut sources = self.sources.borrow_mut();
        let entry = sources.vacant_entry();
        let key = entry.key();
        // SAFETY: our caller keeps `fd` open until it deregisters (which deletes it).
        unsafe { self.poller.add(fd, key)? };
        let source = Rc::new(Source {
            fd,
            key,
            waiters: RefCell::default(),
            readiness: Cell::new(READABLE | WRITABLE),
        });
        entry.insert(source.clone());
        Ok(source)
    }

    /// Whether an operation in `dir` may succeed: the direction is ready, or closed.
    #[inline]
    pub(crate) fn is_ready(&self, source: &Source, dir: Direction) -> bool {
        let (ready, closed) = dir.bits();
        source.readiness.get() & (ready | closed) != 0
    }

    /// Records that `dir` is drained (an operation would block, or moved fewer bytes than
    /// asked); the next event for it sets it again. A closed direction stays closed.
    #[inline]
    pub(crate) fn clear_ready(&self, source: &Source, dir: Direction) {
        let (ready, _) = dir.bits();
        source.readiness.set(source.readiness.get() & !ready);
    }

    /// Makes `waker` the waiter of `source` for `dir` (call it when `dir` is not ready). Returns
    /// the change in the number of sources with a waiter (for the keep-alive count).
    pub(crate) fn wait_for(&self, source: &Source, dir: Direction, waker: &Waker) -> isize {
        {
            let w = source.waiters.borrow();
            let slot = match dir {
                Direction::Read => &w.reader,
                Direction::Write => &w.writer,
            };
            if slot.as_ref().is_some_and(|old| old.will_wake(waker)) {
                return 0;
            }
        }
        // Cloned with no borrow held: a waker's clone may run any code, this source's too.
        let waker = waker.clone();
        let mut w = source.waiters.borrow_mut();
        let was_waiting = w.any();
        let slot = match dir {
            Direction::Read => &mut w.reader,
            Direction::Write => &mut w.writer,
        };
        let old = slot.replace(waker);
        drop(w);
        // Dropped with no borrow held, as above.
        drop(old);
        self.count_change(was_waiting, true)
    }

    /// Removes `source` from the poller and the slab and drops its waiters. Returns the change
    /// in the number of sources with a waiter.
    pub(crate) fn deregister(&self, source: &Source) -> isize {
        let removed = {
            let mut sources = self.sources.borrow_mut();
            match sources.get(source.key) {
                Some(s) if std::ptr::eq(&**s, source) => Some(sources.remove(source.key)),
                _ => None,
            }
        };
        debug_assert!(removed.is_some(), "deregistering an unknown source");
        // A failure can only mean the descriptor is already gone from the poller.
        let _ = self.poller.delete(source.fd());
        let waiters = std::mem::take(&mut *source.waiters.borrow_mut());
        let delta = self.count_change(waiters.any(), false);
        drop(waiters);
        drop(removed);
        delta
    }

    /// Records the last wait's events in the sources' readiness and takes the wakers they
    /// satisfied into `out`. Returns the change in the number of sources with a waiter.
    pub(crate) fn dispatch(&self, out: &mut Vec<Waker>) -> isize {
        let mut ready = std::mem::take(&mut *self.ready.borrow_mut());
        let mut delta = 0;
        for ev in ready.drain(..) {
            let Some(source) = self.sources.borrow().get(ev.key).cloned() else {
                continue;
            };
            let mut bits = source.readiness.get();
            for (on, bit) in [
                (ev.readable, READABLE),
                (ev.writable, WRITABLE),
                (ev.read_closed, READ_CLOSED),
                (ev.write_closed, WRITE_CLOSED),
            ] {
                if on {
                    bits |= bit;
                }
            }
            source.readiness.set(bits);
            let mut w = source.waiters.borrow_mut();
            let was_waiting = w.any();
            if bits & (READABLE | READ_CLOSED) != 0 {
                out.extend(w.reader.take());
            }
            if bits & (WRITABLE | WRITE_CLOSED) != 0 {
                out.extend(w.writer.take());
            }
            let now_waiting = w.any();
            drop(w);
            delta += self.count_change(was_waiting, now_waiting);
        }
        // Hand the (empty) buffer back so its capacity is reused.
        *self.ready.borrow_mut() = ready;
        delta
    }

    /// The reusable buffer for [`dispatch`](Self::dispatch)'s wakers (give it back empty).
    pub(crate) fn wake_buf(&self) -> &RefCell<Vec<Waker>> {
        &self.wake_buf
    }

    /// Updates `waiting` for a source that went from `was` to `now` and returns the change.
    fn count_change(&self, was: bool, now: bool) -> isize {
        let delta = isize::from(now) - isize::from(was);
        let n = self.waiting.get() as isize + delta;
        debug_assert!(n >= 0, "waiting-source count went negative");
        self.waiting.set(n as usize);
        delta
    }
}
