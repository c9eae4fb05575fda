//! The OS poller the loop sleeps in: on Linux epoll itself (through `libc`), elsewhere the
//! `polling` crate (kqueue and friends), or under Miri a condition variable with the same
//! notify-or-timeout contract.
//!
//! It is woken by the next timer's due time (the wait's timeout), by
//! [`Inbox::notify`](crate::task::inbox::Inbox::notify) when another thread wakes a task, and
//! by readiness of the I/O sources registered with it (`reactor.rs`).
//!
//! Sources are registered once, **edge-triggered, for both directions** (mio's and so tokio's
//! way, `mio::sys::unix::selector::epoll`): an event says a direction *became* ready, and the
//! reactor keeps the readiness until an operation finds it gone. So no system call re-arms a
//! descriptor after an event, as oneshot mode needs.
//!
//! # Why epoll by hand on Linux
//! `polling`'s epoll wait costs five system calls per sleep: `timerfd_settime` and an
//! `epoll_ctl` for its timeout timer, the `epoll_pwait`, then a `read` of its eventfd and an
//! `epoll_ctl` re-arming it (oneshot), notified or not. With one request per sleep (one
//! keep-alive client), that was most of the loop's system calls per request. Here a sleep is
//! one `epoll_pwait2` (the timeout as a `timespec`, so a timer due in 300 µs is not rounded to a
//! millisecond; where the kernel lacks it, before Linux 5.11, `epoll_wait` with the timeout
//! rounded *up* to whole milliseconds, as mio does), and the eventfd is registered
//! edge-triggered: a notification is one `write`, never a `read` (mio's `Waker`).

use std::fmt;
// The epoll module has its own imports.
#[cfg(not(all(target_os = "linux", not(miri))))]
use std::{
    io,
    os::fd::{BorrowedFd, RawFd},
    time::Duration,
};

/// One I/O event reported by a wait.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    /// The source's slab key.
    pub(crate) key: usize,
    /// Readable, or hung up, or in error.
    pub(crate) readable: bool,
    /// Writable, or hung up, or in error.
    pub(crate) writable: bool,
    /// The read side is closed (peer's FIN, hang-up, error): reads will not block again.
    pub(crate) read_closed: bool,
    /// The write side is closed (hang-up, error): writes will not block again.
    pub(crate) write_closed: bool,
}

#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) use self::epoll::OsPoller;

#[cfg(all(target_os = "linux", not(miri)))]
mod epoll {
    use super::Ready;
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// The eventfd's key in epoll's events (the slab's keys are far below it).
    const NOTIFY_KEY: u64 = u64::MAX;

    /// Events fetched per wait at most (more stay in the kernel's ready list for the next one).
    const MAX_EVENTS: usize = 1024;

    /// Turns a `-1` return into the error `errno` holds.
    fn check(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    /// epoll and the eventfd that interrupts its waits.
    pub(crate) struct OsPoller {
        epoll: OwnedFd,
        /// Registered edge-triggered under [`NOTIFY_KEY`]: each `write` is an edge.
        notifier: OwnedFd,
        /// Reused between waits (one wait at a time: the loop's thread).
        events: Mutex<Vec<libc::epoll_event>>,
        /// Set when `epoll_pwait2` reported `ENOSYS` (a kernel before 5.11).
        no_pwait2: AtomicBool,
    }

    impl OsPoller {
        pub(crate) fn new() -> io::Result<Self> {
            // SAFETY: plain system calls; each returned descriptor is checked and then owned
            // by exactly one `OwnedFd`.
            let (epoll, notifier) = unsafe {
                let ep = OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?);
                let efd = check(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
                (ep, OwnedFd::from_raw_fd(efd))
            };
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: NOTIFY_KEY,
            };
            // SAFETY: both descriptors are open (owned above); `ev` is a valid event.
            check(unsafe {
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    notifier.as_raw_fd(),
                    &mut ev,
                )
            })?;
            Ok(OsPoller {
                epoll,
                notifier,
                events: Mutex::new(Vec::with_capacity(MAX_EVENTS)),
                no_pwait2: AtomicBool::new(false),
            })
        }

        /// Interrupts a wait in progress, or makes the next one return at once.
        pub(crate) fn notify(&self) -> io::Result<()> {
            let one: u64 = 1;
            loop {
                // SAFETY: writes the 8 bytes of `one` to the open eventfd.
                let r = unsafe {
                    libc::write(
                        self.notifier.as_raw_fd(),
                        (&one as *const u64).cast(),
                        std::mem::size_of::<u64>(),
                    )
                };
                if r >= 0 {
                    return Ok(());
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // The counter is at its maximum (2^64 - 2 unread notifications): read it
                    // back to zero and write again, as mio's `Waker::wake` does.
                    io::ErrorKind::WouldBlock => {
                        let mut buf = 0u64;
                        // SAFETY: reads at most 8 bytes into `buf`.
                        unsafe {
                            libc::read(
                                self.notifier.as_raw_fd(),
                                (&mut buf as *mut u64).cast(),
                                std::mem::size_of::<u64>(),
                            )
                        };
                    }
                    _ => return Err(e),
                }
            }
        }

        /// Waits, then appends the I/O events reported (notifications are not reported).
        pub(crate) fn wait(&self, timeout: Option<Duration>, out: &mut Vec<Ready>) {
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            events.clear();
            let n = self.wait_raw(timeout, &mut events);
            // EINTR and friends: the loop simply goes round again.
            let Ok(n) = n else { return };
            // SAFETY: the kernel initialised the first `n` entries (`n <= capacity`).
            unsafe { events.set_len(n) };
            out.extend(events.iter().filter(|e| e.u64 != NOTIFY_KEY).map(|e| {
                let f = e.events as libc::c_int;
                let has = |m: libc::c_int| f & m != 0;
                let hup_or_err = has(libc::EPOLLHUP | libc::EPOLLERR);
                Ready {
                    key: e.u64 as usize,
                    readable: hup_or_err || has(libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP),
                    writable: hup_or_err || has(libc::EPOLLOUT),
                    read_closed: hup_or_err || has(libc::EPOLLRDHUP),
                    write_closed: hup_or_err,
                }
            }));
        }

        /// One `epoll_pwait2` (or `epoll_wait`): the number of events written to `events`.
        fn wait_raw(
            &self,
            timeout: Option<Duration>,
            events: &mut Vec<libc::epoll_event>,
        ) -> io::Result<usize> {
            let ep = self.epoll.as_raw_fd();
            let buf = events.as_mut_ptr();
            let cap = events.capacity() as libc::c_int;
            if let Some(t) = timeout.filter(|t| !t.is_zero()) {
                if !self.no_pwait2.load(Ordering::Relaxed) {
                    let ts = libc::timespec {
                        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                        tv_nsec: t.subsec_nanos() as _,
                    };
                    // SAFETY: `buf` has room for `cap` events; `ts` outlives the call; no
                    // signal mask (null), so the mask size is not read.
                    let r = unsafe {
                        libc::syscall(
                            libc::SYS_epoll_pwait2,
                            ep,
                            buf,
                            cap,
                            &ts as *const libc::timespec,
                            std::ptr::null::<libc::sigset_t>(),
                            0usize,
                        )
                    };
                    if r >= 0 {
                        return Ok(r as usize);
                    }
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ENOSYS) {
                        return Err(e);
                    }
                    self.no_pwait2.store(true, Ordering::Relaxed);
                }
            }
            let ms = match timeout {
                None => -1,
                // Rounded up: a timer is never found not yet due after the wait.
                Some(t) => t
                    .checked_add(Duration::from_nanos(999_999))
                    .unwrap_or(t)
                    .as_millis()
                    .min(libc::c_int::MAX as u128) as libc::c_int,
            };
            // SAFETY: `buf` has room for `cap` events.
            let n = check(unsafe { libc::epoll_wait(ep, buf, cap, ms) })?;
            Ok(n as usize)
        }

        /// Adds `fd` under `key`, edge-triggered, for both directions.
        ///
        /// # Safety
        /// `fd` must be [`delete`](Self::delete)d before it is closed.
        pub(crate) unsafe fn add(&self, fd: RawFd, key: usize) -> io::Result<()> {
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN
                    | libc::EPOLLOUT
                    | libc::EPOLLRDHUP
                    | libc::EPOLLPRI
                    | libc::EPOLLET) as u32,
                u64: key as u64,
            };
            // SAFETY: our caller keeps `fd` open until it deletes it; `ev` is a valid event.
            check(unsafe {
                libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev)
            })
            .map(drop)
        }

        /// Removes `fd` from the poller.
        pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
            // SAFETY: `fd` is open (borrowed); a null event is allowed for `EPOLL_CTL_DEL`
            // since Linux 2.6.9.
            check(unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            })
            .map(drop)
        }
    }
}

/// Off Linux: the `polling` crate, its sources edge-triggered too.
#[cfg(all(not(target_os = "linux"), not(miri)))]
pub(crate) struct OsPoller {
    poller: polling::Poller,
    /// Reused between waits.
    events: std::sync::Mutex<polling::Events>,
}

#[cfg(all(not(target_os = "linux"), not(miri)))]
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
        // `polling` folds hang-up and error into both directions and does not say which it
        // was: a readable event may be the end of the stream, so reads are never skipped.
        out.extend(events.iter().map(|e| Ready {
            key: e.key,
            readable: e.readable,
            writable: e.writable,
            read_closed: e.readable,
            write_closed: e.writable,
        }));
    }

    /// Adds `fd` under `key`, edge-triggered, for both directions.
    ///
    /// # Safety
    /// `fd` must be [`delete`](Self::delete)d before it is closed.
    pub(crate) unsafe fn add(&self, fd: RawFd, key: usize) -> io::Result<()> {
        // SAFETY: our caller promises to delete `fd` before closing it.
        unsafe {
            self.poller
                .add_with_mode(fd, polling::Event::all(key), polling::PollMode::Edge)
        }
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
