//! [`ToSocketAddrs`]: what [`TcpStream::connect`](super::TcpStream::connect) accepts, and the
//! host-name lookup it does off the loop's thread.
//!
//! `std`'s resolver (`getaddrinfo`) blocks, for as long as DNS takes. libuv runs it on its
//! thread pool (`uv_getaddrinfo` is a `uv_queue_work` job), and so does this crate: an address
//! that is already an IP address (a `SocketAddr`, `"127.0.0.1:80"`, `("::1", 80)`) is used as
//! is, with no thread involved; a host name is resolved by an [`offload`](crate::offload) job
//! while the loop goes on with its timers and I/O. The trait is sealed (tokio's design): its
//! method returns what to look up, owned, so the lookup can move to a worker thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Addresses [`TcpStream::connect`](super::TcpStream::connect) accepts: socket addresses,
/// `(ip, port)` pairs, `"host:port"` strings and `(host, port)` pairs (host names are resolved
/// on the offload pool, IP addresses are not resolved at all).
///
/// Sealed: implemented for the types `std::net::ToSocketAddrs` is implemented for.
pub trait ToSocketAddrs: sealed::Sealed {}

pub(crate) mod sealed {
    use super::Target;

    /// The private half of [`ToSocketAddrs`](super::ToSocketAddrs).
    pub trait Sealed {
        /// What to connect to: addresses, or a name to look up.
        fn target(&self) -> Target;
    }
}

/// What an address argument stands for.
#[derive(Debug)]
pub enum Target {
    /// Addresses, no lookup needed.
    Ready(Vec<SocketAddr>),
    /// A host name and port to resolve (a `"host:port"` string is split when resolved, by
    /// `std`, so its errors are `std`'s).
    Lookup(String, u16),
    /// A `"host:port"` string that is not an IP address and port.
    LookupStr(String),
}

macro_rules! ready {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {}
        impl sealed::Sealed for $t {
            fn target(&self) -> Target {
                Target::Ready(vec![SocketAddr::from(*self)])
            }
        }
    )*};
}
ready!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for [SocketAddr] {}
impl sealed::Sealed for [SocketAddr] {
    fn target(&self) -> Target {
        Target::Ready(self.to_vec())
    }
}

impl ToSocketAddrs for str {}
impl sealed::Sealed for str {
    fn target(&self) -> Target {
        match self.parse::<SocketAddr>() {
            Ok(a) => Target::Ready(vec![a]),
            Err(_) => Target::LookupStr(self.to_owned()),
        }
    }
}

impl ToSocketAddrs for String {}
impl sealed::Sealed for String {
    fn target(&self) -> Target {
        self.as_str().target()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl sealed::Sealed for (&str, u16) {
    fn target(&self) -> Target {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Target::Ready(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Target::Lookup(self.0.to_owned(), self.1),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl sealed::Sealed for (String, u16) {
    fn target(&self) -> Target {
        (self.0.as_str(), self.1).target()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn target(&self) -> Target {
        (**self).target()
    }
}

/// The system resolver (blocking: run it on a worker thread).
pub(crate) fn system_resolve(target: Target) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs as _;
    match target {
        Target::Ready(v) => Ok(v),
        Target::Lookup(host, port) => Ok((host.as_str(), port).to_socket_addrs()?.collect()),
        Target::LookupStr(s) => Ok(s.to_socket_addrs()?.collect()),
    }
}

/// The addresses `target` stands for: at once if it holds them, else from `resolve` run on
/// the offload pool (the loop runs on meanwhile).
pub(crate) async fn resolve_off_loop(
    target: Target,
    resolve: impl FnOnce(Target) -> io::Result<Vec<SocketAddr>> + Send + 'static,
) -> io::Result<Vec<SocketAddr>> {
    match target {
        Target::Ready(v) => Ok(v),
        lookup => match crate::offload(move || resolve(lookup)).await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(format!("host name lookup failed: {e}"))),
        },
    }
}

/// For tests of lookups off the loop: runs the future `lookup` makes beside a 1 ms interval,
/// handing it a resolver that asserts it is not on the loop's thread and blocks until the loop
/// has run three ticks (10 s at most, then it fails); returns the future's output and the
/// ticks counted meanwhile.
#[cfg(test)]
pub(crate) async fn beside_a_ticking_interval<T, Fut>(
    lookup: impl FnOnce(Box<dyn FnOnce(Target) -> io::Result<Vec<SocketAddr>> + Send>) -> Fut,
) -> (T, u32)
where
    Fut: std::future::Future<Output = T>,
{
    use std::time::Duration;
    let (tick_tx, tick_rx) = std::sync::mpsc::channel::<()>();
    let loop_thread = std::thread::current().id();
    let mut interval = crate::time::interval(Duration::from_millis(1));
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let t = ticks.clone();
    let ticker = crate::spawn(async move {
        loop {
            interval.tick().await;
            t.set(t.get() + 1);
            let _ = tick_tx.send(());
        }
    });
    let out = lookup(Box::new(move |target| {
        assert_ne!(
            std::thread::current().id(),
            loop_thread,
            "resolved on the loop"
        );
        for _ in 0..3 {
            tick_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| io::Error::other("the loop stopped ticking"))?;
        }
        system_resolve(target)
    }))
    .await;
    ticker.abort();
    (out, ticks.get())
}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;
    use super::*;

    #[test]
    fn ip_addresses_need_no_lookup_and_names_do() {
        assert!(matches!("127.0.0.1:80".target(), Target::Ready(v) if v.len() == 1));
        assert!(matches!(("::1", 80).target(), Target::Ready(_)));
        assert!(matches!("localhost:80".target(), Target::LookupStr(_)));
        assert!(matches!(("localhost", 80).target(), Target::Lookup(h, 80) if h == "localhost"));
    }

    /// The resolver blocks until the loop has run three ticks of a 1 ms interval, which it can
    /// only do if the lookup is not on the loop's thread (there, it would wait out its 10 s
    /// bound and the test would fail).
    #[test]
    fn a_slow_lookup_does_not_stop_the_loop() {
        let (addrs, ticks) = crate::block_on(beside_a_ticking_interval(|resolve| {
            resolve_off_loop(("localhost", 8080).target(), resolve)
        }));
        let addrs = addrs.expect("localhost resolves");
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
        assert!(ticks >= 3, "{ticks} ticks during the lookup");
    }
}
