//! Helpers shared by the integration tests.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `body` on its own thread and fails the test if it does not finish within `limit`
/// (a hang becomes a failure instead of a stuck test run). A panic in `body` fails the test
/// with the original payload.
pub fn within<R: Send + 'static>(limit: Duration, body: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let runner = thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            let _ = tx.send(body());
        })
        .expect("spawn the test body");
    match rx.recv_timeout(limit) {
        Ok(out) => {
            runner.join().expect("test body thread");
            out
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the body returned without sending"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("test body did not finish within {limit:?} (hang or leak)")
        }
    }
}

/// The generous bound given to each test body (the machine is small and shared).
pub const LIMIT: Duration = Duration::from_secs(20);
