//! hyper's I/O traits on [`net::TcpStream`](crate::net::TcpStream) itself (and on
//! `&TcpStream`), so a connection is handed to hyper as it is: `serve_connection(conn, svc)`.
//!
//! Unlike [`HyperIo`](super::HyperIo), which has only `futures`' `AsyncRead` to call and so
//! reads into a scratch buffer and copies, a read here is one `recv(2)` straight into hyper's
//! cursor, initialised or not (`TcpStream::poll_read_uninit`): no scratch buffer per
//! connection, no copy. The `unsafe` that takes (the cursor's `as_mut` and `advance`) is here,
//! not in the user's code.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::net::TcpStream;

/// hyper's `Read` and `Write` for the stream and for a shared reference to it (as the
/// `futures` traits are: one task may read while another writes).
macro_rules! hyper_io_impls {
    ($($t:ty),*) => {$(
        impl hyper::rt::Read for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                mut buf: hyper::rt::ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                // SAFETY: `poll_read_uninit` only writes initialised bytes into the slice (it
                // never de-initialises any), as `as_mut`'s contract asks.
                let unfilled = unsafe { buf.as_mut() };
                let n = ready!(self.poll_read_uninit(cx, unfilled))?;
                // SAFETY: `recv` wrote the first `n` bytes of the cursor's unfilled part
                // (`n` is at most its length), so they are initialised.
                unsafe { buf.advance(n) };
                Poll::Ready(Ok(()))
            }
        }

        impl hyper::rt::Write for $t {
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

            /// `writev(2)`: a response head and body go out in one call.
            fn is_write_vectored(&self) -> bool {
                true
            }

            /// Nothing is buffered in user space: always ready.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Shuts the write half down (the peer reads end of stream).
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.close_write()
            }
        }
    )*};
}

hyper_io_impls!(TcpStream, &TcpStream);
