//! A cooperative single-threaded executor whose event loop runs work in Node.js's order, built
//! so CPU-heavy jobs can share the loop with timers and I/O, and so you can see and count what
//! they do to it.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use executor::{EventLoop, set_timeout, set_immediate, next_tick, queue_microtask, spawn, sleep};
//!
//! let ev = EventLoop::new();
//! let answer = ev.block_on(async {
//!     next_tick(|| println!("1: nextTick (right after the main future's poll)"));
//!     queue_microtask(|| println!("2: microtask"));
//!     set_immediate(|| println!("check phase"));
//!     set_timeout(Duration::from_millis(5), || println!("timers phase"));
//!     let task = spawn(async {
//!         sleep(Duration::from_millis(10)).await;
//!         21 * 2
//!     });
//!     task.await.unwrap()
//! });
//! assert_eq!(answer, 42);
//! ```
//!
//! # The loop
//! Each iteration runs, in order (libuv's `uv_run`, as Node.js uses it):
//! 1. **timers**: every timer already due, list by list as Node.js orders them;
//! 2. **poll**: the only place the loop sleeps, until the next timer, a wake from another thread
//!    or I/O; then the I/O callbacks (tasks waiting on a ready socket), then the wakes that came
//!    from other threads;
//! 3. **check**: `set_immediate` callbacks and tasks resuming from [`yield_now`] or from a
//!    self-wake, those queued before the phase began.
//!
//! After **every** callback and task poll, the nextTick queue drains, then the microtask queue,
//! until both are empty. A task woken by its waker is polled from the microtask queue, like a
//! promise continuation, with one exception: a task that wakes **itself** during its own poll
//! (`cx.waker().wake_by_ref(); return Poll::Pending`, the usual Rust yield) resumes in the check
//! phase, as after [`yield_now`], so it cannot keep the drain from ending. A socket that always
//! has data makes a batch of at most 32 ready operations (and at most about 25 µs) per loop
//! iteration, as libuv's `uv__read` reads at most 32 times per event; the next one returns
//! `Pending` and the task resumes in a later iteration. An endless chain of continuations (two
//! tasks waking each other) starves the loop, as it does Node.js, unless
//! [`Builder::max_jobs_per_drain`] bounds the drain; the
//! [`StallDetector`](observe::StallDetector) names such a drain. The loop ends when no referenced handle is left: a timer that is not
//! `unref`'d, a pending immediate, an unfinished task, a pending wake from another thread, a
//! socket a task waits on.
//!
//! | Node.js | executor |
//! |---|---|
//! | `setTimeout(cb, ms)` | [`set_timeout`]`(Duration, cb)` → [`TimerHandle`] |
//! | `setInterval(cb, ms)` | [`set_interval`] |
//! | `setImmediate(cb)` | [`set_immediate`] → [`ImmediateHandle`] |
//! | `process.nextTick(cb)` | [`next_tick`] |
//! | `queueMicrotask(cb)` | [`queue_microtask`] |
//! | `await new Promise(r => setImmediate(r))` | [`yield_now`]`().await`, or a future that wakes itself and returns `Pending` |
//! | a promise continuation (`await p` once `p` resolves) | a task woken by another task, a callback, a timer or I/O: polled from the microtask queue |
//! | `await setTimeout(ms)` (timers/promises) | [`sleep`]`(Duration).await` |
//! | a `worker_threads` job / libuv `uv_queue_work` | [`offload`]`(closure).await` |
//! | a Worker + `Atomics.wait` to call async code synchronously | [`Bridge::call`] |
//! | `cluster` (more processes, more loops) | [`Cluster`] |
//! | `net.createServer()` / `net.connect()` | [`net::TcpListener`] / [`net::TcpStream`] |
//! | `perf_hooks.monitorEventLoopDelay`, tracing, `--cpu-prof`-style tools | [`observe`] |

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    clippy::undocumented_unsafe_blocks
)]

// The tree is the loop's diagram (docs/design.md opens with the map):
// runtime/ the loop and its phases; task/ what it polls; time/ the timers phase and its
// futures; io/ the poll phase's sources; threads/ loops and pools on other threads;
// callbacks the Node.js-named front; sync/ locks for one loop; chunk cutting CPU work;
// observe/ seeing and counting what the loop runs; demo/ the workload and the test language.
pub mod chunk;
pub mod demo;
mod io;
mod node;
pub mod observe;
mod runtime;
pub mod sync;
mod task;
mod threads;
mod time;

pub use demo::{prime, scenario};
#[cfg(all(unix, not(miri)))]
pub use io::net;

pub use node::{
    ImmediateHandle, TIMEOUT_MAX, TIMEOUT_MIN, TimerHandle, next_tick, queue_microtask,
    set_immediate, set_interval, set_timeout,
};
pub use runtime::{Builder, EventLoop, LoopStats, block_on, loop_stats, loop_time, run, spawn};
pub use task::yield_now::{YieldNow, yield_now};
pub use task::{JoinError, JoinHandle};
pub use threads::bridge::{Bridge, BridgeError};
pub use threads::cluster::{Cluster, ClusterBuilder, ClusterHandle, ClusterReport, Placement};
pub use threads::offload::{Offload, offload};
pub use time::timers::MissedTickBehavior;
pub use time::{Elapsed, Interval, Sleep, Timeout, interval, sleep, sleep_until, timeout};
