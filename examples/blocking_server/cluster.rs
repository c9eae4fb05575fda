//! `--mode cluster`: the same server on N loops on N threads, one port, `/primes` computed on
//! each loop per `--inner` (as `--mode` does on one loop).
//!
//! More loops do not stop a blocking search from blocking its loop; they leave other loops to
//! serve meanwhile, as long as fewer than N searches run ("it can bury the issue until the load
//! catches up"). CPU work is bounded by the cores, not the loops: on 2 cores, 3 loops searching
//! share 2 cores.
//!
//! How connections reach the loops ([`Policy`], see `dispatch.rs` and docs/design.md):
//! - an *acceptor* (the calling thread's loop) accepts every connection and hands it, not yet
//!   registered, to a loop's inbox: round-robin as Node.js's cluster primary does, or
//!   load-aware, skipping loops whose heartbeat (`heartbeat.rs`) says they are stuck;
//! - or *reuseport*: each loop accepts on its own `SO_REUSEPORT` listener and the kernel picks
//!   the loop by a hash of the connection's addresses, blind to which loop is blocked.
//!
//! Ground rules:
//! - a loop's inbox carries connections, code to run there ([`Control::run_on`]) and the stop;
//!   a loop that has taken a connection wakes the acceptor, which may be waiting for a free loop;
//! - a loop whose thread has died (a callback panicked) has a closed inbox: it is skipped, and
//!   a connection whose hand-over failed goes to another loop; the others serve on, and the
//!   panic is reported by [`Cluster::join`];
//! - stopping ([`Cluster::serve`] returning) closes the listener first, then tells every loop to
//!   stop; each finishes its requests in flight (see `drain.rs`) before its thread ends.

#[path = "dispatch.rs"]
pub mod dispatch;
#[path = "heartbeat.rs"]
pub mod heartbeat;

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::thread::{self, JoinHandle};

use futures::channel::{mpsc, oneshot};
use futures::task::AtomicWaker;
use futures::{FutureExt, StreamExt};
use socket2::{Domain, Protocol, Socket, Type};

use executor::net::TcpListener;
use executor::observe::{Trace, TraceRecorder};
use executor::{EventLoop, time::timeout};

use crate::server::accept_errors::{self, AcceptErrors};
use crate::server::heavy::HeavyLimit;
use crate::server::{self, Config, Shared, Totals};
use dispatch::{Choice, LoopView, Policy, RECHECK, STUCK_AFTER, choose};
use heartbeat::{Heartbeat, Publisher};

/// The most loops `--loops` takes.
pub const MAX_LOOPS: usize = 256;
/// The listen backlog of a `SO_REUSEPORT` listener (each loop has one).
const BACKLOG: i32 = 1024;

/// How the cluster runs.
#[derive(Clone, Copy, Debug)]
pub struct ClusterConfig {
    /// Number of loops (and threads), 1..=[`MAX_LOOPS`].
    pub loops: usize,
    /// How connections reach them.
    pub policy: Policy,
    /// Record a trace of each loop, keeping at most this many spans per loop.
    pub trace_limit: Option<usize>,
}

/// A message for a loop.
enum Msg {
    /// A connection accepted by the acceptor, to be registered and served there.
    Connection(std::net::TcpStream),
    /// Code to run on the loop, inside its main future: a panic there ends the loop's thread.
    Run(Box<dyn FnOnce() + Send>),
    /// Stop accepting (reuseport) and stop gracefully.
    Stop,
}

/// One loop as the other threads see it.
struct Link {
    inbox: mpsc::UnboundedSender<Msg>,
    beat: Arc<Heartbeat>,
}

impl Link {
    fn live(&self) -> bool {
        !self.inbox.is_closed()
    }
}

/// What one loop did.
#[derive(Debug, Default)]
pub struct LoopReport {
    /// Responses it sent.
    pub served: u64,
    /// Connections still open when its stop gave up waiting (see `drain::DRAIN`).
    pub left_open: usize,
    /// Its trace, if asked for.
    pub trace: Option<Trace>,
    /// The panic that ended its thread, if one did.
    pub panic: Option<String>,
}

/// N loops on N threads serving one listener.
pub struct Cluster {
    links: Arc<[Link]>,
    threads: Vec<JoinHandle<LoopReport>>,
    policy: Policy,
    /// The acceptor's listener (`None` with reuseport: the loops have it).
    listener: Option<std::net::TcpListener>,
    /// Woken when a loop takes a connection or its thread ends.
    acceptor: Arc<AtomicWaker>,
    /// Completes when `max_requests` responses have been sent (taken by `serve`).
    reached: Option<oneshot::Receiver<()>>,
}

/// Binds the cluster's listener on `addr` (with `SO_REUSEPORT` if `policy` asks for it).
pub fn bind(addr: SocketAddr, policy: Policy) -> io::Result<std::net::TcpListener> {
    if policy != Policy::ReusePort {
        return std::net::TcpListener::bind(addr);
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Wakes the acceptor when dropped: a loop's thread ends (also by a panic).
struct WakeOnDrop(Arc<AtomicWaker>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.wake();
    }
}

impl Cluster {
    /// Starts `cluster.loops` loops serving `listener` (bound by [`bind`] with the same policy)
    /// per `config`; they share the `--max-heavy` limit and the count of responses. With
    /// reuseport, loop 0 takes `listener` and the others bind their own on its address.
    /// Returns once every loop runs; fails if a thread, a loop or a listener cannot be made.
    pub fn start(
        listener: std::net::TcpListener,
        config: Config,
        cluster: ClusterConfig,
    ) -> io::Result<Cluster> {
        let addr = listener.local_addr()?;
        let (totals, reached) = Totals::new(&config);
        let heavy = HeavyLimit::new(config.max_heavy);
        let acceptor = Arc::new(AtomicWaker::new());
        let mut listener = Some(listener);
        let mut links = Vec::with_capacity(cluster.loops);
        let mut threads = Vec::with_capacity(cluster.loops);
        for index in 0..cluster.loops {
            let own = match (cluster.policy, index) {
                (Policy::ReusePort, 0) => listener.take(),
                (Policy::ReusePort, _) => Some(bind(addr, Policy::ReusePort)?),
                _ => None,
            };
            let (inbox, rx) = mpsc::unbounded();
            let beat = Heartbeat::new();
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
            let parts = LoopParts {
                inbox: rx,
                beat: beat.clone(),
                acceptor: acceptor.clone(),
                own,
                shared: (config, totals.clone(), heavy.clone()),
                trace_limit: cluster.trace_limit,
            };
            let thread = thread::Builder::new()
                .name(format!("server-loop-{index}"))
                .spawn(move || parts.run(ready_tx))?;
            links.push(Link { inbox, beat });
            threads.push(thread);
            // On an error, the loops started so far end with their inboxes (dropped here).
            ready_rx.recv().unwrap_or_else(|_| {
                Err(io::Error::other(format!(
                    "loop {index} died while starting"
                )))
            })?;
        }
        Ok(Cluster {
            links: links.into(),
            threads,
            policy: cluster.policy,
            listener,
            acceptor,
            reached: Some(reached),
        })
    }

    /// A handle for watching and poking the loops from any thread.
    #[allow(dead_code)] // the example's `main` does not need it; the tests do
    pub fn control(&self) -> Control {
        Control {
            links: self.links.clone(),
        }
    }

    /// Accepts and hands out connections on this thread's loop (with reuseport: just waits)
    /// until `shutdown` resolves, `max_requests` responses have been sent or every loop has
    /// died (`Err`); then closes the listener and tells every loop to stop.
    pub async fn serve(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        let listener = match self.listener.take() {
            Some(l) => Some(TcpListener::from_std(l).map_err(|e| format!("listener: {e}"))?),
            None => None,
        };
        let reached = self.reached.take();
        let reached = async {
            match reached {
                Some(rx) => drop(rx.await),
                None => std::future::pending().await,
            }
        };
        let work = async {
            match &listener {
                Some(l) => self.accept_and_hand_out(l).await,
                None => self.until_every_loop_died().await,
            }
        };
        let outcome = futures::select! {
            () = work.fuse() => Err("every loop has died".to_string()),
            () = shutdown.fuse() => Ok(()),
            () = reached.fuse() => Ok(()),
        };
        drop(listener);
        for link in self.links.iter() {
            let _ = link.inbox.unbounded_send(Msg::Stop);
        }
        outcome
    }

    /// Waits for every loop to end (call after [`serve`](Self::serve)) and reports what each
    /// did, in loop order.
    pub fn join(self) -> Vec<LoopReport> {
        for link in self.links.iter() {
            let _ = link.inbox.unbounded_send(Msg::Stop);
        }
        self.threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|payload| LoopReport {
                    panic: Some(panic_message(payload.as_ref())),
                    ..LoopReport::default()
                })
            })
            .collect()
    }

    /// The acceptor: each connection goes to the loop the policy picks; returns when every
    /// loop has died.
    async fn accept_and_hand_out(&self, listener: &TcpListener) {
        let mut errors = AcceptErrors::default();
        let mut sent = vec![0u64; self.links.len()];
        let mut cursor = 0;
        loop {
            let mut socket = accept_errors::accept(listener, &mut errors).await;
            loop {
                let Some(i) = self.free_loop(&sent, cursor).await else {
                    return;
                };
                match self.links[i].inbox.unbounded_send(Msg::Connection(socket)) {
                    Ok(()) => {
                        sent[i] += 1;
                        cursor = (i + 1) % self.links.len();
                        break;
                    }
                    // The loop died just now (its inbox is closed): pick another.
                    Err(e) => match e.into_inner() {
                        Msg::Connection(s) => socket = s,
                        _ => unreachable!("only a connection was sent"),
                    },
                }
            }
        }
    }

    /// The loop for the next connection, waiting while none is free; `None` if none is live.
    async fn free_loop(&self, sent: &[u64], cursor: usize) -> Option<usize> {
        let skip_stuck = self.policy == Policy::LoadAware;
        let pick = || choose(skip_stuck, &self.views(sent), cursor);
        loop {
            match pick() {
                Choice::Loop(i) => return Some(i),
                Choice::NoLoop => return None,
                Choice::Wait => {}
            }
            // Until a loop takes a connection or ends, or RECHECK (a loop coming out of a long
            // callback does not say so).
            let changed = poll_fn(|cx| {
                // Registered before looking, so a change after the look wakes this poll.
                self.acceptor.register(cx.waker());
                match pick() {
                    Choice::Wait => Poll::Pending,
                    _ => Poll::Ready(()),
                }
            });
            let _ = timeout(RECHECK, changed).await;
        }
    }

    /// What each loop published, as the dispatcher reads it.
    fn views(&self, sent: &[u64]) -> Vec<LoopView> {
        let now = std::time::Instant::now();
        self.links
            .iter()
            .zip(sent)
            .map(|(link, &sent)| LoopView {
                live: link.live(),
                stuck_for: link.beat.stuck_for(now),
                waiting: sent.saturating_sub(link.beat.taken()),
            })
            .collect()
    }

    /// Completes when every loop's thread has ended.
    async fn until_every_loop_died(&self) {
        poll_fn(|cx| {
            self.acceptor.register(cx.waker());
            if self.links.iter().any(Link::live) {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await
    }
}

/// Watches and pokes the loops of a [`Cluster`] from any thread (the tests use it).
#[derive(Clone)]
pub struct Control {
    links: Arc<[Link]>,
}

#[allow(dead_code)] // the example's `main` does not need it; the tests do
impl Control {
    /// Whether each loop's thread still runs.
    pub fn live(&self) -> Vec<bool> {
        self.links.iter().map(Link::live).collect()
    }

    /// Whether each loop has been inside one callback for more than [`STUCK_AFTER`] now.
    pub fn stuck(&self) -> Vec<bool> {
        let now = std::time::Instant::now();
        self.links
            .iter()
            .map(|l| l.beat.stuck_for(now) > STUCK_AFTER)
            .collect()
    }

    /// Runs `f` on loop `index`, inside its main future (a panic there ends the loop's thread,
    /// as an uncaught exception ends a Node.js worker). `false` if the loop has died.
    pub fn run_on(&self, index: usize, f: impl FnOnce() + Send + 'static) -> bool {
        self.links[index]
            .inbox
            .unbounded_send(Msg::Run(Box::new(f)))
            .is_ok()
    }
}

/// What a loop's thread is started with.
struct LoopParts {
    inbox: mpsc::UnboundedReceiver<Msg>,
    beat: Arc<Heartbeat>,
    acceptor: Arc<AtomicWaker>,
    /// Its own listener (reuseport), not yet registered.
    own: Option<std::net::TcpListener>,
    /// The configuration and the limits shared with the other loops.
    shared: (Config, Arc<Totals>, HeavyLimit),
    trace_limit: Option<usize>,
}

impl LoopParts {
    /// The loop thread's body: builds the loop there (it is `!Send`), reports on `ready`
    /// whether it could, and serves until told to stop.
    fn run(self, ready: std::sync::mpsc::SyncSender<io::Result<()>>) -> LoopReport {
        // Declared first, dropped last: the acceptor learns of the end after the inbox closed.
        let _wake = WakeOnDrop(self.acceptor.clone());
        let ev = match EventLoop::builder().build() {
            Ok(ev) => ev,
            Err(e) => {
                let _ = ready.send(Err(e));
                return LoopReport::default();
            }
        };
        ev.add_observer(Rc::new(Publisher::new(self.beat.clone())));
        let recorder = self.trace_limit.map(|l| TraceRecorder::with_limit(&ev, l));
        let (config, totals, heavy) = self.shared;
        let shared = Shared::new(config, totals, heavy);
        let (mut inbox, beat, acceptor) = (self.inbox, self.beat, self.acceptor);
        let own = self.own;
        let left_open = ev.block_on(async {
            let listener = match own.map(TcpListener::from_std).transpose() {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return 0;
                }
            };
            let _ = ready.send(Ok(()));
            let messages = async {
                while let Some(msg) = inbox.next().await {
                    match msg {
                        Msg::Connection(socket) => {
                            beat.took_connection();
                            acceptor.wake();
                            server::spawn_connection(socket, &shared);
                        }
                        Msg::Run(f) => f(),
                        Msg::Stop => return,
                    }
                }
            };
            match &listener {
                Some(l) => {
                    futures::select! {
                        () = server::accept_loop(l, &shared).fuse() => {}
                        () = messages.fuse() => {}
                    }
                }
                None => messages.await,
            }
            drop(listener);
            shared.stop().await
        });
        LoopReport {
            served: shared.served(),
            left_open,
            trace: recorder.map(TraceRecorder::finish),
            panic: None,
        }
    }
}

/// The message of a panic payload (`panic!` with a string or a format).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    executor::task::panic_message(payload)
        .unwrap_or("a panic without a message")
        .to_string()
}
