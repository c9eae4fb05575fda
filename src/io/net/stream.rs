//! [`TcpStream`]: a connection read and written through the poll phase.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use socket2::{Domain, Protocol, Socket, Type};

use super::addr::{resolve_off_loop, system_resolve};
use super::registration::Registration;
use crate::io::reactor::Direction;

/// A TCP connection; the loop's counterpart of [`std::net::TcpStream`] (Node.js's
/// `net.Socket`). It implements `futures`' [`AsyncRead`] and [`AsyncWrite`], and so does
/// `&TcpStream`, so one task can read while another writes.
///
/// Dropping it deregisters it from the poller and closes the connection.
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use executor::net::{TcpListener, TcpStream};
///
/// executor::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     executor::spawn(async move {
///         let (mut conn, _) = listener.accept().await.unwrap();
///         conn.write_all(b"hi").await.unwrap();
///     }); // the connection is dropped (closed) after writing
///     let mut client = TcpStream::connect(addr).await.unwrap();
///     let mut got = String::new();
///     client.read_to_string(&mut got).await.unwrap();
///     assert_eq!(got, "hi");
/// });
/// ```
pub struct TcpStream {
    /// Dropped first: deregisters before `socket` closes the descriptor.
    registration: Registration,
    /// The non-blocking socket.
    socket: std::net::TcpStream,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("socket", &self.socket)
            .field("registration", &self.registration)
            .finish()
    }
}

impl TcpStream {
    /// Opens a connection to `addr`, trying each address it resolves to in turn, without
    /// blocking the loop while the name is looked up or the handshake runs.
    ///
    /// A host name (`"localhost:8080"`, `("example.com", 80)`) is resolved by the system's
    /// resolver on the offload pool, as libuv runs `getaddrinfo` on its pool; an IP address is
    /// used as is (see [`ToSocketAddrs`](super::ToSocketAddrs)).
    ///
    /// # Panics
    /// If no loop is running on this thread.
    ///
    /// ```
    /// executor::block_on(async {
    ///     // Nothing listens on port 1 of loopback: the connection is refused.
    ///     let err = executor::net::TcpStream::connect("127.0.0.1:1").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    /// });
    /// ```
    pub async fn connect(addr: impl super::ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = resolve_off_loop(addr.target(), system_resolve).await?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_one(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            )
        }))
    }

    /// A non-blocking connect: start it, wait until the socket is writable, then ask it how the
    /// handshake went.
    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_std(socket.into())?;
        poll_fn(|cx| {
            stream.registration.poll_io(Direction::Write, cx, || {
                match stream.socket.take_error()? {
                    Some(e) => Err(e),
                    None => match stream.socket.peer_addr() {
                        Ok(_) => Ok(()),
                        // Still in progress.
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            Err(io::ErrorKind::WouldBlock.into())
                        }
                        Err(e) => Err(e),
                    },
                }
            })
        })
        .await?;
        Ok(stream)
    }

    /// Registers a connected `std` stream with the running loop (and makes it non-blocking).
    ///
    /// # Panics
    /// If no loop is running on this thread.
    #[track_caller]
    pub fn from_std(socket: std::net::TcpStream) -> io::Result<TcpStream> {
        socket.set_nonblocking(true)?;
        // SAFETY: `socket` is stored beside the registration, declared after it, so it is closed
        // only after the registration has been dropped.
        let registration = unsafe { Registration::new(&socket, "net::TcpStream::from_std")? };
        Ok(TcpStream {
            registration,
            socket,
        })
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.peer_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.set_nodelay(nodelay)
    }

    /// Shuts down the read half, the write half or both (see [`std::net::TcpStream::shutdown`]).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how)
    }

    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.registration
            .poll_io_len(Direction::Read, cx, buf.len(), || (&self.socket).read(buf))
    }

    /// Reads into memory that may be uninitialised (hyper's read cursor), with no copy and no
    /// zeroing: `recv(2)` writes the bytes straight into `buf`. Returns how many it wrote, all
    /// at the front of `buf`. The same readiness and budget rules as `poll_read`.
    #[cfg(feature = "hyper")]
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let fd = self.socket.as_raw_fd();
        self.registration
            .poll_io_len(Direction::Read, cx, buf.len(), || {
                // SAFETY: `buf` is valid for writes of `buf.len()` bytes (initialised or not:
                // a raw pointer, no `&[u8]` over uninitialised memory is made), and `recv`
                // writes at most that many; `fd` is this stream's open socket, kept open by
                // `&self`.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                // `n` is -1 (an error in `errno`) or the count written, at most `buf.len()`.
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            })
    }

    fn poll_read_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.registration.poll_io_len(Direction::Read, cx, len, || {
            (&self.socket).read_vectored(bufs)
        })
    }

    pub(crate) fn poll_write_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.registration
            .poll_io_len(Direction::Write, cx, buf.len(), || {
                (&self.socket).write(buf)
            })
    }

    pub(crate) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.registration
            .poll_io_len(Direction::Write, cx, len, || {
                (&self.socket).write_vectored(bufs)
            })
    }

    /// `poll_close`: shuts the write half down (the peer reads end of stream).
    pub(crate) fn close_write(&self) -> Poll<io::Result<()>> {
        match self.socket.shutdown(Shutdown::Write) {
            // Already closed by the peer: nothing left to shut.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            r => Poll::Ready(r),
        }
    }
}

/// The socket's descriptor, for socket options and calls this type does not wrap (e.g.
/// `socket2::SockRef::from(&stream)`). Reading or writing through it bypasses the loop's
/// readiness tracking: a task may then wait for readiness that was already consumed.
impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The futures-io traits, for the stream and for a shared reference to it (so that one task
/// can read while another writes, as with `std::net::TcpStream`); all go through `&self`.
macro_rules! async_io_impls {
    ($($t:ty),*) => {$(
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_read_priv(cx, buf)
            }

            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                self.poll_read_vectored_priv(cx, bufs)
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_vectored_priv(cx, bufs)
            }

            /// Nothing is buffered in user space: always ready.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.close_write()
            }
        }
    )*};
}

async_io_impls!(TcpStream, &TcpStream);
