//! Observers see every callback and task poll, with its phase and kind, properly nested.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use executor::observe::{LoopObserver, Span};
use executor::{EventLoop, next_tick, queue_microtask, set_immediate, set_timeout, spawn};

#[derive(Default)]
struct Recorder {
    log: RefCell<Vec<String>>,
    depth: RefCell<usize>,
}

impl LoopObserver for Recorder {
    fn enter(&self, span: &Span) {
        let mut d = self.depth.borrow_mut();
        let loc = if span.location.is_some() { " @" } else { "" };
        self.log.borrow_mut().push(format!(
            "{}{} {}{loc}",
            "  ".repeat(*d),
            span.phase.name(),
            span.kind.name()
        ));
        *d += 1;
    }
    fn exit(&self) {
        *self.depth.borrow_mut() -= 1;
    }
    fn interval_tick(&self, _id: u64) {
        self.log.borrow_mut().push("tick".into());
    }
}

#[test]
fn observer_sees_every_callback_with_phase_and_kind() {
    let ev = EventLoop::new();
    let rec = Rc::new(Recorder::default());
    ev.add_observer(rec.clone());
    ev.run(|| {
        next_tick(|| queue_microtask(|| {}));
        set_timeout(Duration::from_millis(1), || {
            set_immediate(|| {});
        });
        spawn(async {}).detach();
        // Make sure the timer is due before the first timers phase.
        let end = std::time::Instant::now() + Duration::from_millis(5);
        while std::time::Instant::now() < end {}
    });
    assert_eq!(
        *rec.log.borrow(),
        [
            "main main",
            // Callbacks carry where they were queued, tasks where they were spawned.
            "microtask nextTick @",
            // The task was queued by the main script, before the tick queued its microtask.
            "microtask task @",
            "microtask microtask @",
            "timers timeout",
            "check immediate",
        ]
    );
    assert_eq!(*rec.depth.borrow(), 0, "every enter has its exit");
    let obs: Rc<dyn LoopObserver> = rec.clone();
    assert!(ev.remove_observer(&obs));
    assert!(!ev.remove_observer(&obs));
}
