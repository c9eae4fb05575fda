//! A loop on a thread of its own, fed through an inbox: what [`Bridge`](crate::threads::Bridge) and each
//! loop of a [`Cluster`](crate::threads::Cluster) are made of.
//!
//! The thread builds its [`EventLoop`] itself (a loop is `!Send`, so it can only be built where
//! it runs) and reports whether that worked before `start` returns: a poller that cannot be
//! created is the caller's error, not a thread that dies later with requests in its inbox.

use std::io;
use std::thread;

use futures::channel::mpsc;

use crate::runtime::{Builder, EventLoop};

/// A started loop thread: the sending side of its inbox and the thread's handle.
pub(crate) struct LoopThread<M, R> {
    /// Messages for the loop; dropping every sender closes the inbox.
    pub(crate) inbox: mpsc::UnboundedSender<M>,
    /// The thread; it returns what `body` returned.
    pub(crate) thread: thread::JoinHandle<R>,
}

/// Starts a thread called `name` that builds a loop with `builder` and then runs
/// `body(&loop, inbox)`. Returns once the loop exists; fails if the thread cannot be spawned or
/// the loop cannot be built (`who` names the caller in the error of a thread that died first).
pub(crate) fn start<M, R>(
    name: String,
    who: &'static str,
    builder: &Builder,
    body: impl FnOnce(&EventLoop, mpsc::UnboundedReceiver<M>) -> R + Send + 'static,
) -> io::Result<LoopThread<M, R>>
where
    M: Send + 'static,
    R: Default + Send + 'static,
{
    let builder = builder.clone();
    let (inbox, messages) = mpsc::unbounded::<M>();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    let thread = thread::Builder::new().name(name).spawn(move || {
        let ev = match builder.build() {
            Ok(ev) => ev,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return R::default();
            }
        };
        let _ = ready_tx.send(Ok(()));
        body(&ev, messages)
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(LoopThread { inbox, thread }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other(format!(
            "{who}: the loop thread died before its loop was built"
        ))),
    }
}
