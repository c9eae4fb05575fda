//! [`TcpListener`]: accepts connections in the poll phase.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};

use super::addr::{Target, resolve_off_loop, system_resolve};
use super::registration::Registration;
use super::stream::TcpStream;
use crate::io::reactor::Direction;

/// A TCP socket server, listening for connections; the loop's counterpart of
/// [`std::net::TcpListener`] (Node.js's `net.Server`).
///
/// While a task waits in [`accept`](Self::accept), the listener keeps the loop alive.
///
/// ```
/// use executor::net::{TcpListener, TcpStream};
/// executor::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let client = executor::spawn(async move { TcpStream::connect(addr).await });
///     let (_conn, peer) = listener.accept().await?;
///     assert_eq!(peer, client.await.unwrap()?.local_addr()?);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpListener {
    /// Dropped first: deregisters before `socket` closes the descriptor.
    registration: Registration,
    /// The non-blocking socket.
    socket: std::net::TcpListener,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("socket", &self.socket)
            .field("registration", &self.registration)
            .finish()
    }
}

impl TcpListener {
    /// Binds a listener to `addr` (port 0: the OS picks one; see [`local_addr`](Self::local_addr))
    /// and registers it with the running loop.
    ///
    /// Host names are resolved by the system's (blocking) resolver **on the loop's thread**,
    /// which stops the loop for as long as DNS takes: pass an IP address (a `SocketAddr`,
    /// `"127.0.0.1:0"`), or use [`bind_async`](Self::bind_async) for a host name.
    ///
    /// # Panics
    /// If no loop is running on this thread.
    #[track_caller]
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let socket = std::net::TcpListener::bind(addr)?;
        TcpListener::from_std(socket)
    }

    /// Binds a listener to `addr` as [`bind`](Self::bind) does, but a host name is resolved on
    /// the offload pool while the loop goes on with its timers and I/O, as
    /// [`TcpStream::connect`] does (libuv's `uv_getaddrinfo` is a thread-pool job too). An IP
    /// address is used as is, with no thread involved. Each resolved address is tried in turn
    /// until one binds (as `std`'s `bind` does).
    ///
    /// # Errors
    /// The lookup's error, or the last address's bind error.
    ///
    /// # Panics
    /// If no loop is running on this thread.
    ///
    /// ```
    /// executor::block_on(async {
    ///     let listener = executor::net::TcpListener::bind_async("localhost:0").await?;
    ///     assert!(listener.local_addr()?.ip().is_loopback());
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn bind_async(addr: impl super::ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr.target(), system_resolve).await
    }

    /// [`bind_async`](Self::bind_async) with the resolver given (tests pass a slow one).
    async fn bind_with(
        target: Target,
        resolve: impl FnOnce(Target) -> io::Result<Vec<SocketAddr>> + Send + 'static,
    ) -> io::Result<TcpListener> {
        let addrs = resolve_off_loop(target, resolve).await?;
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            ));
        }
        let socket = std::net::TcpListener::bind(&addrs[..])?;
        TcpListener::from_std(socket)
    }

    /// Registers a bound `std` listener with the running loop (and makes it non-blocking).
    ///
    /// # Panics
    /// If no loop is running on this thread.
    ///
    /// ```
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = std_listener.local_addr().unwrap();
    /// executor::block_on(async move {
    ///     let listener = executor::net::TcpListener::from_std(std_listener).unwrap();
    ///     assert_eq!(listener.local_addr().unwrap(), addr);
    /// });
    /// ```
    #[track_caller]
    pub fn from_std(socket: std::net::TcpListener) -> io::Result<TcpListener> {
        socket.set_nonblocking(true)?;
        // SAFETY: `socket` is stored beside the registration, declared after it, so it is closed
        // only after the registration has been dropped.
        let registration = unsafe { Registration::new(&socket, "net::TcpListener::from_std")? };
        Ok(TcpListener {
            registration,
            socket,
        })
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// executor::block_on(async {
    ///     let l = executor::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     assert_ne!(l.local_addr().unwrap().port(), 0);
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for a connection and returns it, registered with this listener's loop, with the
    /// peer's address. An error is about that one attempt: the listener goes on working.
    ///
    /// ```
    /// use executor::net::{TcpListener, TcpStream};
    /// executor::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     executor::spawn(async move { TcpStream::connect(addr).await.unwrap() });
    ///     let (conn, _peer) = listener.accept().await.unwrap();
    ///     assert_eq!(conn.local_addr().unwrap(), addr);
    /// });
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, peer) = poll_fn(|cx| self.poll_accept(cx)).await?;
        Ok((TcpStream::from_std(socket)?, peer))
    }

    /// Polls for a connection: `Pending` (the task is woken in the poll phase when one arrives)
    /// or the accepted `std` socket, not yet registered.
    pub fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(std::net::TcpStream, SocketAddr)>> {
        self.registration
            .poll_io_unbudgeted(Direction::Read, cx, || self.socket.accept())
    }
}

#[cfg(test)]
mod tests {
    use super::super::addr::beside_a_ticking_interval;
    use super::super::addr::sealed::Sealed;
    use super::*;

    /// The resolver blocks until the loop has run three ticks of a 1 ms interval, which it can
    /// only do if the lookup is not on the loop's thread (there, it would wait out its 10 s
    /// bound and the test would fail); then the listener is bound to what it returned.
    #[test]
    fn bind_async_resolves_off_the_loop_and_a_slow_lookup_does_not_stop_it() {
        let (bound, ticks) = crate::block_on(beside_a_ticking_interval(|resolve| async {
            let listener = TcpListener::bind_with(("localhost", 0).target(), resolve).await;
            listener.and_then(|l| l.local_addr())
        }));
        let addr = bound.expect("binds to localhost");
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        assert!(ticks >= 3, "{ticks} ticks during the lookup");
    }

    #[test]
    fn bind_async_reports_a_lookup_with_no_address_and_binds_ip_addresses_directly() {
        crate::block_on(async {
            let err = TcpListener::bind_with(("nowhere", 0).target(), |_| Ok(Vec::new()))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let l = TcpListener::bind_async("127.0.0.1:0").await.unwrap();
            assert!(l.local_addr().unwrap().ip().is_loopback());
            let err = TcpListener::bind_with("127.0.0.1:0".target(), |_| {
                unreachable!("an IP address is not looked up")
            })
            .await;
            assert!(err.is_ok());
        });
    }
}
