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

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use polling::{Events, Poller};

/// The poller and its event buffer.
pub(crate) struct Reactor {
    /// Shared with the loop's `Remote`, which calls `notify` on it.
    pub(crate) poller: Arc<Poller>,
    /// Reused between waits.
    events: RefCell<Events>,
    /// Number of registered I/O sources (0 until I/O is used).
    pub(crate) sources: Cell<usize>,
    /// Number of waits that actually blocked or polled the OS (for tests and stats).
    pub(crate) waits: Cell<u64>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("sources", &self.sources.get())
            .field("waits", &self.waits.get())
            .finish()
    }
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Reactor {
            poller: Arc::new(Poller::new()?),
            events: RefCell::new(Events::new()),
            sources: Cell::new(0),
            waits: Cell::new(0),
        })
    }

    /// Whether a zero-timeout poll can be skipped (nothing but notifications could be reported).
    pub(crate) fn can_skip_zero_wait(&self) -> bool {
        self.sources.get() == 0
    }

    /// Waits for readiness or a notification, at most `timeout` (`None`: until woken).
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        self.waits.set(self.waits.get() + 1);
        let mut events = self.events.borrow_mut();
        events.clear();
        // EINTR and friends: the loop simply goes round again.
        let _ = self.poller.wait(&mut events, timeout);
    }
}
