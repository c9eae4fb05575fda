//! TCP through the poll phase: concurrent connections, a peer's reset is that stream's error
//! only, closing deregisters, and a socket with a waiter (only) keeps the loop alive and costs an
//! `epoll_wait(0)` per busy iteration.

#![cfg(unix)]

mod common;
use common::bounded;

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};

use executor::net::{TcpListener, TcpStream};
use executor::{EventLoop, spawn, time::timeout, yield_now};

/// Echoes until end of stream; returns how the connection ended.
async fn echo(mut conn: TcpStream) -> std::io::Result<()> {
    let mut buf = [0; 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n]).await?;
    }
}

/// Serves `n` connections with `echo`, each in its own task; returns each one's outcome (in the
/// order they ended).
async fn serve(listener: TcpListener, n: usize) -> Vec<Result<(), ErrorKind>> {
    let outcomes = Rc::new(RefCell::new(Vec::new()));
    let mut handlers = Vec::new();
    for _ in 0..n {
        let (conn, _) = listener.accept().await.unwrap();
        let o = outcomes.clone();
        handlers.push(spawn(async move {
            let r = echo(conn).await.map_err(|e| e.kind());
            o.borrow_mut().push(r);
        }));
    }
    for h in handlers {
        h.await.unwrap();
    }
    Rc::try_unwrap(outcomes).unwrap().into_inner()
}

fn blocking_echo(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(msg).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn many_concurrent_connections_are_served() {
    const N: usize = 16;
    let outcomes = bounded(20, || {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        // All clients connect and write before any reads its echo: they are in flight together.
        let clients: Vec<_> = (0..N)
            .map(|i| {
                thread::spawn(move || (i, blocking_echo(addr, format!("hello {i}").as_bytes())))
            })
            .collect();
        let ev = EventLoop::new();
        let outcomes = ev
            .block_on(async move { serve(TcpListener::from_std(std_listener).unwrap(), N).await });
        for c in clients {
            let (i, got) = c.join().unwrap();
            assert_eq!(got, format!("hello {i}").as_bytes());
        }
        outcomes
    });
    assert_eq!(outcomes, vec![Ok(()); N]);
}

#[test]
fn a_peer_reset_is_an_error_on_that_stream_only() {
    let outcomes = bounded(20, || {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let clients = thread::spawn(move || {
            // A normal client, then one that resets its connection, then a normal one again.
            assert_eq!(blocking_echo(addr, b"first"), b"first");
            let s = socket2::Socket::from(std::net::TcpStream::connect(addr).unwrap());
            (&s).write_all(b"reset me").unwrap();
            let mut buf = [0; 8];
            (&s).read_exact(&mut buf).unwrap();
            s.set_linger(Some(Duration::ZERO)).unwrap(); // close with RST, not FIN
            drop(s);
            assert_eq!(blocking_echo(addr, b"third"), b"third");
        });
        let ev = EventLoop::new();
        let outcomes = ev
            .block_on(async move { serve(TcpListener::from_std(std_listener).unwrap(), 3).await });
        clients.join().unwrap();
        outcomes
    });
    assert_eq!(
        outcomes,
        [Ok(()), Err(ErrorKind::ConnectionReset), Ok(())],
        "the reset must fail that connection's read, and only it"
    );
}

#[test]
fn connect_and_echo_on_one_loop() {
    let got = bounded(10, || {
        EventLoop::new().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = spawn(serve(listener, 1));
            let mut c = TcpStream::connect(addr).await.unwrap();
            assert_eq!(c.peer_addr().unwrap(), addr);
            // More than a socket buffer's worth in flight both ways: writes must wait for room.
            let msg: Vec<u8> = (0..4_000_000u32).map(|i| i as u8).collect();
            let (r, w) = (&c, &c);
            let writer = async {
                let mut w = w;
                w.write_all(&msg).await.unwrap();
                w.close().await.unwrap();
            };
            let reader = async {
                let mut r = r;
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            };
            let ((), got) = futures::join!(writer, reader);
            c.close().await.unwrap();
            assert_eq!(server.await.unwrap(), [Ok(())]);
            got == msg
        })
    });
    assert!(got, "echoed bytes differ");
}

#[test]
fn connect_refused_is_an_error() {
    let kind = bounded(10, || {
        EventLoop::new().block_on(async {
            // Bind then drop: the port is (for now) closed.
            let addr = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            TcpStream::connect(addr).await.unwrap_err().kind()
        })
    });
    assert_eq!(kind, ErrorKind::ConnectionRefused);
}

#[test]
fn a_waiting_socket_keeps_the_loop_alive_and_dropping_it_deregisters() {
    bounded(10, || {
        let ev = EventLoop::new();
        let stats = ev.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            // An abandoned accept leaves its waiter: the listener is armed.
            let r = timeout(Duration::from_millis(5), listener.accept()).await;
            assert!(r.is_err(), "nobody connects");
            let before = executor::loop_stats().os_waits;
            for _ in 0..100 {
                yield_now().await;
            }
            let armed = executor::loop_stats().os_waits - before;
            // Dropped: deregistered, nothing left for epoll to report; yields skip the syscall.
            drop(listener);
            let before = executor::loop_stats().os_waits;
            for _ in 0..100 {
                yield_now().await;
            }
            (armed, executor::loop_stats().os_waits - before)
        });
        assert!(
            stats.0 >= 100,
            "an armed source: one epoll_wait(0) per yield ({stats:?})"
        );
        assert_eq!(stats.1, 0, "no source: yields make no syscall ({stats:?})");
        assert!(!ev.is_alive(), "nothing left: the loop is idle");
    });
}

#[test]
fn a_listener_with_a_waiter_keeps_run_going_until_served() {
    let served = bounded(10, || {
        let ev = EventLoop::new();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            blocking_echo(addr, b"late")
        });
        let served = Rc::new(RefCell::new(None));
        let s = served.clone();
        // `run` returns only when nothing is left: the accepting task (and its socket) must keep
        // it going until the late client has been served.
        ev.run(move || {
            spawn(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                *s.borrow_mut() = Some(serve(listener, 1).await);
            })
            .detach();
        });
        assert_eq!(client.join().unwrap(), b"late");
        served.take()
    });
    assert_eq!(served, Some(vec![Ok(())]));
}

/// Readiness is tracked edge-triggered (`io/reactor.rs`): a read that moves fewer bytes than
/// asked marks the stream drained, and the next read waits for an edge. When the data and the
/// peer's FIN came together, no edge follows, so the end of the stream must still be seen: the
/// "closed" readiness is sticky. Both orders: the read before any poll phase saw the socket,
/// and after one dispatched its event.
#[test]
fn a_short_read_just_before_the_end_of_stream_still_sees_the_end() {
    for wait_first in [false, true] {
        let got = bounded(10, move || {
            executor::block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let (sent_tx, sent_rx) = std::sync::mpsc::channel();
                let peer = thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.write_all(b"hello").unwrap();
                    drop(s); // FIN right behind the data
                    sent_tx.send(()).unwrap();
                });
                let (mut conn, _) = listener.accept().await.unwrap();
                // Blocks the loop until both are in the kernel (bounded by `bounded`).
                sent_rx.recv().unwrap();
                if wait_first {
                    // A poll phase reports the data and the FIN before the first read.
                    executor::time::sleep(Duration::from_millis(1)).await;
                }
                let mut buf = [0; 1024];
                let n = conn.read(&mut buf).await.unwrap();
                let end = conn.read(&mut buf).await.unwrap();
                peer.join().unwrap();
                (n, end)
            })
        });
        assert_eq!(got, (5, 0), "wait_first: {wait_first}");
    }
}

/// A drained stream (a short read) is woken by the next data, and a writer that filled the
/// send buffer (a short write, then "would block") by the room the peer's reads make.
#[test]
fn drained_directions_are_woken_by_the_next_edge() {
    const BIG: usize = 8 << 20;
    let (first, second, written) = bounded(20, || {
        executor::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let peer = thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"a").unwrap();
                go_rx.recv().unwrap();
                s.write_all(b"b").unwrap();
                // Then read slowly: 8 MiB in 64 KiB reads, each after a short pause, so the
                // loop's writer meets a full send buffer again and again.
                let mut total = 0;
                let mut buf = vec![0; 64 << 10];
                while total < BIG {
                    thread::sleep(Duration::from_micros(200));
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "the stream ended after {total} bytes");
                    total += n;
                }
                total
            });
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0; 16];
            let first = conn.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..first], b"a");
            // Drained now; the peer writes only after this.
            go_tx.send(()).unwrap();
            let second = conn.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..second], b"b");
            conn.write_all(&vec![7; BIG]).await.unwrap();
            (first, second, peer.join().unwrap())
        })
    });
    assert_eq!((first, second, written), (1, 1, BIG));
}
