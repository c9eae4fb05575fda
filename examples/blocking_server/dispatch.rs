//! Which loop the cluster's acceptor hands the next connection to.
//!
//! [`Policy::RoundRobin`] is Node.js's cluster primary (`RoundRobinHandle.prototype.distribute`
//! and `handoff` in `lib/internal/cluster/round_robin_handle.js`): the next *free* worker in
//! turn, where free means it has acknowledged the last connection handed to it; with no free
//! worker the connection waits at the primary. Here a loop acknowledges by taking the
//! connection from its inbox. The rule knows nothing of blocking, but it bounds the damage: a
//! blocked loop cannot take anything, so it captures the one connection handed to it just after
//! it blocked (that one waits for the whole search), and no more.
//!
//! [`Policy::LoadAware`] adds the heartbeat: it also skips a loop that has been inside one
//! callback for more than [`STUCK_AFTER`], so that one connection is not captured either
//! (unless it arrives in the first [`STUCK_AFTER`] of the block).
//!
//! With no loop to take it ([`Choice::Wait`]) the acceptor keeps the connection and accepts
//! nothing meanwhile (later clients wait in the kernel's listen backlog); it asks again when a
//! loop takes a connection, or after [`RECHECK`] (a loop coming out of a long callback does not
//! say so). The held connection then goes to the first loop that is free, rather than being
//! committed now to one that may stay stuck (even forever).
//!
//! The choice is a pure function of what the loops published ([`LoopView`]), tested below.

use std::time::Duration;

/// A loop is skipped once it has been inside one callback this long: well above a chunk of
/// chunked mode (500 us) or any `/home`, well below a blocking search (tens of ms and more).
pub const STUCK_AFTER: Duration = Duration::from_millis(2);
/// How often a held connection looks for a loop that has come out of a long callback.
pub const RECHECK: Duration = Duration::from_millis(1);

/// How connections are shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Node.js's rule, and skip loops stuck in one callback (the heartbeat).
    LoadAware,
    /// The next loop in turn that has taken its last connection, blocked or not (Node.js's
    /// cluster primary).
    RoundRobin,
    /// No acceptor: one `SO_REUSEPORT` listener per loop, the kernel picks (by a hash of the
    /// connection's addresses and ports), blocked or not.
    ReusePort,
}

impl Policy {
    /// All policies, in the order the command line lists them.
    pub const ALL: [Policy; 3] = [Policy::LoadAware, Policy::RoundRobin, Policy::ReusePort];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::LoadAware => "load-aware",
            Policy::RoundRobin => "round-robin",
            Policy::ReusePort => "reuseport",
        }
    }

    /// The policy named `s` on the command line.
    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One loop as the acceptor sees it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopView {
    /// Its thread still runs (its inbox is open).
    pub live: bool,
    /// How long it has been in its current callback (zero when idle).
    pub stuck_for: Duration,
    /// Connections handed to it that it has not yet taken from its inbox.
    pub waiting: u64,
}

/// What to do with the connection in hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Hand it to this loop.
    Loop(usize),
    /// Every live loop is stuck: keep it and ask again after [`RECHECK`].
    Wait,
    /// No loop is live.
    NoLoop,
}

/// The loop for the next connection: the first in turn from index `start` (the round-robin
/// cursor) that is live, has taken every connection handed to it, and, if `skip_stuck`, has
/// not been stuck for more than [`STUCK_AFTER`].
pub fn choose(skip_stuck: bool, loops: &[LoopView], start: usize) -> Choice {
    let n = loops.len().max(1);
    let mut live = (0..loops.len())
        .map(|k| (start + k) % n)
        .filter(|&i| loops[i].live)
        .peekable();
    if live.peek().is_none() {
        return Choice::NoLoop;
    }
    live.find(|&i| loops[i].waiting == 0 && !(skip_stuck && loops[i].stuck_for > STUCK_AFTER))
        .map_or(Choice::Wait, Choice::Loop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: LoopView = LoopView {
        live: true,
        stuck_for: Duration::ZERO,
        waiting: 0,
    };
    const STUCK: LoopView = LoopView {
        stuck_for: Duration::from_millis(50),
        ..IDLE
    };
    const DEAD: LoopView = LoopView {
        live: false,
        ..IDLE
    };

    #[test]
    fn round_robin_takes_the_next_free_loop_even_if_stuck() {
        assert_eq!(choose(false, &[IDLE, STUCK], 1), Choice::Loop(1));
        assert_eq!(choose(false, &[IDLE, DEAD], 1), Choice::Loop(0));
        assert_eq!(choose(false, &[DEAD, DEAD], 0), Choice::NoLoop);
        // A loop that has not taken its last connection is not free (Node's acknowledgement).
        let backlog = LoopView { waiting: 1, ..IDLE };
        assert_eq!(choose(false, &[backlog, STUCK], 0), Choice::Loop(1));
        assert_eq!(choose(false, &[backlog, backlog], 0), Choice::Wait);
    }

    #[test]
    fn load_aware_also_skips_stuck_loops_and_waits_when_none_is_free() {
        assert_eq!(choose(true, &[IDLE, STUCK], 1), Choice::Loop(0));
        assert_eq!(choose(true, &[STUCK, IDLE, IDLE], 0), Choice::Loop(1));
        assert_eq!(choose(true, &[STUCK, IDLE, IDLE], 2), Choice::Loop(2));
        assert_eq!(choose(true, &[STUCK, DEAD], 0), Choice::Wait);
        let backlog = LoopView { waiting: 1, ..IDLE };
        assert_eq!(choose(true, &[STUCK, backlog], 0), Choice::Wait);
        assert_eq!(choose(true, &[DEAD, DEAD], 0), Choice::NoLoop);
        // Busy for a chunk's length is not stuck.
        let chunk = LoopView {
            stuck_for: Duration::from_micros(600),
            ..IDLE
        };
        assert_eq!(choose(true, &[chunk, IDLE], 0), Choice::Loop(0));
    }
}
