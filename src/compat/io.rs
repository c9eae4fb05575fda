//! [`HyperIo`]: a `futures` byte stream as hyper's I/O, and hyper's I/O as a `futures` stream.
//!
//! # Reading without `unsafe`
//! hyper hands `poll_read` a cursor over possibly uninitialised memory; filling it in place
//! would take `unsafe` (`ReadBufCursor::advance`). Instead the stream reads into a scratch
//! buffer the adapter owns (allocated at the first read, zeroed once, reused for every read of
//! the connection) and the bytes read are copied in with the safe `ReadBufCursor::put_slice`.
//! The copy is of the bytes actually read (a request head is a few hundred), which costs less
//! than zeroing hyper's whole free space per read would.

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::io::{AsyncRead, AsyncWrite};
use pin_project_lite::pin_project;

/// The scratch buffer's size at most: a read asks for no more than this (hyper's first read
/// buffer is 8 KiB; it grows for large bodies, and reads of 64 KiB keep the syscalls few).
const MAX_SCRATCH: usize = 64 * 1024;

pin_project! {
    /// Adapts a byte stream between `futures`' traits and hyper's, both ways:
    /// - `T: AsyncRead + AsyncWrite` (a TLS stream of a `futures`-based crate, any
    ///   `futures` byte stream) becomes `hyper::rt::Read + Write`, to serve or send HTTP over
    ///   it. (A [`net::TcpStream`](crate::net::TcpStream) needs no adapter: it is hyper's I/O
    ///   itself, and reads without this adapter's copy.)
    /// - `T: hyper::rt::Read + Write` (hyper's `Upgraded` after a WebSocket or CONNECT
    ///   upgrade) becomes `AsyncRead + AsyncWrite`, to use it with `futures`' combinators.
    ///
    /// No `unsafe` either way (see the module's notes).
    pub struct HyperIo<T> {
        #[pin]
        inner: T,
        // Where `poll_read` lets the stream write; empty until the first read.
        scratch: Vec<u8>,
    }
}

impl<T> HyperIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        HyperIo {
            inner,
            scratch: Vec::new(),
        }
    }

    /// The wrapped stream.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for HyperIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HyperIo").field(&self.inner).finish()
    }
}

impl<T: AsyncRead> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let want = buf.remaining().min(MAX_SCRATCH);
        if want == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.scratch.len() < want {
            this.scratch.resize(want, 0);
        }
        let n = ready!(this.inner.poll_read(cx, &mut this.scratch[..want]))?;
        // `AsyncRead` promises `n <= want`; a stream that broke it gets an error, not a panic.
        let Some(read) = this.scratch.get(..n) else {
            return Poll::Ready(Err(io::Error::other(
                "AsyncRead::poll_read reported more bytes than the buffer holds",
            )));
        };
        buf.put_slice(read);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite> hyper::rt::Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    /// `futures`' `AsyncWrite` has no way to tell; the crate's streams write vectors natively,
    /// and a stream that does not falls back to its first buffer (`futures`' default).
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_close(cx)
    }
}

impl<T: hyper::rt::Read> AsyncRead for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // `buf` is initialised memory, so hyper's `ReadBuf` over it needs no `unsafe`.
        let mut rb = hyper::rt::ReadBuf::new(buf);
        ready!(self.project().inner.poll_read(cx, rb.unfilled()))?;
        Poll::Ready(Ok(rb.filled().len()))
    }
}

impl<T: hyper::rt::Write> AsyncWrite for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
