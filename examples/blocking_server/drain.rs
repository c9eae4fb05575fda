//! Stopping a loop's server gracefully: requests already being read, computed or written are
//! finished (their responses say `Connection: close`), connections waiting between requests are
//! closed, and the loop waits, at most [`DRAIN`], for its connections to end.
//!
//! As Go's `http.Server.Shutdown` (close the listeners, close idle connections, wait for the
//! active ones) and Node.js's `server.close()` with `closeIdleConnections()`. One refinement: a
//! connection that is between requests when the stop begins but whose next request is already in
//! its socket (written before the stop) serves that request instead of being reset.
//!
//! A search that blocks its loop (sync mode) cannot be interrupted by the deadline: the loop
//! notices it only when the search returns; a second signal exits at once.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use executor::net::TcpStream;
use executor::sync::Notify;

use super::hangup::{Peeked, peek};

/// The longest a stopping loop waits for its connections; those still open then are dropped.
pub const DRAIN: Duration = Duration::from_secs(10);

/// A loop's stop state and its count of open connections.
#[derive(Debug, Default)]
pub struct Drain {
    /// Set once, when the stop begins.
    stopping: Cell<bool>,
    /// Woken when the stop begins.
    stop: Notify,
    /// Connections whose task has not ended ([`Open`] guards alive).
    open: Cell<usize>,
    /// Woken when `open` drops to zero.
    closed: Notify,
}

/// Counts one open connection until dropped.
#[derive(Debug)]
pub struct Open(Rc<Drain>);

impl Drop for Open {
    fn drop(&mut self) {
        let n = self.0.open.get() - 1;
        self.0.open.set(n);
        if n == 0 {
            self.0.closed.notify_waiters();
        }
    }
}

impl Drain {
    /// Counts a connection as open until the guard is dropped.
    pub fn open(self: &Rc<Self>) -> Open {
        self.open.set(self.open.get() + 1);
        Open(self.clone())
    }

    /// Whether the stop has begun: a response written now closes its connection.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Completes once the stop has begun.
    pub async fn stopped(&self) {
        // Created before the check: `notify_waiters` reaches it even if not yet polled.
        let notified = self.stop.notified();
        if !self.stopping.get() {
            notified.await;
        }
    }

    /// Begins the stop and waits until every connection has ended, or [`DRAIN`]: the number of
    /// connections still open then.
    pub async fn stop(&self) -> usize {
        self.stopping.set(true);
        self.stop.notify_waiters();
        let all_closed = async {
            loop {
                let closed = self.closed.notified();
                if self.open.get() == 0 {
                    return;
                }
                closed.await;
            }
        };
        let _ = executor::time::timeout(DRAIN, all_closed).await;
        self.open.get()
    }

    /// `read`'s output, unless the stop begins first while nothing of the next request has
    /// arrived (`None`: close the connection). `read` is polled first, so a request that is
    /// already in the socket is read rather than refused.
    pub async fn unless_stopped<T>(
        &self,
        read: impl Future<Output = T>,
        conn: &TcpStream,
    ) -> Option<T> {
        let (read, stopped) = (std::pin::pin!(read), std::pin::pin!(self.stopped()));
        match futures::future::select(read, stopped).await {
            futures::future::Either::Left((out, _)) => Some(out),
            futures::future::Either::Right(((), read)) => match peek(conn) {
                // Bytes came between the read's poll and now: the read completes at once.
                Peeked::Input => Some(read.await),
                Peeked::End | Peeked::Nothing => None,
            },
        }
    }
}
