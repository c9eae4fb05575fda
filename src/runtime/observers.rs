//! Telling the installed [`LoopObserver`]s about every callback and task poll (a span) and
//! every interval tick; one `Cell<bool>` test per callback when none is installed.

use super::*;

/// Tells the observers that a span ended when dropped (also on unwind).
struct SpanExit(Rc<[Rc<dyn LoopObserver>]>);

impl Drop for SpanExit {
    fn drop(&mut self) {
        for o in self.0.iter().rev() {
            o.exit();
        }
    }
}

/// Tells the observers that a drain ended when dropped (also on unwind).
pub(super) struct DrainExit(Rc<[Rc<dyn LoopObserver>]>);

impl Drop for DrainExit {
    fn drop(&mut self) {
        for o in self.0.iter().rev() {
            o.drain_end();
        }
    }
}

impl LoopState {
    /// Tells the observers that a nextTick/microtask drain begins; the guard tells them it ended.
    #[cold]
    pub(super) fn drain_begin(&self) -> DrainExit {
        let observers = self.observers.borrow().clone();
        for o in observers.iter() {
            o.drain_begin();
        }
        DrainExit(observers)
    }

    /// Runs `f` as one span for the installed observers (just `f` when there are none).
    #[inline]
    pub(crate) fn traced<R>(
        &self,
        kind: Kind,
        id: u64,
        location: Option<&'static Location<'static>>,
        f: impl FnOnce() -> R,
    ) -> R {
        if !self.observed.get() {
            return f();
        }
        let span = Span {
            phase: self.phase.get(),
            kind,
            id,
            location,
        };
        let _exit = self.enter_span(&span);
        f()
    }

    #[cold]
    fn enter_span(&self, span: &Span) -> SpanExit {
        let observers = self.observers.borrow().clone();
        for o in observers.iter() {
            o.enter(span);
        }
        SpanExit(observers)
    }

    /// Tells observers that an interval fired.
    pub(crate) fn interval_tick(&self, timer_id: u64) {
        if self.observed.get() {
            let observers = self.observers.borrow().clone();
            for o in observers.iter() {
                o.interval_tick(timer_id);
            }
        }
    }
}
