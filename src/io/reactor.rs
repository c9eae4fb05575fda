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
//! - A source is added to the poller once, with no interest, when its socket is wrapped
//!   ([`Reactor::register`]), under its key in the slab of sources; it is deleted from the poller
//!   ([`Reactor::deregister`]) before its descriptor is closed (the `net` types own both and
//!   drop the registration first).
//! - The poller is in oneshot mode (polling's default): an event disarms the whole descriptor.
//!   The kernel's interest is kept equal to the waiters: a reader waker ⇔ readable interest, a
//!   writer waker ⇔ writable interest. [`Reactor::wait_for`] arms with `modify` when it stores the
//!   first waker of a direction; [`Reactor::dispatch`] takes the wakers an event satisfied and
//!   re-arms for those left. No user code runs between the wait and the dispatch, so wherever user
//!   code can look, the equality holds.
//! - `modify` makes epoll check readiness again, so a socket that became ready between the failed
//!   read and the arming still reports an event: no wake is lost.
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
    /// Woken when the source is readable. `Some` ⇔ the kernel has readable interest.
    reader: Option<Waker>,
    /// Woken when the source is writable. `Some` ⇔ the kernel has writable interest.
    writer: Option<Waker>,
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
    /// Who waits for readiness (see the module docs: equal to the kernel's interest). Never
    /// borrowed while a waker is cloned, woken or dropped.
    waiters: RefCell<Waiters>,
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
    /// Number of sources with at least one waiter (= armed in the kernel).
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

    /// Whether a zero-timeout poll can be skipped: no source is armed, so only notifications
    /// could be reported, and the remote queue's length already tells those.
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

    /// Registers `fd`, with no interest yet.
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
        });
        entry.insert(source.clone());
        Ok(source)
    }

    /// Makes `waker` the waiter of `source` for `dir`, arming the kernel's interest if needed.
    /// Returns the change in the number of sources with a waiter (for the keep-alive count).
    pub(crate) fn wait_for(
        &self,
        source: &Source,
        dir: Direction,
        waker: &Waker,
    ) -> io::Result<isize> {
        {
            let w = source.waiters.borrow();
            let slot = match dir {
                Direction::Read => &w.reader,
                Direction::Write => &w.writer,
            };
            if slot.as_ref().is_some_and(|old| old.will_wake(waker)) {
                return Ok(0);
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
        if slot.is_some() {
            // Already armed in this direction: only the waiter changes.
            let old = slot.replace(waker);
            drop(w);
            drop(old);
            return Ok(0);
        }
        *slot = Some(waker);
        let (r, wr) = (w.reader.is_some(), w.writer.is_some());
        if let Err(e) = self.poller.modify(source.fd(), source.key, r, wr) {
            let mine = match dir {
                Direction::Read => w.reader.take(),
                Direction::Write => w.writer.take(),
            };
            drop(w);
            drop(mine);
            return Err(e);
        }
        Ok(self.count_change(was_waiting, true))
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

    /// Takes the wakers that the last wait's events satisfied into `out`, and re-arms each
    /// source for the waiters left. Returns the change in the number of sources with a waiter.
    pub(crate) fn dispatch(&self, out: &mut Vec<Waker>) -> isize {
        let mut ready = std::mem::take(&mut *self.ready.borrow_mut());
        let mut delta = 0;
        for ev in ready.drain(..) {
            let Some(source) = self.sources.borrow().get(ev.key).cloned() else {
                continue;
            };
            let mut w = source.waiters.borrow_mut();
            let was_waiting = w.any();
            if ev.readable {
                out.extend(w.reader.take());
            }
            if ev.writable {
                out.extend(w.writer.take());
            }
            // Oneshot: the event disarmed the descriptor; re-arm for the waiters it did not
            // satisfy. If that fails, wake them too: their next attempt reports the error.
            if w.any()
                && self
                    .poller
                    .modify(
                        source.fd(),
                        source.key,
                        w.reader.is_some(),
                        w.writer.is_some(),
                    )
                    .is_err()
            {
                out.extend(w.reader.take());
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
