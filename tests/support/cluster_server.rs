//! The example's cluster (`blocking_server --mode cluster`) running in this process: the acceptor
//! on a thread of its own, the loops on theirs, with the cluster's [`Control`] to watch them.
//! Shared by `tests/blocking_server_cluster.rs` and `benches/cluster.rs`.

use std::net::SocketAddr;
use std::thread;

use futures::channel::oneshot;

use super::cluster::{self, Cluster, ClusterConfig, Control, LoopReport};
use super::server::Config;

/// A running cluster.
pub struct ClusterServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its loops, as seen from here.
    pub control: Control,
    stop: oneshot::Sender<()>,
    thread: thread::JoinHandle<(Result<(), String>, Vec<LoopReport>)>,
}

impl ClusterServer {
    /// Starts a cluster configured by `config` and `cluster` on a port the OS picks.
    pub fn start(config: Config, cluster: ClusterConfig) -> ClusterServer {
        let listener =
            cluster::bind(([127, 0, 0, 1], 0).into(), cluster.policy).expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let mut running = Cluster::start(listener, config, cluster).expect("start the loops");
        let control = running.control();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let ev = executor::EventLoop::new();
            let outcome = ev.block_on(running.serve(async {
                let _ = stopped.await;
            }));
            (outcome, running.join())
        });
        ClusterServer {
            addr,
            control,
            stop,
            thread,
        }
    }

    /// Stops the cluster gracefully and returns how its acceptor ended and what each loop did.
    pub fn stop(self) -> (Result<(), String>, Vec<LoopReport>) {
        let _ = self.stop.send(());
        self.thread.join().expect("the acceptor thread panicked")
    }
}
