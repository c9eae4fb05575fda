//! The same hyper service on this loop (`executor::compat`) and on tokio's current-thread
//! runtime (hyper-util's `TokioIo`/`TokioTimer`), side by side in one run: `GET /home`
//! requests per second and p99 latency at 1, 50 and 500 keep-alive connections, with and
//! without one `/primes?nth=N` at a time running concurrently (on the worker pool:
//! `executor::offload` here, `spawn_blocking` there).
//!
//! Driven by `wrk` on loopback when it is installed (`wrk -t1 -cC -dD --latency`), else by a
//! bounded Rust client (one thread per connection, each sending `/home` back to back for the
//! same duration). Each server runs on its own thread, one loop / one runtime.
//!
//! Run: `cargo bench --features hyper --bench hyper` (`HYPER_BENCH_SECS=3`,
//! `HYPER_BENCH_NTH=200000`). docs/benchmarks.md records a run.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

fn nth_of(req: &Request<Incoming>) -> Option<u32> {
    req.uri()
        .query()?
        .strip_prefix("nth=")?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res
}

/// The service, on this loop.
async fn loop_service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.uri().path(), nth_of(&req)) {
        ("/home", _) => text(StatusCode::OK, "Welcome Home!\n".into()),
        ("/primes", Some(n)) => {
            let p = executor::offload(move || executor::demo::prime::find_nth_prime(n))
                .await
                .unwrap();
            text(StatusCode::OK, format!("{p}\n"))
        }
        _ => text(StatusCode::NOT_FOUND, String::new()),
    })
}

/// The same service, on tokio.
async fn tokio_service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.uri().path(), nth_of(&req)) {
        ("/home", _) => text(StatusCode::OK, "Welcome Home!\n".into()),
        ("/primes", Some(n)) => {
            let p = tokio::task::spawn_blocking(move || executor::demo::prime::find_nth_prime(n))
                .await
                .unwrap();
            text(StatusCode::OK, format!("{p}\n"))
        }
        _ => text(StatusCode::NOT_FOUND, String::new()),
    })
}

/// Starts the server on this loop, on its own thread; returns its address.
fn start_loop_server() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        executor::block_on(async move {
            use executor::compat::{HyperIo, LoopTimer};
            let listener = executor::net::TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let timer = LoopTimer::new();
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let _ = conn.set_nodelay(true);
                let timer = timer.clone();
                executor::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(timer)
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(
                            HyperIo::new(conn),
                            hyper::service::service_fn(loop_service),
                        )
                        .await;
                })
                .detach();
            }
        })
    });
    rx.recv().unwrap()
}

/// Starts the server on tokio's current-thread runtime, on its own thread.
fn start_tokio_server() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use hyper_util::rt::{TokioIo, TokioTimer};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let _ = conn.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(
                            TokioIo::new(conn),
                            hyper::service::service_fn(tokio_service),
                        )
                        .await;
                });
            }
        })
    });
    rx.recv().unwrap()
}

/// One measurement: requests per second and p99 latency in ms.
struct Cell {
    rps: f64,
    p99_ms: f64,
}

/// `wrk`'s duration ("1.23ms", "850.00us", "1.02s") in ms.
fn wrk_ms(s: &str) -> Option<f64> {
    let (num, mult) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * mult)
}

fn run_wrk(addr: SocketAddr, conns: usize, secs: u64) -> Cell {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            &format!("http://{addr}/home"),
        ])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| wrk_ms(v.trim()))
        .unwrap_or_else(|| panic!("no 99% line in wrk's output:\n{text}"));
    Cell { rps, p99_ms }
}

/// The fallback client: `conns` threads, each with one keep-alive connection sending `/home`
/// back to back until `secs` have passed.
fn run_threads(addr: SocketAddr, conns: usize, secs: u64) -> Cell {
    let end = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                while Instant::now() < end {
                    let t = Instant::now();
                    s.write_all(b"GET /home HTTP/1.1\r\nHost: b\r\n\r\n")
                        .unwrap();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        r.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    Cell {
        rps: all.len() as f64 / secs as f64,
        p99_ms: p99.as_secs_f64() * 1000.0,
    }
}

/// Sends `/primes?nth=N` one at a time until stopped.
fn primes_load(addr: SocketAddr, nth: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut done = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "GET /primes?nth={nth} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
            done += 1;
        }
        done
    })
}

fn main() {
    let secs: u64 = std::env::var("HYPER_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let nth: u32 = std::env::var("HYPER_BENCH_NTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let wrk = Command::new("wrk").arg("--version").output().is_ok();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "hyper on this loop vs tokio current_thread: GET /home, {secs} s per cell, {cores} cores, \
         client: {}",
        if wrk {
            "wrk -t1 --latency"
        } else {
            "threads (wrk not installed)"
        }
    );
    println!("with /primes: one /primes?nth={nth} at a time on the worker pool meanwhile\n");
    println!(
        "| conns | /primes | executor req/s | tokio req/s | ratio | executor p99 ms | tokio p99 ms |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    let ours = start_loop_server();
    let theirs = start_tokio_server();
    for conns in [1, 50, 500] {
        for with_primes in [false, true] {
            let mut cells = Vec::new();
            for addr in [ours, theirs] {
                let stop = Arc::new(AtomicBool::new(false));
                let load = with_primes.then(|| primes_load(addr, nth, stop.clone()));
                let cell = if wrk {
                    run_wrk(addr, conns, secs)
                } else {
                    run_threads(addr, conns, secs)
                };
                stop.store(true, Ordering::Relaxed);
                if let Some(l) = load {
                    assert!(l.join().unwrap() > 0, "no /primes finished during the run");
                }
                cells.push(cell);
            }
            println!(
                "| {conns} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
                if with_primes { "yes" } else { "no" },
                cells[0].rps,
                cells[1].rps,
                cells[0].rps / cells[1].rps,
                cells[0].p99_ms,
                cells[1].p99_ms
            );
        }
    }
}
