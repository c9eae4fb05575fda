//! An HTTP server whose `/primes` route can block its event loop, to watch `/home` wait:
//! `cargo run --release --example blocking_server -- --mode sync|chunked|offload`.
//!
//! Routes: `GET /home` answers `Welcome Home!`; `GET /primes?nth=N` answers the N-th prime,
//! computed per `--mode` (see `server.rs`). docs/io-howto.md shows how to try it with `curl`.

mod server;

use std::io::Write;
use std::process::ExitCode;

use executor::EventLoop;
use executor::net::TcpListener;
use server::{Config, Mode};

const USAGE: &str = "\
usage: blocking_server [options]
  --port N              port on 127.0.0.1 (default 0: the OS picks one; the address is printed)
  --mode MODE           how /primes computes: sync (blocks the loop), chunked (500 us chunks on
                        the loop) or offload (another thread); default sync
  --max-requests N      exit after N responses (default: serve until killed)
  --help                this text";

fn parse_args() -> Result<Option<(u16, Config)>, String> {
    let mut port = 0u16;
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
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(Some((port, config)))
}

fn main() -> ExitCode {
    let (port, config) = match parse_args() {
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
    let ev = EventLoop::new();
    // (A `--trace FILE` option would install the trace recorder here: `ev.add_observer(..)`.)
    let served = ev.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        println!("mode {}: GET /home, GET /primes?nth=N", config.mode.name());
        // Scripts wait for this line: do not leave it in a pipe's buffer.
        std::io::stdout().flush()?;
        std::io::Result::Ok(server::serve(listener, config, std::future::pending()).await)
    });
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
