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
//! | `setTimeout(cb, ms)` | [`set_timeout`]`(Duration, cb)` → [`node::TimerHandle`] |
//! | `setInterval(cb, ms)` | [`set_interval`] |
//! | `setImmediate(cb)` | [`set_immediate`] → [`node::ImmediateHandle`] |
//! | `process.nextTick(cb)` | [`next_tick`] |
//! | `queueMicrotask(cb)` | [`queue_microtask`] |
//! | `await new Promise(r => setImmediate(r))` | [`yield_now`]`().await`, or a future that wakes itself and returns `Pending` |
//! | a promise continuation (`await p` once `p` resolves) | a task woken by another task, a callback, a timer or I/O: polled from the microtask queue |
//! | `await setTimeout(ms)` (timers/promises) | [`sleep`]`(Duration).await` |
//! | a `worker_threads` job / libuv `uv_queue_work` | [`offload`]`(closure).await` |
//! | a worker's `postMessage` back to the loop / libuv `uv_async_send` | [`Spawner`] (`Send`): `spawn`, `run` |
//! | `Promise.all` / `Promise.race` over many tasks | [`task::JoinSet`] (`join_next`, `abort_all`) |
//! | a Worker + `Atomics.wait` to call async code synchronously | [`threads::Bridge::call`] |
//! | `cluster` (more processes, more loops) | [`threads::Cluster`] |
//! | `net.createServer()` / `net.connect()` | [`net::TcpListener`] / [`net::TcpStream`] |
//! | `perf_hooks.monitorEventLoopDelay`, tracing, `--cpu-prof`-style tools | [`observe`] |
//!
//! # The crate, as the loop's diagram
//! | module | what it holds |
//! |---|---|
//! | the root | the loop ([`EventLoop`], [`Builder`], [`run`], [`block_on`], [`spawn`], [`Spawner`], [`loop_time`], [`loop_stats`]) and the everyday verbs: the Node.js-named callbacks, [`sleep`], [`yield_now`], [`offload`] |
//! | [`node`] | the Node.js-named callback API and its handles ([`node::TimerHandle`], [`node::ImmediateHandle`]) |
//! | [`task`] | spawned tasks: [`JoinHandle`], [`task::JoinError`], [`task::JoinSet`], [`task::AbortHandle`], [`task::RemoteJoinHandle`], [`task::YieldNow`] |
//! | [`time`] | the timers phase's futures: [`time::sleep_until`], [`time::interval`], [`time::interval_at`], [`time::timeout`], [`time::timeout_at`], [`time::MissedTickBehavior`] |
//! | [`net`] | TCP sockets driven by the poll phase |
//! | [`threads`] | loops and pools on other threads: the offload pool, [`threads::Bridge`], [`threads::Cluster`] |
//! | [`sync`] | locks and a run-once cell for the tasks of one loop |
//! | [`chunk`] | cutting CPU-bound work into chunks that yield to the loop |
//! | [`observe`] | seeing and counting what the loop runs: delay monitor, stall detector, trace recorder, tick probe |
//! | `compat` (feature `hyper`) | hyper on the loop: an I/O adapter, an executor and a timer |
//! | [`demo`] | not the executor: the demo workload (the n-th prime) and the scenario language |

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    clippy::undocumented_unsafe_blocks
)]

// The tree is the loop's diagram (docs/design.md opens with the map): runtime/ the loop and its
// phases; task/ what it polls; time/ the timers phase and its futures; io/ the poll phase's
// sources; threads/ loops and pools on other threads; node the Node.js-named front; sync/ locks
// for one loop; chunk cutting CPU work; observe/ seeing and counting; demo/ the workload and the
// test language.
pub mod chunk;
#[cfg(feature = "hyper")]
pub mod compat;
pub mod demo;
mod io;
pub mod node;
pub mod observe;
mod runtime;
pub mod sync;
pub mod task;
pub mod threads;
pub mod time;

#[cfg(all(unix, not(miri)))]
pub use io::net;

pub use node::{
    next_tick, queue_microtask, set_immediate, set_interval, set_timeout, set_timeout_mut,
};
pub use runtime::{
    Builder, EventLoop, LoopStats, Spawner, block_on, loop_stats, loop_time, run, spawn, spawner,
};
pub use task::{JoinHandle, yield_now};
pub use threads::offload;
pub use time::sleep;
