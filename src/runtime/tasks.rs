//! Spawning, polling, aborting and yielding tasks (and the `block_on` future, polled as a task
//! with a reserved key). Freeing them when the loop is dropped is `shutdown.rs`.

use super::*;

impl LoopState {
    /// Queues a woken task on the microtask queue.
    #[inline]
    pub(crate) fn schedule_microtask_task(&self, task: TaskRef) {
        self.queues.push_micro(Job::Task(task));
    }

    /// Queues a task woken on the loop's thread while the loop runs. A wake from another task or
    /// callback is a promise continuation: a microtask. A **self-wake** (the task is woken while
    /// it is being polled: `wake_by_ref(); return Pending`, futures-lite's `yield_now`, a
    /// `FuturesUnordered` yielding) resumes it in the check phase, as [`yield_now`](crate::yield_now)
    /// does, so a task that keeps waking itself cannot keep the drain (and so the loop) from
    /// ending: timers, I/O and other threads' wakes run between its polls. (tokio defers the
    /// same wake until its driver has run: `context::defer` in `task::yield_now`.)
    #[inline]
    pub(crate) fn schedule_woken(&self, header: &WakeTarget) {
        // Exact: two live headers have two addresses, and both are alive (the waker's count
        // keeps `header` alive, the slab's the current one).
        if std::ptr::eq(self.current.get(), header) {
            self.immediates.push_task(header.task);
        } else {
            self.schedule_microtask_task(header.task);
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
        if self.closed.get() {
            return self.spawn_closed(fut, id);
        }
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let task = TaskRef::new(entry.key(), id);
        let (runnable, join) = new_task(fut, task, self.id);
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

    /// A spawn in the last round of the loop's drop (from a destructor the round ran): the
    /// task is never run and its future is forgotten, not dropped (its destructor could only
    /// spawn again); the handle reports it cancelled. Out of line: it never happens in a
    /// running loop.
    #[cold]
    #[inline(never)]
    fn spawn_closed<F>(&self, fut: F, id: u64) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        // A key no slab entry has with this id: an abort through the handle finds nothing.
        let task = TaskRef::new(0, id);
        let (runnable, join) = new_task(fut, task, self.id);
        // SAFETY: the task was made just above and is in no queue: it was never polled.
        unsafe { runnable.forget() };
        drop(runnable);
        JoinHandle::new(join, task, self.weak_self.clone())
    }

    /// Polls a task if it still exists. Inlined, with the spawned task's poll, into the check
    /// phase's loop: a yield round trip is little more than this. (With 24-byte check-queue
    /// entries, inlining the spawned task's poll measured slower; with 16-byte ones, faster:
    /// docs/benchmarks.md, "Third pass".)
    #[inline(always)]
    pub(super) fn poll_task(&self, t: TaskRef) {
        if t.is_main() {
            if t == self.main_task.get() {
                self.poll_main();
            }
            return;
        }
        self.poll_spawned(t);
    }

    /// Polls a spawned task if it still exists.
    #[inline(always)]
    fn poll_spawned(&self, t: TaskRef) {
        // Copies of the slab's pointers, no count taken: the slab keeps the task alive until
        // `remove_task` below. While the task is polled nothing else removes it: `abort_task`
        // never removes the task being polled (`current`; not even once it is `Done`, when the
        // code run by `finish` aborts it), and the loop is not dropped while it runs.
        let (task, header, location) = match self.tasks.borrow().get(t.key()) {
            Some(slot) if slot.id == t.id => {
                (slot.task.view_ptr(), slot.task.header_ptr(), slot.location)
            }
            _ => return,
        };
        self.bump(|s| s.task_polls += 1);
        let prev = self.current.replace(header.as_ptr());
        // SAFETY: the slab's count keeps the task alive through the poll (see above), and
        // `header` is the slab's own header pointer.
        let done = self.traced(Kind::Task, t.id, Some(location), || unsafe {
            task.as_ref().run(header)
        });
        self.current.set(prev);
        if done {
            self.remove_task(t);
        }
    }

    fn remove_task(&self, t: TaskRef) {
        let removed = {
            let mut tasks = self.tasks.borrow_mut();
            match tasks.get(t.key()) {
                Some(slot) if slot.id == t.id => Some(tasks.remove(t.key())),
                _ => None,
            }
        };
        drop(removed);
    }

    /// Aborts a task (see [`JoinHandle::abort`]).
    pub(crate) fn abort_task(&self, t: TaskRef) {
        // A counted reference (aborts are rare): `cancel` runs user code (the future's
        // destructor, the join waker), which may abort the task again and so remove it from
        // the slab, and drop its handle.
        let task = match self.tasks.borrow().get(t.key()) {
            Some(slot) if slot.id == t.id => slot.task.clone(),
            _ => return,
        };
        let finished = task.cancel();
        // The task being polled (it aborts itself, or code its completion runs does: a detached
        // output's destructor, its join waker) stays in the slab: `poll_spawned` holds an
        // uncounted pointer to it, and removes it once the poll returns.
        if finished && !std::ptr::eq(self.current.get(), task.header_ptr().as_ptr()) {
            self.remove_task(t);
        }
    }

    /// Queues the current task (or `waker`, if it is not the current task's own) to resume in
    /// the next check phase. Returns the check-phase epoch at which it will have run.
    #[inline]
    pub(crate) fn yield_to_check(&self, waker: &Waker) -> u64 {
        let target = self.immediates.epoch.get() + 1;
        let current = self.current.get();
        if is_waker_of(waker, current) {
            // The polled task's own waker (or the `block_on` future's): queue the task itself,
            // no waker clone. `scheduled` is left alone (no atomic read-modify-write): a wake
            // that arrives before the check phase still queues a microtask poll, which
            // `YieldNow` answers with `Pending`.
            // SAFETY: `current` is the header of the task being polled, alive while it is
            // (non-null: a waker's data pointer equals it).
            let task = unsafe { (*current).task };
            self.immediates.push_task(task);
        } else {
            self.immediates.push_wake(waker.clone());
        }
        target
    }

    /// Polls the `block_on` future.
    #[inline]
    pub(super) fn poll_main(&self) {
        let Some(mut fut) = self.main.take() else {
            return;
        };
        let header = self
            .main_header
            .get()
            .expect("block_on sets the main header first");
        // SAFETY: `main_header` holds a count of the header until `block_on` returns, after
        // this poll; it is the pointer `standalone_header` made.
        let waker = unsafe { borrowed_waker(header) };
        // SAFETY: as above.
        unsafe { header.as_ref() }
            .scheduled
            .store(false, Ordering::Release);
        let mut cx = Context::from_waker(&waker);
        let prev = self.current.replace(header.as_ptr());
        let result = self.traced(Kind::Main, 0, None, || fut.as_mut().poll(&mut cx));
        self.current.set(prev);
        match result {
            Poll::Ready(()) => self.main_pending.set(false),
            Poll::Pending => self.main.set(Some(fut)),
        }
    }
}
