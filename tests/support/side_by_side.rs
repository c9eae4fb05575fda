//! The blocked-server measurement, shared by `tests/blocking_server.rs` and `benches/server.rs`:
//! start the example's server in one mode on its own thread (with its own loop), send one slow
//! `GET /primes?nth=N`, and meanwhile request `/home` on a fixed schedule, recording every
//! latency.
//!
//! The `/home` client is open-loop: request `i` starts at `i × period` after the prime request
//! was sent, each on its own thread and connection, whether or not earlier ones were answered,
//! so a blocked server shows every request it held up (a closed-loop client would send one
//! request and wait with it, hiding the rest).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use super::server::{self, Config, Mode};

/// How long a client waits for any one response before giving up on it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The example's server running in this process, on its own thread and loop.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    thread: thread::JoinHandle<u64>,
}

impl Server {
    /// Starts a server in `mode`, with the default limits, on a port the OS picks.
    pub fn start(mode: Mode) -> Server {
        Server::start_with(Config::new(mode))
    }

    /// Starts a server configured by `config` on a port the OS picks.
    pub fn start_with(config: Config) -> Server {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = std_listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let ev = executor::EventLoop::new();
            ev.block_on(async move {
                let listener = executor::net::TcpListener::from_std(std_listener).unwrap();
                server::serve(listener, config, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Server { addr, stop, thread }
    }

    /// Stops the server and returns how many responses it sent.
    pub fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.thread.join().expect("the server thread panicked")
    }
}

/// A blocking `GET path` on a new connection (`Connection: close`): the status and the body.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {raw:?}")))?;
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// One `/home` request.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When the client started connecting.
    pub sent: Instant,
    /// When the whole response had arrived (or the request failed).
    pub done: Instant,
    /// Whether it was answered `200 Welcome Home!`.
    pub ok: bool,
}

impl Sample {
    /// The request's latency.
    pub fn latency(&self) -> Duration {
        self.done - self.sent
    }
}

/// One measurement.
#[derive(Debug)]
pub struct Run {
    /// The server's mode.
    pub mode: Mode,
    /// The prime asked for.
    pub nth: u32,
    /// The prime answered.
    pub prime: u64,
    /// When the prime request had been written.
    pub prime_sent: Instant,
    /// When the prime response had arrived.
    pub prime_done: Instant,
    /// Every `/home` request, in the order they were sent.
    pub homes: Vec<Sample>,
}

impl Run {
    /// The prime request's round trip.
    pub fn prime_time(&self) -> Duration {
        self.prime_done - self.prime_sent
    }

    /// The `/home` requests sent while the prime request was pending.
    pub fn during(&self) -> Vec<Sample> {
        self.homes
            .iter()
            .copied()
            .filter(|h| h.sent < self.prime_done)
            .collect()
    }

    /// How many `/home` requests were answered before the prime response arrived.
    pub fn answered_before_prime(&self) -> usize {
        self.homes
            .iter()
            .filter(|h| h.ok && h.done < self.prime_done)
            .count()
    }

    /// Latencies of the `/home` requests sent while the prime was pending, sorted.
    pub fn latencies_during(&self) -> Vec<Duration> {
        let mut l: Vec<Duration> = self.during().iter().map(Sample::latency).collect();
        l.sort();
        l
    }
}

/// The machine, for a benchmark's report: its core count and CPU model.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// The `p`-th percentile (0..=100) of sorted `values`, nearest-rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Starts a server in `mode`, sends `GET /primes?nth={nth}` and, from then until `after` more
/// requests have been sent after the prime response arrived (at most `max_homes` in all),
/// requests `/home` every `period`.
pub fn measure(mode: Mode, nth: u32, period: Duration, after: usize, max_homes: usize) -> Run {
    let server = Server::start(mode);
    let addr = server.addr;
    // Warm up: the server is accepting, the client's code paths are hot.
    let (status, _) = get(addr, "/home").expect("warm-up /home");
    assert_eq!(status, 200);

    let prime_arrived = Arc::new(AtomicBool::new(false));
    let (sent_tx, sent_rx) = mpsc::channel();
    let arrived = prime_arrived.clone();
    let prime_client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect for /primes");
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        write!(
            s,
            "GET /primes?nth={nth} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        sent_tx.send(Instant::now()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw)
            .expect("read the /primes response");
        let done = Instant::now();
        arrived.store(true, Ordering::Release);
        let prime = raw
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| b.trim().parse().ok())
            .unwrap_or_else(|| panic!("bad /primes response: {raw:?}"));
        (done, prime)
    });
    let prime_sent = sent_rx.recv().expect("the prime client failed");

    let mut homes = Vec::new();
    let mut sent_after = 0;
    for i in 0..max_homes {
        if prime_arrived.load(Ordering::Acquire) {
            if sent_after == after {
                break;
            }
            sent_after += 1;
        }
        let at = prime_sent + period * i as u32;
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            thread::sleep(wait); // the client's schedule, not a wait for the server
        }
        homes.push(thread::spawn(move || {
            let sent = Instant::now();
            let r = get(addr, "/home");
            let done = Instant::now();
            let ok = matches!(&r, Ok((200, body)) if body.starts_with("Welcome Home!"));
            Sample { sent, done, ok }
        }));
    }
    let (prime_done, prime) = prime_client.join().expect("the prime client panicked");
    let homes = homes
        .into_iter()
        .map(|h| h.join().expect("a /home client panicked"))
        .collect();
    server.stop();
    Run {
        mode,
        nth,
        prime,
        prime_sent,
        prime_done,
        homes,
    }
}

/// One line of the report table (see [`TABLE_HEADER`]).
pub fn table_row(run: &Run) -> String {
    let l = run.latencies_during();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "| {:<7} | {:>9} | {:>9.1} | {:>5} | {:>6} | {:>8.2} | {:>8.2} | {:>8.2} |",
        run.mode.name(),
        run.nth,
        ms(run.prime_time()),
        l.len(),
        run.answered_before_prime(),
        ms(percentile(&l, 50.0)),
        ms(percentile(&l, 99.0)),
        ms(l.last().copied().unwrap_or_default()),
    )
}

/// The report table's header: one row per mode, `/home` latencies of the requests sent while
/// the prime was pending.
pub const TABLE_HEADER: &str = "\
| mode    |       nth | prime ms  | /home | before |  p50 ms  |  p99 ms  |  max ms  |
|---------|----------:|----------:|------:|-------:|---------:|---------:|---------:|";
