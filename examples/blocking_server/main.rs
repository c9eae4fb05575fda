//! An HTTP server whose `/primes` route can block its event loop, to watch `/home` wait:
//! `cargo run --release --example blocking_server -- --mode sync|chunked|offload`.
//!
//! Routes: `GET /home` answers `Welcome Home!`; `GET /primes?nth=N` answers the N-th prime,
//! computed per `--mode` (see `server.rs`). The README shows how to try it with `curl`.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it cleanly: it prints how many responses it sent and, with
//! `--trace FILE`, writes what its loop ran (every callback, task poll and I/O wake-up).

#[path = "../support/cli.rs"]
mod cli;
mod server;
mod signals;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use executor::EventLoop;
use executor::net::TcpListener;
use executor::observe::{TraceFormat, TraceRecorder, write_trace_file};
use server::{Config, MAX_NTH, Mode};

const USAGE: &str = "\
usage: blocking_server [options]
  --port N                port on 127.0.0.1 (0..=65535; default 0: the OS picks one; the address
                          is printed)
  --mode MODE             how /primes computes: sync (blocks the loop), chunked (500 us chunks on
                          the loop) or offload (the worker pool); default sync
  --chunk-share PERCENT   chunked mode: hold about PERCENT % of the loop (1..=99): a chunk grows
                          with the time the loop spent elsewhere since the last one (default:
                          fixed 500 us chunks)
  --max-requests N        exit after N responses (default: serve until SIGINT or SIGTERM)
  --max-nth N             the largest /primes?nth served (1..=5000000, default 5000000)
  --max-heavy N           the most /primes computed at once; more get 503 with Retry-After
                          (1..=1024, default: the number of CPUs)
  --idle-timeout-ms N     close a connection silent this long between requests (1..=3600000,
                          default 10000)
  --request-timeout-ms N  a request, head and body, must arrive within N ms of its first byte,
                          else 408 and close (1..=3600000, default 10000)
  --write-timeout-ms N    a response must be written within N ms, else the connection is
                          dropped (1..=3600000, default 10000)
  --trace FILE            record every callback, task poll and I/O wake-up of the loop and write
                          them on exit to FILE: Chrome Trace Event JSON if FILE ends in .json (open
                          in ui.perfetto.dev or chrome://tracing), an SVG timeline if .svg; FILE
                          must be writable at startup
  --trace-limit N         spans kept, later ones only counted (1..=10000000, default 1000000)
  --help                  this text";

/// What the command line asks for.
struct Args {
    port: u16,
    config: Config,
    /// Where to write the trace, if anywhere.
    trace: Option<String>,
    trace_limit: usize,
}

/// The longest timeout the flags take: an hour.
const MAX_TIMEOUT_MS: u64 = 3_600_000;

fn parse_args() -> Result<Option<Args>, String> {
    let mut port = 0u16;
    let (mut trace, mut trace_limit) = (None, executor::observe::DEFAULT_LIMIT);
    let mut config = Config::new(Mode::Sync);
    let ms = |flag: &str, v| cli::whole(flag, v, 1, MAX_TIMEOUT_MS).map(Duration::from_millis);
    let mut it = cli::utf8_args()?.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = cli::whole(&a, it.next(), 0, 65_535)? as u16,
            "--mode" => {
                let v = it
                    .next()
                    .ok_or("--mode needs a value (sync, chunked or offload)")?;
                config.mode = Mode::parse(&v).ok_or(format!(
                    "--mode: expected sync, chunked or offload, got `{v}`"
                ))?;
            }
            "--chunk-share" => {
                config.chunk_share = Some(cli::whole(&a, it.next(), 1, 99)? as u8);
            }
            "--max-requests" => {
                config.max_requests = Some(cli::whole(&a, it.next(), 1, u64::MAX)?);
            }
            "--max-nth" => {
                config.max_nth = cli::whole(&a, it.next(), 1, u64::from(MAX_NTH))? as u32;
            }
            "--max-heavy" => config.max_heavy = cli::whole(&a, it.next(), 1, 1024)? as usize,
            "--idle-timeout-ms" => config.idle_timeout = ms(&a, it.next())?,
            "--request-timeout-ms" => config.request_timeout = ms(&a, it.next())?,
            "--write-timeout-ms" => config.write_timeout = ms(&a, it.next())?,
            "--trace" => {
                let f = it
                    .next()
                    .ok_or("--trace needs a file name (ending in .json or .svg)")?;
                if TraceFormat::from_path(&f).is_none() {
                    return Err(format!("--trace: `{f}` must end in .json or .svg"));
                }
                cli::check_writable("--trace", &f)?;
                trace = Some(f);
            }
            "--trace-limit" => {
                trace_limit = cli::whole(&a, it.next(), 1, 10_000_000)? as usize;
            }
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown option `{other}` (the options are below)")),
        }
    }
    Ok(Some(Args {
        port,
        config,
        trace,
        trace_limit,
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("blocking_server: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Args {
        port,
        config,
        trace,
        trace_limit,
    } = args;
    // Before any other thread exists, so that every thread inherits the blocked mask and the
    // signals wait for `sigwait` instead of killing the process.
    let stop = match signals::on_sigint_or_sigterm() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("blocking_server: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ev = EventLoop::new();
    let recorder = trace
        .as_ref()
        .map(|_| TraceRecorder::with_limit(&ev, trace_limit));
    let served = ev.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        println!("mode {}: GET /home, GET /primes?nth=N", config.mode.name());
        // Scripts wait for this line: do not leave it in a pipe's buffer.
        std::io::stdout().flush()?;
        let shutdown = async {
            // An error means the signal thread is gone: then only SIGKILL stops us, as before.
            if stop.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        std::io::Result::Ok(server::serve(listener, config, shutdown).await)
    });
    if let (Some(path), Some(recorder)) = (&trace, recorder) {
        let t = recorder.finish();
        match write_trace_file(
            path,
            "blocking_server: what the loop ran",
            &[("server", &t)],
        ) {
            Ok(()) => println!(
                "trace of {} spans written to {path}{}",
                t.spans.len(),
                if t.dropped > 0 {
                    format!(" ({} past --trace-limit not kept)", t.dropped)
                } else {
                    String::new()
                }
            ),
            Err(e) => {
                eprintln!("blocking_server: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match served {
        Ok(n) => {
            println!("served {n} responses");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blocking_server: {e}");
            ExitCode::FAILURE
        }
    }
}
