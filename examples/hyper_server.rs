//! The blocked server's two routes on hyper, running on the loop with `executor::compat`: no
//! `unsafe`, no hand-written glue.
//! `cargo run --release --features hyper --example hyper_server -- --mode sync|chunked|offload`
//!
//! `GET /home` answers `Welcome Home!`; `GET /primes?nth=N` answers the N-th prime, computed as
//! `--mode` says: `sync` on the loop in one piece (`/home` waits meanwhile), `chunked` on the
//! loop in 500 µs chunks, `offload` on the worker pool. HTTP/1.1 with keep-alive; a client has
//! `--header-timeout-ms` (default 10000) to send a request head (hyper's `header_read_timeout`,
//! timed by the loop's timers through `compat::LoopTimer`).
//!
//! It prints `listening on http://ADDR` once bound, and, with `--max-requests N`, exits after
//! N responses.

use std::cell::Cell;
use std::convert::Infallible;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use executor::chunk::{Chunker, Strategy};
use executor::compat::LoopTimer;
use executor::demo::prime::{find_nth_prime, find_nth_prime_chunked};
use executor::net::TcpListener;
use executor::sync::Notify;
use futures::FutureExt;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

const USAGE: &str = "\
usage: hyper_server [options]
  --port N               port on 127.0.0.1 (0..=65535; default 0: the OS picks one, printed)
  --mode MODE            how /primes computes: sync, chunked or offload (default sync)
  --max-nth N            the largest /primes?nth served (1..=5000000, default 5000000)
  --header-timeout-ms N  time a client has to send a request head (1..=3600000, default 10000)
  --max-requests N       exit after N responses (default: serve for ever)
  --help                 this text";

/// How `/primes` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sync,
    Chunked,
    Offload,
}

/// What the command line asks for.
#[derive(Clone, Copy, Debug)]
struct Args {
    port: u16,
    mode: Mode,
    max_nth: u32,
    header_timeout: Duration,
    max_requests: Option<u64>,
}

fn number<T>(flag: &str, v: Option<String>, lo: T, hi: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    match v.parse::<T>() {
        Ok(n) if n >= lo && n <= hi => Ok(n),
        _ => Err(format!(
            "{flag} must be a whole number in {lo}..={hi}, got `{v}`"
        )),
    }
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        port: 0,
        mode: Mode::Sync,
        max_nth: 5_000_000,
        header_timeout: Duration::from_secs(10),
        max_requests: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--port" => args.port = number("--port", it.next(), 0, u16::MAX)?,
            "--mode" => {
                args.mode = match it.next().as_deref() {
                    Some("sync") => Mode::Sync,
                    Some("chunked") => Mode::Chunked,
                    Some("offload") => Mode::Offload,
                    other => {
                        return Err(format!(
                            "--mode must be sync, chunked or offload, got {other:?}"
                        ));
                    }
                }
            }
            "--max-nth" => args.max_nth = number("--max-nth", it.next(), 1, 5_000_000)?,
            "--header-timeout-ms" => {
                let ms = number("--header-timeout-ms", it.next(), 1, 3_600_000u64)?;
                args.header_timeout = Duration::from_millis(ms);
            }
            "--max-requests" => {
                args.max_requests = Some(number("--max-requests", it.next(), 1, u64::MAX)?)
            }
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(Some(args))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res
}

/// The `nth` query parameter, checked: a whole number in `1..=max`.
fn parse_nth(query: &str, max: u32) -> Result<u32, String> {
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("nth="))
        .ok_or("missing query parameter nth (use /primes?nth=N)")?;
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "nth must be a whole number in 1..={max}, got `{value}`"
        )),
    }
}

async fn primes(mode: Mode, nth: u32) -> Result<u64, String> {
    match mode {
        Mode::Sync => Ok(find_nth_prime(nth)),
        Mode::Chunked => {
            let mut chunker = Chunker::new(Strategy::Adaptive {
                target: Duration::from_micros(500),
            });
            Ok(find_nth_prime_chunked(nth, &mut chunker).await)
        }
        Mode::Offload => executor::offload(move || find_nth_prime(nth))
            .await
            .map_err(|e| format!("the search failed: {e}")),
    }
}

async fn handle(req: Request<Incoming>, args: Args) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD\n".into(),
        ));
    }
    let query = req.uri().query().unwrap_or("");
    Ok(match req.uri().path() {
        "/home" => text(StatusCode::OK, "Welcome Home!\n".into()),
        "/primes" => match parse_nth(query, args.max_nth) {
            Err(reason) => text(StatusCode::BAD_REQUEST, format!("{reason}\n")),
            Ok(nth) => match primes(args.mode, nth).await {
                Ok(p) => text(StatusCode::OK, format!("{p}\n")),
                Err(reason) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{reason}\n")),
            },
        },
        path => text(
            StatusCode::NOT_FOUND,
            format!("no route for {path} (try /home or /primes?nth=N)\n"),
        ),
    })
}

async fn serve(listener: TcpListener, args: Args) {
    let served = Rc::new(Cell::new(0u64));
    // Notified when `--max-requests` responses have been made.
    let enough = Rc::new(Notify::new());
    let timer = LoopTimer::new();
    loop {
        let accepted = futures::select! {
            r = listener.accept().fuse() => r,
            () = enough.notified().fuse() => return,
        };
        let conn = match accepted {
            Ok((conn, _)) => conn,
            Err(e) => {
                eprintln!("accept failed: {e}");
                executor::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        let (served, enough, timer) = (served.clone(), enough.clone(), timer.clone());
        executor::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (served, enough) = (served.clone(), enough.clone());
                async move {
                    let res = handle(req, args).await;
                    served.set(served.get() + 1);
                    if args.max_requests.is_some_and(|max| served.get() >= max) {
                        // After this response is written: the loop ends with `block_on`'s future.
                        executor::set_immediate(move || enough.notify_one());
                    }
                    res
                }
            });
            // Errors are the client's (a reset, a header timeout): nothing to do but close.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(timer)
                .header_read_timeout(args.header_timeout)
                .serve_connection(conn, service)
                .await;
        })
        .detach();
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hyper_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    executor::block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", args.port)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "hyper_server: cannot listen on 127.0.0.1:{}: {e}",
                    args.port
                );
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("listening on http://{addr} (mode {:?})", args.mode),
            Err(e) => eprintln!("hyper_server: local_addr: {e}"),
        }
        serve(listener, args).await;
        ExitCode::SUCCESS
    })
}
