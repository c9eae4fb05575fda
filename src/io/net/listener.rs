//! [`TcpListener`]: accepts connections in the poll phase.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};

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
    /// Host names are resolved by the system's (blocking) resolver; pass an IP address to stay
    /// off it.
    ///
    /// # Panics
    /// If no loop is running on this thread.
    #[track_caller]
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let socket = std::net::TcpListener::bind(addr)?;
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
