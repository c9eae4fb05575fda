//! Helpers shared by the monitor tests.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` on its own thread (where it may build its own loop) and fails the test if it has not
/// finished within `limit`, instead of hanging the test run.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            t.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test body did not finish within {limit:?}"),
        // The body panicked: re-raise its panic here.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(t.join().expect_err("no value and no panic"))
        }
    }
}

/// Holds the current thread for `d` (the injected blocking work; not a wait for a result).
pub fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}
