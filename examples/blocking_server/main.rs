//! An HTTP server whose `/primes` route can block its event loop, to watch `/home` wait:
//! `cargo run --release --example blocking_server -- --mode sync|chunked|offload|cluster`.
//!
//! Routes: `GET /home` answers `Welcome Home!`; `GET /primes?nth=N` answers the N-th prime,
//! computed per `--mode` (see `server.rs`), or, with `--mode cluster`, on each of `--loops`
//! loops per `--inner` (see `cluster.rs`). The README shows how to try it with `curl`.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it gracefully: requests in flight are answered, then it
//! prints how many responses it sent and, with `--trace FILE`, writes what each loop ran (every
//! callback, task poll and I/O wake-up).

#[path = "../support/cli.rs"]
mod cli;
mod cluster;
mod server;
mod signals;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use executor::EventLoop;
use executor::net::TcpListener;
use executor::observe::{Trace, TraceFormat, TraceRecorder, write_trace_file};

use cluster::dispatch::Policy;
use cluster::{Cluster, ClusterConfig, MAX_LOOPS};
use server::{Config, MAX_NTH, Mode};

const USAGE: &str = "\
usage: blocking_server [options]
  --port N                port on 127.0.0.1 (0..=65535; default 0: the OS picks one; the address
                          is printed)
  --mode MODE             how /primes computes: sync (blocks the loop), chunked (500 us chunks on
                          the loop) or offload (the worker pool); or cluster: --loops loops on as
                          many threads, each computing per --inner; default sync
  --loops N               cluster: the number of loops (1..=256, default: the number of CPUs)
  --inner MODE            cluster: how each loop computes /primes: sync, chunked or offload
                          (default sync)
  --dispatch POLICY       cluster: how connections reach the loops: load-aware (one acceptor
                          skips loops stuck in one callback over 2 ms), round-robin (one
                          acceptor, Node.js's cluster rule) or reuseport (one SO_REUSEPORT
                          listener per loop, the kernel picks); default load-aware
  --chunk-share PERCENT   chunked mode: hold about PERCENT % of the loop (1..=99): a chunk grows
                          with the time the loop spent elsewhere since the last one (default:
                          fixed 500 us chunks)
  --max-requests N        stop after N responses, answering those then in flight (default: serve
                          until SIGINT or SIGTERM)
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
                          must be writable at startup. In cluster mode, one process per loop (and
                          one for the acceptor)
  --trace-limit N         spans kept per loop, later ones only counted (1..=10000000, default
                          1000000)
  --help                  this text";

/// What the command line asks for.
struct Args {
    port: u16,
    config: Config,
    /// `Some` with `--mode cluster` (`config.mode` is then `--inner`).
    cluster: Option<ClusterConfig>,
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
    // The cluster flags, checked against `--mode` once every flag is read.
    let (mut cluster_mode, mut loops, mut inner, mut policy) = (false, None, None, None);
    let mode_values = "sync, chunked, offload or cluster";
    let ms = |flag: &str, v| cli::whole(flag, v, 1, MAX_TIMEOUT_MS).map(Duration::from_millis);
    let mut it = cli::utf8_args()?.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = cli::whole(&a, it.next(), 0, 65_535)? as u16,
            "--mode" => {
                let v = it
                    .next()
                    .ok_or(format!("--mode needs a value ({mode_values})"))?;
                cluster_mode = v == "cluster";
                if !cluster_mode {
                    config.mode = Mode::parse(&v)
                        .ok_or(format!("--mode: expected {mode_values}, got `{v}`"))?;
                }
            }
            "--loops" => loops = Some(cli::whole(&a, it.next(), 1, MAX_LOOPS as u64)? as usize),
            "--inner" => {
                let v = it
                    .next()
                    .ok_or("--inner needs a value (sync, chunked or offload)")?;
                inner = Some(Mode::parse(&v).ok_or(format!(
                    "--inner: expected sync, chunked or offload, got `{v}`"
                ))?);
            }
            "--dispatch" => {
                let v = it
                    .next()
                    .ok_or("--dispatch needs a value (load-aware, round-robin or reuseport)")?;
                policy = Some(Policy::parse(&v).ok_or(format!(
                    "--dispatch: expected load-aware, round-robin or reuseport, got `{v}`"
                ))?);
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
    let cluster = if cluster_mode {
        config.mode = inner.unwrap_or(Mode::Sync);
        Some(ClusterConfig {
            loops: loops.unwrap_or_else(server::default_max_heavy),
            policy: policy.unwrap_or(Policy::LoadAware),
            trace_limit: trace.as_ref().map(|_| trace_limit),
        })
    } else {
        for (flag, given) in [
            ("--loops", loops.is_some()),
            ("--inner", inner.is_some()),
            ("--dispatch", policy.is_some()),
        ] {
            if given {
                return Err(format!(
                    "{flag} applies to --mode cluster only (for one loop, --mode sets how \
                     /primes computes)"
                ));
            }
        }
        None
    };
    Ok(Some(Args {
        port,
        config,
        cluster,
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
    // Before any other thread exists, so that every thread inherits the blocked mask and the
    // signals wait for `sigwait` instead of killing the process.
    let stop = match signals::on_sigint_or_sigterm() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("blocking_server: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = async {
        // An error means the signal thread is gone: then only SIGKILL stops us, as before.
        if stop.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let ev = EventLoop::new();
    let recorder = args
        .trace
        .as_ref()
        .map(|_| TraceRecorder::with_limit(&ev, args.trace_limit));
    let (served, loops) = match args.cluster {
        None => (one_loop(&ev, args.port, args.config, shutdown), Vec::new()),
        Some(c) => match run_cluster(&ev, args.port, args.config, c, shutdown) {
            Ok((outcome, loops)) => (
                outcome.map(|()| loops.iter().map(|l| l.served).sum()),
                loops,
            ),
            Err(e) => (Err(e.to_string()), Vec::new()),
        },
    };
    let mut ok = true;
    if let (Some(path), Some(recorder)) = (&args.trace, recorder) {
        let name = if args.cluster.is_some() {
            "acceptor"
        } else {
            "server"
        };
        let mut runs: Vec<(String, Trace)> = vec![(name.to_string(), recorder.finish())];
        for (i, l) in loops.iter().enumerate() {
            if let Some(t) = &l.trace {
                runs.push((format!("loop {i}"), t.clone()));
            }
        }
        ok &= write_traces(path, &runs);
    }
    for (i, l) in loops.iter().enumerate() {
        if let Some(p) = &l.panic {
            eprintln!("blocking_server: loop {i} panicked ({p}); the others served on");
            ok = false;
        }
        if l.left_open > 0 {
            eprintln!(
                "blocking_server: loop {i}: {} connections still open after the drain \
                 deadline were dropped",
                l.left_open
            );
        }
    }
    match served {
        Ok(n) if loops.is_empty() => println!("served {n} responses"),
        Ok(n) => {
            let each: Vec<String> = loops.iter().map(|l| l.served.to_string()).collect();
            println!("served {n} responses (per loop: {})", each.join(", "));
        }
        Err(e) => {
            eprintln!("blocking_server: {e}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Serves on `ev` alone until `shutdown`: the number of responses sent.
fn one_loop(
    ev: &EventLoop,
    port: u16,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u64, String> {
    ev.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        announce(listener.local_addr()?, config.mode.name())?;
        std::io::Result::Ok(server::serve(listener, config, shutdown).await)
    })
    .map_err(|e| e.to_string())
}

/// Serves on `cluster.loops` loops, accepting on `ev`, until `shutdown`: how the acceptor
/// ended, and what each loop did.
fn run_cluster(
    ev: &EventLoop,
    port: u16,
    config: Config,
    c: ClusterConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<(Result<(), String>, Vec<cluster::LoopReport>)> {
    let listener = cluster::bind(([127, 0, 0, 1], port).into(), c.policy)?;
    let addr = listener.local_addr()?;
    let mut cluster = Cluster::start(listener, config, c)?;
    let mode = format!(
        "cluster ({} loops, inner {}, dispatch {})",
        c.loops,
        config.mode.name(),
        c.policy.name()
    );
    announce(addr, &mode)?;
    let outcome = ev.block_on(cluster.serve(shutdown));
    Ok((outcome, cluster.join()))
}

/// Prints where the server listens and what it serves.
fn announce(addr: std::net::SocketAddr, mode: &str) -> std::io::Result<()> {
    println!("listening on http://{addr}");
    println!("mode {mode}: GET /home, GET /primes?nth=N");
    // Scripts wait for these lines: do not leave them in a pipe's buffer.
    std::io::stdout().flush()
}

/// Writes `runs` to `path` (one process per run); `false` if it could not.
fn write_traces(path: &str, runs: &[(String, Trace)]) -> bool {
    let named: Vec<(&str, &Trace)> = runs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let title = if runs.len() > 1 {
        "blocking_server: what each loop ran"
    } else {
        "blocking_server: what the loop ran"
    };
    match write_trace_file(path, title, &named) {
        Ok(()) => {
            let spans: usize = runs.iter().map(|(_, t)| t.spans.len()).sum();
            let dropped: u64 = runs.iter().map(|(_, t)| t.dropped).sum();
            println!(
                "trace of {spans} spans{} written to {path}{}",
                if runs.len() > 1 {
                    format!(" from {} loops", runs.len())
                } else {
                    String::new()
                },
                if dropped > 0 {
                    format!(" ({dropped} past --trace-limit not kept)")
                } else {
                    String::new()
                }
            );
            true
        }
        Err(e) => {
            eprintln!("blocking_server: cannot write {path}: {e}");
            false
        }
    }
}
