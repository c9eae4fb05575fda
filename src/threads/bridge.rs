//! A synchronous bridge into async code: one persistent worker thread runs an [`EventLoop`](crate::EventLoop), and
//! synchronous callers block (parked) until the async function they sent it has settled.
//!
//! This is the Node.js pattern of a worker plus `Atomics.wait` on a `SharedArrayBuffer`, kept
//! alive between calls because starting a worker per call (or a process, as `spawnSync` does)
//! costs far more than the call itself.
//!
//! # Implementation
//! Each request carries a `Send` closure that builds the caller's future on the worker; the
//! worker spawns it as a task that awaits it under `catch_unwind` and sends the outcome through a
//! oneshot channel the caller parks on. Every call is a task, so calls from several threads run
//! concurrently on the worker's loop, interleaving at their `.await`s.
//!
//! The worker waits for requests in one of two ways:
//! - **idle** (its loop has no referenced handle left, `!is_alive()`): as a plain parked thread.
//!   Nothing on the loop could run anyway, and a futex wake costs about half the poll phase's
//!   (eventfd, epoll and timer re-arming: five system calls per sleep).
//! - **busy** (calls in flight, or timers, tasks or offloaded jobs left behind by earlier
//!   calls): inside the loop, by `block_on` over the inbox, so that work keeps running between
//!   calls. Once no call is in flight, `block_on` returns and the worker looks again.
//!
//! Unref'd timers do not keep the worker busy: as in a Node.js process, they fire only while the
//! loop runs for another reason (here, the next call).
//!
//! Ground rules:
//! - The caller never spins: it parks until the oneshot's send (or drop) unparks it.
//! - A call from the worker thread itself is refused ([`BridgeError::Reentrant`]): the worker
//!   would wait on a loop that only it can run.
//! - Dropping the bridge closes the inbox; the worker then drops its loop (cancelling whatever
//!   calls left behind) and exits, and the drop joins it.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread, ThreadId};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};

use crate::runtime::{Builder, EventLoop};
use crate::task::panic_message;
use crate::threads::loop_thread;

/// A call's future, built on the worker; it sends the outcome to the caller itself.
type CallFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A request for the worker: builds the call's future there.
type Request = Box<dyn FnOnce() -> CallFuture + Send>;

/// A persistent worker thread with its own [`EventLoop`](crate::EventLoop), callable from synchronous code.
///
/// `Bridge` is `Send + Sync`: share it (`&Bridge`, `Arc<Bridge>`) and call it from any number of
/// threads; the calls run concurrently on the worker's loop.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let bridge = executor::threads::Bridge::new().expect("worker thread");
/// // Synchronous code, calling an async function and waiting for it:
/// let answer = bridge.call(|| async {
///     executor::sleep(Duration::from_millis(1)).await;
///     42
/// });
/// assert_eq!(answer.unwrap(), 42);
/// // The same worker serves the next call.
/// assert_eq!(bridge.call(|| async { "again" }).unwrap(), "again");
/// ```
pub struct Bridge {
    /// The worker's inbox; `None` only while dropping.
    inbox: Option<mpsc::UnboundedSender<Request>>,
    /// The worker thread; `None` only while dropping.
    worker: Option<thread::JoinHandle<()>>,
    /// The worker thread's id, to refuse calls from the worker itself.
    worker_id: ThreadId,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("worker", &self.worker_id)
            .finish()
    }
}

impl Bridge {
    /// Starts the worker thread and its loop (default settings).
    ///
    /// Fails if the thread cannot be spawned or the loop's poller cannot be created.
    pub fn new() -> io::Result<Bridge> {
        Bridge::with_builder(&Builder::new())
    }

    /// Starts the worker thread with a loop built by `builder` (e.g. to size its offload pool).
    ///
    /// ```
    /// let mut b = executor::EventLoop::builder();
    /// b.offload_threads(1);
    /// let bridge = executor::threads::Bridge::with_builder(&b).unwrap();
    /// let n = bridge.call(|| async { executor::offload(|| 6 * 7).await.unwrap() });
    /// assert_eq!(n.unwrap(), 42);
    /// ```
    pub fn with_builder(builder: &Builder) -> io::Result<Bridge> {
        let worker = loop_thread::start(
            "executor-bridge".into(),
            "executor::threads::Bridge",
            builder,
            work,
        )?;
        Ok(Bridge {
            inbox: Some(worker.inbox),
            worker_id: worker.thread.thread().id(),
            worker: Some(worker.thread),
        })
    }

    /// Runs the async function `f` on the worker's loop and blocks this thread (parked, no
    /// spinning) until it settles; returns its output.
    ///
    /// `f` is sent to the worker and called there, so the future it builds need not be `Send`
    /// (it may hold `Rc`s, use `spawn`, timers, [`offload`](crate::offload)...). Only `f` and the
    /// output cross threads.
    ///
    /// Calling from inside another loop's callback is allowed and blocks that loop for the
    /// duration (that is what a synchronous call means).
    ///
    /// # Errors
    /// - [`BridgeError::Panicked`] if `f` or its future panicked; the bridge stays usable.
    /// - [`BridgeError::Reentrant`] if called from the bridge's own worker (it would deadlock).
    /// - [`BridgeError::Stopped`] if the worker is gone (it died outside any call).
    ///
    /// A plain callback that panics on the worker's loop (a timer set by an earlier call, say)
    /// is reported on stderr, as an uncaught exception; the worker and the calls in flight carry
    /// on.
    ///
    /// ```
    /// let bridge = executor::threads::Bridge::new().unwrap();
    /// let err = bridge.call(|| async { u8::try_from(300).expect("boom") }).unwrap_err();
    /// assert!(err.panic_message().unwrap().starts_with("boom"));
    /// assert_eq!(bridge.call(|| async { 1 }).unwrap(), 1);
    /// ```
    pub fn call<F, Fut, T>(&self, f: F) -> Result<T, BridgeError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if thread::current().id() == self.worker_id {
            return Err(BridgeError::Reentrant);
        }
        let (tx, rx) = oneshot::channel();
        let request: Request = Box::new(move || {
            Box::pin(async move {
                let out = AssertUnwindSafe(async move { f().await })
                    .catch_unwind()
                    .await;
                // The caller is parked on `rx` until this send (it cannot have gone away).
                let _ = tx.send(out.map_err(BridgeError::Panicked));
            })
        });
        let inbox = self.inbox.as_ref().ok_or(BridgeError::Stopped)?;
        inbox
            .unbounded_send(request)
            .map_err(|_| BridgeError::Stopped)?;
        // A dropped sender means the worker's loop died with the request in it.
        crate::threads::block_thread::block_thread_on(rx).unwrap_or(Err(BridgeError::Stopped))
    }

    /// Whether the calling thread is this bridge's worker (where [`call`](Bridge::call) fails).
    pub fn is_worker_thread(&self) -> bool {
        thread::current().id() == self.worker_id
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Closing the inbox ends the worker's `work`, which drops its loop.
        drop(self.inbox.take());
        if let Some(worker) = self.worker.take() {
            // The last owner may be a call running on the worker itself; it cannot join itself,
            // and the worker exits by itself once that call's task returns.
            if thread::current().id() != self.worker_id {
                let _ = worker.join();
            }
        }
    }
}

/// The worker thread's life: wait for a request (parked while idle, in the loop while busy; see
/// the module docs), serve until no call is in flight, repeat until the inbox closes.
fn work(ev: &EventLoop, mut requests: mpsc::UnboundedReceiver<Request>) {
    let in_flight = Rc::new(InFlight::default());
    let inbox_waker = Arc::new(InboxWaker {
        target: Mutex::new(Target::Thread(thread::current())),
    });
    let waker = Waker::from(inbox_waker.clone());
    // Whether the last serve ended in a callback's panic, with calls possibly still in flight.
    let mut resumed = false;
    loop {
        let first = if ev.is_alive() {
            None
        } else {
            let mut cx = Context::from_waker(&waker);
            loop {
                match requests.poll_next_unpin(&mut cx) {
                    Poll::Ready(Some(request)) => break Some(request),
                    Poll::Ready(None) => return,
                    Poll::Pending => thread::park(),
                }
            }
        };
        let serve = serve_until_quiet(first, resumed, &mut requests, &in_flight, &inbox_waker);
        match std::panic::catch_unwind(AssertUnwindSafe(|| ev.block_on(serve))) {
            Ok(true) => resumed = false,
            Ok(false) => return,
            Err(payload) => {
                // A plain callback on the worker loop panicked: an uncaught exception. The loop
                // stays consistent (its queues lost nothing), so rather than end the worker and
                // fail every call in flight, report it as Node.js would and carry on serving.
                eprintln!(
                    "executor::threads::Bridge: a callback on the worker loop panicked: {}; the worker \
                     carries on",
                    panic_message(&*payload).unwrap_or("(no message)")
                );
                // The unwound main future may have left the inbox waker pointing at itself.
                inbox_waker.set(Target::Thread(thread::current()));
                resumed = true;
            }
        }
    }
}

/// Where a request's wake goes: to the parked worker thread, or to the worker loop's main
/// future. One waker for the inbox, switched by the worker, so that a wake never lands on a
/// loop that has stopped listening (it would make the loop look busy and cost a loop round).
struct InboxWaker {
    /// Switched to `Loop` when `serve_until_quiet` waits, back to `Thread` before it returns.
    target: Mutex<Target>,
}

/// See [`InboxWaker`].
enum Target {
    /// The worker thread, parked or about to park.
    Thread(Thread),
    /// The worker loop's main future.
    Loop(Waker),
}

impl InboxWaker {
    fn set(&self, target: Target) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = target;
    }
}

impl Wake for InboxWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match &*self.target.lock().unwrap_or_else(|e| e.into_inner()) {
            Target::Thread(t) => t.unpark(),
            Target::Loop(w) => w.wake_by_ref(),
        }
    }
}

/// Calls started on the worker's loop and not yet settled.
#[derive(Default)]
struct InFlight {
    /// Number of call tasks alive (each holds one [`CallGuard`]).
    count: Cell<usize>,
    /// `serve_until_quiet`, waiting for `count` to drop to zero.
    quiet: Cell<Option<Waker>>,
}

/// Counts one call in [`InFlight`] until dropped (finished or cancelled).
struct CallGuard(Rc<InFlight>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let n = self.0.count.get() - 1;
        self.0.count.set(n);
        if n == 0 {
            if let Some(w) = self.0.quiet.take() {
                w.wake();
            }
        }
    }
}

/// The worker loop's main future: spawns `first` and every request that arrives, until at least
/// one call was served and none is in flight (`true`), or the inbox closes (`false`).
async fn serve_until_quiet(
    first: Option<Request>,
    resumed: bool,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    in_flight: &Rc<InFlight>,
    inbox_waker: &Arc<InboxWaker>,
) -> bool {
    let start = |request: Request| {
        in_flight.count.set(in_flight.count.get() + 1);
        let guard = CallGuard(in_flight.clone());
        let call = request();
        crate::spawn(async move {
            let _guard = guard;
            call.await;
        })
        .detach();
    };
    // After a panic, the calls in flight before it count as served: wait for them, then park.
    let mut served = first.is_some() || resumed;
    if let Some(request) = first {
        start(request);
    }
    let waker = Waker::from(inbox_waker.clone());
    let mut listening = false;
    poll_fn(|cx| {
        if !listening {
            inbox_waker.set(Target::Loop(cx.waker().clone()));
            listening = true;
        }
        let mut inbox_cx = Context::from_waker(&waker);
        loop {
            match requests.poll_next_unpin(&mut inbox_cx) {
                Poll::Ready(Some(request)) => {
                    start(request);
                    served = true;
                }
                Poll::Ready(None) => return Poll::Ready(false),
                Poll::Pending => break,
            }
        }
        if served && in_flight.count.get() == 0 {
            // From here on, a request wakes the thread, which looks at the inbox next.
            inbox_waker.set(Target::Thread(thread::current()));
            return Poll::Ready(true);
        }
        in_flight.quiet.set(Some(cx.waker().clone()));
        Poll::Pending
    })
    .await
}

/// Why a [`Bridge::call`] produced no output.
#[non_exhaustive]
pub enum BridgeError {
    /// The async function (or the closure building it) panicked; this is the payload.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The call was made from the bridge's own worker thread, where waiting would deadlock.
    Reentrant,
    /// The worker thread is gone (it died outside any call).
    Stopped,
}

impl BridgeError {
    /// The panic message, when this is [`Panicked`](BridgeError::Panicked) with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            BridgeError::Panicked(p) => panic_message(&**p),
            _ => None,
        }
    }
}

impl fmt::Debug for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Panicked(_) => match self.panic_message() {
                Some(m) => write!(f, "Panicked({m:?})"),
                None => f.write_str("Panicked(..)"),
            },
            BridgeError::Reentrant => f.write_str("Reentrant"),
            BridgeError::Stopped => f.write_str("Stopped"),
        }
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Panicked(_) => match self.panic_message() {
                Some(m) => write!(f, "the bridged async function panicked: {m}"),
                None => f.write_str("the bridged async function panicked"),
            },
            BridgeError::Reentrant => f.write_str(
                "Bridge::call made from the bridge's own worker thread; it would deadlock \
                 (await the async function directly instead)",
            ),
            BridgeError::Stopped => f.write_str("the bridge's worker thread has stopped"),
        }
    }
}

impl std::error::Error for BridgeError {}
