//! Soundness (issue 12), each test small enough to run under Miri
//! (`cargo +nightly miri test --test soundness`):
//! - a task's future is dropped at the address it was polled at, on every path (completion,
//!   abort, panic during poll, loop drop, cluster and bridge drop), as `Pin` promises and as
//!   intrusive futures (tokio's `Notified`, a `BufWriter` borrowing a local) rely on;
//! - a destructor that panics becomes the task's `JoinError` (or is contained, for a detached
//!   task) instead of unwinding out of the loop, and the tasks after it are still freed;
//! - a waker whose clone or drop re-enters the sync primitive that holds it works (tokio's
//!   `notify_clones_waker_before_lock` and `semaphore_batch::release_permits_at_drop`, ported);
//! - a task may poll its own `JoinHandle` (it stays pending);
//! - `RwLockReadGuard` is covariant in its value type (async-lock's test, ported);
//! - a task's reference count (async-task's `join`, `cancel`, `panic`, `waker_*` tests and
//!   tokio's abort tests, ported): each count released once, and nothing `!Send` left in the
//!   task for a waker on another thread to free (`ThreadBound`); freed memory is poisoned
//!   natively (`PoisonOnFree`) so a use after free crashes outside Miri too;
//! - user code run by a finished task before the loop lets go of it (ignored: review findings).

mod common;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::io::{BufWriter, Write};
use std::marker::PhantomPinned;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::{Arc, Mutex as StdMutex, mpsc};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use common::BOUND;
use executor::sync::{Mutex, Notify, RwLockReadGuard, Semaphore};
use executor::{EventLoop, JoinHandle, spawn, threads::Bridge, threads::Cluster, yield_now};

// ----- the address-check future ------------------------------------------------------------

/// One entry per drop of a polled [`AddrCheck`]: whether it was dropped where it was polled.
type Seen = Arc<StdMutex<Vec<bool>>>;

fn seen() -> Seen {
    Arc::new(StdMutex::new(Vec::new()))
}

fn record(seen: &Seen) -> Vec<bool> {
    seen.lock().unwrap().clone()
}

/// A future that records its address at its first poll, asserts it is unchanged at every later
/// poll and in `Drop` (what an intrusive future relies on), and records what `Drop` saw in
/// `seen` first (so a check failing on another thread is still reported).
struct AddrCheck {
    /// Address at the first poll.
    first: Option<usize>,
    /// Polls so far.
    polls: u32,
    /// Returns `Ready(polls)` at this poll (never if `None`).
    ready_at: Option<u32>,
    /// Panics at this poll.
    panic_at: Option<u32>,
    /// Told once, at the first poll (for loops on other threads).
    polled: Option<mpsc::Sender<()>>,
    seen: Seen,
    _pinned: PhantomPinned,
}

impl AddrCheck {
    fn new(seen: &Seen, ready_at: Option<u32>, panic_at: Option<u32>) -> Self {
        AddrCheck {
            first: None,
            polls: 0,
            ready_at,
            panic_at,
            polled: None,
            seen: seen.clone(),
            _pinned: PhantomPinned,
        }
    }

    fn pending(seen: &Seen) -> Self {
        AddrCheck::new(seen, None, None)
    }

    fn ready_at(seen: &Seen, poll: u32) -> Self {
        AddrCheck::new(seen, Some(poll), None)
    }

    fn panic_at(seen: &Seen, poll: u32) -> Self {
        AddrCheck::new(seen, None, Some(poll))
    }

    fn telling(mut self, polled: mpsc::Sender<()>) -> Self {
        self.polled = Some(polled);
        self
    }
}

impl Future for AddrCheck {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        // SAFETY: nothing is moved out of `self`; its fields are read and written in place.
        let this = unsafe { self.get_unchecked_mut() };
        let here = std::ptr::from_mut(this) as usize;
        assert_eq!(*this.first.get_or_insert(here), here, "moved between polls");
        this.polls += 1;
        if let Some(tx) = this.polled.take() {
            let _ = tx.send(());
        }
        if this.panic_at == Some(this.polls) {
            panic!("AddrCheck panics at poll {}", this.polls);
        }
        if this.ready_at == Some(this.polls) {
            return Poll::Ready(this.polls);
        }
        if this.ready_at.is_some() || this.panic_at.is_some() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for AddrCheck {
    fn drop(&mut self) {
        if let Some(first) = self.first {
            let same = first == std::ptr::from_mut(self) as usize;
            self.seen.lock().unwrap().push(same);
            assert!(same, "AddrCheck dropped away from where it was polled");
        }
    }
}

#[test]
fn a_completed_task_is_dropped_where_it_was_polled() {
    let seen = seen();
    let ev = EventLoop::new();
    assert_eq!(
        ev.block_on(ev.spawn(AddrCheck::ready_at(&seen, 3)))
            .unwrap(),
        3
    );
    assert_eq!(record(&seen), [true]);
}

#[test]
fn an_aborted_task_is_dropped_where_it_was_polled() {
    let seen = seen();
    let ev = EventLoop::new();
    let h = ev.spawn(AddrCheck::pending(&seen));
    ev.block_on(yield_now());
    h.abort();
    assert!(ev.block_on(h).unwrap_err().is_cancelled());
    assert_eq!(record(&seen), [true]);
}

#[test]
fn a_task_aborted_by_itself_is_dropped_where_it_was_polled() {
    let seen = seen();
    let s = seen.clone();
    let ev = EventLoop::new();
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let own = slot.clone();
    let h = ev.spawn(async move {
        let mut check = pin!(AddrCheck::pending(&s));
        assert!(
            poll_fn(|cx| Poll::Ready(check.as_mut().poll(cx)))
                .await
                .is_pending()
        );
        yield_now().await;
        own.borrow().as_ref().expect("own handle").abort();
        std::future::pending::<()>().await;
    });
    *slot.borrow_mut() = Some(h);
    ev.block_on(async {
        yield_now().await;
        yield_now().await;
    });
    let h = slot.borrow_mut().take().unwrap();
    assert!(ev.block_on(h).unwrap_err().is_cancelled());
    assert_eq!(record(&seen), [true]);
}

#[test]
fn a_task_that_panics_is_dropped_where_it_was_polled() {
    let seen = seen();
    let ev = EventLoop::new();
    let err = ev
        .block_on(ev.spawn(AddrCheck::panic_at(&seen, 2)))
        .unwrap_err();
    assert_eq!(err.panic_message(), Some("AddrCheck panics at poll 2"));
    assert_eq!(record(&seen), [true]);
}

#[test]
fn a_dropped_loop_drops_its_tasks_where_they_were_polled() {
    let seen = seen();
    let ev = EventLoop::new();
    let handles: Vec<_> = (0..3)
        .map(|_| ev.spawn(AddrCheck::pending(&seen)))
        .collect();
    ev.block_on(yield_now());
    drop(ev);
    assert_eq!(record(&seen), [true, true, true]);
    assert!(handles.iter().all(JoinHandle::is_finished));
}

#[test]
fn the_block_on_future_is_dropped_where_it_was_polled() {
    let seen = seen();
    assert_eq!(executor::block_on(AddrCheck::ready_at(&seen, 2)), 2);
    assert_eq!(record(&seen), [true]);
}

#[test]
fn a_dropped_cluster_drops_its_tasks_where_they_were_polled() {
    let seen = seen();
    let (tx, rx) = mpsc::channel();
    let cluster = Cluster::new(1).unwrap();
    let s = seen.clone();
    let h = cluster.spawn(move || AddrCheck::pending(&s).telling(tx));
    rx.recv_timeout(BOUND).expect("the job was never polled");
    drop(cluster);
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(record(&seen), [true]);
}

#[test]
fn a_dropped_bridge_drops_the_tasks_its_calls_left_where_they_were_polled() {
    let seen = seen();
    let bridge = Bridge::new().unwrap();
    let s = seen.clone();
    assert_eq!(
        bridge.call(move || AddrCheck::ready_at(&s, 2)).unwrap(),
        2,
        "a call's own future, completed"
    );
    let s = seen.clone();
    bridge
        .call(move || async move {
            spawn(AddrCheck::pending(&s)).detach();
            yield_now().await;
        })
        .unwrap();
    drop(bridge);
    assert_eq!(record(&seen), [true, true]);
}

// ----- intrusive futures, cancelled ---------------------------------------------------------

/// The reproduction: a task waiting on tokio's `Notify` (an intrusive waiter list) is
/// aborted and its handle dropped (freeing the task), then `notify_waiters` walks the list.
/// Moving the `Notified` before dropping it left the list pointing into the freed task.
#[test]
fn an_aborted_tokio_notify_waiter_leaves_the_waiter_list() {
    let notify = Arc::new(tokio::sync::Notify::new());
    let ev = EventLoop::new();
    let n = notify.clone();
    let h = ev.spawn(async move { n.notified().await });
    ev.block_on(yield_now());
    h.abort();
    drop(h);
    notify.notify_waiters();
    drop(ev);
}

/// The same, observed without Miri: had the aborted waiter stayed in the list, `notify_one`
/// would hand it the permit, and a fresh waiter would not complete at once.
#[test]
fn an_aborted_tokio_notify_waiter_does_not_swallow_a_notification() {
    let notify = Arc::new(tokio::sync::Notify::new());
    let ev = EventLoop::new();
    let n = notify.clone();
    let h = ev.spawn(async move { n.notified().await });
    ev.block_on(yield_now());
    h.abort();
    drop(h);
    notify.notify_one();
    let fresh = pin!(notify.notified());
    assert!(
        fresh
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    );
}

#[test]
fn an_aborted_task_holding_a_bufwriter_on_a_local_flushes_into_that_local() {
    let ev = EventLoop::new();
    let flushed = Rc::new(Cell::new(None));
    let f = flushed.clone();
    let h = ev.spawn(async move {
        let mut out = Reported(Vec::new(), f);
        let mut w = BufWriter::new(&mut out.0);
        w.write_all(b"held across an await").unwrap();
        std::future::pending::<()>().await;
        w.flush().unwrap();
    });
    ev.block_on(yield_now());
    h.abort();
    assert!(ev.block_on(h).unwrap_err().is_cancelled());
    // Dropped on abort, `w` flushed into `out` (which lives in the same future), then `out`
    // was dropped.
    assert_eq!(flushed.get(), Some(b"held across an await".len()));
}

/// A `Vec` that reports its length when dropped.
struct Reported(Vec<u8>, Rc<Cell<Option<usize>>>);

impl Drop for Reported {
    fn drop(&mut self) {
        self.1.set(Some(self.0.len()));
    }
}

// ----- panicking destructors ----------------------------------------------------------------

/// Panics when dropped.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// Returns `Ready(7)` at its first poll; its destructor (run after that) panics.
struct ReadyThenPanicOnDrop(#[allow(dead_code)] PanicOnDrop);

impl Future for ReadyThenPanicOnDrop {
    type Output = u32;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(7)
    }
}

#[test]
fn a_destructor_panicking_at_completion_becomes_the_join_error() {
    let ev = EventLoop::new();
    let err = ev.block_on(async {
        spawn(ReadyThenPanicOnDrop(PanicOnDrop("dropped at completion")))
            .await
            .unwrap_err()
    });
    assert_eq!(err.panic_message(), Some("dropped at completion"));
    assert_eq!(ev.block_on(async { spawn(async { 1 }).await.unwrap() }), 1);
}

/// Returns `Ready` with its value at its first poll; its destructor (run after that) panics.
struct ReadyWith<T>(Option<T>, #[allow(dead_code)] PanicOnDrop);

impl<T: Unpin> Future for ReadyWith<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        Poll::Ready(self.get_mut().0.take().expect("polled after Ready"))
    }
}

type HandleSlot = Rc<RefCell<Option<JoinHandle<PollsItsHandle>>>>;

/// An output that, when dropped, polls the handle of the task that returned it.
struct PollsItsHandle(HandleSlot, Rc<RefCell<Option<String>>>);

impl Drop for PollsItsHandle {
    fn drop(&mut self) {
        let Some(mut h) = self.0.borrow_mut().take() else {
            return;
        };
        let saw = match Pin::new(&mut h).poll(&mut noop_cx()) {
            Poll::Ready(Err(e)) => e.to_string(),
            Poll::Ready(Ok(_)) => "the output".to_string(),
            Poll::Pending => "pending".to_string(),
        };
        *self.1.borrow_mut() = Some(saw);
    }
}

#[test]
fn an_output_dropped_for_a_panicking_destructor_sees_that_panic_as_the_result() {
    let ev = EventLoop::new();
    let slot: HandleSlot = Rc::default();
    let saw = Rc::new(RefCell::new(None));
    let output = PollsItsHandle(slot.clone(), saw.clone());
    let h = ev.spawn(ReadyWith(
        Some(output),
        PanicOnDrop("dropped after returning"),
    ));
    *slot.borrow_mut() = Some(h);
    ev.block_on(yield_now());
    assert_eq!(
        saw.borrow().as_deref(),
        Some("task panicked: dropped after returning")
    );
}

#[test]
fn a_detached_task_whose_destructor_panics_does_not_unwind_out_of_the_loop() {
    let ev = EventLoop::new();
    let after = ev.block_on(async {
        spawn(ReadyThenPanicOnDrop(PanicOnDrop(
            "detached, dropped at completion",
        )))
        .detach();
        spawn(async { PanicOnDrop("detached output dropped") }).detach();
        yield_now().await;
        spawn(async { 2 }).await.unwrap()
    });
    assert_eq!(after, 2);
}

#[test]
fn a_panicking_output_destructor_does_not_unwind_out_of_join_handle_drop() {
    let ev = EventLoop::new();
    let h = ev.spawn(async { PanicOnDrop("finished output dropped with its handle") });
    ev.block_on(yield_now());
    assert!(h.is_finished());
    drop(h);
    assert_eq!(ev.block_on(async { 3 }), 3);
}

#[test]
fn a_loop_dropped_with_a_panicking_destructor_still_frees_the_tasks_after_it() {
    let ev = EventLoop::new();
    let marker = Rc::new(());
    let m = marker.clone();
    let bad = ev.spawn(async {
        let _g = PanicOnDrop("dropped with the loop");
        std::future::pending::<()>().await;
    });
    let good = ev.spawn(async move {
        let _m = m;
        std::future::pending::<()>().await;
    });
    ev.block_on(yield_now());
    assert!(catch_unwind(AssertUnwindSafe(|| drop(ev))).is_ok());
    assert_eq!(Rc::strong_count(&marker), 1);
    assert!(good.is_finished());
    let EventLoopGone(err) = EventLoopGone::of(bad);
    assert_eq!(err.panic_message(), Some("dropped with the loop"));
}

/// The result of a task whose loop is gone, read by polling its handle once.
struct EventLoopGone(executor::task::JoinError);

impl EventLoopGone {
    fn of<T: std::fmt::Debug>(h: JoinHandle<T>) -> Self {
        let mut h = pin!(h);
        match h.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => EventLoopGone(r.unwrap_err()),
            Poll::Pending => panic!("a task of a dropped loop is still pending"),
        }
    }
}

// ----- a task polling its own handle --------------------------------------------------------

#[test]
fn a_task_polling_its_own_handle_sees_it_pending() {
    let ev = EventLoop::new();
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let saw = Rc::new(Cell::new(None));
    let (own, s) = (slot.clone(), saw.clone());
    let h = ev.spawn(async move {
        yield_now().await; // until the handle is in the slot
        let mut me = own.borrow_mut().take().expect("own handle");
        let pending = poll_fn(|cx| Poll::Ready(Pin::new(&mut me).poll(cx).is_pending())).await;
        s.set(Some((pending, me.is_finished())));
        // `me` is dropped (the task detached) while the task runs.
    });
    *slot.borrow_mut() = Some(h);
    ev.block_on(async {
        yield_now().await;
        yield_now().await;
    });
    assert_eq!(saw.get(), Some((true, false)));
    assert!(!ev.is_alive(), "the task finished and left the loop");
}

// ----- re-entrant wakers --------------------------------------------------------------------

/// What a [`hooked_waker`] runs.
struct Hooks {
    /// Run at every clone.
    on_clone: Box<dyn Fn()>,
    /// Run when the last clone is dropped (or woken by value).
    on_drop: Option<Box<dyn FnOnce()>>,
}

impl Drop for Hooks {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

/// A waker whose clone runs `on_clone` and whose last drop runs `on_drop` (waking does nothing
/// else), to re-enter a primitive from inside its waker handling, as tokio's tests do. It is
/// built on an `Rc`: each test keeps it on its own thread.
fn hooked_waker(on_clone: impl Fn() + 'static, on_drop: impl FnOnce() + 'static) -> Waker {
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

    unsafe fn clone(data: *const ()) -> RawWaker {
        let hooks = data.cast::<Hooks>();
        // SAFETY: `data` is `Rc::into_raw` of an `Rc<Hooks>` whose count this waker owns; the
        // clone owns one more.
        unsafe { Rc::increment_strong_count(hooks) };
        // SAFETY: as above, the `Hooks` is alive.
        (unsafe { &*hooks }.on_clone)();
        RawWaker::new(data, &VTABLE)
    }
    unsafe fn wake(data: *const ()) {
        // SAFETY: waking by value consumes the waker's count.
        unsafe { drop_waker(data) }
    }
    unsafe fn wake_by_ref(_: *const ()) {}
    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: dropping the waker releases the count it owned.
        drop(unsafe { Rc::from_raw(data.cast::<Hooks>()) });
    }

    let hooks = Rc::new(Hooks {
        on_clone: Box::new(on_clone),
        on_drop: Some(Box::new(on_drop)),
    });
    // SAFETY: the vtable treats `data` as an `Rc<Hooks>` with one count per waker. The waker is
    // not really `Send`, but the tests never let it leave their thread.
    unsafe { Waker::from_raw(RawWaker::new(Rc::into_raw(hooks).cast::<()>(), &VTABLE)) }
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// tokio's `notify_clones_waker_before_lock`, ported: the waker's clone notifies the same
/// `Notify`. Here the notification must not be lost either.
#[test]
fn notify_clones_waker_before_lock() {
    let notify = Rc::new(Notify::new());
    let n = notify.clone();
    let waker = hooked_waker(move || n.notify_one(), || {});
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(notify.notified());
    if fut.as_mut().poll(&mut cx).is_pending() {
        assert!(
            fut.as_mut().poll(&mut cx).is_ready(),
            "a notification was lost"
        );
    }
}

#[test]
fn a_notified_whose_waker_notifies_when_dropped_can_be_dropped() {
    let notify = Rc::new(Notify::new());
    let n = notify.clone();
    let mut fut = Box::pin(notify.notified());
    {
        let waker = hooked_waker(|| {}, move || n.notify_one());
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    } // the wait list holds the waker's last clone now
    drop(fut);
    // The waker's drop found nobody waiting: its notification became the permit.
    assert!(pin!(notify.notified()).poll(&mut noop_cx()).is_ready());
}

#[test]
fn a_notified_repolled_with_a_new_waker_drops_the_old_one_unborrowed() {
    let notify = Rc::new(Notify::new());
    let n = notify.clone();
    let mut fut = pin!(notify.notified());
    let old = hooked_waker(|| {}, move || n.notify_one());
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&old))
            .is_pending()
    );
    drop(old);
    // Replacing the stored waker drops the old one, which notifies us: we are woken.
    let _ = fut.as_mut().poll(&mut noop_cx());
    assert!(fut.as_mut().poll(&mut noop_cx()).is_ready());
}

/// tokio's `semaphore_batch::release_permits_at_drop`, ported: each waker holds a permit and
/// gives it back when dropped, which is when the semaphore replaces it with the next one.
#[test]
fn release_permits_at_drop() {
    let sem = Rc::new(Semaphore::new(1));
    let mut fut = Box::pin(async {
        let _permit = sem.acquire().await.unwrap();
    });
    // Second iteration shouldn't deadlock (tokio) or panic on a borrowed `RefCell` (here).
    for _ in 0..=1 {
        let held = match sem.try_acquire() {
            Ok(p) => {
                p.forget();
                1
            }
            Err(_) => 0,
        };
        let s = sem.clone();
        let waker = hooked_waker(|| {}, move || s.add_permits(held));
        let mut cx = Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    // The first waker's permit was handed to the waiting future.
    assert!(fut.as_mut().poll(&mut noop_cx()).is_ready());
    drop(fut);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_lock_whose_waker_clone_tries_the_mutex_queues() {
    let m = Rc::new(Mutex::new(0));
    let tried = Rc::new(Cell::new(0));
    let (m2, t) = (m.clone(), tried.clone());
    let waker = hooked_waker(
        move || {
            assert!(m2.try_lock().is_err());
            t.set(t.get() + 1);
        },
        || {},
    );
    let guard = m.try_lock().unwrap();
    let mut lock = pin!(m.lock());
    assert!(
        lock.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert_eq!(tried.get(), 1);
    drop(guard);
    let Poll::Ready(mut g) = lock.as_mut().poll(&mut noop_cx()) else {
        panic!("the lock was not handed over");
    };
    *g += 1;
}

#[test]
fn a_lock_whose_old_waker_locks_the_mutex_when_dropped() {
    let m = Rc::new(Mutex::new(0));
    let saw = Rc::new(Cell::new(None));
    let (m2, s) = (m.clone(), saw.clone());
    let guard = m.try_lock().unwrap();
    let mut lock = pin!(m.lock());
    let old = hooked_waker(|| {}, move || s.set(Some(m2.try_lock().is_ok())));
    assert!(
        lock.as_mut()
            .poll(&mut Context::from_waker(&old))
            .is_pending()
    );
    drop(old);
    assert!(lock.as_mut().poll(&mut noop_cx()).is_pending());
    assert_eq!(
        saw.get(),
        Some(false),
        "the old waker ran, and found the lock held"
    );
    drop(guard);
    assert!(lock.as_mut().poll(&mut noop_cx()).is_ready());
}

#[test]
fn an_abandoned_lock_whose_waker_locks_the_mutex_when_dropped() {
    let m = Rc::new(Mutex::new(0));
    let saw = Rc::new(Cell::new(None));
    let (m2, s) = (m.clone(), saw.clone());
    let guard = m.try_lock().unwrap();
    let mut lock = Box::pin(m.lock());
    {
        let waker = hooked_waker(|| {}, move || s.set(Some(m2.try_lock().is_ok())));
        assert!(
            lock.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
    drop(lock);
    assert_eq!(saw.get(), Some(false));
    drop(guard);
    assert!(m.try_lock().is_ok());
}

// ----- variance ------------------------------------------------------------------------------

/// async-lock's `_covariance_test`, ported: it passes by compiling.
#[allow(dead_code)]
fn read_guard_is_covariant<'g>(guard: RwLockReadGuard<'g, &'static ()>) {
    let _: RwLockReadGuard<'g, &'g ()> = guard;
}

// ----- task reference counts: async-task's and tokio's tests, ported -------------------------
//
// A task is one allocation with a count of its own (`src/task/waker.rs`): the loop's slab, the
// `JoinHandle` and every waker own one, and whoever lets go of the last frees the task, on
// whatever thread that is. The tests below count what is dropped, where, and how often, after
// async-task's `tests/{join,cancel,panic,waker_pending,waker_ready}.rs` (their `DROP_F`, `DROP_O`
// counters, with the schedule function's replaced by the loop) and tokio's
// `drop_join_handle_*`/`remote_abort_*` tests:
// - a count released twice frees a live task: Miri reports it, and natively the allocator below
//   makes the next read of the freed task crash the test binary;
// - a count never released leaks the task: Miri's leak check reports it at exit;
// - a `!Send` value (future or output) left in the task for a waker on another thread to free
//   is dropped on that thread: `ThreadBound` records it.

/// Overwrites memory when it is freed, so that natively a read of a freed task finds garbage (a
/// `Waker` with a wild vtable: a crash) rather than its old contents. Miri checks that itself.
#[cfg(not(miri))]
#[global_allocator]
static POISON_ON_FREE: PoisonOnFree = PoisonOnFree;

#[cfg(not(miri))]
struct PoisonOnFree;

#[cfg(not(miri))]
// SAFETY: every call goes to `System` with the caller's arguments; `dealloc` first overwrites
// the block, which its caller gives up.
unsafe impl std::alloc::GlobalAlloc for PoisonOnFree {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as the caller promised to `alloc`.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes made by `alloc`, given up here.
        unsafe {
            std::ptr::write_bytes(ptr, 0xA5, layout.size());
            std::alloc::System.dealloc(ptr, layout);
        }
    }
}

/// The drops of [`ThreadBound`]s, in order: what was dropped, and whether on its own thread.
type Drops = Arc<StdMutex<Vec<(&'static str, bool)>>>;

fn drops() -> Drops {
    Arc::default()
}

fn dropped(drops: &Drops) -> Vec<(&'static str, bool)> {
    drops.lock().unwrap().clone()
}

/// A `!Send` value (part of a task's future, or its output) that records its drop, and whether
/// it happened on the thread that made it, in `drops` (first, so a drop on another thread is
/// still reported to the test), then asserts it.
#[derive(Debug)]
struct ThreadBound {
    what: &'static str,
    made_on: std::thread::ThreadId,
    drops: Drops,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ThreadBound {
    fn new(what: &'static str, drops: &Drops) -> Self {
        ThreadBound {
            what,
            made_on: std::thread::current().id(),
            drops: drops.clone(),
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for ThreadBound {
    fn drop(&mut self) {
        let home = std::thread::current().id() == self.made_on;
        self.drops.lock().unwrap().push((self.what, home));
        assert!(home, "{} dropped on another thread", self.what);
    }
}

/// A thread that keeps the wakers it is sent until [`release`](Self::release), then wakes and
/// drops them there: it lets go of its counts last, after the task's handle and loop.
struct WakerHolder {
    wakers: mpsc::Sender<Waker>,
    go: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<usize>,
}

impl WakerHolder {
    fn start() -> Self {
        let (wakers, held) = mpsc::channel::<Waker>();
        let (go, told) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            told.recv_timeout(BOUND)
                .expect("the holder was never told to let go");
            let held: Vec<Waker> = held.try_iter().collect();
            for w in &held {
                // The loop may be gone: then a wake is a no-op.
                w.wake_by_ref();
            }
            held.len()
        });
        WakerHolder { wakers, go, thread }
    }

    /// Wakes and drops every waker held, on the holder's thread; the number of wakers, or the
    /// holder's panic (a `ThreadBound` dropped there).
    fn release(self) -> std::thread::Result<usize> {
        self.go.send(()).unwrap();
        self.thread.join()
    }
}

/// Sends a clone of the polling task's waker to `to`.
async fn send_waker(to: &mpsc::Sender<Waker>) {
    poll_fn(|cx| {
        to.send(cx.waker().clone()).unwrap();
        Poll::Ready(())
    })
    .await;
}

/// A task holding a `ThreadBound` "future" part, whose waker goes to `holder` at its first
/// poll; it then finishes with a `ThreadBound` "output" (at its second poll) or, if not
/// `finishes`, stays pending.
fn escaping_waker_task(
    ev: &EventLoop,
    drops: &Drops,
    holder: &WakerHolder,
    finishes: bool,
) -> JoinHandle<ThreadBound> {
    let (d, tx) = (drops.clone(), holder.wakers.clone());
    let part = ThreadBound::new("future", drops);
    ev.spawn(async move {
        let _part = part;
        send_waker(&tx).await;
        yield_now().await;
        if !finishes {
            std::future::pending::<()>().await;
        }
        ThreadBound::new("output", &d)
    })
}

const FUTURE_AND_OUTPUT: [(&str, bool); 2] = [("future", true), ("output", true)];
const FUTURE_ONLY: [(&str, bool); 1] = [("future", true)];

/// async-task's `run_and_join`: the output is taken by the handle, then the last count is a
/// waker on another thread.
#[test]
fn a_waker_on_another_thread_outlives_an_awaited_task() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let h = escaping_waker_task(&ev, &drops, &holder, true);
    drop(ev.block_on(h).unwrap());
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 1);
    assert_eq!(dropped(&drops), FUTURE_AND_OUTPUT);
}

/// async-task's `drop_handle_and_run`: the output of a detached task is dropped when it is made,
/// on the loop's thread, not when a waker elsewhere lets go of the task.
#[test]
fn a_waker_on_another_thread_outlives_a_task_whose_handle_was_dropped_before_it_finished() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    drop(escaping_waker_task(&ev, &drops, &holder, true));
    ev.run(|| {});
    assert_eq!(dropped(&drops), FUTURE_AND_OUTPUT);
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 1);
    assert_eq!(dropped(&drops), FUTURE_AND_OUTPUT);
}

#[test]
fn a_waker_on_another_thread_outlives_a_detached_task() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    escaping_waker_task(&ev, &drops, &holder, true).detach();
    ev.run(|| {});
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 1);
    assert_eq!(dropped(&drops), FUTURE_AND_OUTPUT);
}

/// The handle of a finished task, never read, is dropped after its loop: it drops the output.
#[test]
fn a_waker_on_another_thread_outlives_an_unread_output_dropped_after_the_loop() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let h = escaping_waker_task(&ev, &drops, &holder, true);
    ev.run(|| {});
    assert!(h.is_finished());
    drop(ev);
    assert_eq!(
        dropped(&drops),
        FUTURE_ONLY,
        "the output waits for its handle"
    );
    drop(h);
    assert_eq!(holder.release().expect("no drop on the holder"), 1);
    assert_eq!(dropped(&drops), FUTURE_AND_OUTPUT);
}

/// async-task's `cancel_join`/`drop_last_waker`: aborted on the loop, handle awaited.
#[test]
fn a_waker_on_another_thread_outlives_an_aborted_task() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let h = escaping_waker_task(&ev, &drops, &holder, false);
    ev.block_on(async {
        yield_now().await;
        yield_now().await;
    });
    h.abort();
    assert_eq!(
        dropped(&drops),
        FUTURE_ONLY,
        "aborting drops the future at once"
    );
    assert!(ev.block_on(h).unwrap_err().is_cancelled());
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 1);
    assert_eq!(dropped(&drops), FUTURE_ONLY);
}

/// tokio's `remote_abort_local_set_3929`: aborted through an `AbortHandle` on another thread.
#[test]
fn a_waker_on_another_thread_outlives_a_task_aborted_from_a_third_thread() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let h = escaping_waker_task(&ev, &drops, &holder, false);
    let abort = h.abort_handle();
    let out = ev.block_on(async move {
        yield_now().await;
        yield_now().await;
        std::thread::spawn(move || abort.abort()).join().unwrap();
        executor::time::timeout(BOUND, h)
            .await
            .expect("the abort from another thread was lost")
    });
    assert!(out.unwrap_err().is_cancelled());
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 1);
    assert_eq!(dropped(&drops), FUTURE_ONLY);
}

#[test]
fn a_waker_on_another_thread_outlives_a_pending_task_and_its_loop() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let kept = escaping_waker_task(&ev, &drops, &holder, false);
    drop(escaping_waker_task(&ev, &drops, &holder, false));
    ev.block_on(async {
        yield_now().await;
        yield_now().await;
    });
    drop(ev);
    assert_eq!(dropped(&drops), [("future", true), ("future", true)]);
    assert_eq!(holder.release().expect("no drop on the holder"), 2);
    let EventLoopGone(err) = EventLoopGone::of(kept);
    assert!(err.is_cancelled());
    assert_eq!(dropped(&drops), [("future", true), ("future", true)]);
}

/// async-task's `panic.rs` (`panic_and_poll`, `detach_during_run`): a task that panics with its
/// waker elsewhere, and one that drops its own handle before panicking.
#[test]
fn a_waker_on_another_thread_outlives_a_task_that_panicked() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let tx = holder.wakers.clone();
    let part = ThreadBound::new("future", &drops);
    let joined = ev.spawn(async move {
        let _part = part;
        send_waker(&tx).await;
        yield_now().await;
        panic!("joined task panics");
    });
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let (own, tx, part) = (
        slot.clone(),
        holder.wakers.clone(),
        ThreadBound::new("future", &drops),
    );
    *slot.borrow_mut() = Some(ev.spawn(async move {
        let _part = part;
        send_waker(&tx).await;
        yield_now().await;
        drop(own.borrow_mut().take()); // detached during its own poll
        panic!("detached task panics");
    }));
    let err = ev.block_on(joined).unwrap_err();
    assert_eq!(err.panic_message(), Some("joined task panics"));
    ev.run(|| {});
    assert!(slot.borrow().is_none());
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 2);
    assert_eq!(dropped(&drops), [("future", true), ("future", true)]);
}

/// tokio's `count_drops`/async-task's `waker_wake_many` idea: clones woken by value, woken by
/// reference, cloned again and dropped, each on its own thread, release exactly their counts (a
/// count released twice frees the task under the loop; one kept leaks it).
#[test]
fn waker_clones_woken_and_dropped_on_other_threads_release_one_count_each() {
    const THREADS: usize = if cfg!(miri) { 3 } else { 8 };
    let drops = drops();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ev = EventLoop::new();
    let (d, part) = (done.clone(), ThreadBound::new("future", &drops));
    let dr = drops.clone();
    let h = ev.spawn(async move {
        let _part = part;
        let mut threads = Vec::new();
        poll_fn(|cx| {
            for i in 0..THREADS {
                let (w, d) = (cx.waker().clone(), d.clone());
                threads.push(std::thread::spawn(move || {
                    match i % 3 {
                        0 => w.wake(),
                        1 => {
                            w.wake_by_ref();
                            drop(w);
                        }
                        _ => {
                            let again = w.clone();
                            drop(w);
                            again.wake_by_ref();
                        }
                    }
                    d.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }));
            }
            Poll::Ready(())
        })
        .await;
        poll_fn(|cx| {
            if d.load(std::sync::atomic::Ordering::SeqCst) == THREADS {
                Poll::Ready(())
            } else {
                // A thread may not have woken us yet after the last one's count: poll again.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        for t in threads {
            t.join().unwrap();
        }
        ThreadBound::new("output", &dr)
    });
    let out = ev.block_on(async { executor::time::timeout(BOUND, h).await });
    drop(
        out.expect("the task never saw every thread's wake")
            .unwrap(),
    );
    drop(ev);
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), THREADS);
    assert_eq!(dropped(&drops), FUTURE_AND_OUTPUT);
}

// ----- join handles (async-task's `join.rs`, `cancel.rs`) ----------------------------------

/// A `Wake` that counts its wakes; its `Arc`'s strong count says whether a task still holds it.
#[derive(Default)]
struct CountWakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl CountWakes {
    fn wakes(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// async-task's `cancel_and_join`: aborted before its first poll, the future is dropped once and
/// never polled; no output is made.
#[test]
fn a_task_aborted_before_its_first_poll_is_never_polled() {
    let drops = drops();
    let polled = Rc::new(Cell::new(false));
    let ev = EventLoop::new();
    let (p, d, part) = (
        polled.clone(),
        drops.clone(),
        ThreadBound::new("future", &drops),
    );
    let h = ev.spawn(async move {
        let _part = part;
        p.set(true);
        ThreadBound::new("output", &d)
    });
    h.abort();
    assert_eq!(dropped(&drops), FUTURE_ONLY);
    assert!(ev.block_on(h).unwrap_err().is_cancelled());
    assert!(!polled.get());
    assert!(!ev.is_alive());
    assert_eq!(dropped(&drops), FUTURE_ONLY);
}

/// async-task's `join_twice`: a handle polled again after it returned the output panics, and
/// neither drops the output again nor lets go of its count twice.
#[test]
fn a_join_handle_polled_after_its_output_panics_without_a_second_drop() {
    let drops = drops();
    let ev = EventLoop::new();
    let d = drops.clone();
    let mut h = ev.spawn(async move { ThreadBound::new("output", &d) });
    let out = ev.block_on(&mut h).unwrap();
    drop(out);
    assert!(futures::future::FusedFuture::is_terminated(&h));
    let again = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut h).poll(&mut noop_cx())));
    assert!(again.is_err(), "a second poll of a joined handle panics");
    drop(h);
    drop(ev);
    assert_eq!(dropped(&drops), [("output", true)]);
}

/// async-task's `try_join_and_cancel_and_run`: the join waker registered by a poll is dropped
/// (the task holds no clone of it) once the handle is aborted and dropped.
#[test]
fn a_polled_then_aborted_and_dropped_handle_lets_go_of_its_join_waker() {
    let drops = drops();
    let ev = EventLoop::new();
    let part = ThreadBound::new("future", &drops);
    let mut h = ev.spawn(async move {
        let _part = part;
        std::future::pending::<()>().await;
    });
    let join = Arc::new(CountWakes::default());
    let waker = Waker::from(join.clone());
    assert!(
        Pin::new(&mut h)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(waker);
    assert_eq!(Arc::strong_count(&join), 2, "the task holds the join waker");
    h.abort();
    assert_eq!(join.wakes(), 1, "the abort woke the joiner");
    drop(h);
    assert_eq!(Arc::strong_count(&join), 1);
    ev.run(|| {});
    assert_eq!(dropped(&drops), FUTURE_ONLY);
}

/// async-task's `try_join_and_run_and_cancel`: aborting a finished task changes nothing; its
/// output is still the handle's, dropped with it.
#[test]
fn aborting_a_finished_task_keeps_its_output_for_the_handle() {
    let drops = drops();
    let ev = EventLoop::new();
    let d = drops.clone();
    let mut h = ev.spawn(async move { ThreadBound::new("output", &d) });
    let join = Arc::new(CountWakes::default());
    let waker = Waker::from(join.clone());
    assert!(
        Pin::new(&mut h)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    ev.run(|| {});
    assert_eq!(join.wakes(), 1, "finishing woke the joiner");
    assert_eq!(Arc::strong_count(&join), 2, "only `waker` and `join`");
    h.abort();
    h.abort_handle().abort();
    assert!(dropped(&drops).is_empty());
    let Poll::Ready(Ok(out)) = Pin::new(&mut h).poll(&mut Context::from_waker(&waker)) else {
        panic!("the output was lost to the abort");
    };
    drop(out);
    drop(h);
    assert_eq!(dropped(&drops), [("output", true)]);
}

// ----- another thread during a poll (async-task's `waker_pending.rs`) -----------------------

/// A task whose first poll hands an `AbortHandle`-and-waker pair to `during` on another thread
/// and waits (bounded) for it to finish before returning `Pending`; later polls count and stay
/// pending. Returns the handle and the poll count.
fn task_with_a_thread_during_its_poll(
    ev: &EventLoop,
    drops: &Drops,
    during: impl FnOnce(executor::task::AbortHandle, Waker) + Send + 'static,
) -> (JoinHandle<()>, Rc<Cell<u32>>) {
    let polls = Rc::new(Cell::new(0));
    let abort_slot: Rc<RefCell<Option<executor::task::AbortHandle>>> = Rc::default();
    let (p, slot, part) = (
        polls.clone(),
        abort_slot.clone(),
        ThreadBound::new("future", drops),
    );
    let mut during = Some(during);
    let h = ev.spawn(async move {
        let _part = part;
        poll_fn(|cx| {
            p.set(p.get() + 1);
            if let Some(during) = during.take() {
                let (abort, waker) = (slot.borrow_mut().take().unwrap(), cx.waker().clone());
                std::thread::spawn(move || during(abort, waker))
                    .join()
                    .expect("the other thread panicked");
                return Poll::Pending;
            }
            if p.get() == 2 {
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
    });
    *abort_slot.borrow_mut() = Some(h.abort_handle());
    (h, polls)
}

/// async-task's `wake_during_run`: a wake from another thread while the task is being polled
/// polls it again (the `scheduled` flag was cleared before the poll).
#[test]
fn a_wake_from_another_thread_during_the_poll_polls_again() {
    let drops = drops();
    let ev = EventLoop::new();
    let (h, polls) = task_with_a_thread_during_its_poll(&ev, &drops, |_, w| w.wake());
    let out = ev.block_on(async {
        executor::time::timeout(BOUND, async {
            while !h.is_finished() && polls.get() < 2 {
                yield_now().await;
            }
        })
        .await
    });
    out.expect("the wake during the poll was lost");
    assert_eq!(polls.get(), 2);
    h.abort();
    assert!(ev.block_on(h).unwrap_err().is_cancelled());
    assert_eq!(dropped(&drops), FUTURE_ONLY);
}

/// async-task's `cancel_during_run`: an abort from another thread while the task is polled
/// cancels it after that poll, on the loop's thread.
#[test]
fn an_abort_from_another_thread_during_the_poll_cancels_after_it() {
    let drops = drops();
    let ev = EventLoop::new();
    let (h, polls) = task_with_a_thread_during_its_poll(&ev, &drops, |a, w| {
        a.abort();
        drop(w);
    });
    let out = ev.block_on(async { executor::time::timeout(BOUND, h).await });
    assert!(out.expect("the abort was lost").unwrap_err().is_cancelled());
    assert_eq!(polls.get(), 1);
    assert_eq!(dropped(&drops), FUTURE_ONLY);
}

/// async-task's `wake_and_cancel_during_run` and `cancel_and_wake_during_run`.
#[test]
fn a_wake_and_an_abort_from_another_thread_during_the_poll_cancel_once() {
    for wake_first in [true, false] {
        let drops = drops();
        let ev = EventLoop::new();
        let (h, _) = task_with_a_thread_during_its_poll(&ev, &drops, move |a, w| {
            if wake_first {
                w.wake_by_ref();
                a.abort();
            } else {
                a.abort();
                w.wake_by_ref();
            }
            // The last waker count goes with this thread, after the task may be gone.
            drop(w);
        });
        let out = ev.block_on(async { executor::time::timeout(BOUND, h).await });
        assert!(out.expect("the abort was lost").unwrap_err().is_cancelled());
        assert_eq!(dropped(&drops), FUTURE_ONLY, "wake first: {wake_first}");
    }
}

// ----- spawners, join sets, slab growth -----------------------------------------------------

/// A `!Send` future made on the loop by `spawn_local_with`, whose `RemoteJoinHandle` is dropped
/// on another thread, and one whose loop is dropped while it waits (the remote handle, awaited
/// on a plain thread, says cancelled): both futures are dropped on the loop's thread.
#[test]
fn spawn_local_with_futures_are_dropped_on_the_loop_thread() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let spawner = ev.spawner();
    let make = |finishes: bool| {
        let (d, tx) = (drops.clone(), holder.wakers.clone());
        move || async move {
            let _part = ThreadBound::new("future", &d);
            send_waker(&tx).await;
            yield_now().await;
            if !finishes {
                std::future::pending::<()>().await;
            }
            7u32
        }
    };
    let (finishing, pending) = (make(true), make(false));
    let (remote_a, remote_b) = std::thread::spawn(move || {
        (
            spawner.spawn_local_with(finishing).unwrap(),
            spawner.spawn_local_with(pending).unwrap(),
        )
    })
    .join()
    .unwrap();
    std::thread::spawn(move || drop(remote_a)).join().unwrap();
    let waiter = std::thread::spawn(move || futures::executor::block_on(remote_b));
    let started = ev.block_on(async {
        executor::time::timeout(BOUND, async {
            while dropped(&drops).is_empty() {
                yield_now().await;
            }
        })
        .await
    });
    started.expect("the detached remote task never finished");
    assert_eq!(dropped(&drops), FUTURE_ONLY);
    drop(ev);
    assert!(waiter.join().unwrap().unwrap_err().is_cancelled());
    assert_eq!(holder.release().expect("no drop on the holder"), 2);
    assert_eq!(dropped(&drops), [("future", true), ("future", true)]);
}

/// `JoinSet::abort_all` called by a task of the set: it aborts itself (deferred to the end of
/// its poll) and the others (their destructors run while it is polled). A set dropped with
/// tasks left aborts them. Every future is dropped once, on the loop's thread, while the
/// tasks' wakers are held elsewhere.
#[test]
fn a_join_set_aborted_from_inside_one_of_its_tasks() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let set: Rc<RefCell<executor::task::JoinSet<()>>> = Rc::default();
    let results = ev.block_on(async {
        for _ in 0..3 {
            let (tx, part) = (holder.wakers.clone(), ThreadBound::new("future", &drops));
            set.borrow_mut().spawn(async move {
                let _part = part;
                send_waker(&tx).await;
                std::future::pending::<()>().await;
            });
        }
        let (s, part) = (set.clone(), ThreadBound::new("future", &drops));
        set.borrow_mut().spawn(async move {
            let _part = part;
            yield_now().await;
            s.borrow_mut().abort_all();
            std::future::pending::<()>().await;
        });
        let mut results = Vec::new();
        executor::time::timeout(BOUND, async {
            while let Some(r) = poll_fn(|cx| set.borrow_mut().poll_join_next(cx)).await {
                results.push(r.unwrap_err().is_cancelled());
            }
        })
        .await
        .expect("an aborted task never finished");
        results
    });
    assert_eq!(results, [true; 4]);
    let mut left = executor::task::JoinSet::new();
    let part = ThreadBound::new("future", &drops);
    left.insert(ev.spawn(async move {
        let _part = part;
        std::future::pending::<()>().await;
    }));
    ev.block_on(yield_now());
    drop(left);
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 3);
    assert_eq!(dropped(&drops), [("future", true); 5]);
}

/// A task that spawns enough tasks during its poll for the slab to reallocate, aborts half of
/// them (whose destructors abort another task, the polling one, and themselves), then
/// finishes: the poll's pointers into the task survive the slab's growth, and every future is
/// dropped once.
#[test]
fn spawning_and_aborting_during_a_poll_grows_the_slab_under_it() {
    const N: usize = if cfg!(miri) { 24 } else { 200 };
    let drops = drops();
    let ev = EventLoop::new();
    struct AbortsOnDrop(Vec<executor::task::AbortHandle>);
    impl Drop for AbortsOnDrop {
        fn drop(&mut self) {
            for a in &self.0 {
                a.abort();
            }
        }
    }
    let me: Rc<RefCell<Option<executor::task::AbortHandle>>> = Rc::default();
    let (m, d, part) = (
        me.clone(),
        drops.clone(),
        ThreadBound::new("future", &drops),
    );
    let h = ev.spawn(async move {
        let _part = part;
        let own = m.borrow_mut().take().unwrap();
        let mut handles: Vec<JoinHandle<()>> = Vec::new();
        for i in 0..N {
            let prev = handles.last().map(JoinHandle::abort_handle);
            let part = ThreadBound::new("future", &d);
            // A slot its own `AbortHandle` goes into, after the spawn.
            let slot: Rc<RefCell<Vec<executor::task::AbortHandle>>> = Rc::default();
            let s = slot.clone();
            let mut on_drop = vec![own.clone()];
            on_drop.extend(prev);
            handles.push(spawn(async move {
                let _part = part;
                let _aborts = AbortsOnDrop(
                    on_drop
                        .into_iter()
                        .chain(s.borrow_mut().drain(..))
                        .collect(),
                );
                std::future::pending::<()>().await;
            }));
            slot.borrow_mut().push(handles[i].abort_handle());
        }
        yield_now().await; // every spawned task has been polled (and holds its aborts)
        for h in handles.iter().step_by(2) {
            h.abort();
        }
        // Our own abort (from a destructor, during this poll) is deferred; it lands when this
        // poll returns `Pending`.
        yield_now().await;
        unreachable!("aborted from a destructor during the previous poll");
    });
    *me.borrow_mut() = Some(h.abort_handle());
    let out = ev.block_on(async { executor::time::timeout(BOUND, h).await });
    assert!(
        out.expect("the task never ended")
            .unwrap_err()
            .is_cancelled()
    );
    drop(ev);
    let seen = dropped(&drops);
    assert_eq!(seen.len(), N + 1, "every future dropped once");
    assert!(seen.iter().all(|&(_, home)| home));
}

// ----- user code run by a finished task that is still in the slab ---------------------------
//
// `poll_spawned` and `abort_task` (src/runtime/tasks.rs) use the task through the slab's count,
// uncounted: they assume nothing removes the task before they return. But a task that has
// finished (state `Done`) still runs user code before they return: the detached output's
// destructor and the join waker's `wake` (`Task::finish`, src/task/mod.rs). An abort made
// there is not refused (`cancel` of a `Done` task says yes), removes the task from the slab,
// and, with the handle gone, frees it under `finish`. These fail on the code they were written
// against; they are ignored until it is fixed (run them with `--include-ignored`).

/// Aborts the task in its slot when dropped.
struct AbortsItsTaskOnDrop(Rc<RefCell<Option<executor::task::AbortHandle>>>);

impl Drop for AbortsItsTaskOnDrop {
    fn drop(&mut self) {
        if let Some(own) = self.0.borrow_mut().take() {
            own.abort();
        }
    }
}

/// The output of a detached task aborts that task when `finish` drops it: the slab's count,
/// the last, goes; `finish` then reads the freed task's join waker (Miri: deallocation under a
/// protected reference; natively the poisoned waker's wake crashes the binary).
#[test]
fn a_detached_output_that_aborts_its_task_when_dropped() {
    let ev = EventLoop::new();
    let slot: Rc<RefCell<Option<executor::task::AbortHandle>>> = Rc::default();
    let s = slot.clone();
    let h = ev.spawn(async move { AbortsItsTaskOnDrop(s) });
    *slot.borrow_mut() = Some(h.abort_handle());
    drop(h);
    ev.run(|| {});
    assert!(slot.borrow().is_none(), "the output was dropped");
    assert!(!ev.is_alive());
}

thread_local! {
    /// The handle a [`DropsTheHandleOnWake`] join waker aborts and drops.
    static HANDLE: RefCell<Option<JoinHandle<u32>>> = const { RefCell::new(None) };
}

/// A join waker whose wake aborts and drops the (finished) task's handle, from `HANDLE`.
struct DropsTheHandleOnWake;

impl std::task::Wake for DropsTheHandleOnWake {
    fn wake(self: Arc<Self>) {
        if let Some(h) = HANDLE.with(|h| h.borrow_mut().take()) {
            h.abort();
            drop(h);
        }
    }
}

/// The join waker, woken by `finish`, aborts the finished task (the slab lets go) and drops its
/// handle (the last count): the task is freed while `finish`, `run` and `poll_spawned` still
/// use it (Miri: deallocation under a protected reference).
#[test]
fn a_join_waker_that_aborts_the_finished_task_and_drops_its_handle() {
    let ev = EventLoop::new();
    let mut h = ev.spawn(async { 4 });
    let waker = Waker::from(Arc::new(DropsTheHandleOnWake));
    assert!(
        Pin::new(&mut h)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(waker);
    HANDLE.with(|slot| *slot.borrow_mut() = Some(h));
    ev.run(|| {});
    assert!(HANDLE.with(|slot| slot.borrow().is_none()), "the waker ran");
    assert!(!ev.is_alive());
}

/// A join waker whose wake panics.
struct PanicsOnWake;

impl std::task::Wake for PanicsOnWake {
    fn wake(self: Arc<Self>) {
        panic!("join waker panics");
    }
}

/// tokio catches a panic of the join waker (`Harness::complete`); here it unwinds out of
/// `finish`, `run` and `poll_spawned`, skipping the restore of `LoopState::current` (left
/// pointing at the task) and the task's removal (a finished task stays in the slab, and keeps
/// the loop alive for ever).
#[test]
fn a_panicking_join_waker_does_not_unwind_out_of_the_loop() {
    let ev = EventLoop::new();
    let mut h = ev.spawn(async { 5 });
    let waker = Waker::from(Arc::new(PanicsOnWake));
    assert!(
        Pin::new(&mut h)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(waker);
    let ran = catch_unwind(AssertUnwindSafe(|| ev.run(|| {})));
    assert!(
        ran.is_ok(),
        "the join waker's panic unwound out of the loop"
    );
    assert!(!ev.is_alive(), "the finished task left the slab");
    assert_eq!(ev.block_on(h).unwrap(), 5);
}

/// The same through `abort_task`: aborting a pending task wakes its joiner from `finish`, and
/// that wake aborts again and drops the handle: the task is freed under `finish`, `cancel` and
/// `abort_task` (Miri: deallocation under a protected reference).
#[test]
fn a_join_waker_woken_by_an_abort_that_aborts_again_and_drops_the_handle() {
    let ev = EventLoop::new();
    let mut h = ev.spawn(std::future::pending::<u32>());
    let abort = h.abort_handle();
    ev.block_on(yield_now());
    let waker = Waker::from(Arc::new(DropsTheHandleOnWake));
    assert!(
        Pin::new(&mut h)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(waker);
    HANDLE.with(|slot| *slot.borrow_mut() = Some(h));
    // On the running loop, an `AbortHandle` aborts at once (off it, it queues a job).
    ev.block_on(async { abort.abort() });
    assert!(HANDLE.with(|slot| slot.borrow().is_none()), "the waker ran");
    assert!(!ev.is_alive());
}

/// A forgotten handle keeps its count for ever: the task leaks, and its output is never dropped
/// (in particular not by a waker on another thread letting go of what it thinks is the last
/// count).
#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a task on purpose (Miri's leak check would report it)"
)]
fn a_forgotten_handle_leaks_its_task_and_output() {
    let (drops, holder) = (drops(), WakerHolder::start());
    let ev = EventLoop::new();
    let h = escaping_waker_task(&ev, &drops, &holder, true);
    ev.run(|| {});
    std::mem::forget(h);
    drop(ev);
    assert_eq!(holder.release().expect("no drop on the holder"), 1);
    assert_eq!(dropped(&drops), FUTURE_ONLY);
}

// ----- destructors that spawn while the loop is dropped ---------------------------------------
// (The links keep their counts in thread-locals, not `Rc`s: the one future the last round
// forgets then owns nothing, so Miri's leak check has nothing to report.)

thread_local! {
    static LINKS_MADE: Cell<u32> = const { Cell::new(0) };
    static LINKS_DROPPED: Cell<u32> = const { Cell::new(0) };
    static LAST_ROUND_HANDLES: RefCell<Vec<JoinHandle<u32>>> = const { RefCell::new(Vec::new()) };
}

/// Spawns, from its destructor, the next link of a chain of `left` more tasks; counts the
/// links made and dropped.
struct SpawnOnDrop {
    left: u32,
}

impl SpawnOnDrop {
    fn spawn(left: u32) {
        LINKS_MADE.set(LINKS_MADE.get() + 1);
        let link = SpawnOnDrop { left };
        executor::spawn(async move {
            let _link = link;
            std::future::pending::<()>().await;
        })
        .detach();
    }
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        LINKS_DROPPED.set(LINKS_DROPPED.get() + 1);
        if self.left > 0 {
            SpawnOnDrop::spawn(self.left - 1);
        }
    }
}

/// A chain of tasks, each spawned by the destructor of the one before: dropping the loop
/// drops every link the shutdown's 16 rounds reach, and never panics (before, a link left after
/// the last round was freed with the loop's memory, outside the loop, and its destructor's
/// spawn panicked). The link spawned in the last round is never run and never dropped
/// (forgotten: its destructor would only spawn again).
#[test]
fn a_loop_dropped_with_a_long_chain_of_spawning_destructors_ends_and_does_not_panic() {
    for len in [3u32, 15, 16, 17, 40] {
        LINKS_MADE.set(0);
        LINKS_DROPPED.set(0);
        let ev = EventLoop::new();
        ev.block_on(async {
            SpawnOnDrop::spawn(len);
            yield_now().await;
        });
        assert!(
            catch_unwind(AssertUnwindSafe(|| drop(ev))).is_ok(),
            "chain of {len}: the loop's drop panicked"
        );
        let (made, dropped) = (LINKS_MADE.get(), LINKS_DROPPED.get());
        if len < 16 {
            assert_eq!((made, dropped), (len + 1, len + 1), "chain of {len}");
        } else {
            // Links 0 to 15 dropped in rounds 1 to 16; link 16, spawned in the last, forgotten.
            assert_eq!((made, dropped), (17, 16), "chain of {len}");
        }
    }
}

/// Spawns itself again from its destructor, for ever; keeps the handles.
struct Forever;

impl Drop for Forever {
    fn drop(&mut self) {
        let again = Forever;
        let h = executor::spawn(async move {
            let _again = again;
            std::future::pending::<u32>().await
        });
        LAST_ROUND_HANDLES.with_borrow_mut(|v| v.push(h));
    }
}

/// A destructor that spawns for ever cannot hang the loop's drop, and the handle of every task
/// it spawned says the task was cancelled (the last one's too, which was never run).
#[test]
fn a_task_spawned_in_the_last_round_of_a_loop_drop_is_reported_cancelled() {
    let ev = EventLoop::new();
    let first = Forever;
    ev.spawn(async move {
        let _first = first;
        std::future::pending::<()>().await;
    })
    .detach();
    assert!(catch_unwind(AssertUnwindSafe(|| drop(ev))).is_ok());
    let handles = LAST_ROUND_HANDLES.take();
    assert_eq!(handles.len(), 16, "one spawn per round");
    for h in handles {
        let EventLoopGone(err) = EventLoopGone::of(h);
        assert!(err.is_cancelled(), "{err:?}");
    }
}
