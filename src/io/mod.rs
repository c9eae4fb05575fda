//! The poll phase: the OS poller the loop sleeps in (`poller.rs`), the I/O sources registered
//! with it and the wait-then-dispatch step (`reactor.rs`), and the sockets ([`net`]).

#[cfg(all(unix, not(miri)))]
pub mod net;
pub(crate) mod poller;
pub(crate) mod reactor;
