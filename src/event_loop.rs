//! The event loop: its state, its phases, and the public [`EventLoop`].
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
//! - No `RefCell` of [`Inner`] is borrowed while user code runs (callbacks, polls, wakes, drops).
//! - `now` is the loop time: read at the start of the timers phase (when any timer exists) and
//!   after a poll phase that waited, and refreshed whenever a timer is started (Node.js reads the
//!   clock in `setTimeout` too).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::Location;
use std::pin::{Pin, pin};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::context;
use crate::immediates::Immediates;
use crate::microtasks::{Job, MicroQueues};
use crate::observe::{Kind, LoopObserver, Phase, Span};
use crate::reactor::Reactor;
use crate::task::{JoinHandle, Runnable, new_task};
use crate::timers::Timers;
use crate::waker::{Header, Remote, TaskRef, header_of, new_waker};

/// Slab key reserved for the `block_on` future (never a real slab key).
const MAIN_KEY: usize = usize::MAX;

/// Source of loop ids (unique per process).
static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// A spawned task in the loop's slab.
struct TaskSlot {
    /// The task's unique id (slab keys are reused; ids are not).
    id: u64,
    /// The task.
    task: Rc<dyn Runnable>,
    /// Where it was spawned (`#[track_caller]`), for observers.
    location: &'static Location<'static>,
}

/// The `block_on` future, with its lifetime erased for the duration of `block_on`.
type MainFuture = Pin<&'static mut dyn Future<Output = ()>>;

/// Tells the observers that a span ended when dropped (also on unwind).
struct SpanExit(Vec<Rc<dyn LoopObserver>>);

impl Drop for SpanExit {
    fn drop(&mut self) {
        for o in self.0.iter().rev() {
            o.exit();
        }
    }
}

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
pub(crate) struct Inner {
    /// Process-unique id of this loop.
    pub(crate) id: u64,
    /// A weak reference to this very `Inner`, handed to handles.
    pub(crate) weak_self: Weak<Inner>,
    /// The cached loop time.
    now: Cell<Instant>,
    /// The timers phase.
    pub(crate) timers: Timers,
    /// The check phase.
    pub(crate) immediates: Immediates,
    /// nextTick and microtask queues.
    pub(crate) queues: MicroQueues,
    /// Spawned tasks that have not finished.
    tasks: RefCell<Slab<TaskSlot>>,
    /// Last task id handed out.
    next_task_id: Cell<u64>,
    /// The task being polled right now (for `yield_now`'s fast path).
    polling: RefCell<Option<Rc<dyn Runnable>>>,
    /// The `block_on` future while `block_on` runs and the future is not being polled.
    main: RefCell<Option<MainFuture>>,
    /// Whether a `block_on` future is pending (it keeps the loop alive).
    main_pending: Cell<bool>,
    /// Waker of the `block_on` future (made by `new_waker`). Borrowed (shared) while it polls.
    main_waker: RefCell<Option<Waker>>,
    /// Whether the `block_on` future is being polled (for `yield_now`'s fast path).
    polling_main: Cell<bool>,
    /// The `block_on` future as a queue entry: `MAIN_KEY` and an id unique to this `block_on`
    /// call (so a waker kept from an earlier call cannot poll a later call's future).
    main_task: Cell<TaskRef>,
    /// Cross-thread wakes.
    pub(crate) remote: Arc<Remote>,
    /// Reused buffer for draining `remote`.
    remote_buf: RefCell<Vec<TaskRef>>,
    /// The poll phase's wait.
    pub(crate) reactor: Reactor,
    /// Extra referenced handles (I/O watchers, offloaded jobs): the loop stays alive while > 0.
    keep_alive: Cell<usize>,
    /// Counters.
    stats: Cell<LoopStats>,
    /// The offload worker pool, started on first use, joined when the loop is dropped.
    pub(crate) pool: crate::offload::PoolSlot,
    /// Installed observers. Never borrowed while user code runs.
    observers: RefCell<Vec<Rc<dyn LoopObserver>>>,
    /// Whether `observers` is non-empty (the one branch paid per callback when nobody observes).
    observed: Cell<bool>,
    /// The phase the loop is in (for observers).
    phase: Cell<Phase>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.id)
            .field("timers_refed", &self.timers.ref_count())
            .field("tasks", &self.tasks.borrow().len())
            .field("stats", &self.stats.get())
            .finish()
    }
}

impl Inner {
    fn new(reactor: Reactor, builder: &Builder) -> Rc<Inner> {
        let remote = Arc::new(Remote::new(reactor.poller.clone()));
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        crate::waker::registry::insert(id, &remote);
        Rc::new_cyclic(|weak| Inner {
            id,
            weak_self: weak.clone(),
            now: Cell::new(Instant::now()),
            timers: Timers::default(),
            immediates: Immediates::default(),
            queues: MicroQueues::default(),
            tasks: RefCell::new(Slab::new()),
            next_task_id: Cell::new(0),
            polling: RefCell::new(None),
            main: RefCell::new(None),
            main_pending: Cell::new(false),
            main_waker: RefCell::new(None),
            polling_main: Cell::new(false),
            main_task: Cell::new(TaskRef {
                key: MAIN_KEY,
                id: 0,
            }),
            remote,
            remote_buf: RefCell::new(Vec::new()),
            reactor,
            keep_alive: Cell::new(0),
            stats: Cell::new(LoopStats::default()),
            pool: crate::offload::PoolSlot::new(builder.offload_threads),
            observers: RefCell::new(Vec::new()),
            observed: Cell::new(false),
            phase: Cell::new(Phase::Main),
        })
    }

    /// The cached loop time.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.now.get()
    }

    /// Reads the clock into the loop time and returns it.
    #[inline]
    pub(crate) fn update_time(&self) -> Instant {
        let now = Instant::now();
        self.now.set(now);
        now
    }

    fn bump(&self, f: impl FnOnce(&mut LoopStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    // ----- liveness -------------------------------------------------------------------------

    /// Whether a referenced handle is left (Node.js's "the process stays alive").
    pub(crate) fn alive(&self) -> bool {
        self.timers.ref_count() != 0
            || self.immediates.has_urgent()
            || !self.tasks.borrow().is_empty()
            || self.main_pending.get()
            || self.keep_alive.get() != 0
            || self.remote.has_pending()
            || self.remote.external_refs.load(Ordering::Acquire) != 0
    }

    /// Adds (`+1`) or removes (`-1`) a referenced handle that is not a timer, immediate or task:
    /// an I/O source with a waiter (see `reactor.rs`). (Offloaded jobs are released by worker
    /// threads, so they count in `Remote::external_refs` instead.)
    pub(crate) fn add_keep_alive(&self, delta: isize) {
        let n = self.keep_alive.get() as isize + delta;
        debug_assert!(n >= 0, "keep-alive count went negative");
        self.keep_alive.set(n.max(0) as usize);
    }

    // ----- the loop -------------------------------------------------------------------------

    /// Runs the loop until `stop()` or until no referenced handle is left (libuv's `uv_run`).
    fn run_loop(&self, stop: &dyn Fn() -> bool) {
        let mut alive = self.alive();
        if alive && !stop() {
            self.run_timers();
        }
        while alive && !stop() {
            self.run_once(stop);
            alive = self.alive();
        }
    }

    /// One iteration: poll, check, then the next iteration's timers (see the module docs for
    /// why the timers phase sits at the end).
    fn run_once(&self, stop: &dyn Fn() -> bool) {
        self.bump(|s| s.iterations += 1);
        self.poll_phase();
        if stop() {
            return;
        }
        self.run_check();
        if stop() {
            return;
        }
        self.run_timers();
    }

    /// Timers phase.
    fn run_timers(&self) {
        self.phase.set(Phase::Timers);
        // With no timer at all there is nothing to compare the clock with: a loop of yields
        // then costs no clock read per iteration (starting a timer reads the clock anyway).
        if self.timers.next_expiry().is_none() {
            return;
        }
        let now = self.update_time();
        self.timers.run_due(self, now);
    }

    /// Poll phase: wait (the loop's only sleep), run the I/O callbacks, then the wakes that came
    /// from other threads.
    fn poll_phase(&self) {
        self.phase.set(Phase::Poll);
        let timeout = self.poll_timeout();
        if timeout != Some(Duration::ZERO) || !self.reactor.can_skip_zero_wait() {
            self.bump(|s| s.os_waits += 1);
            self.reactor.wait(timeout);
            self.update_time();
            self.run_io();
        }
        self.run_remote();
    }

    /// The poll phase's I/O callbacks: wakes each task waiting on a source the wait reported
    /// ready, each followed by a drain, so the task runs right here, in the poll phase (work it
    /// queues with `set_immediate` runs in this iteration's check phase, before any timer).
    fn run_io(&self) {
        let mut wakers = std::mem::take(&mut *self.reactor.wake_buf().borrow_mut());
        let delta = self.reactor.dispatch(&mut wakers);
        self.add_keep_alive(delta);
        for (i, w) in wakers.iter().enumerate() {
            // A panic in a drained callback must not lose the wakes behind it.
            struct Requeue<'a>(&'a Inner, &'a [Waker]);
            impl Drop for Requeue<'_> {
                fn drop(&mut self) {
                    for w in self.1 {
                        self.0
                            .queues
                            .micro
                            .borrow_mut()
                            .push_back(Job::Wake(w.clone()));
                    }
                }
            }
            let guard = Requeue(self, &wakers[i + 1..]);
            self.traced(Kind::Wake, 0, None, || w.wake_by_ref());
            self.drain_queues();
            std::mem::forget(guard);
        }
        wakers.clear();
        *self.reactor.wake_buf().borrow_mut() = wakers;
    }

    /// Check phase.
    fn run_check(&self) {
        self.phase.set(Phase::Check);
        self.immediates.run(self);
    }

    /// How long the poll phase may sleep (`None`: until woken).
    fn poll_timeout(&self) -> Option<Duration> {
        if self.immediates.has_urgent() || self.remote.has_pending() || !self.alive() {
            return Some(Duration::ZERO);
        }
        let expiry = self.timers.next_expiry()?;
        Some(expiry.saturating_duration_since(Instant::now()))
    }

    /// Polls the tasks woken from other threads, each followed by a drain.
    fn run_remote(&self) {
        if !self.remote.has_pending() {
            return;
        }
        let mut buf = std::mem::take(&mut *self.remote_buf.borrow_mut());
        self.remote.take_into(&mut buf);
        for (i, &t) in buf.iter().enumerate() {
            // A panic in a drained callback must not lose the wakes behind it.
            struct Requeue<'a>(&'a Inner, &'a [TaskRef]);
            impl Drop for Requeue<'_> {
                fn drop(&mut self) {
                    for &t in self.1 {
                        self.0.queues.micro.borrow_mut().push_back(Job::Task(t));
                    }
                }
            }
            let guard = Requeue(self, &buf[i + 1..]);
            self.poll_task(t);
            self.drain_queues();
            std::mem::forget(guard);
        }
        buf.clear();
        *self.remote_buf.borrow_mut() = buf;
    }

    /// Drains the nextTick queue, then the microtask queue, until both are empty.
    #[inline]
    pub(crate) fn drain_queues(&self) {
        if self.queues.is_empty() {
            return;
        }
        let phase = self.phase.replace(Phase::Microtask);
        loop {
            while let Some(job) = self.queues.pop_tick() {
                self.run_job(job, Kind::NextTick);
            }
            while let Some(job) = self.queues.pop_micro() {
                self.run_job(job, Kind::Microtask);
            }
            if self.queues.ticks.borrow().is_empty() {
                break;
            }
        }
        self.phase.set(phase);
    }

    /// Runs one queued job; `kind` says what a plain callback is (for observers).
    #[inline]
    pub(crate) fn run_job(&self, job: Job, kind: Kind) {
        match job {
            Job::Callback(f) => self.traced(kind, 0, None, f),
            Job::Task(t) => self.poll_task(t),
            Job::Wake(w) => self.traced(Kind::Wake, 0, None, || w.wake()),
        }
    }

    // ----- observers ------------------------------------------------------------------------

    /// Runs `f` as one span for the installed observers (just `f` when there are none).
    #[inline]
    pub(crate) fn traced<R>(
        &self,
        kind: Kind,
        id: u64,
        location: Option<&'static Location<'static>>,
        f: impl FnOnce() -> R,
    ) -> R {
        if !self.observed.get() {
            return f();
        }
        let span = Span {
            phase: self.phase.get(),
            kind,
            id,
            location,
        };
        let _exit = self.enter_span(&span);
        f()
    }

    #[cold]
    fn enter_span(&self, span: &Span) -> SpanExit {
        let observers = self.observers.borrow().clone();
        for o in &observers {
            o.enter(span);
        }
        SpanExit(observers)
    }

    /// Tells observers that an interval fired.
    pub(crate) fn interval_tick(&self, timer_id: u64) {
        if self.observed.get() {
            let observers = self.observers.borrow().clone();
            for o in &observers {
                o.interval_tick(timer_id);
            }
        }
    }

    // ----- tasks ----------------------------------------------------------------------------

    /// Queues a woken task on the microtask queue.
    #[inline]
    pub(crate) fn schedule_microtask_task(&self, task: TaskRef) {
        self.queues.micro.borrow_mut().push_back(Job::Task(task));
    }

    /// Spawns a task; its first poll is queued as a microtask.
    pub(crate) fn spawn<F>(
        &self,
        fut: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let id = self.next_task_id.get() + 1;
        self.next_task_id.set(id);
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let task = TaskRef {
            key: entry.key(),
            id,
        };
        let header = Arc::new(Header {
            task,
            loop_id: self.id,
            scheduled: AtomicBool::new(true),
        });
        let (runnable, join) = new_task(fut, header);
        entry.insert(TaskSlot {
            id,
            task: runnable,
            location,
        });
        drop(tasks);
        self.bump(|s| s.tasks_spawned += 1);
        self.schedule_microtask_task(task);
        JoinHandle::new(join, task, self.weak_self.clone())
    }

    /// Polls a task if it still exists.
    fn poll_task(&self, t: TaskRef) {
        if t.key == MAIN_KEY {
            if t == self.main_task.get() {
                self.poll_main();
            }
            return;
        }
        let (task, location) = match self.tasks.borrow().get(t.key) {
            Some(slot) if slot.id == t.id => (slot.task.clone(), slot.location),
            _ => return,
        };
        self.bump(|s| s.task_polls += 1);
        let prev = self.polling.replace(Some(task.clone()));
        let done = self.traced(Kind::Task, t.id, Some(location), || task.run());
        *self.polling.borrow_mut() = prev;
        if done {
            self.remove_task(t);
        }
    }

    fn remove_task(&self, t: TaskRef) {
        let removed = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get(t.key) {
                Some(slot) if slot.id == t.id => Some(tasks.remove(t.key)),
                _ => None,
            }
        };
        drop(removed);
    }

    /// Aborts a task (see [`JoinHandle::abort`]).
    pub(crate) fn abort_task(&self, t: TaskRef) {
        let task = match self.tasks.borrow().get(t.key) {
            Some(slot) if slot.id == t.id => slot.task.clone(),
            _ => return,
        };
        if task.cancel() {
            self.remove_task(t);
        }
    }

    /// Queues the current task (or `waker`, if it is not the current task's own) to resume in
    /// the next check phase. Returns the check-phase epoch at which it will have run.
    pub(crate) fn yield_to_check(&self, waker: &Waker) -> u64 {
        let target = self.immediates.epoch.get() + 1;
        if self.polling_main.get()
            && self
                .main_waker
                .borrow()
                .as_ref()
                .is_some_and(|w| w.will_wake(waker))
        {
            self.immediates.push_job(Job::Task(self.main_task.get()));
            return target;
        }
        if let Some(task) = &*self.polling.borrow() {
            // The task's own waker: queue the task itself, no waker clone. `scheduled` is left
            // alone (no atomic read-modify-write): a wake that arrives before the check phase
            // still queues a microtask poll, which `YieldNow` answers with `Pending`.
            if task.waker().will_wake(waker) {
                self.immediates.push_job(Job::Task(task.header().task));
                return target;
            }
        }
        self.immediates.push_job(Job::Wake(waker.clone()));
        target
    }

    /// Polls the `block_on` future.
    fn poll_main(&self) {
        let Some(mut fut) = self.main.borrow_mut().take() else {
            return;
        };
        let waker = self.main_waker.borrow();
        let waker = waker.as_ref().expect("block_on sets the main waker first");
        // SAFETY: `block_on` made the main waker with `new_waker`.
        unsafe { header_of(waker) }
            .scheduled
            .store(false, Ordering::Release);
        let mut cx = Context::from_waker(waker);
        self.polling_main.set(true);
        let result = self.traced(Kind::Main, 0, None, || fut.as_mut().poll(&mut cx));
        self.polling_main.set(false);
        match result {
            Poll::Ready(()) => self.main_pending.set(false),
            Poll::Pending => *self.main.borrow_mut() = Some(fut),
        }
    }

    // ----- shutdown -------------------------------------------------------------------------

    /// Cancels every task and drops every queued callback and timer (loop drop).
    fn shutdown(&self) {
        crate::waker::registry::remove(self.id);
        self.remote.close();
        // Dropping a future or callback may spawn or queue more work: repeat until quiet.
        for _ in 0..16 {
            let tasks: Vec<TaskSlot> = self.tasks.borrow_mut().drain().collect();
            let timers = self.timers.take_all();
            let idle = tasks.is_empty() && timers.is_empty() && self.queues.is_empty();
            for slot in &tasks {
                slot.task.cancel();
            }
            drop(tasks);
            for t in timers {
                self.timers.clear(&t);
                if let crate::timers::Action::Waker(w) = &t.action {
                    let w = w.borrow_mut().take();
                    drop(w);
                }
            }
            self.queues.clear();
            self.immediates.clear();
            if idle {
                break;
            }
        }
        self.pool.shutdown();
    }
}

/// Builds an [`EventLoop`] with non-default settings.
///
/// ```
/// let ev = executor::EventLoop::builder().build().expect("poller");
/// assert_eq!(ev.block_on(async { 2 + 2 }), 4);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    /// Threads of the offload pool; `None`: the machine's available parallelism.
    offload_threads: Option<usize>,
}

impl Builder {
    /// A builder with default settings.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Sets the number of threads of the pool that runs offloaded jobs (started on first use).
    ///
    /// # Panics
    /// If `n` is zero.
    pub fn offload_threads(&mut self, n: usize) -> &mut Self {
        assert!(
            n > 0,
            "executor::Builder::offload_threads: the pool needs at least one thread"
        );
        self.offload_threads = Some(n);
        self
    }

    /// Creates the loop. Fails only if the OS poller cannot be created (out of file descriptors).
    pub fn build(&self) -> io::Result<EventLoop> {
        Ok(EventLoop {
            inner: Inner::new(Reactor::new()?, self),
        })
    }
}

/// A single-threaded event loop with Node.js's phases and queues.
///
/// `EventLoop` is `!Send`: it, its tasks and its callbacks stay on the thread that created it.
///
/// ```
/// use std::time::Duration;
/// use executor::{EventLoop, set_immediate, set_timeout, next_tick, queue_microtask};
///
/// let ev = EventLoop::new();
/// let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let l = log.clone();
/// ev.run(move || {
///     let (a, b, c, d) = (l.clone(), l.clone(), l.clone(), l.clone());
///     set_timeout(Duration::from_millis(1), move || a.borrow_mut().push("timeout"));
///     set_immediate(move || b.borrow_mut().push("immediate"));
///     queue_microtask(move || c.borrow_mut().push("microtask"));
///     next_tick(move || d.borrow_mut().push("tick"));
///     l.borrow_mut().push("main");
/// });
/// // (timeout vs immediate from the main script depends on timing, as in Node.js)
/// assert_eq!(&log.borrow()[..3], ["main", "tick", "microtask"]);
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<executor::EventLoop>();
/// ```
pub struct EventLoop {
    inner: Rc<Inner>,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Default for EventLoop {
    fn default() -> Self {
        EventLoop::new()
    }
}

impl EventLoop {
    /// Creates a loop with default settings.
    ///
    /// # Panics
    /// If the OS poller cannot be created; use [`Builder::build`] to handle that error.
    pub fn new() -> Self {
        Builder::new()
            .build()
            .expect("executor: cannot create the event loop's poller")
    }

    /// A builder for non-default settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `main` as the main script, then the loop until no referenced handle is left (as a
    /// Node.js process does), and returns what `main` returned.
    ///
    /// A panic in a callback propagates out of `run` like an uncaught exception; the loop stays
    /// consistent and can be run again or dropped (which frees every task and timer).
    ///
    /// # Panics
    /// If called while a loop is already running on this thread.
    ///
    /// ```
    /// let ev = executor::EventLoop::new();
    /// let n = ev.run(|| {
    ///     executor::set_timeout(std::time::Duration::from_millis(2), || println!("later"));
    ///     42
    /// });
    /// assert_eq!(n, 42);
    /// ```
    pub fn run<R>(&self, main: impl FnOnce() -> R) -> R {
        let _enter = context::enter(&self.inner, "EventLoop::run");
        self.inner.phase.set(Phase::Main);
        let out = self.inner.traced(Kind::Main, 0, None, main);
        self.inner.drain_queues();
        self.inner.run_loop(&|| false);
        out
    }

    /// Runs the loop until `fut` resolves, and returns its output.
    ///
    /// `fut` is polled first (as the main script), then whenever it is woken, from the
    /// microtask queue, like a promise continuation. Tasks it spawned and did not await stay
    /// suspended in the loop (they run again if the loop runs again, and are dropped with it).
    ///
    /// # Panics
    /// If called while a loop is already running on this thread (nested `block_on` would
    /// deadlock), or if `fut` panics.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ev = executor::EventLoop::new();
    /// let v = ev.block_on(async {
    ///     executor::sleep(Duration::from_millis(1)).await;
    ///     executor::spawn(async { 7 }).await.unwrap()
    /// });
    /// assert_eq!(v, 7);
    /// ```
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let inner = &self.inner;
        let _enter = context::enter(inner, "EventLoop::block_on");
        let out = Cell::new(None);
        let mut wrapper = pin!(async {
            out.set(Some(fut.await));
        });
        let dyn_fut: Pin<&mut dyn Future<Output = ()>> = wrapper.as_mut();
        // SAFETY: the erased reference is stored in `inner.main` only until `MainGuard` drops,
        // which happens before `wrapper` (declared earlier, so dropped later) goes out of scope,
        // on return and on unwind alike; it is only used on this thread, by `poll_main`, while
        // this `block_on` frame is alive.
        let dyn_fut: MainFuture = unsafe {
            std::mem::transmute::<Pin<&mut dyn Future<Output = ()>>, MainFuture>(dyn_fut)
        };
        struct MainGuard<'a>(&'a Inner);
        impl Drop for MainGuard<'_> {
            fn drop(&mut self) {
                self.0.main.borrow_mut().take();
                self.0.main_pending.set(false);
                self.0.polling_main.set(false);
                self.0.main_waker.borrow_mut().take();
            }
        }
        let _guard = MainGuard(inner);
        let id = inner.next_task_id.get() + 1;
        inner.next_task_id.set(id);
        let main_task = TaskRef { key: MAIN_KEY, id };
        inner.main_task.set(main_task);
        let header = Arc::new(Header {
            task: main_task,
            loop_id: inner.id,
            scheduled: AtomicBool::new(true),
        });
        *inner.main_waker.borrow_mut() = Some(new_waker(header));
        *inner.main.borrow_mut() = Some(dyn_fut);
        inner.main_pending.set(true);
        inner.phase.set(Phase::Main);
        inner.poll_main();
        inner.drain_queues();
        inner.run_loop(&|| !inner.main_pending.get());
        drop(_guard);
        out.take()
            .expect("executor: block_on's future did not complete")
    }

    /// Spawns a task on this loop from outside it; it starts when the loop runs.
    #[track_caller]
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.spawn(fut, Location::caller())
    }

    /// Installs an observer, told about every callback and task poll from now on (see
    /// [`LoopObserver`]).
    pub fn add_observer(&self, observer: Rc<dyn LoopObserver>) {
        self.inner.observers.borrow_mut().push(observer);
        self.inner.observed.set(true);
    }

    /// Removes an observer installed with [`add_observer`](Self::add_observer) (compared by
    /// pointer). Returns whether it was installed.
    pub fn remove_observer(&self, observer: &Rc<dyn LoopObserver>) -> bool {
        let mut obs = self.inner.observers.borrow_mut();
        let before = obs.len();
        obs.retain(|o| !Rc::ptr_eq(o, observer));
        self.inner.observed.set(!obs.is_empty());
        obs.len() != before
    }

    /// What the loop has done so far.
    pub fn stats(&self) -> LoopStats {
        self.inner.stats.get()
    }

    /// Whether a referenced handle (timer, immediate, task, pending wake, offloaded job) is left.
    pub fn is_alive(&self) -> bool {
        self.inner.alive()
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        // Destructors of futures and callbacks may call the API; let them, when we can.
        let _enter = (!context::is_running()).then(|| context::enter(&self.inner, "drop"));
        self.inner.shutdown();
    }
}

/// Runs `main` on a new loop, then the loop until idle. See [`EventLoop::run`].
pub fn run<R>(main: impl FnOnce() -> R) -> R {
    EventLoop::new().run(main)
}

/// Runs `fut` to completion on a new loop. See [`EventLoop::block_on`].
pub fn block_on<F: Future>(fut: F) -> F::Output {
    EventLoop::new().block_on(fut)
}

/// Spawns a task on the running loop. Its first poll is queued as a microtask.
///
/// # Panics
/// If no loop is running on this thread.
///
/// ```
/// executor::block_on(async {
///     let h = executor::spawn(async { "done" });
///     assert_eq!(h.await.unwrap(), "done");
/// });
/// ```
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let location = Location::caller();
    context::with_current("spawn", |inner| inner.spawn(fut, location))
}

/// The running loop's cached time: read by the timers phase (when any timer exists), after a
/// poll phase that slept, and whenever a timer starts.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
pub fn now() -> Instant {
    context::with_current("now", Inner::now)
}

/// What the running loop has done so far.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
pub fn loop_stats() -> LoopStats {
    context::with_current("loop_stats", |inner| inner.stats.get())
}

#[cfg(test)]
mod tests {
    //! Small tests of the parts that use `unsafe` (the current-loop pointer, task pinning, the
    //! `block_on` lifetime erasure), sized to run under `cargo +nightly miri test --lib`.

    use super::*;
    use std::cell::RefCell;

    #[test]
    fn block_on_borrows_locals_and_returns_output() {
        let data = String::from("abc");
        let ev = EventLoop::new();
        let n = ev.block_on(async { data.len() });
        assert_eq!(n, 3);
        assert_eq!(data, "abc");
    }

    #[test]
    fn tasks_yield_join_and_abort() {
        let ev = EventLoop::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        ev.block_on(async move {
            let l1 = l.clone();
            let a = crate::spawn(async move {
                for i in 0..3 {
                    l1.borrow_mut().push(i);
                    crate::yield_now().await;
                }
                "a"
            });
            let b = crate::spawn(std::future::pending::<()>());
            crate::yield_now().await;
            b.abort();
            assert!(b.await.unwrap_err().is_cancelled());
            assert_eq!(a.await.unwrap(), "a");
        });
        assert_eq!(*log.borrow(), [0, 1, 2]);
    }

    #[test]
    fn dropping_a_loop_with_pending_tasks_frees_them() {
        let ev = EventLoop::new();
        let marker = Rc::new(());
        let m = marker.clone();
        let h = ev.spawn(async move {
            let _m = m;
            std::future::pending::<()>().await;
        });
        ev.block_on(crate::yield_now());
        assert_eq!(Rc::strong_count(&marker), 2);
        drop(ev);
        assert_eq!(Rc::strong_count(&marker), 1);
        assert!(h.is_finished());
    }

    #[test]
    fn wake_from_another_thread() {
        let ev = EventLoop::new();
        let v = ev.block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel();
            let t = std::thread::spawn(move || tx.send(5).unwrap());
            let v = rx.await.unwrap();
            t.join().unwrap();
            v
        });
        assert_eq!(v, 5);
    }

    #[test]
    fn panicking_task_is_caught() {
        let ev = EventLoop::new();
        let e = ev.block_on(async { crate::spawn(async { panic!("x") }).await.unwrap_err() });
        assert!(e.is_panic());
    }
}
