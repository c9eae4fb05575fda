//! The blocked-server demonstration's HTTP/1.1 server: `GET /home` and `GET /primes?nth=N` on
//! one event loop, the prime computed in one of three ways (see [`Mode`]).
//!
//! Shared by the example's `main.rs`, `tests/blocking_server.rs` and `benches/server.rs`
//! (included with `#[path]`), so all three run the very same server.
//!
//! Requests are parsed by `httparse`. Limits, each answered with a status and a one-line reason,
//! after which the connection is closed: a request head over [`MAX_HEAD`] bytes or with more than
//! [`MAX_HEADERS`] headers gets 431; a malformed one 400; a body over [`MAX_BODY`] 413; a chunked
//! body 501; another method than GET or HEAD 405; an unknown path 404; a missing, non-numeric,
//! zero or too large (over [`MAX_NTH`]) `nth` 400 (the connection stays open for those two).

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};

use executor::chunk::Strategy;
use executor::net::{TcpListener, TcpStream};
use executor::prime::{find_nth_prime, find_nth_prime_with};
use executor::{sleep, spawn, timeout};

/// The largest `nth` served: about a minute of blocking search in sync mode on a 2020s core.
pub const MAX_NTH: u32 = 5_000_000;
/// The largest request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 32;
/// The largest request body read (and discarded); GET requests rarely have one.
pub const MAX_BODY: u64 = 64 * 1024;
/// How long a connection may stay silent before the server closes it.
pub const IDLE: Duration = Duration::from_secs(10);
/// How long a request head may take from its first byte to its last, however the client spaces
/// them (Node.js's `server.headersTimeout`): a byte every few seconds cannot hold a connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the client to close its side (see `linger_close`).
pub const LINGER: Duration = Duration::from_secs(2);
/// The most input a closing connection reads and drops.
pub const MAX_LINGER_BYTES: usize = 256 * 1024;
/// The chunk target of chunked mode.
pub const CHUNK_TARGET: Duration = Duration::from_micros(500);

/// How `/primes` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `find_nth_prime` right in the handler: the loop is blocked until it is done.
    Sync,
    /// On the loop, in chunks of about [`CHUNK_TARGET`] (`Strategy::Adaptive`).
    Chunked,
    /// On another thread (`Strategy::Offload`); the handler awaits the result.
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

    /// The n-th prime, computed this way.
    pub async fn nth_prime(self, nth: u32) -> u64 {
        match self {
            Mode::Sync => find_nth_prime(nth),
            Mode::Chunked => {
                find_nth_prime_with(
                    nth,
                    Strategy::Adaptive {
                        target: CHUNK_TARGET,
                    },
                )
                .await
            }
            Mode::Offload => find_nth_prime_with(nth, Strategy::Offload).await,
        }
    }
}

/// How the server runs.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// How `/primes` computes.
    pub mode: Mode,
    /// Stop after this many responses (`None`: serve until shut down).
    pub max_requests: Option<u64>,
}

/// What the server shares between its connections.
struct Shared {
    config: Config,
    /// Responses sent so far.
    served: Cell<u64>,
    /// Fired when `served` reaches `max_requests`.
    done: RefCell<Option<oneshot::Sender<()>>>,
}

impl Shared {
    fn count_response(&self) {
        let n = self.served.get() + 1;
        self.served.set(n);
        if Some(n) == self.config.max_requests {
            if let Some(tx) = self.done.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
    }
}

/// Serves connections from `listener`, each in its own task, until `shutdown` resolves or
/// `max_requests` responses have been sent. Returns the number of responses sent. Connections
/// still open then are dropped with their tasks when the loop is dropped.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> u64 {
    let (done_tx, done_rx) = oneshot::channel();
    let shared = Rc::new(Shared {
        config,
        served: Cell::new(0),
        done: RefCell::new(Some(done_tx)),
    });
    let accept_loop = async {
        loop {
            match listener.accept().await {
                Ok((conn, _)) => spawn(connection(conn, shared.clone())).detach(),
                Err(e) => {
                    // Out of descriptors and the like: the listener itself is fine; wait a
                    // little rather than spin on the same error.
                    eprintln!("blocking_server: accept: {e}");
                    sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    futures::select! {
        () = accept_loop.fuse() => {}
        () = shutdown.fuse() => {}
        _ = done_rx.fuse() => {}
    }
    shared.served.get()
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
        501 => "Not Implemented",
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

/// Serves one connection: request, response, until either side closes or an error.
async fn connection(mut conn: TcpStream, shared: Rc<Shared>) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    loop {
        let (response, head_only, keep_alive) = match read_request(&mut conn, &mut buf).await {
            Ok(req) => (
                route(&req, shared.config.mode).await,
                req.head_only,
                req.keep_alive,
            ),
            Err(ReadError::Gone) => return,
            Err(ReadError::Reply(r)) => (r, false, false),
        };
        if conn
            .write_all(&response.to_bytes(head_only, keep_alive))
            .await
            .is_err()
        {
            return;
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

/// Reads one request head from `conn` (bytes already read are in `buf`; what follows the request
/// is left there for the next one), and skips its body.
async fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Request, ReadError> {
    let mut chunk = [0u8; 4096];
    // Set when the head's first byte is in.
    let mut head_due: Option<Instant> = None;
    loop {
        if !buf.is_empty() {
            head_due.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT);
            if let Some((req, head_len, body_len)) = parse_head(buf)? {
                buf.drain(..head_len);
                skip_body(conn, buf, body_len, &mut chunk).await?;
                return Ok(req);
            }
            if buf.len() >= MAX_HEAD {
                return Err(reply(431, format!("request head over {MAX_HEAD} bytes")));
            }
        }
        let wait = head_due.map_or(IDLE, |due| {
            IDLE.min(due.saturating_duration_since(Instant::now()))
        });
        let n = match timeout(wait, conn.read(&mut chunk)).await {
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
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
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

/// Reads and drops `len` body bytes (some may already be in `buf`).
async fn skip_body(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: u64,
    chunk: &mut [u8],
) -> Result<(), ReadError> {
    let in_buf = buf.len().min(len as usize);
    buf.drain(..in_buf);
    let mut left = len - in_buf as u64;
    while left > 0 {
        let want = chunk.len().min(left as usize);
        match timeout(IDLE, conn.read(&mut chunk[..want])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Err(ReadError::Gone),
            Ok(Ok(n)) => left -= n as u64,
        }
    }
    Ok(())
}

/// Answers a request.
async fn route(req: &Request, mode: Mode) -> Response {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (req.target.as_str(), ""),
    };
    match path {
        "/home" => Response::ok("Welcome Home!\n".to_string()),
        "/primes" => match parse_nth(query) {
            Ok(nth) => Response::ok(format!("{}\n", mode.nth_prime(nth).await)),
            Err(reason) => Response::error(400, reason),
        },
        _ => Response::error(
            404,
            format!("no route for {path} (try /home or /primes?nth=N)"),
        ),
    }
}

/// The `nth` query parameter, checked: a whole number in `1..=MAX_NTH`. The query is split by
/// hand: one numeric parameter needs no percent-decoding library.
fn parse_nth(query: &str) -> Result<u32, String> {
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("nth="))
        .ok_or("missing query parameter nth (use /primes?nth=N)")?;
    // Digits only: `u64::from_str` would also take a leading `+`.
    let n: u64 = Some(value)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("nth must be a whole number, got `{value}`"))?;
    if n == 0 {
        return Err("nth must be at least 1 (the 1st prime is 2)".into());
    }
    if n > u64::from(MAX_NTH) {
        return Err(format!(
            "nth must be at most {MAX_NTH} (a larger search would hold the server for minutes)"
        ));
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_is_checked() {
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
        let get = |headers: &str| format!("GET /home HTTP/1.1\r\n{headers}\r\n");
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
}
