//! Owned guards and permits (`lock_owned`, `read_owned`, `write_owned`, `acquire_owned`) and
//! `Semaphore::close`: tokio's `tests/sync_mutex_owned.rs`, `sync_rwlock.rs` and
//! `sync_semaphore_owned.rs` / `sync_semaphore.rs` cases, ported to `Rc`.

mod common;

use std::rc::Rc;

use common::{run_bounded, settle};
use executor::spawn;
use executor::sync::{Mutex, RwLock, Semaphore, TryAcquireError};

#[test]
fn straight_execution() {
    run_bounded(async {
        let l = Rc::new(Mutex::new(100));
        {
            let mut g = l.clone().lock_owned().await;
            assert_eq!(*g, 100);
            *g = 99;
        }
        {
            let mut g = l.clone().lock_owned().await;
            assert_eq!(*g, 99);
            *g = 98;
        }
        assert_eq!(*l.clone().lock_owned().await, 98);
    });
}

#[test]
fn readiness() {
    run_bounded(async {
        let l = Rc::new(Mutex::new(100));
        let g = l.clone().lock_owned().await;
        let mut t2 = std::pin::pin!(l.clone().lock_owned());
        assert!(futures::poll!(t2.as_mut()).is_pending());
        drop(g);
        assert!(futures::poll!(t2.as_mut()).is_ready());
    });
}

/// tokio's `aborted_future_1`: a task aborted while waiting for an owned lock leaves the queue
/// and the lock is free for the next one.
#[test]
fn an_aborted_waiter_gives_up_its_place() {
    run_bounded(async {
        let m = Rc::new(Mutex::new(0));
        let held = m.clone().lock_owned().await;
        let waiter = spawn({
            let m = m.clone();
            async move {
                let _g = m.lock_owned().await;
                unreachable!("aborted before it got the lock");
            }
        });
        settle().await;
        waiter.abort();
        drop(held);
        assert!(m.try_lock().is_ok(), "the lock went to nobody");
    });
}

#[test]
fn try_lock_owned() {
    let m = Rc::new(Mutex::new(()));
    let g1 = m.clone().try_lock_owned();
    assert!(g1.is_ok());
    assert!(m.clone().try_lock_owned().is_err());
    drop(g1);
    assert!(m.clone().try_lock_owned().is_ok());
}

/// An owned guard moves into a task: it outlives the borrow of whoever locked.
#[test]
fn an_owned_guard_moves_into_a_task() {
    run_bounded(async {
        let m = Rc::new(Mutex::new(Vec::new()));
        let mut g = m.clone().lock_owned().await;
        let t = spawn(async move {
            executor::yield_now().await;
            g.push(1);
        });
        m.lock().await.push(2); // waits for the task's guard
        t.await.unwrap();
        assert_eq!(*m.lock().await, [1, 2]);
        assert_eq!(Rc::strong_count(&m), 1);
    });
}

#[test]
fn owned_read_and_write_guards() {
    run_bounded(async {
        let l = Rc::new(RwLock::new(1));
        let r1 = l.clone().read_owned().await;
        let r2 = l.clone().try_read_owned().unwrap();
        assert_eq!(*r1 + *r2, 2);
        assert!(l.clone().try_write_owned().is_err());
        let writer = spawn({
            let l = l.clone();
            async move {
                let mut w = l.write_owned().await;
                *w = 5;
                w.downgrade()
            }
        });
        settle().await;
        // Queued behind the writer: a later reader does not overtake it.
        assert!(l.clone().try_read_owned().is_err());
        drop((r1, r2));
        let r = writer.await.unwrap();
        assert_eq!(*r, 5);
        assert!(
            l.clone().try_read_owned().is_ok(),
            "downgraded: readers share"
        );
        assert!(l.clone().try_write_owned().is_err());
        drop(r);
        assert!(l.clone().try_write_owned().is_ok());
    });
}

/// tokio's `sync_semaphore_owned::try_acquire` and `acquire`.
#[test]
fn owned_permits_are_returned_on_drop() {
    run_bounded(async {
        let sem = Rc::new(Semaphore::new(1));
        {
            let p1 = sem.clone().try_acquire_owned();
            assert!(p1.is_ok());
            assert_eq!(
                sem.clone().try_acquire_owned().unwrap_err(),
                TryAcquireError::NoPermits
            );
        }
        let p = sem.clone().acquire_many_owned(1).await.unwrap();
        assert_eq!(p.num_permits(), 1);
        assert!(Rc::ptr_eq(p.semaphore(), &sem));
        let waiter = spawn(sem.clone().acquire_owned());
        settle().await;
        drop(p);
        let p2 = waiter.await.unwrap().unwrap();
        p2.forget();
        assert_eq!(sem.available_permits(), 0);
    });
}

/// tokio's `close_semaphore_prevents_acquire`.
#[test]
fn close_semaphore_prevents_acquire() {
    run_bounded(async {
        let sem = Rc::new(Semaphore::new(5));
        sem.close();
        assert!(sem.is_closed());
        assert_eq!(sem.available_permits(), 5);
        assert!(sem.acquire_many(1).await.is_err());
        assert!(sem.clone().acquire_owned().await.is_err());
        assert_eq!(
            sem.clone().try_acquire_owned().unwrap_err(),
            TryAcquireError::Closed
        );
        assert!(sem.try_acquire().unwrap_err().is_closed());
        assert_eq!(sem.available_permits(), 5);
    });
}

/// tokio's `close_semaphore_notifies_permit1` and `..2`: waiters queued when the semaphore is
/// closed are woken with the error, in order; permits held are returned as usual.
#[test]
fn close_semaphore_notifies_waiters() {
    run_bounded(async {
        let sem = Rc::new(Semaphore::new(2));
        let p1 = sem.clone().acquire_owned().await.unwrap();
        let p2 = sem.clone().acquire_owned().await.unwrap();
        let w1 = spawn(sem.clone().acquire_owned());
        let w2 = spawn(sem.clone().acquire_many_owned(2));
        settle().await;
        assert!(!w1.is_finished() && !w2.is_finished());
        sem.close();
        assert!(w1.await.unwrap().is_err());
        assert!(w2.await.unwrap().is_err());
        assert_eq!(sem.available_permits(), 0);
        drop(p1);
        assert_eq!(sem.available_permits(), 1);
        drop(p2);
        assert_eq!(sem.available_permits(), 2);
        assert!(sem.try_acquire().is_err(), "still closed");
    });
}

/// A waker run by `close` that queues a new waiter: it fails at once, and `close` does not
/// borrow the semaphore while waking (the `RefCell` would panic).
#[test]
fn a_waiter_woken_by_close_can_use_the_semaphore() {
    run_bounded(async {
        let sem = Rc::new(Semaphore::new(0));
        let s = sem.clone();
        let w = spawn(async move {
            let first = s.acquire().await.map(|_| ());
            let again = s.acquire().await.map(|_| ());
            (first.is_err(), again.is_err())
        });
        settle().await;
        sem.close();
        assert_eq!(w.await.unwrap(), (true, true));
    });
}
