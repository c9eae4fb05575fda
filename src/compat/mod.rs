//! Ecosystem glue (feature `hyper`): what [hyper](https://hyper.rs) 1.x needs to run on the
//! loop, so that a hyper server or client needs no `unsafe` and no hand-written glue.
//!
//! | hyper asks for | here |
//! |---|---|
//! | `hyper::rt::Read` + `Write` (I/O) | [`net::TcpStream`](crate::net::TcpStream) (and `&TcpStream`) as it is: each read is one `recv` into hyper's buffer, no copy; [`HyperIo`] wraps any other `futures` `AsyncRead`/`AsyncWrite` (a TLS stream; and the other way round, for `Upgraded`) |
//! | `hyper::rt::Executor` (HTTP/2, client connections) | [`LoopExecutor`]: spawns on the running loop |
//! | `hyper::rt::Timer` (`header_read_timeout`, keep-alive) | [`LoopTimer`]: `Send + Sync` sleeps on the loop's timers, cancelled on drop from any thread |
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use executor::compat::LoopTimer;
//! use executor::net::{TcpListener, TcpStream};
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//!
//! executor::block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     executor::spawn(async move {
//!         let (conn, _) = listener.accept().await.unwrap();
//!         let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
//!             Ok::<_, Infallible>(Response::new(String::from("hello from the loop")))
//!         });
//!         hyper::server::conn::http1::Builder::new()
//!             .timer(LoopTimer::new())
//!             .header_read_timeout(Duration::from_secs(5))
//!             .serve_connection(conn, service)
//!             .await
//!             .unwrap();
//!     })
//!     .detach();
//!
//!     let stream = TcpStream::connect(addr).await.unwrap();
//!     let (mut sender, conn) =
//!         hyper::client::conn::http1::handshake::<_, String>(stream).await.unwrap();
//!     executor::spawn(conn).detach();
//!     let req = Request::get("/").header("host", "x").body(String::new()).unwrap();
//!     let res = sender.send_request(req).await.unwrap();
//!     assert_eq!(res.status(), 200);
//!     # let _ = Bytes::new();
//! });
//! ```

mod executor;
mod io;
mod stream;
mod timer;

pub use self::executor::LoopExecutor;
pub use self::io::HyperIo;
pub use self::timer::{LoopSleep, LoopTimer};
