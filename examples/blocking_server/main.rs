//! An HTTP server whose `/primes` route can block its event loop, to watch `/home` wait:
//! `cargo run --release --example blocking_server -- --mode sync|chunked|offload`.
//!
//! Routes: `GET /home` answers `Welcome Home!`; `GET /primes?nth=N` answers the N-th prime,
//! computed per `--mode` (see `server.rs`). The README shows how to try it with `curl`.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it cleanly: it prints how many responses it sent and, with
//! `--trace FILE`, writes what its loop ran (every callback, task poll and I/O wake-up).

mod server;
mod signals;

use std::io::Write;
use std::process::ExitCode;

use executor::EventLoop;
use executor::net::TcpListener;
use executor::observe::{TraceFormat, TraceRecorder, write_trace_file};
use server::{Config, Mode};

const USAGE: &str = "\
usage: blocking_server [options]
  --port N              port on 127.0.0.1 (default 0: the OS picks one; the address is printed)
  --mode MODE           how /primes computes: sync (blocks the loop), chunked (500 us chunks on
                        the loop) or offload (another thread); default sync
  --max-requests N      exit after N responses (default: serve until SIGINT or SIGTERM)
  --trace FILE          record every callback, task poll and I/O wake-up of the loop and write
                        them on exit to FILE: Chrome Trace Event JSON if FILE ends in .json (open
                        in ui.perfetto.dev or chrome://tracing), an SVG timeline if .svg
  --trace-limit N       spans kept, later ones only counted (1..=10000000, default 1000000)
  --help                this text";

/// What the command line asks for.
struct Args {
    port: u16,
    config: Config,
    /// Where to write the trace, if anywhere.
    trace: Option<String>,
    trace_limit: usize,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut port = 0u16;
    let (mut trace, mut trace_limit) = (None, executor::observe::DEFAULT_LIMIT);
    let mut config = Config {
        mode: Mode::Sync,
        max_requests: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--port" => {
                let v = value()?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port: `{v}` is not a port number"))?;
            }
            "--mode" => {
                let v = value()?;
                config.mode = Mode::parse(&v).ok_or(format!(
                    "--mode: expected sync, chunked or offload, got `{v}`"
                ))?;
            }
            "--max-requests" => {
                let v = value()?;
                let n: u64 = v.parse().ok().filter(|&n| n > 0).ok_or(format!(
                    "--max-requests: `{v}` is not a positive whole number"
                ))?;
                config.max_requests = Some(n);
            }
            "--trace" => {
                let f = value()?;
                if TraceFormat::from_path(&f).is_none() {
                    return Err(format!("--trace: `{f}` must end in .json or .svg"));
                }
                trace = Some(f);
            }
            "--trace-limit" => {
                let v = value()?;
                trace_limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000_000).contains(n))
                    .ok_or(format!(
                        "--trace-limit: `{v}` is not a whole number in 1..=10000000"
                    ))?;
            }
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown option `{other}`")),
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
