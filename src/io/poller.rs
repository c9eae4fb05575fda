//! The OS poller the loop sleeps in: epoll (or kqueue) through the `polling` crate, or under
//! Miri a condition variable with the same notify-or-timeout contract.
//!
//! It is woken by the next timer's due time (the wait's timeout), by
//! [`Inbox::notify`](crate::task::inbox::Inbox::notify) when another thread wakes a task, and
//! by readiness of the I/O sources registered with it (`reactor.rs`).

use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

/// One I/O event reported by a wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    /// The source's slab key.
    pub(crate) key: usize,
    /// Readable (or hung up, or in error).
    pub(crate) readable: bool,
    /// Writable (or hung up, or in error).
    pub(crate) writable: bool,
}

/// The OS poller: epoll (or kqueue) through the `polling` crate.
#[cfg(not(miri))]
pub(crate) struct OsPoller {
    poller: polling::Poller,
    /// Reused between waits.
    events: std::sync::Mutex<polling::Events>,
}

#[cfg(not(miri))]
impl OsPoller {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(OsPoller {
            poller: polling::Poller::new()?,
            events: std::sync::Mutex::new(polling::Events::new()),
        })
    }

    /// Interrupts a wait in progress, or makes the next one return at once.
    pub(crate) fn notify(&self) -> io::Result<()> {
        self.poller.notify()
    }

    /// Waits, then appends the I/O events reported (notifications are not reported).
    pub(crate) fn wait(&self, timeout: Option<Duration>, out: &mut Vec<Ready>) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.clear();
        // EINTR and friends: the loop simply goes round again.
        let _ = self.poller.wait(&mut events, timeout);
        out.extend(events.iter().map(|e| Ready {
            key: e.key,
            readable: e.readable,
            writable: e.writable,
        }));
    }

    /// Adds `fd` with no interest under `key`.
    ///
    /// # Safety
    /// `fd` must be [`delete`](Self::delete)d before it is closed.
    pub(crate) unsafe fn add(&self, fd: RawFd, key: usize) -> io::Result<()> {
        // SAFETY: our caller promises to delete `fd` before closing it.
        unsafe { self.poller.add(fd, polling::Event::none(key)) }
    }

    /// Sets the interest of a registered `fd` (and re-arms it: oneshot mode).
    pub(crate) fn modify(
        &self,
        fd: BorrowedFd<'_>,
        key: usize,
        read: bool,
        write: bool,
    ) -> io::Result<()> {
        self.poller
            .modify(fd, polling::Event::new(key, read, write))
    }

    /// Removes `fd` from the poller.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.poller.delete(fd)
    }
}

/// Under Miri (which cannot run epoll's timerfd) the poller is a condition variable: the same
/// notify-or-timeout contract without I/O, so the loop's unsafe code can still be checked. (The
/// `net` module does not exist under Miri, so no source is ever registered.)
#[cfg(miri)]
pub(crate) struct OsPoller {
    notified: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

#[cfg(miri)]
impl OsPoller {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(OsPoller {
            notified: std::sync::Mutex::new(false),
            cv: std::sync::Condvar::new(),
        })
    }

    /// Interrupts a wait in progress, or makes the next one return at once.
    pub(crate) fn notify(&self) -> io::Result<()> {
        *self.notified.lock().unwrap() = true;
        self.cv.notify_one();
        Ok(())
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>, _out: &mut Vec<Ready>) {
        let mut n = self.notified.lock().unwrap();
        if !*n {
            n = match timeout {
                Some(t) => self.cv.wait_timeout(n, t).unwrap().0,
                None => self.cv.wait(n).unwrap(),
            };
        }
        *n = false;
    }

    /// No I/O under Miri.
    ///
    /// # Safety
    /// None needed (nothing is registered); kept `unsafe` to match the real poller.
    pub(crate) unsafe fn add(&self, _fd: RawFd, _key: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn modify(
        &self,
        _fd: BorrowedFd<'_>,
        _key: usize,
        _r: bool,
        _w: bool,
    ) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// No I/O under Miri.
    pub(crate) fn delete(&self, _fd: BorrowedFd<'_>) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl fmt::Debug for OsPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OsPoller")
    }
}
