//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test binary uses its own subset

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

/// How long any test may wait: a lost wake-up fails the test instead of hanging it.
pub const BOUND: Duration = Duration::from_secs(5);

/// Runs `fut` on a new loop, failing if it has not finished within [`BOUND`].
pub fn run_bounded<F: Future>(fut: F) -> F::Output {
    executor::block_on(async {
        executor::time::timeout(BOUND, fut)
            .await
            .expect("the test did not finish in time: a waiter was never woken")
    })
}

/// A shared, append-only record of events, to assert whole sequences.
#[derive(Clone, Default)]
pub struct Log<T>(Rc<RefCell<Vec<T>>>);

impl<T: Clone> Log<T> {
    pub fn new() -> Self {
        Log(Rc::new(RefCell::new(Vec::new())))
    }

    pub fn push(&self, event: T) {
        self.0.borrow_mut().push(event);
    }

    pub fn snapshot(&self) -> Vec<T> {
        self.0.borrow().clone()
    }
}

/// Lets every task spawned so far run until it blocks: their first polls are microtasks, which
/// all run before the check phase this resumes in.
pub async fn settle() {
    executor::yield_now().await;
}

/// Wraps a future and counts how many times it is polled.
pub struct CountPolls<F> {
    pub future: Pin<Box<F>>,
    pub polls: Rc<Cell<u32>>,
}

impl<F: Future> CountPolls<F> {
    pub fn new(future: F) -> (Self, Rc<Cell<u32>>) {
        let polls = Rc::new(Cell::new(0));
        let me = CountPolls {
            future: Box::pin(future),
            polls: polls.clone(),
        };
        (me, polls)
    }
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.future.as_mut().poll(cx)
    }
}

/// Runs `body` on its own thread and fails the test if it does not finish within `limit`
/// (a hang becomes a failure instead of a stuck test run). A panic in `body` fails the test
/// with the original payload.
pub fn within<R: Send + 'static>(limit: Duration, body: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let runner = thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            let _ = tx.send(body());
        })
        .expect("spawn the test body");
    match rx.recv_timeout(limit) {
        Ok(out) => {
            runner.join().expect("test body thread");
            out
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the body returned without sending"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("test body did not finish within {limit:?} (hang or leak)")
        }
    }
}

/// The generous bound given to each test body (the machine is small and shared).
pub const LIMIT: Duration = Duration::from_secs(20);

/// [`within`] with a limit in seconds.
pub fn bounded<R: Send + 'static>(secs: u64, body: impl FnOnce() -> R + Send + 'static) -> R {
    within(Duration::from_secs(secs), body)
}

/// Holds the current thread for `d` (the injected blocking work; not a wait for a result).
pub fn busy(d: std::time::Duration) {
    let t = std::time::Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// An example's binary, built now (`cargo build --example`: quick when `cargo test` has built it
/// already, and never a stale binary when it has not, as with `cargo test --test NAME`). Fails
/// the test if it cannot be built.
pub fn example(name: &str) -> std::path::PathBuf {
    example_with_features(name, &[])
}

/// [`example`], built with these cargo features (an example that requires them).
pub fn example_with_features(name: &str, features: &[&str]) -> std::path::PathBuf {
    // This test runs from <target>/<profile>/deps; examples live in <target>/<profile>/examples.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test runs from <target>/<profile>/deps");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "--example", name, "--manifest-path"]);
    build.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo");
    assert!(status.success(), "cannot build the {name} example");
    profile_dir.join("examples").join(name)
}

/// Sets its flag when dropped, after a pause: only a drop that *waits* for it sees the flag.
pub struct SlowDropFlag(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for SlowDropFlag {
    fn drop(&mut self) {
        thread::sleep(Duration::from_millis(100));
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

thread_local! {
    /// Set (by a job or call) on a worker thread; its destructor runs when that thread exits,
    /// so a test sees whether dropping the pool or bridge joined the thread.
    pub static EXIT_FLAG: RefCell<Option<SlowDropFlag>> = const { RefCell::new(None) };
}

/// Starts a server process (`cmd`, whose stdout is piped here; its stderr is as `cmd` says),
/// returns it, its stdout past the first line, and the address that line announced
/// (`listening on http://ADDR`).
pub fn start_server(
    mut cmd: std::process::Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the first line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, stdout, addr)
}

/// Sends raw bytes on a new connection, closes its sending side, and returns everything the
/// server answers until it closes the connection (a read waits at most 30 s, then fails).
pub fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("set a read timeout");
    s.write_all(request).expect("send the request");
    // (Fails if the server has answered and closed already.)
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the answer");
    out
}
