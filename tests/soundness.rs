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
//! - `RwLockReadGuard` is covariant in its value type (async-lock's test, ported).

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
