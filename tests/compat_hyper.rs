//! `executor::compat` (feature `hyper`): hyper servers and clients on the loop, its timer's
//! sleeps (fire, cancel on drop from any thread, `header_read_timeout`), and the I/O adapter.

#![cfg(feature = "hyper")]

mod common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use common::{bounded, run_bounded};
use executor::EventLoop;
use executor::compat::{HyperIo, LoopExecutor, LoopSleep, LoopTimer};
use executor::net::{TcpListener, TcpStream};
use futures::{AsyncReadExt, AsyncWriteExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use std::future::Future;

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("hello {}", req.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// One server connection and one client on the same loop, HTTP/1.1 with keep-alive.
#[test]
fn http1_server_and_client_on_one_loop() {
    let bodies = run_bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        executor::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            hyper::server::conn::http1::Builder::new()
                .timer(LoopTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(HyperIo::new(conn), hyper::service::service_fn(hello))
                .await
                .unwrap();
        })
        .detach();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(HyperIo::new(stream))
            .await
            .unwrap();
        executor::spawn(conn).detach();
        let mut bodies = Vec::new();
        for path in ["/a", "/b"] {
            let res = sender.send_request(get(path)).await.unwrap();
            assert_eq!(res.status(), 200);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            bodies.push(String::from_utf8(body.to_vec()).unwrap());
        }
        bodies
    });
    assert_eq!(bodies, ["hello /a", "hello /b"]);
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = req.into_body().collect().await?.to_bytes();
    Ok(Response::new(Full::new(body)))
}

/// A `TcpStream` goes to hyper as it is (hyper's traits are on the stream itself, each read a
/// `recv` into hyper's possibly uninitialised buffer): a 1 MiB body posted and echoed back
/// comes through byte for byte, over many partial reads on both sides.
#[test]
fn a_tcp_stream_serves_and_sends_http_with_no_adapter() {
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let sent = body.clone();
    let echoed = run_bounded(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        executor::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            hyper::server::conn::http1::Builder::new()
                .timer(LoopTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(conn, hyper::service::service_fn(echo))
                .await
                .unwrap();
        })
        .detach();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
        executor::spawn(conn).detach();
        let mut echoed = Vec::new();
        for _ in 0..2 {
            let req = Request::post("/echo")
                .header("host", "localhost")
                .body(Full::new(Bytes::from(sent.clone())))
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(res.status(), 200);
            echoed.push(res.into_body().collect().await.unwrap().to_bytes());
        }
        echoed
    });
    assert_eq!(echoed.len(), 2);
    for e in echoed {
        assert!(e == body, "the echoed body differs ({} bytes)", e.len());
    }
}

/// `hyper::rt::Read` on `&TcpStream` fills an uninitialised buffer with what was sent, in
/// order, and an empty read marks the end of the stream.
#[test]
fn hyper_reads_on_a_shared_stream_fill_uninitialised_memory() {
    let got = run_bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        client.write_all(b"first second").await.unwrap();
        client.close().await.unwrap();
        let mut got = Vec::new();
        loop {
            let mut storage = [std::mem::MaybeUninit::<u8>::uninit(); 5];
            let mut buf = hyper::rt::ReadBuf::uninit(&mut storage);
            let mut shared = &conn;
            std::future::poll_fn(|cx| {
                hyper::rt::Read::poll_read(std::pin::Pin::new(&mut shared), cx, buf.unfilled())
            })
            .await
            .unwrap();
            if buf.filled().is_empty() {
                break got;
            }
            got.extend_from_slice(buf.filled());
        }
    });
    assert_eq!(got, b"first second");
}

/// HTTP/2 needs an executor for its streams and a timer: `LoopExecutor` and `LoopTimer`.
#[test]
fn http2_server_and_client_with_the_loop_executor() {
    let body = run_bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        executor::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            hyper::server::conn::http2::Builder::new(LoopExecutor)
                .timer(LoopTimer::new())
                .serve_connection(HyperIo::new(conn), hyper::service::service_fn(hello))
                .await
                .unwrap();
        })
        .detach();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(LoopExecutor)
            .timer(LoopTimer::new())
            .handshake(HyperIo::new(stream))
            .await
            .unwrap();
        executor::spawn(conn).detach();
        let res = sender.send_request(get("/h2")).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    });
    assert_eq!(body, "hello /h2");
}

/// `header_read_timeout` is timed by the loop: a client that sends half a head and stalls is
/// cut off (hyper answers 408 and closes), while the loop goes on.
#[test]
fn header_read_timeout_cuts_off_a_stalled_client() {
    let (got, waited) = run_bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = executor::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            hyper::server::conn::http1::Builder::new()
                .timer(LoopTimer::new())
                .header_read_timeout(Duration::from_millis(50))
                .serve_connection(HyperIo::new(conn), hyper::service::service_fn(hello))
                .await
        });
        // Taken before the connection exists, so before the server's countdown starts.
        let start = Instant::now();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap(); // ends when the server closes
        assert!(
            server.await.unwrap().is_err(),
            "the connection ended in a timeout error"
        );
        (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
    });
    assert!(
        waited >= Duration::from_millis(50),
        "cut off after {waited:?}"
    );
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got:?}");
}

fn assert_send_sync<T: Send + Sync>(_: &T) {}

/// A sleep fires on the loop, and `hyper::rt::Sleep` is `Send + Sync`.
#[test]
fn loop_sleeps_fire_and_are_send_and_sync() {
    run_bounded(async {
        let timer = LoopTimer::new();
        let start = Instant::now();
        let s = hyper::rt::Timer::sleep(&timer, Duration::from_millis(2));
        assert_send_sync(&s);
        s.await;
        assert!(start.elapsed() >= Duration::from_millis(2));
        let deadline = Instant::now() + Duration::from_millis(1);
        let s = timer.sleep_until(deadline);
        assert_eq!(s.deadline(), deadline);
        s.await;
        assert!(Instant::now() >= deadline);
    });
}

/// Awaits `s` on a new thread (off any loop); completes once it fired there.
async fn fired_on_another_thread(s: LoopSleep) {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        futures::executor::block_on(s);
        tx.send(()).unwrap();
    });
    rx.await.unwrap();
}

/// A sleep awaited on another thread (off any loop) is fired by the loop's timer.
#[test]
fn a_loop_sleep_awaited_on_another_thread_fires() {
    bounded(20, || {
        executor::block_on(async {
            let timer = LoopTimer::new();
            let s = timer.sleep_until(Instant::now() + Duration::from_millis(2));
            fired_on_another_thread(s).await;
        })
    });
}

/// A sleep made and polled on the loop (pending, its timer holding the loop task's waker),
/// then awaited on another thread: the loop's timer now wakes that thread.
#[test]
fn a_loop_sleep_polled_on_the_loop_then_awaited_elsewhere_fires() {
    bounded(20, || {
        executor::block_on(async {
            let timer = LoopTimer::new();
            let mut s = timer.sleep_until(Instant::now() + Duration::from_millis(3));
            assert!(futures::poll!(&mut s).is_pending());
            fired_on_another_thread(s).await;
        })
    });
}

/// A sleep polled on the loop, then polled and dropped on another thread: the drop cancels its
/// timer (the loop, kept alive only by that 60 s timer, ends at once).
#[test]
fn a_loop_sleep_polled_on_both_sides_then_dropped_elsewhere_is_cancelled() {
    bounded(20, || {
        let ev = EventLoop::new();
        let start = Instant::now();
        ev.run(|| {
            executor::spawn(async {
                let mut s = LoopTimer::new().sleep_until(Instant::now() + Duration::from_secs(60));
                assert!(futures::poll!(&mut s).is_pending());
                std::thread::spawn(move || {
                    let waker = futures::task::noop_waker();
                    let mut cx = std::task::Context::from_waker(&waker);
                    assert!(std::pin::Pin::new(&mut s).poll(&mut cx).is_pending());
                    drop(s);
                });
            })
            .detach();
        });
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the timer was not cancelled"
        );
    });
}

/// A timer made from a spawner off the loop: its sleeps fire and cancel both before and after
/// it learned which loop it is on (its first job there), made on the loop or elsewhere.
#[test]
fn a_timer_from_a_spawner_fires_and_cancels_on_the_loop() {
    bounded(20, || {
        let ev = EventLoop::new();
        let timer = LoopTimer::with_spawner(ev.block_on(async { executor::spawner() }));
        for _ in 0..2 {
            let t = timer.clone();
            let start = Instant::now();
            ev.block_on(async move {
                t.sleep_until(Instant::now() + Duration::from_millis(2))
                    .await;
                let long = t.sleep_until(Instant::now() + Duration::from_secs(60));
                drop(long);
            });
            assert!(start.elapsed() >= Duration::from_millis(2));
            let start = Instant::now();
            ev.run(|| {});
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "a dropped sleep kept the loop"
            );
        }
    });
}

/// Many sleeps on one loop share its one timer: made out of deadline order, most of them
/// dropped (so the queue is compacted), the rest fire in deadline order, none before its
/// deadline.
#[test]
fn many_loop_sleeps_fire_in_deadline_order_none_early() {
    let order = run_bounded(async {
        let timer = LoopTimer::new();
        let start = Instant::now();
        let fired = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut kept = Vec::new();
        for i in 0..300u64 {
            // Deadlines 1..=30 ms, not in the order they are made.
            let ms = 1 + (i * 7) % 30;
            let s = timer.sleep_until(start + Duration::from_millis(ms));
            if i % 10 == 0 {
                kept.push((ms, s));
            }
        }
        let mut tasks = Vec::new();
        for (ms, s) in kept {
            let fired = fired.clone();
            tasks.push(executor::spawn(async move {
                s.await;
                assert!(
                    start.elapsed() >= Duration::from_millis(ms),
                    "{ms} ms fired early"
                );
                fired.borrow_mut().push(ms);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        fired.take()
    });
    assert_eq!(order.len(), 30);
    assert!(order.is_sorted(), "{order:?}");
}

/// The loop's timer is unref'd when its last pending sleep is dropped and ref'd again by the
/// next one: that one (pending, nobody polling it, no task left) keeps the loop alive until
/// it fired, then the loop ends.
#[test]
fn a_sleep_after_the_last_one_was_dropped_keeps_the_loop_alive_again() {
    bounded(20, || {
        let ev = EventLoop::new();
        let holder = std::rc::Rc::new(std::cell::RefCell::new(None));
        let h = holder.clone();
        let start = Instant::now();
        ev.run(move || {
            let timer = LoopTimer::new();
            drop(timer.sleep_until(Instant::now() + Duration::from_millis(3)));
            *h.borrow_mut() = Some(timer.sleep_until(Instant::now() + Duration::from_millis(15)));
        });
        assert!(
            start.elapsed() >= Duration::from_millis(15),
            "the loop ended before the pending sleep was due"
        );
        let start = Instant::now();
        ev.run(|| {});
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a fired sleep kept the loop alive"
        );
        drop(holder);
    });
}

/// Dropping a pending sleep cancels its timer, also from another thread: the loop, kept alive
/// only by that 60 s timer, ends at once instead of waiting it out.
#[test]
fn dropping_a_sleep_on_another_thread_cancels_its_timer() {
    bounded(20, || {
        let ev = EventLoop::new();
        let timer = ev.block_on(async { LoopTimer::new() });
        let s = timer.sleep_until(Instant::now() + Duration::from_secs(60));
        let start = Instant::now();
        ev.run(move || {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                drop(s);
            });
        });
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the timer was not cancelled"
        );
    });
}

/// A sleep dropped on the loop's thread: same, and the loop never sleeps for it.
#[test]
fn dropping_a_sleep_on_the_loop_cancels_its_timer() {
    bounded(20, || {
        let ev = EventLoop::new();
        let start = Instant::now();
        ev.run(|| {
            let s = LoopTimer::new().sleep_until(Instant::now() + Duration::from_secs(60));
            executor::set_timeout(Duration::from_millis(1), move || drop(s));
        });
        assert!(start.elapsed() < Duration::from_secs(30));
    });
}

/// A sleep made off the loop is armed by a job on the loop; dropped before that job ran, the
/// job must not start its timer (a 60 s timer would keep `run` going), and one made and awaited
/// off the loop fires.
#[test]
fn sleeps_made_on_another_thread_are_armed_and_cancelled_by_the_loop() {
    bounded(20, || {
        let ev = EventLoop::new();
        let timer = LoopTimer::with_spawner(ev.block_on(async { executor::spawner() }));
        let t = timer.clone();
        std::thread::spawn(move || drop(t.sleep_until(Instant::now() + Duration::from_secs(60))))
            .join()
            .unwrap();
        let start = Instant::now();
        ev.run(|| {});
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a dropped sleep's timer was started"
        );
        let t = timer.clone();
        let waiter = std::thread::spawn(move || {
            futures::executor::block_on(t.sleep_until(Instant::now() + Duration::from_millis(2)))
        });
        // The sleep keeps the loop alive from its arming on; `run` returns once it fired.
        while !waiter.is_finished() {
            ev.run(|| {});
            std::thread::yield_now();
        }
        waiter.join().unwrap();
    });
}

/// The adapter both ways, over an in-memory stream: `futures` → hyper (`put_slice`) → `futures`.
#[test]
fn the_io_adapter_round_trips_bytes() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let inner = futures::io::Cursor::new(data.clone());
    let mut both = HyperIo::new(HyperIo::new(inner));
    let mut out = Vec::new();
    futures::executor::block_on(both.read_to_end(&mut out)).unwrap();
    assert_eq!(out, data);

    let mut w = HyperIo::new(HyperIo::new(futures::io::Cursor::new(Vec::new())));
    futures::executor::block_on(async {
        w.write_all(b"abc").await.unwrap();
        w.flush().await.unwrap();
        w.close().await.unwrap();
    });
    assert_eq!(w.into_inner().into_inner().into_inner(), b"abc");
}
