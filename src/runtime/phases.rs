//! The phases of one loop iteration, in libuv's order, and the nextTick/microtask drain that
//! follows every callback.

use super::*;

impl LoopState {
    /// Runs the loop until `stop()` or until no referenced handle is left (libuv's `uv_run`).
    /// Generic over `stop` (not `&dyn Fn`): it is asked three times per iteration, and a loop of
    /// yields is little more than that.
    pub(super) fn run_loop(&self, stop: impl Fn() -> bool) {
        // Two copies of the loop: the default, unbounded drain never has jobs left at the end of
        // a phase, so its copy tests nothing there.
        if self.drain_limit == usize::MAX {
            self.run_loop_with::<false>(stop);
        } else {
            self.run_loop_with::<true>(stop);
        }
    }

    /// [`run_loop`](Self::run_loop); `BOUNDED`: whether the drain is bounded
    /// ([`Builder::max_jobs_per_drain`]).
    fn run_loop_with<const BOUNDED: bool>(&self, stop: impl Fn() -> bool) {
        let mut alive = self.alive();
        if alive && !stop() {
            self.run_timers();
        }
        while alive && !stop() {
            self.run_once::<BOUNDED>(&stop);
            alive = self.alive();
        }
    }

    /// One iteration: poll, check, then the next iteration's timers (see the module docs for
    /// why the timers phase sits at the end). With a bounded drain, each phase ends with one
    /// more (bounded) drain of the jobs its drains left.
    #[inline]
    fn run_once<const BOUNDED: bool>(&self, stop: &impl Fn() -> bool) {
        self.bump(|s| s.iterations += 1);
        self.poll_phase();
        self.drain_leftovers::<BOUNDED>();
        if stop() {
            return;
        }
        self.run_check();
        self.drain_leftovers::<BOUNDED>();
        if stop() {
            return;
        }
        self.run_timers();
        self.drain_leftovers::<BOUNDED>();
    }

    /// Timers phase: libuv's `uv__run_timers` with Node.js's one timer handle. `RunTimers`
    /// runs while the handle is due at the loop time, each pass followed by its drain (the
    /// close of `RunTimers`' `InternalCallbackScope`). The loop time only moves when something
    /// reads the clock, so a pass runs again before the check phase only if a callback or the
    /// drain read the clock (`setTimeout`, `setInterval`, `refresh`, an interval's start) past
    /// the handle's due time.
    ///
    /// Inlined: in a loop of yields the phase is these few tests; the passes are out of line.
    #[inline(always)]
    fn run_timers(&self) {
        self.phase.set(Phase::Timers);
        // With the handle stopped there is nothing to compare the clock with: a loop of yields
        // then costs no clock read per iteration (starting a timer reads the clock anyway).
        let Some(due) = self.timers.next_expiry() else {
            return;
        };
        // Nor while the TSC says the handle cannot be due yet (`time/deadline.rs`): the loop
        // time then stays as it is, and no timer is due at it.
        if self.timers.deadline.surely_before(due) {
            return;
        }
        self.run_timer_passes();
    }

    /// The timers phase once the handle may be due: read the clock, run the passes.
    #[inline(never)]
    fn run_timer_passes(&self) {
        // `uv_run`: `uv__update_time(loop); uv__run_timers(loop);`
        let (anchor, now) = self.timers.deadline.read_clock();
        self.now.set(now);
        while self
            .timers
            .next_expiry()
            .is_some_and(|due| due <= self.loop_time())
        {
            self.timers.run_due(self);
            self.drain_queues();
        }
        self.timers
            .deadline
            .arm(anchor, now, self.timers.next_expiry());
    }

    /// Poll phase: wait (the loop's only sleep), run the I/O callbacks, then the wakes that came
    /// from other threads.
    ///
    /// Inlined: in a loop of yields the phase is these few tests; the wait is out of line.
    #[inline(always)]
    fn poll_phase(&self) {
        self.phase.set(Phase::Poll);
        // The common case of a loop of yields, tested first: the check phase has work (so the
        // timeout is zero) and no source has a waiter (so there is nothing to ask the OS).
        if !(self.immediates.has_urgent() && self.reactor.can_skip_zero_wait()) {
            self.poll_wait();
        }
        if self.remote.has_pending() {
            self.run_remote();
        }
    }

    /// The poll phase's wait for I/O and timers, and the I/O callbacks.
    #[inline(never)]
    fn poll_wait(&self) {
        let timeout = self.poll_timeout();
        if timeout != Some(Duration::ZERO) || !self.reactor.can_skip_zero_wait() {
            self.bump(|s| s.os_waits += 1);
            self.reactor.wait(timeout);
            self.update_time();
            self.run_io();
        }
    }

    /// The poll phase's I/O callbacks: wakes each task waiting on a source the wait reported
    /// ready, each followed by a drain, so the task runs right here, in the poll phase (work it
    /// queues with `set_immediate` runs in this iteration's check phase, before any timer).
    fn run_io(&self) {
        let mut wakers = std::mem::take(&mut *self.reactor.wake_buf().borrow_mut());
        let delta = self.reactor.dispatch(&mut wakers);
        self.add_keep_alive(delta);
        self.each_then_drain(
            &wakers,
            |w| self.traced(Kind::Io, 0, None, || w.wake_by_ref()),
            |w| Job::Wake(w.clone()),
        );
        wakers.clear();
        *self.reactor.wake_buf().borrow_mut() = wakers;
    }

    /// Runs `run` on each item, each followed by a drain. If one panics (the panic propagates,
    /// as an uncaught exception does), the items after it are queued as microtasks
    /// (`requeue`), so the wakes behind a panicking callback are not lost.
    fn each_then_drain<T>(&self, items: &[T], run: impl Fn(&T), requeue: impl Fn(&T) -> Job) {
        struct Requeue<'a, T>(&'a LoopState, &'a [T], &'a dyn Fn(&T) -> Job);
        impl<T> Drop for Requeue<'_, T> {
            fn drop(&mut self) {
                // The jobs are made first: `requeue` clones wakers, which is not done inside
                // a borrow of the queue.
                let jobs: Vec<Job> = self.1.iter().map(self.2).collect();
                self.0.queues.extend_micro(jobs);
            }
        }
        for (i, item) in items.iter().enumerate() {
            let guard = Requeue(self, &items[i + 1..], &requeue);
            run(item);
            self.drain_queues();
            std::mem::forget(guard);
        }
    }

    /// Check phase.
    #[inline(always)]
    fn run_check(&self) {
        self.phase.set(Phase::Check);
        self.immediates.run(self);
    }

    /// How long the poll phase may sleep (`None`: until woken).
    fn poll_timeout(&self) -> Option<Duration> {
        if self.immediates.has_urgent()
            || self.remote.has_pending()
            || self.has_leftovers()
            || !self.alive()
        {
            return Some(Duration::ZERO);
        }
        let expiry = self.timers.next_expiry()?;
        Some(expiry.saturating_duration_since(Instant::now()))
    }

    /// Polls the tasks woken from other threads, each followed by a drain.
    #[inline(never)]
    fn run_remote(&self) {
        let mut buf = std::mem::take(&mut *self.remote_buf.borrow_mut());
        self.remote.take_into(&mut buf);
        self.each_then_drain(&buf, |&t| self.poll_task(t), |&t| Job::Task(t));
        buf.clear();
        *self.remote_buf.borrow_mut() = buf;
        self.run_remote_jobs();
    }

    /// Drains the nextTick queue, then the microtask queue, until both are empty, or until the
    /// drain has run `drain_limit` jobs ([`Builder::max_jobs_per_drain`]; unbounded by default,
    /// as in Node.js): the jobs left then run at the end of the phase (`drain_leftovers`), and
    /// the poll phase does not sleep while any is left.
    #[inline]
    pub(crate) fn drain_queues(&self) {
        if !self.queues.is_empty() {
            self.drain_nonempty();
        }
    }

    /// The drain itself, out of line: callers inline only the emptiness test.
    #[inline(never)]
    fn drain_nonempty(&self) {
        let phase = self.phase.replace(Phase::Microtask);
        let _end = self.observed.get().then(|| self.drain_begin());
        let mut left = self.drain_limit;
        'drain: loop {
            while let Some(job) = self.queues.pop_tick() {
                self.run_job(job, Kind::NextTick);
                left -= 1;
                if left == 0 {
                    break 'drain;
                }
            }
            while let Some(job) = self.queues.pop_micro() {
                self.run_job(job, Kind::Microtask);
                left -= 1;
                if left == 0 {
                    break 'drain;
                }
            }
            if self.queues.ticks_empty() {
                break;
            }
        }
        self.phase.set(phase);
    }

    /// Whether a bounded drain left jobs queued (never, with the default unbounded drain).
    #[inline]
    pub(crate) fn has_leftovers(&self) -> bool {
        self.drain_limit != usize::MAX && !self.queues.is_empty()
    }

    /// Runs (one bounded drain of) the jobs a bounded drain left, at the end of a phase.
    #[inline]
    fn drain_leftovers<const BOUNDED: bool>(&self) {
        if BOUNDED {
            self.drain_queues();
        }
    }

    /// Runs one queued job; `kind` says what a plain callback is (for observers). A task poll,
    /// the job of every yield and wake, is inlined into the queue's loop; the rest is not.
    #[inline(always)]
    pub(crate) fn run_job(&self, job: Job, kind: Kind) {
        match job {
            Job::Task(t) => self.poll_task(t),
            other => self.run_other_job(other, kind),
        }
    }

    /// [`run_job`](Self::run_job) for a callback or a waker.
    #[inline(never)]
    fn run_other_job(&self, job: Job, kind: Kind) {
        match job {
            Job::Callback(f) => {
                let location = f.location();
                self.traced(kind, 0, Some(location), || f.run())
            }
            Job::Task(t) => self.poll_task(t),
            Job::Wake(w) => self.traced(Kind::Wake, 0, None, || w.wake()),
        }
    }
}
