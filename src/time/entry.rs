//! One timer as the timers phase sees it: what firing does ([`Action`]) and the cell shared by
//! the timer's handle or future and the list entries that refer to it ([`TimerCell`]), with the
//! Node.js fields it mirrors (`_idleTimeout`, `_destroyed`, `_onTimeout`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Weak;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::MissedTickBehavior;
use super::lists::ListKey;
use crate::runtime::LoopState;

/// How far in the future a timer whose deadline overflows the clock is placed (about 30 years,
/// as tokio does): such a timer never fires in practice, but it is still a valid timer.
pub(super) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// What happens when a timer fires.
pub(crate) enum Action {
    /// Run a callback (the callback API). `None` while the callback runs, or after `clear`.
    Callback(RefCell<Option<Box<dyn FnMut()>>>),
    /// Wake a future (sleep, interval streams, timeouts).
    Waker(RefCell<Option<Waker>>),
}

/// One timer. Shared (`Rc`) between its handle or future and the list entries that refer to it.
pub(crate) struct TimerCell {
    /// Unique id of the timer on its loop.
    pub(super) uid: u64,
    /// What firing does.
    pub(crate) action: Action,
    /// The countdown length (`refresh` and repeats restart it). Never zero for the callback API.
    pub(super) duration: Cell<Duration>,
    /// Whether the timer re-arms itself after firing (an interval).
    pub(crate) repeat: bool,
    /// How a late repeating timer reschedules.
    pub(crate) missed: Cell<MissedTickBehavior>,
    /// Whether the timer lives in a list of its own rather than its duration's list.
    pub(super) own_list: Cell<bool>,
    /// The due time of the current (or last) countdown.
    pub(super) due: Cell<Instant>,
    /// Registration number of the live list entry; 0 when the timer is not scheduled.
    /// Invariant: at most one list entry carries this timer's current `seq`.
    pub(super) seq: Cell<u64>,
    /// Where the live list entry is: its index counted from the first entry its list ever
    /// had (`List::base` is the index of the list's front). Meaningful only while scheduled.
    pub(super) pos: Cell<u64>,
    /// Whether a scheduled timer keeps the loop alive.
    pub(super) refed: Cell<bool>,
    /// Set by `clear` of a timer that had not finished (Node's `_idleTimeout = -1` in
    /// `unenroll`): the timer can never be scheduled again.
    pub(super) cancelled: Cell<bool>,
    /// Node's `_destroyed`: the timer finished (fired and was not re-armed) or was cleared. A
    /// `clear` of a finished timeout only drops its callback (`unenroll` returns early), so a
    /// later `refresh` re-arms it.
    pub(super) dead: Cell<bool>,
    /// Node's `_onTimeout`: whether a callback timer still has its callback (`clear` drops it;
    /// the callback itself is out of its cell while it runs). A timer scheduled without one
    /// expires silently: it only keeps the loop alive until then (`listOnTimeout`).
    pub(super) on_timeout: Cell<bool>,
    /// For `Action::Waker` timers: how many times the timer fired since its consumer last looked
    /// (a `Sleep` is done when this is non-zero; a burst interval may fire several times).
    pub(crate) fired: Cell<u32>,
    /// The due time of the latest firing.
    pub(crate) fired_due: Cell<Instant>,
    /// The loop the timer belongs to.
    pub(crate) owner: Weak<LoopState>,
}

impl fmt::Debug for TimerCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("uid", &self.uid)
            .field("duration", &self.duration.get())
            .field("repeat", &self.repeat)
            .field("scheduled", &(self.seq.get() != 0))
            .field("refed", &self.refed.get())
            .field("cancelled", &self.cancelled.get())
            .finish()
    }
}

impl TimerCell {
    /// Runs `f` on the loop the timer belongs to, if that loop still exists (a handle or future
    /// may outlive its loop; then there is nothing to do).
    pub(crate) fn with_owner<R>(&self, f: impl FnOnce(&LoopState) -> R) -> Option<R> {
        self.owner.upgrade().map(|owner| f(&owner))
    }

    /// Unique id of the timer on its loop.
    pub(crate) fn uid(&self) -> u64 {
        self.uid
    }

    /// The due time of the current (or last) countdown.
    pub(crate) fn due(&self) -> Instant {
        self.due.get()
    }

    /// Whether the timer is waiting to fire.
    pub(crate) fn is_scheduled(&self) -> bool {
        self.seq.get() != 0
    }

    /// Whether the timer keeps the loop alive while scheduled.
    pub(crate) fn has_ref(&self) -> bool {
        self.refed.get()
    }

    /// The countdown length.
    pub(crate) fn duration(&self) -> Duration {
        self.duration.get()
    }

    /// Whether firing would do something (Node's `timer._onTimeout`); waker timers always do.
    pub(super) fn has_callback(&self) -> bool {
        match self.action {
            Action::Callback(_) => self.on_timeout.get(),
            Action::Waker(_) => true,
        }
    }

    pub(super) fn list_key(&self) -> ListKey {
        if self.own_list.get() {
            ListKey::Own(self.uid)
        } else {
            ListKey::Duration(self.duration.get())
        }
    }
}

/// `start + d`, or a far-future time if that overflows the clock.
pub(crate) fn deadline(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(FAR_FUTURE))
        .unwrap_or(start)
}
