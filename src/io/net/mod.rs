//! TCP sockets driven by the loop's poll phase: [`TcpListener`] and [`TcpStream`].
//!
//! The sockets are non-blocking `std` sockets registered with the loop's poller. An operation
//! first tries the system call; only when it would block does the task register its waker for
//! that direction and wait. Readiness is dispatched in the **poll phase** as I/O callbacks: the
//! woken task is polled in the drain right after its event, so work it schedules with
//! [`set_immediate`](crate::set_immediate) runs in the same iteration's check phase, before any
//! [`set_timeout`](crate::set_timeout), as inside a Node.js I/O callback.
//!
//! # Examples
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use executor::net::{TcpListener, TcpStream};
//!
//! executor::block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = executor::spawn(async move {
//!         let (mut conn, _) = listener.accept().await?;
//!         let mut buf = [0; 5];
//!         conn.read_exact(&mut buf).await?;
//!         conn.write_all(&buf).await?;
//!         std::io::Result::Ok(())
//!     });
//!     let mut client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut echo = [0; 5];
//!     client.read_exact(&mut echo).await?;
//!     assert_eq!(&echo, b"hello");
//!     server.await.unwrap()
//! })
//! .unwrap();
//! ```
//!
//! # Rules
//! - A socket belongs to the loop running when it was created (`bind`, `accept`, `connect`,
//!   `from_std`) and is `!Send`; poll it on that loop.
//! - **Liveness**: a socket keeps the loop alive while a task waits on it (a listening server, a
//!   stream waiting for data or for room to write), as an active handle does in Node.js; an open
//!   socket nobody waits on does not.
//! - Dropping a socket deregisters it from the poller, then closes it.
//! - One reader and one writer at a time: if two tasks wait to read the same stream, only the
//!   last one to wait is woken (split a stream with `&TcpStream`, which is also `AsyncRead` and
//!   `AsyncWrite`, to read and write from two tasks).
//! - An error (a peer's reset, say) is reported by the operation on that stream only.

mod addr;
mod listener;
mod registration;
mod stream;

pub use addr::ToSocketAddrs;
pub use listener::TcpListener;
pub use stream::TcpStream;
