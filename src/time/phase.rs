//! The timers phase: Node.js's `RunTimers` (`src/env.cc`), `processTimers` and `listOnTimeout`
//! (`lib/internal/timers.js`) over the lists of `lists.rs`, and the re-arming of an interval in
//! `listOnTimeout`'s `finally` ([`Rearm`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::MissedTickBehavior;
use super::entry::{Action, TimerCell, deadline};
use super::lists::List;
use super::timers::Timers;
use crate::observe::Kind;
use crate::runtime::LoopState;

impl Timers {
    /// Node's `RunTimers` (`src/env.cc`), run by the timers phase while the timer handle is due
    /// (the caller then drains the nextTick and microtask queues, as `RunTimers`'
    /// `InternalCallbackScope` does when it closes, after the handle was rescheduled).
    pub(crate) fn run_due(&self, inner: &LoopState) {
        // `uv__run_timers` stops the (non-repeating) handle before calling it.
        self.uv_due.set(None);
        // If a callback panics, the lists keep their heap entries; make the next timers phase
        // look at them again.
        struct OnPanic<'a>(&'a Timers, Instant);
        impl Drop for OnPanic<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.uv_due.set(Some(self.1));
                }
            }
        }
        // `Local<Value> arg = env->GetNow();` reads the clock.
        let now = inner.update_time();
        let guard = OnPanic(self, now);
        let next = self.process_timers(inner, now);
        std::mem::forget(guard);
        // `env->ScheduleTimer(duration_ms > 0 ? duration_ms : 1)`, with the duration counted
        // from the loop time, which the callbacks may have moved past the next expiry.
        if let Some(expiry) = next {
            let t = inner.loop_time();
            self.uv_due.set(Some(if expiry > t {
                expiry
            } else {
                t + Duration::from_millis(1)
            }));
        }
    }

    /// Node's `processTimers`: runs every list whose expiry is due at `now`, draining the
    /// queues between lists; returns the next expiry (`None` when no list is left).
    pub(super) fn process_timers(&self, inner: &LoopState, now: Instant) -> Option<Instant> {
        self.js_next_expiry.set(None);
        let mut ran_at_least_one_list = false;
        loop {
            let (expiry, slot, uid) = self.lists.borrow_mut().top()?;
            if expiry > now {
                self.js_next_expiry.set(Some(expiry));
                return Some(expiry);
            }
            if ran_at_least_one_list {
                inner.drain_queues();
            } else {
                ran_at_least_one_list = true;
            }
            self.list_on_timeout(inner, slot, uid, now);
        }
    }

    /// Node's `listOnTimeout`: runs the due timers of one list. The next timer is chosen (and
    /// found due) *before* the drain that follows the previous callback, and then runs even if
    /// that drain refreshed it. The list keeps its heap entry while it runs, so a panic in a
    /// callback leaves it where the next timers phase finds it.
    pub(super) fn list_on_timeout(&self, inner: &LoopState, slot: usize, uid: u64, now: Instant) {
        let mut ran_at_least_one_timer = false;
        loop {
            // `L.peek(list)`; the list may have been removed (emptied by a `clear`) meanwhile.
            let timer = {
                let mut l = self.lists.borrow_mut();
                let Some(list) = l.get_mut(slot, uid) else {
                    return;
                };
                loop {
                    match list.entries.front() {
                        None => break None,
                        Some(e) if List::is_tombstone(e) => {
                            list.pop_front();
                            list.tombstones = list.tombstones.saturating_sub(1);
                        }
                        Some((t, _)) => break t.clone(),
                    }
                }
            };
            let Some(timer) = timer else { break };
            // `if (diff < msecs)`: the head is not due; the rest of the list is later still.
            let due = timer.due.get();
            if due > now {
                self.lists.borrow_mut().reschedule(slot, due);
                return;
            }
            let seq = timer.seq.get();
            if ran_at_least_one_timer {
                inner.drain_queues();
            } else {
                ran_at_least_one_timer = true;
            }
            if matches!(timer.action, Action::Waker(_)) && timer.seq.get() != seq {
                // No Node.js counterpart: a sleep reset (or an interval stream re-armed or
                // dropped) by the drain keeps its new state rather than completing early.
                continue;
            }
            // `L.remove(timer)`: also if the drain refreshed it (it runs anyway) or cleared it.
            self.unschedule(&timer);
            if !timer.has_callback() {
                // Cleared, or a silent timer (cleared after it fired, then refreshed).
                timer.dead.set(true);
                continue;
            }
            self.fire(inner, &timer, now);
        }
        // The list is empty: remove it, unless it was removed (and maybe remade) meanwhile.
        let mut l = self.lists.borrow_mut();
        if l.get_mut(slot, uid).is_some() {
            l.remove(slot);
        }
    }

    /// Fires one due timer (already taken out of its list).
    pub(super) fn fire(&self, inner: &LoopState, timer: &Rc<TimerCell>, now: Instant) {
        let prev_due = timer.due.get();
        match &timer.action {
            Action::Waker(w) => {
                // Ticks the consumer has not taken yet: with `Burst` each one is kept (and handed
                // out with its own due time); with `Skip` (and `Delay`, which waits for the
                // consumer) a late consumer gets one tick, not a backlog.
                let pending = if timer.missed.get() == MissedTickBehavior::Burst {
                    timer.fired.get().saturating_add(1)
                } else {
                    1
                };
                timer.fired.set(pending);
                timer.fired_due.set(prev_due);
                if timer.repeat {
                    inner.interval_tick(timer.uid);
                    let period = timer.duration.get();
                    match timer.missed.get() {
                        MissedTickBehavior::Skip => self.start(timer, inner.update_time()),
                        MissedTickBehavior::Burst => {
                            self.start_at(timer, deadline(prev_due, period))
                        }
                        // Re-armed by the consumer when it takes the tick.
                        MissedTickBehavior::Delay => {}
                    }
                } else {
                    timer.dead.set(true);
                }
                let waker = w.borrow_mut().take();
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Action::Callback(cb) => {
                // `listOnTimeout`: `if (timer._repeat) start = getLibuvNow();` reads the clock
                // before an interval's callback; the interval restarts from that time.
                let start = if timer.repeat {
                    inner.update_time()
                } else {
                    now
                };
                let f = cb.borrow_mut().take();
                let Some(f) = f else { return };
                let kind = if timer.repeat {
                    inner.interval_tick(timer.uid);
                    Kind::Interval
                } else {
                    Kind::Timeout
                };
                // Put the callback back and re-arm an interval even if the callback panics
                // (Node.js re-arms in a `finally`): the loop can run again after an uncaught
                // panic, and the interval must still be there.
                let mut rearm = Rearm {
                    timers: self,
                    inner,
                    timer,
                    cb,
                    f: Some(f),
                    start,
                    prev_due,
                };
                let f = rearm.f.as_mut().expect("just set");
                inner.traced(kind, timer.uid, None, f);
            }
        }
    }

    /// Notes a fired timeout that keeps its callback (see `fired`).
    pub(super) fn remember_fired(&self, timer: &Rc<TimerCell>) {
        let mut fired = self.fired.borrow_mut();
        fired.push(Rc::downgrade(timer));
        if fired.len() >= self.fired_prune_at.get() {
            fired.retain(|w| w.strong_count() > 0);
            self.fired_prune_at.set((fired.len() * 2).max(64));
        }
    }
}

/// After a callback timer has run (or panicked): gives the callback back to its cell and
/// re-arms an interval, unless the callback cleared its own timer.
pub(super) struct Rearm<'a> {
    pub(super) timers: &'a Timers,
    pub(super) inner: &'a LoopState,
    pub(super) timer: &'a Rc<TimerCell>,
    pub(super) cb: &'a RefCell<Option<Box<dyn FnMut()>>>,
    pub(super) f: Option<Box<dyn FnMut()>>,
    /// The loop time read before the callback (an interval restarts from it).
    pub(super) start: Instant,
    /// The due time of the countdown that fired.
    pub(super) prev_due: Instant,
}

impl Drop for Rearm<'_> {
    /// `listOnTimeout`'s `finally`.
    fn drop(&mut self) {
        let timer = self.timer;
        if timer.on_timeout.get() {
            *self.cb.borrow_mut() = self.f.take();
            if !timer.repeat {
                self.timers.remember_fired(timer);
            }
        }
        // (A callback cleared while it ran is dropped with `self`, outside any borrow.)
        if timer.repeat && !timer.cancelled.get() {
            // `if (timer._repeat && timer._idleTimeout !== -1) insert(timer, ..., start)`.
            let period = timer.duration.get();
            match timer.missed.get() {
                MissedTickBehavior::Skip => self.timers.start(timer, self.start),
                MissedTickBehavior::Burst => {
                    self.timers.start_at(timer, deadline(self.prev_due, period));
                }
                MissedTickBehavior::Delay => self.timers.start(timer, self.inner.update_time()),
            }
        } else if !timer.is_scheduled() {
            // `else if (!timer._idleNext && !timer._idlePrev && !timer._destroyed)`: not
            // refreshed by its own callback, so it is finished.
            timer.dead.set(true);
        }
    }
}
