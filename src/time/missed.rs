//! What a repeating timer does when the loop was too busy to run it on time.

/// What a repeating timer does when the loop was too busy to run it on time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MissedTickBehavior {
    /// Node.js's `setInterval`: a late tick runs once, and the next one is due one period after
    /// the loop time at which the late one ran. Missed ticks are skipped, so an interval runs at
    /// most once per timers phase. (Unlike tokio's `Skip`, the schedule is not kept aligned to
    /// the original start.) An [`Interval`](crate::time::Interval) stream whose consumer is late
    /// likewise holds one tick for it, not one per period missed.
    #[default]
    Skip,
    /// Catch up: the next tick is due one period after the previous *due time*, so ticks missed
    /// while the loop was blocked all run, back to back, as soon as it is free. A late stream
    /// consumer gets every missed tick, each with its own due time.
    Burst,
    /// The next tick is due one period after the previous tick *finished* (after its callback
    /// returned, or when the stream consumer took it).
    Delay,
}
