//! The blocked-server demonstration's HTTP/1.1 server: `GET /home` and `GET /primes?nth=N` on
//! one event loop, the prime computed in one of three ways (see [`Mode`]).
//!
//! Shared by the example's `main.rs`, `tests/blocking_server.rs` and `benches/server.rs`
//! (included with `#[path]`), so all three run the very same server.
//!
//! Requests are parsed by `httparse`. Limits, each answered with a status and a one-line reason,
//! after which the connection is closed: a request head over [`MAX_HEAD`] bytes or with more than
//! [`MAX_HEADERS`] headers gets 431; a malformed one 400, and so does an HTTP/1.1 request without
//! exactly one `Host` (RFC 9112 section 3.2); a body over [`MAX_BODY`] 413; a chunked body 501;
//! another method than GET or HEAD 405; a request (head and body) not received within
//! [`Config::request_timeout`] of its first byte 408; an unknown path 404; a missing,
//! non-numeric, zero or too large (over [`Config::max_nth`]) `nth` 400, and a `/primes` beyond
//! [`Config::max_heavy`] concurrent ones 503 with `Retry-After` (the connection stays open for
//! those three).
//!
//! Deadlines (see [`Config`]): a connection silent for `idle_timeout` between requests is closed;
//! a request must be complete within `request_timeout` of its first byte (Node.js's
//! `headersTimeout`/`requestTimeout`), however the client spaces its bytes; each response must
//! be written within `write_timeout`, else the connection is dropped (a client that never reads
//! cannot hold the server's buffers).
//!
//! Work stops when nobody waits for it: while `/primes` runs, the connection watches its
//! client ([`hangup`]); when the client has gone, a chunked search is dropped at its next chunk,
//! an offloaded one is removed from the pool's queue or stopped by its flag at its next check,
//! and a blocking one (sync mode) peeks at the socket every [`CANCEL_CHECK_EVERY`] candidates.
//!
//! Stopping is graceful (`drain.rs`): requests in flight are answered, idle connections closed.
//! [`serve`] runs the whole server on one loop; `cluster.rs` runs it on several, sharing
//! [`Totals`] and the heavy limit, through [`Shared`], [`spawn_connection`] and [`accept_loop`].

#[path = "accept_errors.rs"]
pub mod accept_errors;
#[path = "drain.rs"]
pub mod drain;
#[path = "hangup.rs"]
mod hangup;
#[path = "heavy.rs"]
pub mod heavy;

use std::cell::Cell;
use std::fmt::Write as _;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};

use executor::chunk::{Chunker, Strategy};
use executor::demo::prime::{
    CANCEL_CHECK_EVERY, PrimeSearch, find_nth_prime_chunked, find_nth_prime_until,
};
use executor::net::{TcpListener, TcpStream};
use executor::{spawn, time::timeout};

use accept_errors::AcceptErrors;
use drain::Drain;
use heavy::{HeavyLimit, Permit};

/// The largest `nth` that `--max-nth` may allow: about a minute of blocking search in sync mode
/// on a 2020s core. Also the default.
pub const MAX_NTH: u32 = 5_000_000;
/// The largest request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 32;
/// The largest request body read (and discarded); GET requests rarely have one.
pub const MAX_BODY: u64 = 64 * 1024;
/// Default [`Config::idle_timeout`].
pub const IDLE: Duration = Duration::from_secs(10);
/// Default [`Config::request_timeout`]: 64 KiB of body needs 6.4 KB/s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Config::write_timeout`].
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the client to close its side (see `linger_close`).
pub const LINGER: Duration = Duration::from_secs(2);
/// The most input a closing connection reads and drops.
pub const MAX_LINGER_BYTES: usize = 256 * 1024;
/// The most pipelined input read (and kept) while a `/primes` is computed.
pub const MAX_PIPELINED: usize = MAX_HEAD + MAX_BODY as usize;
/// The chunk target of chunked mode.
pub const CHUNK_TARGET: Duration = Duration::from_micros(500);
/// The `Retry-After` of a 503, in seconds.
pub const RETRY_AFTER_SECS: u32 = 1;

/// How `/primes` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The search right in the handler: the loop is blocked until it is done.
    Sync,
    /// On the loop, in chunks of about [`CHUNK_TARGET`] (`Strategy::Adaptive`).
    Chunked,
    /// On the loop's worker pool (`executor::offload`); the handler awaits the result.
    Offload,
}

impl Mode {
    /// All modes, in the order reports list them.
    pub const ALL: [Mode; 3] = [Mode::Sync, Mode::Chunked, Mode::Offload];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Chunked => "chunked",
            Mode::Offload => "offload",
        }
    }

    /// The mode named `s` on the command line.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// How the server runs.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// How `/primes` computes.
    pub mode: Mode,
    /// Stop after this many responses (`None`: serve until shut down).
    pub max_requests: Option<u64>,
    /// The largest `nth` served (1..=[`MAX_NTH`]).
    pub max_nth: u32,
    /// The most `/primes` requests computed at once; more get 503.
    pub max_heavy: usize,
    /// How long a connection may stay silent between requests (and within one, at most).
    pub idle_timeout: Duration,
    /// How long a request, head and body, may take from its first byte to its last.
    pub request_timeout: Duration,
    /// How long writing one response may take.
    pub write_timeout: Duration,
    /// Chunked mode: hold this percentage of the loop (`Strategy::Share`, chunks of at least
    /// [`CHUNK_TARGET`]) instead of fixed chunks of about [`CHUNK_TARGET`].
    pub chunk_share: Option<u8>,
}

impl Config {
    /// The defaults: serve until shut down, [`MAX_NTH`], one heavy request per core (the
    /// machine's available parallelism, the offload pool's size), the documented timeouts.
    pub fn new(mode: Mode) -> Config {
        Config {
            mode,
            max_requests: None,
            max_nth: MAX_NTH,
            max_heavy: default_max_heavy(),
            idle_timeout: IDLE,
            request_timeout: REQUEST_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            chunk_share: None,
        }
    }
}

/// The default of [`Config::max_heavy`]: the machine's available parallelism.
pub fn default_max_heavy() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// What every loop of the process shares: the count of responses and the `max_requests` stop.
#[derive(Debug)]
pub struct Totals {
    /// Responses sent so far, by every loop.
    served: AtomicU64,
    /// Stop after this many (`Config::max_requests`).
    max: Option<u64>,
    /// Fired when `served` reaches `max`.
    reached: Mutex<Option<oneshot::Sender<()>>>,
}

impl Totals {
    /// Totals for a server configured by `config`, and the receiver that completes when
    /// `max_requests` responses have been sent (never, without a maximum).
    pub fn new(config: &Config) -> (Arc<Totals>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let totals = Totals {
            served: AtomicU64::new(0),
            max: config.max_requests,
            reached: Mutex::new(Some(tx)),
        };
        (Arc::new(totals), rx)
    }

    fn count(&self) {
        let n = self.served.fetch_add(1, Ordering::AcqRel) + 1;
        if Some(n) == self.max {
            let tx = self
                .reached
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        }
    }
}

/// What one loop's connections share.
#[derive(Debug)]
pub struct Shared {
    config: Config,
    /// Responses this loop has sent.
    served: Cell<u64>,
    /// The process's counts (all loops).
    totals: Arc<Totals>,
    /// The `/primes` requests being computed (the limit is the process's: a clone shares it).
    heavy: HeavyLimit,
    /// This loop's stop state and open connections.
    drain: Rc<Drain>,
}

impl Shared {
    /// The state of one loop's server; `totals` and `heavy` may be shared with other loops.
    pub fn new(config: Config, totals: Arc<Totals>, heavy: HeavyLimit) -> Rc<Shared> {
        Rc::new(Shared {
            config,
            served: Cell::new(0),
            totals,
            heavy,
            drain: Rc::default(),
        })
    }

    /// Responses this loop has sent.
    pub fn served(&self) -> u64 {
        self.served.get()
    }

    fn count_response(&self) {
        self.served.set(self.served.get() + 1);
        self.totals.count();
    }

    /// Stops this loop's server gracefully (see `drain.rs`): finishes the requests in flight,
    /// closes idle connections, waits at most [`drain::DRAIN`]. Returns the number of
    /// connections still open then (dropped with the loop). Stop accepting first.
    pub async fn stop(&self) -> usize {
        self.drain.stop().await
    }
}

/// Serves connections from `listener` on this loop, each in its own task, until `shutdown`
/// resolves or `max_requests` responses have been sent; then stops gracefully (see
/// [`Shared::stop`]). Returns the number of responses sent.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> u64 {
    let (totals, reached) = Totals::new(&config);
    let shared = Shared::new(config, totals, HeavyLimit::new(config.max_heavy));
    futures::select! {
        () = accept_loop(&listener, &shared).fuse() => {}
        () = shutdown.fuse() => {}
        _ = reached.fuse() => {}
    }
    drop(listener);
    shared.stop().await;
    shared.served()
}

/// Accepts connections from `listener` and serves each in a task of this loop, forever
/// (accept errors pause it: see `accept_errors.rs`).
pub async fn accept_loop(listener: &TcpListener, shared: &Rc<Shared>) {
    let mut errors = AcceptErrors::default();
    loop {
        let socket = accept_errors::accept(listener, &mut errors).await;
        spawn_connection(socket, shared);
    }
}

/// Serves an accepted connection (not yet registered with any loop) in a task of this loop.
pub fn spawn_connection(socket: std::net::TcpStream, shared: &Rc<Shared>) {
    // Fails only if the poller refuses the descriptor: then the connection is just closed.
    if let Ok(conn) = TcpStream::from_std(socket) {
        spawn(connection(conn, shared.clone())).detach();
    }
}

/// One parsed request, as far as the routes care.
#[derive(Debug)]
struct Request {
    /// `GET` or `HEAD` (others are refused while parsing).
    head_only: bool,
    /// The path and query (the request target).
    target: String,
    /// Whether the client wants the connection kept open after the response.
    keep_alive: bool,
}

/// A response about to be written.
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
    /// Extra header lines, each ending in CRLF.
    extra: &'static str,
}

impl Response {
    fn ok(body: String) -> Response {
        Response {
            status: 200,
            body,
            extra: "",
        }
    }

    fn error(status: u16, reason: impl Into<String>) -> Response {
        let mut body = reason.into();
        body.push('\n');
        Response {
            status,
            body,
            extra: "",
        }
    }

    fn to_bytes(&self, head_only: bool, keep_alive: bool) -> Vec<u8> {
        let mut out = String::with_capacity(128 + self.body.len());
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: {}\r\n{}\r\n",
            self.status,
            reason_phrase(self.status),
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
            self.extra,
        );
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Why no request could be read.
enum ReadError {
    /// The connection ended cleanly between requests, went silent, or failed: nothing to answer.
    Gone,
    /// A bad request: answer this, then close.
    Reply(Response),
}

/// Serves one connection: request, response, until either side closes, a deadline passes or
/// an error.
async fn connection(mut conn: TcpStream, shared: Rc<Shared>) {
    let _open = shared.drain.open();
    let _ = conn.set_nodelay(true);
    let config = shared.config;
    let mut buf = Vec::with_capacity(1024);
    loop {
        let (response, head_only, keep_alive) =
            match read_request(&mut conn, &mut buf, &config, &shared.drain).await {
                Ok(req) => {
                    let response = match route(&req, &config) {
                        Route::Now(r) => r,
                        Route::Primes(nth) => match primes(&conn, &mut buf, &shared, nth).await {
                            Some(r) => r,
                            // The client has gone (and its search has been stopped): nobody to
                            // answer.
                            None => return,
                        },
                    };
                    (response, req.head_only, req.keep_alive)
                }
                Err(ReadError::Gone) => return,
                Err(ReadError::Reply(r)) => (r, false, false),
            };
        // A stopping server answers what it was asked, then closes.
        let keep_alive = keep_alive && !shared.drain.stopping();
        let bytes = response.to_bytes(head_only, keep_alive);
        match timeout(config.write_timeout, conn.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            // Failed, or the client does not read what it asked for: no response is possible
            // any more; dropping the connection (with unread input: a reset) frees its buffers.
            Ok(Err(_)) | Err(_) => return,
        }
        shared.count_response();
        if !keep_alive {
            linger_close(conn).await;
            return;
        }
    }
}

/// Closes a connection the server is done with without destroying its last response: closing a
/// socket with unread input makes the kernel send a reset, which can reach the client before it
/// has read the response (after a 431, say, the rest of the oversized head is still unread). So:
/// end our side, then read and drop what the client still sends, until it closes its side, for
/// at most [`LINGER`] and [`MAX_LINGER_BYTES`] (Apache's "lingering close").
async fn linger_close(mut conn: TcpStream) {
    if conn.close().await.is_err() {
        return;
    }
    let mut chunk = [0u8; 4096];
    let mut left = MAX_LINGER_BYTES;
    let _ = timeout(LINGER, async {
        while left > 0 {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// How long the next read of a request may wait: the idle timeout, cut to what is left of the
/// request's deadline once it has one.
fn read_wait(config: &Config, deadline: Option<Instant>) -> Duration {
    deadline.map_or(config.idle_timeout, |d| {
        config
            .idle_timeout
            .min(d.saturating_duration_since(Instant::now()))
    })
}

/// Reads one request head from `conn` (bytes already read are in `buf`; what follows the request
/// is left there for the next one), and skips its body, all within `request_timeout` of the
/// request's first byte. Between requests (nothing of the next one read yet) the stop of the
/// server ends the wait: the connection is then closed.
async fn read_request(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    config: &Config,
    drain: &Drain,
) -> Result<Request, ReadError> {
    let mut chunk = [0u8; 4096];
    // Set when the request's first byte is in.
    let mut deadline: Option<Instant> = None;
    loop {
        if !buf.is_empty() {
            let due = *deadline.get_or_insert_with(|| Instant::now() + config.request_timeout);
            if let Some((req, head_len, body_len)) = parse_head(buf)? {
                buf.drain(..head_len);
                skip_body(conn, buf, body_len, due, config, &mut chunk).await?;
                return Ok(req);
            }
            if buf.len() >= MAX_HEAD {
                return Err(reply(431, format!("request head over {MAX_HEAD} bytes")));
            }
        }
        // Read through `&TcpStream`, so the stop can peek at the socket meanwhile.
        let mut reader: &TcpStream = conn;
        let read = timeout(read_wait(config, deadline), reader.read(&mut chunk));
        let read = if buf.is_empty() {
            drain.unless_stopped(read, &*conn).await
        } else {
            Some(read.await)
        };
        let n = match read.ok_or(ReadError::Gone)? {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return Err(ReadError::Gone),
            Err(_) if buf.is_empty() => return Err(ReadError::Gone),
            Err(_) => return Err(reply(408, "request head not received in time")),
        };
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadError::Gone
            } else {
                reply(400, "connection closed in the middle of a request head")
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn reply(status: u16, reason: impl Into<String>) -> ReadError {
    ReadError::Reply(Response::error(status, reason))
}

/// Parses a request head: `None` while incomplete, else the request, the head's length and the
/// body's length.
fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize, u64)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(reply(431, format!("more than {MAX_HEADERS} headers")));
        }
        Err(e) => return Err(reply(400, format!("malformed request: {e}"))),
    };
    if head_len > MAX_HEAD {
        return Err(reply(431, format!("request head over {MAX_HEAD} bytes")));
    }
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => {
            return Err(ReadError::Reply(Response {
                extra: "Allow: GET, HEAD\r\n",
                ..Response::error(405, "only GET and HEAD are served")
            }));
        }
    };
    // HTTP/1.1 keeps the connection by default, HTTP/1.0 closes it.
    let mut keep_alive = req.version == Some(1);
    let mut body_len = None;
    let mut hosts = 0;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in String::from_utf8_lossy(h.value).split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| reply(400, "Content-Length is not a whole number"))?;
            // RFC 9112 section 6.3: differing lengths make the message boundary ambiguous.
            if body_len.is_some_and(|l| l != len) {
                return Err(reply(400, "conflicting Content-Length headers"));
            }
            body_len = Some(len);
            if len > MAX_BODY {
                return Err(reply(413, format!("request body over {MAX_BODY} bytes")));
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(reply(
                501,
                "request bodies with Transfer-Encoding are not supported",
            ));
        }
    }
    // RFC 9112 section 3.2: 400 for an HTTP/1.1 request without a Host, and for any request
    // with more than one.
    if hosts == 0 && req.version == Some(1) {
        return Err(reply(400, "an HTTP/1.1 request needs a Host header"));
    }
    if hosts > 1 {
        return Err(reply(400, "more than one Host header"));
    }
    let target = req.path.unwrap_or("/").to_string();
    Ok(Some((
        Request {
            head_only,
            target,
            keep_alive,
        },
        head_len,
        body_len.unwrap_or(0),
    )))
}

/// Reads and drops `len` body bytes (some may already be in `buf`) by `deadline`.
async fn skip_body(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: u64,
    deadline: Instant,
    config: &Config,
    chunk: &mut [u8],
) -> Result<(), ReadError> {
    let in_buf = buf.len().min(len as usize);
    buf.drain(..in_buf);
    let mut left = len - in_buf as u64;
    while left > 0 {
        let want = chunk.len().min(left as usize);
        match timeout(
            read_wait(config, Some(deadline)),
            conn.read(&mut chunk[..want]),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(ReadError::Gone),
            Ok(Ok(n)) => left -= n as u64,
            Err(_) => return Err(reply(408, "request body not received in time")),
        }
    }
    Ok(())
}

/// What a request asks for.
enum Route {
    /// An answer ready now.
    Now(Response),
    /// The `nth` prime: heavy work.
    Primes(u32),
}

/// Routes a request.
fn route(req: &Request, config: &Config) -> Route {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (req.target.as_str(), ""),
    };
    match path {
        "/home" => Route::Now(Response::ok("Welcome Home!\n".to_string())),
        "/primes" => match parse_nth(query, config.max_nth) {
            Ok(nth) => Route::Primes(nth),
            Err(reason) => Route::Now(Response::error(400, reason)),
        },
        _ => Route::Now(Response::error(
            404,
            format!("no route for {path} (try /home or /primes?nth=N)"),
        )),
    }
}

/// Sets its flag when dropped: tells an offloaded search that nobody waits for it any more.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `work`'s output, or `None` if `gone` completes first (`work` is then dropped). `work` is
/// polled first, so an answer ready at the same time as the hang-up is kept.
async fn unless_gone<T>(
    work: impl Future<Output = T>,
    gone: impl Future<Output = ()>,
) -> Option<T> {
    let (work, gone) = (std::pin::pin!(work), std::pin::pin!(gone));
    match futures::future::select(work, gone).await {
        futures::future::Either::Left((out, _)) => Some(out),
        futures::future::Either::Right(((), _)) => None,
    }
}

/// Computes `/primes?nth=N` in the configured mode within the heavy-request limit, watching
/// the client meanwhile: the response, or `None` if the client has gone (its work is then
/// stopped: see the module's documentation). Pipelined input read while watching is left in
/// `buf`.
async fn primes(
    conn: &TcpStream,
    buf: &mut Vec<u8>,
    shared: &Shared,
    nth: u32,
) -> Option<Response> {
    let Some(permit) = shared.heavy.try_acquire() else {
        return Some(Response {
            extra: "Retry-After: 1\r\n",
            ..Response::error(
                503,
                format!(
                    "{} /primes requests are being computed, the most at once (--max-heavy); \
                     retry in {RETRY_AFTER_SECS} s",
                    shared.config.max_heavy
                ),
            )
        });
    };
    let gone = hangup::client_gone(conn, buf, MAX_PIPELINED);
    let prime = match shared.config.mode {
        Mode::Sync => {
            // The loop is blocked: no reading task can run, so the search itself looks.
            let _permit = permit;
            PrimeSearch::new(nth)
                .finish_unless(CANCEL_CHECK_EVERY, || hangup::client_gone_now(conn))
                .map(Ok)
        }
        Mode::Chunked => {
            let search = async move {
                let _permit = permit;
                let mut chunker = Chunker::new(match shared.config.chunk_share {
                    Some(percent) => Strategy::Share {
                        percent,
                        slice: CHUNK_TARGET,
                    },
                    None => Strategy::Adaptive {
                        target: CHUNK_TARGET,
                    },
                });
                Ok(find_nth_prime_chunked(nth, &mut chunker).await)
            };
            unless_gone(search, gone).await
        }
        Mode::Offload => {
            let cancel = SetOnDrop(Arc::new(AtomicBool::new(false)));
            let flag = cancel.0.clone();
            // The permit travels with the job: the slot is freed when the worker has stopped,
            // or when the job is removed from the queue unrun (the closure is dropped).
            let job = executor::offload(move || {
                let _permit: Permit = permit;
                find_nth_prime_until(nth, &flag)
            });
            let search = async move {
                let _cancel = cancel;
                match job.await {
                    Ok(Some(p)) => Ok(p),
                    Ok(None) => Err("the search was cancelled".to_string()),
                    Err(e) => Err(format!("the search failed: {e}")),
                }
            };
            unless_gone(search, gone).await
        }
    };
    Some(match prime? {
        Ok(p) => Response::ok(format!("{p}\n")),
        Err(reason) => Response::error(500, reason),
    })
}

/// The `nth` query parameter, checked: a whole number in `1..=max`. The query is split by
/// hand: one numeric parameter needs no percent-decoding library.
fn parse_nth(query: &str, max: u32) -> Result<u32, String> {
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("nth="))
        .ok_or("missing query parameter nth (use /primes?nth=N)")?;
    // Digits only: `u64::from_str` would also take a leading `+`.
    let n: u64 = Some(value)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("nth must be a whole number in 1..={max}, got `{value}`"))?;
    if n == 0 {
        return Err(format!(
            "nth must be at least 1 (the 1st prime is 2), in 1..={max}"
        ));
    }
    if n > u64::from(max) {
        return Err(format!("nth must be at most {max} (--max-nth)"));
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_is_checked() {
        let parse_nth = |q| super::parse_nth(q, MAX_NTH);
        assert_eq!(parse_nth("nth=10"), Ok(10));
        assert_eq!(parse_nth("x=1&nth=7"), Ok(7));
        assert!(parse_nth("").is_err());
        assert!(parse_nth("nth=").is_err());
        assert!(parse_nth("nth=0").is_err());
        assert!(parse_nth("nth=-3").is_err());
        assert!(parse_nth("nth=abc").is_err());
        assert!(parse_nth("nth=5000001").is_err());
        assert!(parse_nth("nth=99999999999999999999999").is_err());
        assert_eq!(parse_nth("nth=5000000"), Ok(MAX_NTH));
        assert!(parse_nth("nth=+5").is_err(), "a sign is not a digit");
        assert!(parse_nth("nth= 5").is_err());
        assert_eq!(super::parse_nth("nth=100", 100), Ok(100));
        assert!(
            super::parse_nth("nth=101", 100)
                .unwrap_err()
                .contains("at most 100")
        );
    }

    /// The status a request head gets refused with, if it is refused.
    fn refusal(head: &str) -> Option<u16> {
        match parse_head(head.as_bytes()) {
            Err(ReadError::Reply(r)) => Some(r.status),
            _ => None,
        }
    }

    #[test]
    fn content_length_must_be_digits_and_agree_with_itself() {
        let get = |headers: &str| format!("GET /home HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        assert_eq!(refusal(&get("Content-Length: 3\r\n")), None);
        assert_eq!(
            refusal(&get("Content-Length: 3\r\nContent-Length: 3\r\n")),
            None
        );
        assert_eq!(
            refusal(&get("Content-Length: 3\r\nContent-Length: 40\r\n")),
            Some(400)
        );
        assert_eq!(refusal(&get("Content-Length: +3\r\n")), Some(400));
    }

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        assert_eq!(refusal("GET /home HTTP/1.1\r\n\r\n"), Some(400));
        assert_eq!(
            refusal("GET /home HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Some(400)
        );
        assert_eq!(refusal("GET /home HTTP/1.1\r\nhost: a\r\n\r\n"), None);
        // HTTP/1.0 predates Host: optional there, but still at most one.
        assert_eq!(refusal("GET /home HTTP/1.0\r\n\r\n"), None);
        assert_eq!(
            refusal("GET /home HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
            Some(400)
        );
    }
}
