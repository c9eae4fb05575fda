//! Shutdown: what dropping an [`EventLoop`](crate::EventLoop) does to everything still on it.
//!
//! The loop leaves the registry first (so a wake from another thread finds no inbox and is a
//! no-op) and closes its inbox; then every task is cancelled (its future dropped in place, see
//! `task/mod.rs`) and every timer and queued callback dropped. A destructor may spawn or queue
//! more work, so this repeats until a round finds nothing (at most 16 rounds: a destructor that
//! re-queues itself for ever cannot hang the drop). Last, the offload pool stops.

use super::*;

impl LoopState {
    /// Cancels every task and drops every queued callback and timer (loop drop).
    pub(super) fn shutdown(&self) {
        crate::task::inbox::registry::remove(self.id);
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
                if let crate::time::Action::Waker(w) = &t.action {
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
