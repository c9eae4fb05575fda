//! Spawning, polling, aborting and yielding tasks (and the `block_on` future, polled as a task
//! with a reserved key). Freeing them when the loop is dropped is `shutdown.rs`.

use super::*;

impl LoopState {
    /// Queues a woken task on the microtask queue.
    #[inline]
    pub(crate) fn schedule_microtask_task(&self, task: TaskRef) {
        self.queues.micro.borrow_mut().push_back(Job::Task(task));
    }

    /// Queues a task woken on the loop's thread while the loop runs. A wake from another task or
    /// callback is a promise continuation: a microtask. A **self-wake** (the task is woken while
    /// it is being polled: `wake_by_ref(); return Pending`, futures-lite's `yield_now`, a
    /// `FuturesUnordered` yielding) resumes it in the check phase, as [`yield_now`](crate::yield_now)
    /// does, so a task that keeps waking itself cannot keep the drain (and so the loop) from
    /// ending: timers, I/O and other threads' wakes run between its polls. (tokio defers the
    /// same wake until its driver has run: `context::defer` in `task::yield_now`.)
    #[inline]
    pub(crate) fn schedule_woken(&self, task: TaskRef) {
        let self_wake = if task.key == MAIN_KEY {
            self.polling_main.get() && task == self.main_task.get()
        } else {
            // Read at the wake, not kept per poll: the yield and spawn paths pay nothing for it.
            self.polling
                .borrow()
                .as_ref()
                .is_some_and(|t| t.header().task == task)
        };
        if self_wake {
            self.immediates.push_job(Job::Task(task));
        } else {
            self.schedule_microtask_task(task);
        }
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
        let header = Arc::new(WakeTarget {
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
    pub(super) fn poll_task(&self, t: TaskRef) {
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
        // The replaced `Rc` is dropped after the borrow ends (`task` keeps the cell alive anyway).
        let polled = self.polling.replace(prev);
        drop(polled);
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
    pub(super) fn poll_main(&self) {
        let Some(mut fut) = self.main.borrow_mut().take() else {
            return;
        };
        let waker = self.main_waker.borrow();
        let waker = waker.as_ref().expect("block_on sets the main waker first");
        // SAFETY: `block_on` made the main waker with `new_waker`.
        unsafe { wake_target_of(waker) }
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
}
