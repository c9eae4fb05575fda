//! Ctrl-C and SIGTERM as a future the server can await, so that it stops between requests
//! (printing its count and writing its trace) instead of dying wherever the signal lands.
//!
//! The usual self-pipe trick is not needed: SIGINT and SIGTERM are blocked in every thread and
//! one thread takes them with `sigwait`, then completes a oneshot channel, whose waker wakes
//! the sleeping loop like any cross-thread wake. A second signal exits at once (status 130),
//! for when the loop is blocked and cannot notice the first.

use std::io;
use std::mem::MaybeUninit;
use std::thread;

use futures::channel::oneshot;

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it spawns later) and
/// starts a thread that waits for them. The receiver completes on the first one.
///
/// Call it before any other thread is spawned: a thread started earlier keeps the default
/// disposition and would let the signal kill the process.
pub fn on_sigint_or_sigterm() -> io::Result<oneshot::Receiver<()>> {
    let set = signal_set()?;
    // SAFETY: `set` is an initialised signal set; the old mask is not wanted (null).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    let (tx, rx) = oneshot::channel();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut tx = Some(tx);
            loop {
                let mut sig = 0;
                // SAFETY: `set` is initialised and `sig` is a valid place for the result.
                let rc = unsafe { libc::sigwait(&set, &mut sig) };
                if rc != 0 {
                    eprintln!(
                        "blocking_server: sigwait failed: {}",
                        io::Error::from_raw_os_error(rc)
                    );
                    return;
                }
                match tx.take() {
                    Some(tx) => {
                        eprintln!("blocking_server: signal {sig}, stopping (again to exit now)");
                        let _ = tx.send(());
                    }
                    None => std::process::exit(130),
                }
            }
        })?;
    Ok(rx)
}

/// The set {SIGINT, SIGTERM}.
fn signal_set() -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigemptyset` initialises the set it is given; `sigaddset` then only needs an
    // initialised set and valid signal numbers.
    unsafe {
        if libc::sigemptyset(set.as_mut_ptr()) != 0
            || libc::sigaddset(set.as_mut_ptr(), libc::SIGINT) != 0
            || libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(set.assume_init())
    }
}
