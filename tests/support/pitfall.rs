//! The pitfall of "more nodes", measured against a running server: `k` heavy
//! `GET /primes?nth=N` sent at once and, from then until the last of them is answered, `/home`
//! every `period`, open-loop as in `side_by_side.rs` (request *i* starts at *i* × `period` on
//! its own thread and connection, answered or not). With `k` = 0, `idle_homes` requests.
//! Used by `benches/cluster.rs`, in-process or through a load balancer (`benches/balanced.sh`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::side_by_side::{get, percentile};

/// One measurement.
#[derive(Debug)]
pub struct Pitfall {
    /// Heavy requests sent at once.
    pub k: usize,
    /// From sending them to the last answer.
    pub heavy: Duration,
    /// Heavy requests not answered 200.
    pub heavy_failed: usize,
    /// Latencies of the `/home` requests sent while heavy ones were pending (or all, for
    /// `k` = 0), sorted.
    pub homes: Vec<Duration>,
    /// `/home` requests not answered `200 Welcome Home!`.
    pub homes_failed: usize,
}

/// Measures `addr` as the module says; at most `max_homes` `/home` requests.
pub fn measure(
    addr: SocketAddr,
    k: usize,
    nth: u32,
    period: Duration,
    idle_homes: usize,
    max_homes: usize,
) -> Pitfall {
    assert_eq!(get(addr, "/home").expect("warm-up /home").0, 200);
    let pending = Arc::new(AtomicUsize::new(k));
    let start = Arc::new(Barrier::new(k + 1));
    let heavies: Vec<_> = (0..k)
        .map(|_| {
            let (pending, start) = (pending.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let ok = matches!(get(addr, &format!("/primes?nth={nth}")), Ok((200, _)));
                pending.fetch_sub(1, Ordering::AcqRel);
                (Instant::now(), ok)
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let mut homes = Vec::new();
    for i in 0..max_homes {
        if (k == 0 && i == idle_homes) || (k > 0 && pending.load(Ordering::Acquire) == 0) {
            break;
        }
        if let Some(wait) = (t0 + period * i as u32).checked_duration_since(Instant::now()) {
            thread::sleep(wait); // the client's schedule, not a wait for the server
        }
        homes.push(thread::spawn(move || {
            let sent = Instant::now();
            let ok = matches!(get(addr, "/home"), Ok((200, body)) if body == "Welcome Home!\n");
            (sent.elapsed(), ok)
        }));
    }
    let heavy: Vec<(Instant, bool)> = heavies.into_iter().map(|h| h.join().unwrap()).collect();
    let homes: Vec<(Duration, bool)> = homes.into_iter().map(|h| h.join().unwrap()).collect();
    let last = heavy.iter().map(|h| h.0).max().unwrap_or(t0);
    let mut latencies: Vec<Duration> = homes.iter().map(|h| h.0).collect();
    latencies.sort();
    Pitfall {
        k,
        heavy: last - t0,
        heavy_failed: heavy.iter().filter(|h| !h.1).count(),
        homes_failed: homes.iter().filter(|h| !h.1).count(),
        homes: latencies,
    }
}

/// The report table's header (see [`row`]).
pub const HEADER: &str = "\
| server                        | k | heavy s | /home | p50 ms | p99 ms  | max ms  |
|-------------------------------|--:|--------:|------:|-------:|--------:|--------:|";

/// One line of the report table.
pub fn row(label: &str, p: &Pitfall) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let failed = if p.heavy_failed + p.homes_failed > 0 {
        format!(
            " ({} heavy, {} /home failed)",
            p.heavy_failed, p.homes_failed
        )
    } else {
        String::new()
    };
    format!(
        "| {:<29} | {} | {:>7.2} | {:>5} | {:>6.2} | {:>7.2} | {:>7.2} |{failed}",
        label,
        p.k,
        p.heavy.as_secs_f64(),
        p.homes.len(),
        ms(percentile(&p.homes, 50.0)),
        ms(percentile(&p.homes, 99.0)),
        ms(p.homes.last().copied().unwrap_or_default()),
    )
}
