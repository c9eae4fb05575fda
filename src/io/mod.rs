//! The poll phase's sources: the OS poller the loop sleeps in ([`reactor`]) and the sockets
//! registered with it ([`net`]).

#[cfg(all(unix, not(miri)))]
pub mod net;
pub(crate) mod reactor;
