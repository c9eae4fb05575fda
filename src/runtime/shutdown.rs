//! Shutdown: what dropping an [`EventLoop`](crate::EventLoop) does to everything still on it.
//!
//! The loop leaves the registry first (so a wake from another thread finds no inbox and is a
//! no-op) and closes its inbox; then every task is cancelled (its future dropped in place, see
//! `task/mod.rs`) and every timer and queued callback dropped. A destructor may spawn or queue
//! more work, so this repeats until a round finds nothing (at most [`ROUNDS`] rounds: a
//! destructor that re-queues itself for ever cannot hang the drop). The last round is
//! **closed**: a task spawned by a destructor it runs is never run and its future is forgotten,
//! not dropped (its destructor would only spawn again), and its handle reports it cancelled; so
//! no task is left for the loop's memory to free outside the loop, where a destructor's spawn
//! would find no loop and panic. Last, the offload pool stops.

use super::*;

/// Rounds of cancelling and dropping at most (see the module docs).
const ROUNDS: usize = 16;

impl LoopState {
    /// Cancels every task and drops every queued callback and timer (loop drop).
    pub(super) fn shutdown(&self) {
        crate::task::inbox::registry::remove(self.id);
        self.remote.close();
        // Dropping a future or callback may spawn or queue more work: repeat until quiet.
        for round in 0..ROUNDS {
            self.closed.set(round == ROUNDS - 1);
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
