//! The public face of the loop: [`EventLoop`] and the free functions that reach the loop
//! running on this thread. Its settings are `builder.rs`.

use super::*;

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
    pub(super) inner: Rc<LoopState>,
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
        self.run_as("EventLoop::run", main)
    }

    /// [`run`](Self::run), refused inside a running loop with a message naming `api`.
    fn run_as<R>(&self, api: &str, main: impl FnOnce() -> R) -> R {
        let _enter = context::enter(&self.inner, api);
        self.inner.phase.set(Phase::Main);
        let out = self.inner.traced(Kind::Main, 0, None, main);
        self.inner.drain_queues();
        self.inner.run_loop(|| false);
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
        self.block_on_as("EventLoop::block_on", fut)
    }

    /// [`block_on`](Self::block_on), refused inside a running loop with a message naming `api`.
    fn block_on_as<F: Future>(&self, api: &str, fut: F) -> F::Output {
        let inner = &self.inner;
        let _enter = context::enter(inner, api);
        let out = Cell::new(None);
        let mut wrapper = pin!(StoreOutput { fut, out: &out });
        let dyn_fut: Pin<&mut dyn Future<Output = ()>> = wrapper.as_mut();
        // SAFETY: the erased reference is stored in `inner.main` only until `MainGuard` drops,
        // which happens before `wrapper` (declared earlier, so dropped later) goes out of scope,
        // on return and on unwind alike; it is only used on this thread, by `poll_main`, while
        // this `block_on` frame is alive.
        let dyn_fut: MainFuture = unsafe {
            std::mem::transmute::<Pin<&mut dyn Future<Output = ()>>, MainFuture>(dyn_fut)
        };
        struct MainGuard<'a>(&'a LoopState);
        impl Drop for MainGuard<'_> {
            fn drop(&mut self) {
                self.0.main.take();
                self.0.main_pending.set(false);
                self.0.current.set(std::ptr::null());
                if let Some(header) = self.0.main_header.take() {
                    // SAFETY: `main_header` owned this count, and no longer holds the pointer.
                    unsafe { release(header) };
                }
            }
        }
        let _guard = MainGuard(inner);
        let id = inner.next_task_id.get() + 1;
        inner.next_task_id.set(id);
        let main_task = TaskRef::main(id);
        inner.main_task.set(main_task);
        inner
            .main_header
            .set(Some(standalone_header(main_task, inner.id)));
        inner.main.set(Some(dyn_fut));
        inner.main_pending.set(true);
        inner.phase.set(Phase::Main);
        inner.poll_main();
        inner.drain_queues();
        inner.run_loop(|| !inner.main_pending.get());
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

    /// A `Send + Sync + Clone` handle that spawns work onto this loop from any thread (see
    /// [`Spawner`](super::Spawner)).
    pub fn spawner(&self) -> super::Spawner {
        super::Spawner::new(&self.inner)
    }

    /// Installs an observer, told about every callback and task poll from now on (see
    /// [`LoopObserver`]).
    pub fn add_observer(&self, observer: Rc<dyn LoopObserver>) {
        let mut obs = self.inner.observers.borrow_mut();
        *obs = obs.iter().cloned().chain([observer]).collect();
        self.inner.observed.set(true);
    }

    /// Removes an observer installed with [`add_observer`](Self::add_observer) (compared by
    /// pointer). Returns whether it was installed. Called from inside a span, the observer is
    /// still told that span's exit (each span exits to the observers it entered).
    pub fn remove_observer(&self, observer: &Rc<dyn LoopObserver>) -> bool {
        let mut obs = self.inner.observers.borrow_mut();
        let before = obs.len();
        *obs = obs
            .iter()
            .filter(|o| !Rc::ptr_eq(o, observer))
            .cloned()
            .collect();
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
#[track_caller]
pub fn run<R>(main: impl FnOnce() -> R) -> R {
    EventLoop::new().run_as("run", main)
}

/// Runs `fut` to completion on a new loop. See [`EventLoop::block_on`].
#[track_caller]
pub fn block_on<F: Future>(fut: F) -> F::Output {
    EventLoop::new().block_on_as("block_on", fut)
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

/// A [`Spawner`](super::Spawner) for the running loop: hand it to another thread (an
/// [`offload`](crate::offload) job, a foreign library's callback thread) to get work back onto
/// this loop.
///
/// # Panics
/// If no loop is running on this thread.
///
/// ```
/// executor::block_on(async {
///     let spawner = executor::spawner();
///     // The worker thread computes, then sends a continuation back to the loop.
///     let back = executor::offload(move || {
///         let n = 6 * 7;
///         spawner.run(move || n + 1).unwrap()
///     })
///     .await
///     .unwrap();
///     assert_eq!(back.await.unwrap(), 43);
/// });
/// ```
#[track_caller]
pub fn spawner() -> super::Spawner {
    context::with_current("spawner", super::Spawner::new)
}

/// The running loop's cached time (libuv's `uv_now`), not the clock: read by the timers phase
/// (when a timer may be due: where the TSC is the system clock, a phase that knows from it that
/// no timer can be due yet skips the read), after a poll phase that slept, and whenever a timer
/// starts. Timers are due relative to it; use [`Instant::now`] for the clock.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
#[inline]
pub fn loop_time() -> Instant {
    context::with_current("loop_time", LoopState::loop_time)
}

/// What the running loop has done so far.
///
/// # Panics
/// If no loop is running on this thread.
#[track_caller]
pub fn loop_stats() -> LoopStats {
    context::with_current("loop_stats", |inner| inner.stats.get())
}

pin_project_lite::pin_project! {
    /// The `block_on` future as the loop polls it: `fut`, its output stored in `out` (so the
    /// loop sees a `Future<Output = ()>`). A plain struct rather than an `async` block: it is
    /// polled on every resume of the main future, and has no state of its own to dispatch on.
    struct StoreOutput<'a, F: Future> {
        #[pin]
        fut: F,
        out: &'a Cell<Option<F::Output>>,
    }
}

impl<F: Future> Future for StoreOutput<'_, F> {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        match this.fut.poll(cx) {
            Poll::Ready(v) => {
                this.out.set(Some(v));
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
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

    /// Counts its drops at the address of its first poll (`Pin`'s drop guarantee, which
    /// intrusive futures rely on) in `in_place`; `Ready` at its second poll if `completes`.
    struct StaysPut {
        at: Option<usize>,
        completes: bool,
        in_place: Rc<Cell<u32>>,
        _pinned: std::marker::PhantomPinned,
    }

    impl Future for StaysPut {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            // SAFETY: nothing is moved out of `self`; a field is written in place.
            let this = unsafe { self.get_unchecked_mut() };
            let here = std::ptr::from_mut(this) as usize;
            match this.at {
                Some(at) if this.completes => {
                    assert_eq!(at, here, "moved between polls");
                    return Poll::Ready(());
                }
                Some(_) => {}
                None => this.at = Some(here),
            }
            if this.completes {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    impl Drop for StaysPut {
        fn drop(&mut self) {
            let here = std::ptr::from_mut(self) as usize;
            if self.at == Some(here) {
                self.in_place.set(self.in_place.get() + 1);
            }
        }
    }

    #[test]
    fn task_futures_are_dropped_in_place_on_completion_abort_and_loop_drop() {
        let in_place = Rc::new(Cell::new(0));
        let put = |completes| StaysPut {
            at: None,
            completes,
            in_place: in_place.clone(),
            _pinned: std::marker::PhantomPinned,
        };
        let ev = EventLoop::new();
        ev.block_on(ev.spawn(put(true))).unwrap();
        let aborted = ev.spawn(put(false));
        let _left = ev.spawn(put(false));
        ev.block_on(crate::yield_now());
        aborted.abort();
        assert!(ev.block_on(aborted).unwrap_err().is_cancelled());
        drop(ev);
        assert_eq!(in_place.get(), 3);
    }

    #[test]
    fn a_task_polling_its_own_handle_sees_it_pending() {
        let ev = EventLoop::new();
        let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let saw = Rc::new(Cell::new(false));
        let (own, s) = (slot.clone(), saw.clone());
        *slot.borrow_mut() = Some(ev.spawn(async move {
            crate::yield_now().await;
            let mut me = own.borrow_mut().take().unwrap();
            let pending = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut me).poll(cx)))
                .await
                .is_pending();
            s.set(pending);
        }));
        ev.block_on(async {
            crate::yield_now().await;
            crate::yield_now().await;
        });
        assert!(saw.get());
    }
}
