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
//! Noise: the machine is shared, so one run of a cell says little. Each cell is measured
//! `HYPER_BENCH_ROUNDS` times per side, the two sides interleaved (which goes first alternates),
//! and the table gives each side's medians, the median of the rounds' ratios (the two sides of
//! a round run back to back, so their ratio is free of the drift between rounds), in how many
//! rounds this loop was at least as good, and how many `/primes` each side finished (a side
//! that finishes more of them gives more CPU to them, less to `/home`).
//! `HYPER_BENCH_PIN=C` pins both servers (and their worker pools) to CPU `C` and `wrk` to
//! another (`taskset`), the same for both sides.
//!
//! Run: `cargo bench --features hyper --bench hyper` (`HYPER_BENCH_SECS=2`,
//! `HYPER_BENCH_ROUNDS=5`, `HYPER_BENCH_NTH=200000`, `HYPER_BENCH_PIN` unset).
//! `HYPER_BENCH_SERVE=loop|tokio` starts only that server, prints its address and serves for
//! `HYPER_BENCH_SECS` (to look at one side with `strace -c` or `perf`). docs/benchmarks.md
//! records a run.

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
            use executor::compat::LoopTimer;
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
                        .serve_connection(conn, hyper::service::service_fn(loop_service))
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

fn run_wrk(addr: SocketAddr, conns: usize, secs: u64, cpu: Option<usize>) -> Cell {
    let mut cmd = match cpu {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", &c.to_string(), "wrk"]);
            t
        }
        None => Command::new("wrk"),
    };
    let out = cmd
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got `{v}`")),
        Err(_) => default,
    }
}

/// Pins the calling thread to CPU `cpu` (the threads it spawns afterwards inherit that:
/// the offload pool's and `spawn_blocking`'s workers too, so the /primes work shares the
/// server's CPU on both sides alike).
fn pin_to(cpu: usize) {
    // SAFETY: `set` is a plain bit set, zeroed and then filled by `CPU_SET`; the calls only
    // read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let r = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            r,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The median of `v` (the mean of the two middle values for an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `HYPER_BENCH_SERVE=loop|tokio`: only start that server, print its address and serve for
/// `HYPER_BENCH_SECS` seconds (for `strace -c`, `perf`, callgrind on one side at a time).
fn serve_only(which: &str, secs: u64) {
    let addr = match which {
        "loop" => start_loop_server(),
        "tokio" => start_tokio_server(),
        _ => panic!("HYPER_BENCH_SERVE must be `loop` or `tokio`, got `{which}`"),
    };
    println!("listening on http://{addr}");
    std::thread::sleep(Duration::from_secs(secs));
}

fn main() {
    let secs: u64 = env_or("HYPER_BENCH_SECS", 2);
    let rounds: usize = env_or("HYPER_BENCH_ROUNDS", 5);
    let nth: u32 = env_or("HYPER_BENCH_NTH", 200_000);
    // CPU for the servers; wrk gets the other one. Off unless asked.
    let pin: Option<usize> = std::env::var("HYPER_BENCH_PIN").ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("HYPER_BENCH_PIN must be a CPU number, got `{v}`"))
    });
    assert!(rounds > 0, "HYPER_BENCH_ROUNDS must be at least 1");
    if let Ok(which) = std::env::var("HYPER_BENCH_SERVE") {
        serve_only(&which, secs);
        return;
    }
    let wrk = Command::new("wrk").arg("--version").output().is_ok();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let wrk_cpu = pin.map(|c| if c == 0 { 1 } else { 0 });
    println!(
        "hyper on this loop vs tokio current_thread: GET /home, {rounds} rounds of {secs} s per \
         cell and side, sides alternating first, medians; {cores} cores; client: {}; {}",
        if wrk {
            "wrk -t1 --latency"
        } else {
            "threads (wrk not installed)"
        },
        match (pin, wrk_cpu) {
            (Some(s), Some(w)) if wrk => format!("servers pinned to CPU {s}, wrk to CPU {w}"),
            (Some(s), _) => format!("servers pinned to CPU {s}"),
            _ => "no pinning".into(),
        }
    );
    println!("with /primes: one /primes?nth={nth} at a time on the worker pool meanwhile\n");
    let (ours, theirs) = {
        // The server threads (and their worker pools) inherit the pinning; this thread's own
        // affinity is put back afterwards.
        if let Some(cpu) = pin {
            pin_to(cpu);
        }
        let pair = (start_loop_server(), start_tokio_server());
        if pin.is_some() {
            // SAFETY: as in `pin_to`: a zeroed bit set filled by `CPU_SET`.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for c in 0..cores {
                    libc::CPU_SET(c, &mut set);
                }
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
        }
        pair
    };
    let cells: Vec<(usize, bool)> = [1, 50, 500]
        .into_iter()
        .flat_map(|c| [(c, false), (c, true)])
        .collect();
    // samples[cell][side] = (req/s, p99 ms, /primes finished) per round.
    let mut samples = vec![[Vec::new(), Vec::new()]; cells.len()];
    for round in 0..rounds {
        for (i, &(conns, with_primes)) in cells.iter().enumerate() {
            // Alternate which side goes first, so neither always inherits the other's wake.
            let order = if (round + i) % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                let addr = [ours, theirs][side];
                let stop = Arc::new(AtomicBool::new(false));
                let load = with_primes.then(|| primes_load(addr, nth, stop.clone()));
                let cell = if wrk {
                    run_wrk(addr, conns, secs, wrk_cpu)
                } else {
                    run_threads(addr, conns, secs)
                };
                stop.store(true, Ordering::Relaxed);
                let primes = load.map_or(0, |l| l.join().unwrap());
                assert!(
                    !with_primes || primes > 0,
                    "no /primes finished during the run"
                );
                samples[i][side].push((cell.rps, cell.p99_ms, primes));
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    println!(
        "| conns | /primes | executor req/s | tokio req/s | ratio | executor p99 ms | tokio p99 ms \
         | rounds ahead (req/s, p99) | /primes done (executor, tokio) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, &(conns, with_primes)) in cells.iter().enumerate() {
        let [a, b] = &samples[i];
        let rps = |v: &Vec<(f64, f64, u32)>| median(&mut v.iter().map(|s| s.0).collect::<Vec<_>>());
        let p99 = |v: &Vec<(f64, f64, u32)>| median(&mut v.iter().map(|s| s.1).collect::<Vec<_>>());
        // The /primes finished in all rounds: a side that finishes more of them has more CPU
        // taken from its `/home` requests.
        let primes = |v: &Vec<(f64, f64, u32)>| v.iter().map(|s| s.2).sum::<u32>();
        // The two sides of a round ran back to back: their ratio is free of the drift between
        // rounds (the machine is shared), so the table's ratio is the median of the rounds'.
        let paired = median(&mut a.iter().zip(b).map(|(x, y)| x.0 / y.0).collect::<Vec<_>>());
        let rps_ahead = a.iter().zip(b).filter(|(x, y)| x.0 >= y.0).count();
        let p99_ahead = a.iter().zip(b).filter(|(x, y)| x.1 <= y.1).count();
        println!(
            "| {conns} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {rps_ahead}/{rounds}, \
             {p99_ahead}/{rounds} | {} |",
            if with_primes { "yes" } else { "no" },
            rps(a),
            rps(b),
            paired,
            p99(a),
            p99(b),
            if with_primes {
                format!("{}, {}", primes(a), primes(b))
            } else {
                "-".into()
            },
        );
    }
}
