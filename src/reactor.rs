//! The poll phase's wait: a `polling::Poller` (epoll on Linux).
//!
//! The poller is the loop's only place to sleep. It is woken by the next timer's due time (the
//! wait's timeout), by [`Remote::notify`](crate::waker::Remote::notify) when another thread wakes
//! a task, and (as I/O sources are registered) by readiness.
//!
//! When the poll phase must not sleep (immediates or yielded tasks are waiting) and no I/O source
//! is registered, there is nothing the poller could report that the loop does not already see
//! (remote wakes are counted in an atomic), so the system call is skipped: a loop iteration of a
//! CPU-bound job that yields costs tens of nanoseconds, not a syscall.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// The OS poller: epoll (or kqueue, IOCP) through the `polling` crate.
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

    fn wait(&self, timeout: Option<Duration>) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.clear();
        // EINTR and friends: the loop simply goes round again.
        let _ = self.poller.wait(&mut events, timeout);
    }
}

/// Under Miri (which cannot run epoll's timerfd) the poller is a condition variable: the same
/// notify-or-timeout contract without I/O, so the loop's unsafe code can still be checked.
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

    fn wait(&self, timeout: Option<Duration>) {
        let mut n = self.notified.lock().unwrap();
        if !*n {
            n = match timeout {
                Some(t) => self.cv.wait_timeout(n, t).unwrap().0,
                None => self.cv.wait(n).unwrap(),
            };
        }
        *n = false;
    }
}

impl fmt::Debug for OsPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OsPoller")
    }
}

/// The poller and what the loop knows about its sources.
pub(crate) struct Reactor {
    /// Shared with the loop's `Remote`, which calls `notify` on it.
    pub(crate) poller: Arc<OsPoller>,
    /// Number of registered I/O sources (0 until I/O is used).
    pub(crate) sources: Cell<usize>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("sources", &self.sources.get())
            .finish()
    }
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Reactor {
            poller: Arc::new(OsPoller::new()?),
            sources: Cell::new(0),
        })
    }

    /// Whether a zero-timeout poll can be skipped (nothing but notifications could be reported).
    pub(crate) fn can_skip_zero_wait(&self) -> bool {
        self.sources.get() == 0
    }

    /// Waits for readiness or a notification, at most `timeout` (`None`: until woken).
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        self.poller.wait(timeout);
    }
}
