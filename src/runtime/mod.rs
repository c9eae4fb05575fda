//! The event loop: its state ([`LoopState`], here), its phases (`phases.rs`), its tasks and the
//! `block_on` future (`tasks.rs`), its observers (`observers.rs`), and the public
//! [`EventLoop`] and [`Builder`] (`handle.rs`).
//!
//! # The phase list
//! ```text
//!   main closure / block_on future ──► drain nextTick + microtasks
//!   ┌─► timers   every due timer, list by list (Node.js order)   ─┐ after every callback or
//!   │   poll     wait for the next timer, a wake-up or I/O;       │ task poll: drain nextTick,
//!   │            then run wakes that came from other threads      │ then microtasks, until
//!   │   check    setImmediate callbacks and yielded tasks queued  │ both are empty
//!   │            before the phase began                          ─┘
//!   └── while a referenced handle is left
//! ```
//! As in libuv's `uv_run`, the first timers phase runs before the loop and each later one at the
//! end of the previous iteration, right before the liveness check, so a loop whose last timer just
//! fired can end without sleeping once more.
//!
//! # Invariants
//! - No `RefCell` of [`LoopState`] is borrowed while user code runs (callbacks, polls, wakes, drops).
//! - `loop_time` is the loop time: read at the start of the timers phase (when the timer handle
//!   is started and may be due: not while the TSC says it cannot be, `time/deadline.rs`) and of
//!   each of its passes, after a poll phase that waited, and whenever a timer is started
//!   (Node.js reads the clock in `setTimeout` too). The timers phase runs another pass
//!   while the timer handle is due at this cached time (libuv's `uv__run_timers`).

mod builder;
pub(crate) mod context;
mod handle;
pub(crate) mod immediates;
pub(crate) mod microtasks;
mod observers;
mod phases;
mod shutdown;
mod spawner;
mod tasks;

pub use builder::Builder;
pub use handle::{EventLoop, block_on, loop_stats, loop_time, run, spawn, spawner};
pub use spawner::{LoopGone, RemoteJoinHandle, Spawner};

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::Location;
use std::pin::{Pin, pin};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::io::reactor::Reactor;
use crate::observe::{Kind, LoopObserver, Phase, Span};
use crate::runtime::immediates::Immediates;
use crate::runtime::microtasks::{Job, MicroQueues};
use crate::task::inbox::Inbox;
use crate::task::raw::TaskPtr;
use crate::task::waker::{
    TaskRef, WakeTarget, borrowed_waker, is_waker_of, release, standalone_header,
};
use crate::task::{ErasedTask, JoinHandle, new_task};
use crate::time::timers::Timers;

/// Source of loop ids (unique per process).
static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// A spawned task in the loop's slab.
struct TaskSlot {
    /// The task's unique id (slab keys are reused; ids are not).
    id: u64,
    /// The task (the slab's counted reference).
    task: TaskPtr<dyn ErasedTask>,
    /// Where it was spawned (`#[track_caller]`), for observers.
    location: &'static Location<'static>,
}

/// The `block_on` future, with its lifetime erased for the duration of `block_on`.
type MainFuture = Pin<&'static mut dyn Future<Output = ()>>;

/// Counters describing what a loop has done, for tests, tools and curious users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Loop iterations (poll phases) run.
    pub iterations: u64,
    /// Poll phases that asked the OS poller (blocked or checked for I/O). An idle loop waiting
    /// for a far timer does this once, not once per millisecond.
    pub os_waits: u64,
    /// Task polls run.
    pub task_polls: u64,
    /// Tasks spawned.
    pub tasks_spawned: u64,
}

/// The state of one loop, shared (`Rc`) by the [`EventLoop`] and the handles that point into it.
pub(crate) struct LoopState {
    /// Process-unique id of this loop.
    pub(crate) id: u64,
    /// A weak reference to this very `LoopState`, handed to handles.
    pub(crate) weak_self: Weak<LoopState>,
    /// The cached loop time.
    now: Cell<Instant>,
    /// When the current (or last) `run` or `block_on` call began: before it, the loop was not
    /// running, so nothing it ran could be late on its account (the delay monitor's floor).
    pub(crate) run_started: Cell<Instant>,
    /// The timers phase.
    pub(crate) timers: Timers,
    /// The check phase.
    pub(crate) immediates: Immediates,
    /// nextTick and microtask queues.
    pub(crate) queues: MicroQueues,
    /// Jobs one drain may run ([`Builder::max_jobs_per_drain`]); `usize::MAX`: unbounded.
    drain_limit: usize,
    /// Spawned tasks that have not finished.
    tasks: RefCell<Slab<TaskSlot>>,
    /// Last task id handed out.
    next_task_id: Cell<u64>,
    /// Set for the last round of the loop's drop: a task spawned then is never run, nor is
    /// its future dropped (see `shutdown.rs`).
    closed: Cell<bool>,
    /// The header of the task (or `block_on` future) being polled right now, null between
    /// polls: for `yield_now`'s fast path, and to tell a self-wake (see `schedule_woken`). It
    /// owns no count: the slab's (or `main_header`'s) keeps it alive while it is polled.
    current: Cell<*const WakeTarget>,
    /// The `block_on` future while `block_on` runs and the future is not being polled.
    main: Cell<Option<MainFuture>>,
    /// Whether a `block_on` future is pending (it keeps the loop alive).
    main_pending: Cell<bool>,
    /// Header of the `block_on` future (made by `standalone_header`) while `block_on` runs; this
    /// field owns one count of it (released by `block_on`'s guard).
    main_header: Cell<Option<std::ptr::NonNull<WakeTarget>>>,
    /// The `block_on` future as a queue entry: `TaskRef::main` with an id unique to this `block_on`
    /// call (so a waker kept from an earlier call cannot poll a later call's future).
    main_task: Cell<TaskRef>,
    /// Cross-thread wakes.
    pub(crate) remote: Arc<Inbox>,
    /// Reused buffer for draining `remote`.
    remote_buf: RefCell<Vec<TaskRef>>,
    /// The poll phase's wait.
    pub(crate) reactor: Reactor,
    /// Extra referenced handles (I/O watchers, offloaded jobs): the loop stays alive while > 0.
    keep_alive: Cell<usize>,
    /// Counters.
    stats: Cell<LoopStats>,
    /// The offload worker pool, started on first use, joined when the loop is dropped.
    pub(crate) pool: crate::threads::offload::PoolSlot,
    /// Installed observers, copied on write: a span holds its own `Rc` of the list (one count
    /// increment, no allocation), so an observer added or removed mid-span changes the list for
    /// later spans only, and the span's exit goes to the observers its enter went to.
    observers: RefCell<Rc<[Rc<dyn LoopObserver>]>>,
    /// Whether `observers` is non-empty (the one branch paid per callback when nobody observes).
    observed: Cell<bool>,
    /// The phase the loop is in (for observers).
    phase: Cell<Phase>,
}

impl fmt::Debug for LoopState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.id)
            .field("timers_refed", &self.timers.ref_count())
            .field("tasks", &self.tasks.borrow().len())
            .field("stats", &self.stats.get())
            .finish()
    }
}

impl LoopState {
    pub(super) fn new(reactor: Reactor, builder: &Builder) -> Rc<LoopState> {
        let remote = Arc::new(Inbox::new(reactor.poller.clone()));
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        crate::task::inbox::registry::insert(id, &remote);
        Rc::new_cyclic(|weak| LoopState {
            id,
            weak_self: weak.clone(),
            now: Cell::new(Instant::now()),
            run_started: Cell::new(Instant::now()),
            timers: Timers::default(),
            immediates: Immediates::default(),
            queues: MicroQueues::default(),
            drain_limit: builder.max_jobs_per_drain.map_or(usize::MAX, |n| n.get()),
            tasks: RefCell::new(Slab::new()),
            next_task_id: Cell::new(0),
            closed: Cell::new(false),
            current: Cell::new(std::ptr::null()),
            main: Cell::new(None),
            main_pending: Cell::new(false),
            main_header: Cell::new(None),
            main_task: Cell::new(TaskRef::main(0)),
            remote,
            remote_buf: RefCell::new(Vec::new()),
            reactor,
            keep_alive: Cell::new(0),
            stats: Cell::new(LoopStats::default()),
            pool: crate::threads::offload::PoolSlot::new(builder.offload_threads),
            observers: RefCell::new(Rc::from([])),
            observed: Cell::new(false),
            phase: Cell::new(Phase::Main),
        })
    }

    /// The cached loop time.
    #[inline]
    pub(crate) fn loop_time(&self) -> Instant {
        self.now.get()
    }

    /// Reads the clock into the loop time and returns it.
    #[inline]
    pub(crate) fn update_time(&self) -> Instant {
        let now = Instant::now();
        self.now.set(now);
        now
    }

    /// The number of the loop iteration running (0 before the first poll phase).
    #[inline]
    #[cfg_attr(any(miri, not(unix)), allow(dead_code))] // used by `net`, compiled out there
    pub(crate) fn iteration(&self) -> u64 {
        self.stats.get().iterations
    }

    fn bump(&self, f: impl FnOnce(&mut LoopStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    // ----- liveness -------------------------------------------------------------------------

    /// Whether a referenced handle is left (Node.js's "the process stays alive").
    #[inline]
    pub(crate) fn alive(&self) -> bool {
        self.timers.ref_count() != 0
            || self.immediates.has_urgent()
            || !self.tasks.borrow().is_empty()
            || self.main_pending.get()
            || self.keep_alive.get() != 0
            || self.remote.has_pending()
            || self.remote.external_refs.load(Ordering::Acquire) != 0
            || self.has_leftovers()
    }

    /// Adds (`+1`) or removes (`-1`) a referenced handle that is not a timer, immediate or task:
    /// an I/O source with a waiter (see `reactor.rs`). (Offloaded jobs are released by worker
    /// threads, so they count in `Inbox::external_refs` instead.)
    pub(crate) fn add_keep_alive(&self, delta: isize) {
        let n = self.keep_alive.get() as isize + delta;
        debug_assert!(n >= 0, "keep-alive count went negative");
        self.keep_alive.set(n.max(0) as usize);
    }
}
