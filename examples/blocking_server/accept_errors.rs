//! What the accept loop does after a failed `accept`: how long to pause, and whether to log.
//!
//! At the descriptor limit (`EMFILE`, `ENFILE`) every accept fails at once while the listener
//! stays readable, so a loop that retries immediately (or every 10 ms, as this server did) spins
//! and prints ~100 lines a second. libuv answers `EMFILE` with its reserve-descriptor trick
//! (`uv__emfile_trick` in `src/unix/stream.c`: close a spare descriptor, accept and at once close
//! the pending connections, reopen the spare), which rejects the waiting clients. This server
//! instead pauses accepting for [`RESOURCE_PAUSE`]: pending clients wait in the listen backlog
//! and are served as soon as descriptors come back (the request deadlines free them), and the
//! loop sleeps meanwhile. Errors are logged at most once per [`LOG_EVERY`], with the count of
//! those not printed.

use std::future::poll_fn;
use std::io;
use std::time::{Duration, Instant};

use executor::net::TcpListener;

/// How long accepting pauses after running out of descriptors or memory.
pub const RESOURCE_PAUSE: Duration = Duration::from_millis(100);
/// How long accepting pauses after another error (e.g. a connection reset before it was
/// accepted): these are about one connection, and the next accept usually works.
pub const OTHER_PAUSE: Duration = Duration::from_millis(1);
/// The least time between two logged accept errors.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

/// The accept loop's error state.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    /// When an error was last logged.
    last_log: Option<Instant>,
    /// Errors since then, not logged.
    unlogged: u64,
}

/// Whether `e` means the process or system is out of descriptors or memory.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl AcceptErrors {
    /// Records a failed accept at `now`: how long to pause before the next one, and the line to
    /// log, if one is due.
    pub fn on_error(&mut self, e: &io::Error, now: Instant) -> (Duration, Option<String>) {
        let pause = if is_resource_exhaustion(e) {
            RESOURCE_PAUSE
        } else {
            OTHER_PAUSE
        };
        let due = self
            .last_log
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY);
        if !due {
            self.unlogged += 1;
            return (pause, None);
        }
        let line = match (self.last_log, self.unlogged) {
            (Some(t), n) if n > 0 => format!(
                "accept: {e} ({} more since the last message {:.1} s ago; pausing accepts for \
                 {} ms after each)",
                n,
                now.saturating_duration_since(t).as_secs_f64(),
                pause.as_millis()
            ),
            _ => format!("accept: {e} (pausing accepts for {} ms)", pause.as_millis()),
        };
        self.last_log = Some(now);
        self.unlogged = 0;
        (pause, Some(line))
    }
}

/// The next connection from `listener`, not yet registered with any loop (so it can be handed
/// to another loop's thread). Failed accepts pause and log as [`AcceptErrors::on_error`] says.
pub async fn accept(listener: &TcpListener, errors: &mut AcceptErrors) -> std::net::TcpStream {
    loop {
        match poll_fn(|cx| listener.poll_accept(cx)).await {
            Ok((socket, _)) => return socket,
            Err(e) => {
                // Out of descriptors and the like: the listener itself is fine; pause rather
                // than spin on the same error, and do not flood the log.
                let (pause, line) = errors.on_error(&e, Instant::now());
                if let Some(line) = line {
                    eprintln!("blocking_server: {line}");
                }
                executor::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_errors_logs_once_a_second_with_a_count() {
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let t0 = Instant::now();
        let mut lines = Vec::new();
        // 3 s of an error every 10 ms.
        for i in 0..300 {
            let (pause, line) = errors.on_error(&emfile, t0 + Duration::from_millis(10 * i));
            assert_eq!(pause, RESOURCE_PAUSE);
            lines.extend(line);
        }
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].contains("pausing accepts for 100 ms"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("(99 more since the last message 1.0 s ago"),
            "{}",
            lines[1]
        );
        let reset = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(errors.on_error(&reset, t0).0, OTHER_PAUSE);
    }
}
