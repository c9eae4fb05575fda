//! Reproduces two attacks on the blocked server, against 127.0.0.1 only, bounded in count and
//! time, and prints what they cost the server: CPU seconds and peak RSS (Linux `/proc`).
//!
//! ```sh
//! cargo build --release --example blocking_server --example server_attacks
//! target/release/examples/server_attacks                     # all modes, both attacks
//! target/release/examples/server_attacks --server OLD_BINARY  # the same against another build
//! ```
//!
//! - **abandon**: 50 clients each send `GET /primes?nth=5000000` and hang up at once (2 KB of
//!   traffic). Over the next `--window` seconds: the server's CPU seconds and peak RSS, and
//!   whether a `/home` sent at the end is answered.
//! - **slow-body**: the server runs under `ulimit -n 128`; 200 clients each send a request head
//!   announcing a 64 KiB body, then one body byte per client per second. Over the window: how
//!   many slow connections the server still holds at the end, how many of the `/home` probes
//!   (one a second, 2 s each) were answered, and how many `accept:` lines it logged.
//!
//! Only flags every build of the server takes are passed (`--mode`), so an older binary can be
//! measured the same way. Each server is killed at the end of its window.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: server_attacks [options]
  --server BIN     the blocking_server binary (default: the one beside this program)
  --modes LIST     comma-separated: sync,chunked,offload (default: all)
  --attacks LIST   comma-separated: abandon,slow-body (default: both)
  --window S       seconds each attack is watched (1..=120, default 12; the slow-body
                   attack needs more than the server's request deadline, e.g. 25)
  --help           this text";

/// The server process under attack.
struct Target {
    child: Child,
    addr: String,
    /// Every stderr line it printed so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Target {
    /// Starts `bin --mode mode`, under `ulimit -n fds` if given.
    fn start(bin: &PathBuf, mode: &str, fds: Option<u32>) -> Result<Target, String> {
        let limit = fds.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" --mode {mode}"))
            .arg(bin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        // Keep reading: a closed pipe would fail the server's next print.
        thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .ok_or(format!("unexpected first line {line:?}"))?
            .to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().expect("piped");
        thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Ok(Target { child, addr, log })
    }

    /// User plus system CPU seconds so far (`/proc/PID/stat` fields 14 and 15).
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised name; utime and stime are the 12th and 13th of them.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        // SAFETY: `sysconf` with a valid name has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / hz
    }

    /// A `/proc/PID/status` field in MB (`VmHWM`: peak RSS; `VmRSS`: RSS now).
    fn mem_mb(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /home` with a bound: whether `Welcome Home!` came back.
fn home(addr: &str, limit: Duration) -> bool {
    let Ok(sock) = addr.parse() else { return false };
    let Ok(mut s) = TcpStream::connect_timeout(&sock, limit) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(limit));
    let _ = s.set_write_timeout(Some(limit));
    if s.write_all(b"GET /home HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("Welcome Home!")
}

/// Sleeps until `t` (the attack's schedule).
fn sleep_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        thread::sleep(d);
    }
}

fn abandon(bin: &PathBuf, mode: &str, window: Duration) -> Result<String, String> {
    let target = Target::start(bin, mode, None)?;
    let (cpu0, rss0) = (target.cpu_seconds(), target.mem_mb("VmRSS"));
    for _ in 0..50 {
        let mut s = TcpStream::connect(&target.addr).map_err(|e| e.to_string())?;
        let _ = s.write_all(b"GET /primes?nth=5000000 HTTP/1.1\r\nHost: x\r\n\r\n");
    } // each closed at once
    let start = Instant::now();
    let mut peak_rss_now: f64 = 0.0;
    while start.elapsed() < window {
        peak_rss_now = peak_rss_now.max(target.mem_mb("VmRSS"));
        thread::sleep(Duration::from_millis(200));
    }
    let cpu_last_1s = {
        let c = target.cpu_seconds();
        thread::sleep(Duration::from_secs(1));
        target.cpu_seconds() - c
    };
    let ok = home(&target.addr, Duration::from_secs(2));
    let line = format!(
        "| abandon   | {mode:<7} | {:>8.2} | {:>12.2} | {:>8.1} | {:>9.1} | {:>12} |",
        target.cpu_seconds() - cpu0,
        cpu_last_1s,
        rss0,
        target.mem_mb("VmHWM").max(peak_rss_now),
        if ok { "yes" } else { "no" },
    );
    target.stop();
    Ok(line)
}

fn slow_body(bin: &PathBuf, mode: &str, window: Duration) -> Result<String, String> {
    let target = Target::start(bin, mode, Some(128))?;
    let cpu0 = target.cpu_seconds();
    let mut slow: Vec<Option<TcpStream>> = Vec::new();
    for _ in 0..200 {
        // The kernel completes handshakes from the backlog even when the server cannot accept.
        let sock = target.addr.parse().map_err(|e| format!("{e}"))?;
        let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_secs(1)) else {
            continue;
        };
        let _ = s.write_all(b"GET /home HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n");
        let _ = s.set_nonblocking(true);
        slow.push(Some(s));
    }
    let opened = slow.len();
    let start = Instant::now();
    let mut homes = (0, 0);
    let mut first_home: Option<Duration> = None;
    let mut tick = start;
    while start.elapsed() < window {
        for slot in &mut slow {
            let Some(s) = slot else { continue };
            let mut b = [0u8; 512];
            let closed = match s.read(&mut b) {
                Ok(_) => true, // a 408 or the end of the stream
                Err(e) if e.kind() == ErrorKind::WouldBlock => s.write(b"x").is_err(),
                Err(_) => true,
            };
            if closed {
                *slot = None;
            }
        }
        let ok = home(&target.addr, Duration::from_secs(2));
        if ok {
            first_home.get_or_insert(start.elapsed());
        }
        homes = (homes.0 + usize::from(ok), homes.1 + 1);
        tick += Duration::from_secs(1);
        sleep_until(tick);
    }
    let held = slow.iter().filter(|s| s.is_some()).count();
    let accept_lines = target
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("accept:"))
        .count();
    let line = format!(
        "| slow-body | {mode:<7} | {:>8.2} | {:>5} of {:<4} | {:>5} of {:<3} | {:>14} | {:>12} |",
        target.cpu_seconds() - cpu0,
        held,
        opened,
        homes.0,
        homes.1,
        first_home.map_or("never".to_string(), |d| format!("{:.1} s", d.as_secs_f64())),
        accept_lines,
    );
    target.stop();
    Ok(line)
}

fn main() -> ExitCode {
    let mut bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("blocking_server")))
        .unwrap_or_default();
    let mut modes = vec!["sync".to_string(), "chunked".into(), "offload".into()];
    let mut attacks = vec!["abandon".to_string(), "slow-body".into()];
    let mut window = Duration::from_secs(12);
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.into_string().ok())
                .ok_or(format!("{} needs a UTF-8 value", a.to_string_lossy()))
        };
        let r: Result<(), String> = match a.to_str() {
            Some("--server") => value().map(|v| bin = v.into()),
            Some("--modes") => value().map(|v| modes = v.split(',').map(String::from).collect()),
            Some("--attacks") => {
                value().map(|v| attacks = v.split(',').map(String::from).collect())
            }
            Some("--window") => value().and_then(|v| {
                let s: u64 = Some(v.as_str())
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse().ok())
                    .filter(|s| (1..=120).contains(s))
                    .ok_or(format!("--window: `{v}` is not a whole number in 1..=120"))?;
                window = Duration::from_secs(s);
                Ok(())
            }),
            Some("--help" | "-h") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => Err(format!("unknown option `{}`", a.to_string_lossy())),
        };
        if let Err(e) = r {
            eprintln!("server_attacks: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    println!("server: {}, window {} s", bin.display(), window.as_secs());
    if attacks.iter().any(|a| a == "abandon") {
        println!(
            "\n| attack    | mode    | CPU s    | CPU s last 1 | RSS0 MB  | peak RSS MB | /home at end |"
        );
        println!(
            "|-----------|---------|---------:|-------------:|---------:|------------:|-------------:|"
        );
        for m in &modes {
            match abandon(&bin, m, window) {
                Ok(l) => println!("{l}"),
                Err(e) => eprintln!("server_attacks: abandon, {m}: {e}"),
            }
        }
    }
    if attacks.iter().any(|a| a == "slow-body") {
        println!(
            "\n| attack    | mode    | CPU s    | slow held at end | /home ok   | first /home ok | accept lines |"
        );
        println!(
            "|-----------|---------|---------:|-----------------:|-----------:|---------------:|-------------:|"
        );
        for m in &modes {
            match slow_body(&bin, m, window) {
                Ok(l) => println!("{l}"),
                Err(e) => eprintln!("server_attacks: slow-body, {m}: {e}"),
            }
        }
    }
    ExitCode::SUCCESS
}
