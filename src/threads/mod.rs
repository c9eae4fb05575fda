//! Loops and pools on other threads: the offload pool (libuv's `uv_queue_work`), the bridge that
//! lets synchronous code call async code on a worker loop, the cluster of loops, and parking a
//! plain thread on a future.

pub(crate) mod block_thread;
pub(crate) mod bridge;
pub(crate) mod cluster;
pub(crate) mod loop_thread;
pub(crate) mod offload;

pub use bridge::{Bridge, BridgeError};
pub use cluster::{Cluster, ClusterBuilder, ClusterHandle, ClusterReport, Placement};
pub use offload::{Offload, offload};
