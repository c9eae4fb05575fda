//! [`AbortHandle`]: a `Send + Sync` permission to cancel a task, without awaiting it.
//!
//! It holds only ids (the loop's and the task's), which is what makes it `Send`: the task itself
//! is `!Send` and stays on its loop. Aborting on the loop's own thread while it runs cancels the
//! task at once, exactly as [`JoinHandle::abort`](super::JoinHandle::abort); from anywhere else,
//! a closure that does the same is queued on the loop's inbox and runs in its next poll phase
//! (a stale id, of a task that finished meanwhile, is recognised and ignored: ids are never
//! reused).

use std::fmt;

use super::inbox::registry;
use super::waker::TaskRef;
use crate::runtime::context;

/// Cancels a task from any thread (tokio's `AbortHandle`). Made by
/// [`JoinHandle::abort_handle`](super::JoinHandle::abort_handle) and
/// [`JoinSet::spawn`](crate::task::JoinSet::spawn).
///
/// Unlike a [`JoinHandle`](super::JoinHandle), dropping it does nothing, and it cannot await the
/// task.
///
/// ```
/// executor::block_on(async {
///     let task = executor::spawn(std::future::pending::<()>());
///     let abort = task.abort_handle();
///     std::thread::spawn(move || abort.abort()).join().unwrap();
///     assert!(task.await.unwrap_err().is_cancelled());
/// });
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    /// The task's loop (0: none, a handle made after its loop was dropped).
    loop_id: u64,
    /// The task.
    task: TaskRef,
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.task.id)
            .finish()
    }
}

impl AbortHandle {
    pub(crate) fn new(loop_id: u64, task: TaskRef) -> Self {
        AbortHandle { loop_id, task }
    }

    /// Cancels the task (see [`JoinHandle::abort`](super::JoinHandle::abort)): at once on the
    /// task's loop while it runs, else in that loop's next poll phase. Does nothing if the task
    /// has finished or its loop is gone.
    pub fn abort(&self) {
        let (loop_id, task) = (self.loop_id, self.task);
        let done_here = context::try_with_current(|inner| {
            inner.id == loop_id && {
                inner.abort_task(task);
                true
            }
        });
        if done_here == Some(true) {
            return;
        }
        if let Some(inbox) = registry::find(loop_id) {
            // Refused only if the loop is being dropped: its tasks are being cancelled anyway.
            let _ = inbox.push_job(Box::new(move || {
                context::try_with_current(|inner| {
                    if inner.id == loop_id {
                        inner.abort_task(task);
                    }
                });
            }));
        }
    }

    /// The task's id (as [`JoinHandle::id`](super::JoinHandle::id)).
    pub fn id(&self) -> u64 {
        self.task.id
    }
}
