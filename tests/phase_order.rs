//! Ordering across phases and queues that the scenario language cannot express: tasks, wakers,
//! `yield_now`, `sleep`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use executor::{
    EventLoop, next_tick, queue_microtask, set_immediate, set_timeout, sleep, spawn, yield_now,
};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::default()
}

fn push(l: &Log, s: &str) {
    l.borrow_mut().push(s.to_string());
}

#[test]
fn spawned_task_first_runs_as_a_microtask_after_ticks() {
    let l = log();
    let l2 = l.clone();
    EventLoop::new().run(move || {
        let (a, b, c) = (l2.clone(), l2.clone(), l2.clone());
        spawn(async move { push(&a, "task") }).detach();
        queue_microtask(move || push(&b, "micro"));
        next_tick(move || push(&c, "tick"));
        push(&l2, "main");
    });
    assert_eq!(*l.borrow(), ["main", "tick", "task", "micro"]);
}

#[test]
fn yield_now_resumes_in_check_phase_after_earlier_immediates() {
    let l = log();
    let l2 = l.clone();
    EventLoop::new().run(move || {
        let a = l2.clone();
        spawn(async move {
            push(&a, "task start");
            let b = a.clone();
            set_immediate(move || push(&b, "immediate before yield"));
            yield_now().await;
            push(&a, "task resumed");
            let c = a.clone();
            set_immediate(move || push(&c, "immediate after resume"));
        })
        .detach();
    });
    assert_eq!(
        *l.borrow(),
        [
            "task start",
            "immediate before yield",
            "task resumed",
            "immediate after resume"
        ]
    );
}

#[test]
fn yield_now_lets_due_timers_run_between_chunks() {
    let l = log();
    let l2 = l.clone();
    EventLoop::new().run(move || {
        let a = l2.clone();
        set_timeout(Duration::from_millis(1), move || push(&a, "timer"));
        let b = l2.clone();
        spawn(async move {
            // Block past the timer's due time, then yield: the timers phase of the next
            // iteration runs before the task resumes in its check phase.
            let end = std::time::Instant::now() + Duration::from_millis(10);
            while std::time::Instant::now() < end {}
            push(&b, "chunk 1");
            yield_now().await;
            push(&b, "chunk 2");
        })
        .detach();
    });
    assert_eq!(*l.borrow(), ["chunk 1", "timer", "chunk 2"]);
}

#[test]
fn woken_task_runs_in_the_microtask_drain_after_the_timer_that_woke_it() {
    let l = log();
    let l2 = l.clone();
    EventLoop::new().run(move || {
        let a = l2.clone();
        spawn(async move {
            let s = sleep(Duration::from_millis(5));
            // Same duration, created after the sleep: fires right after it, in creation order,
            // and the task runs in between (in the drain after the sleep's timer).
            let (b, c) = (a.clone(), a.clone());
            set_timeout(Duration::from_millis(5), move || {
                push(&b, "timeout");
                let c = c.clone();
                queue_microtask(move || push(&c, "timeout micro"));
            });
            s.await;
            push(&a, "task after sleep");
        })
        .detach();
    });
    assert_eq!(
        *l.borrow(),
        ["task after sleep", "timeout", "timeout micro"]
    );
}

#[test]
fn block_on_future_runs_first_and_resumes_as_a_microtask() {
    let l = log();
    let l2 = l.clone();
    let out = EventLoop::new().block_on(async move {
        let a = l2.clone();
        next_tick(move || push(&a, "tick"));
        push(&l2, "main");
        let t = spawn(async { 5 });
        let v = t.await.unwrap();
        push(&l2, "joined");
        v
    });
    assert_eq!(out, 5);
    assert_eq!(*l.borrow(), ["main", "tick", "joined"]);
}

#[test]
fn yield_now_inside_join_uses_the_combinators_waker() {
    // `join!` polls its children with its own waker; the yield must still resume them.
    let out = executor::block_on(async {
        let a = async {
            for _ in 0..3 {
                yield_now().await;
            }
            1
        };
        let b = async {
            yield_now().await;
            2
        };
        futures::join!(a, b)
    });
    assert_eq!(out, (1, 2));
}

#[test]
fn interval_stream_ticks_in_order() {
    use futures::StreamExt;
    let ticks = executor::block_on(async {
        executor::time::interval(Duration::from_millis(2))
            .take(4)
            .collect::<Vec<_>>()
            .await
    });
    assert_eq!(ticks.len(), 4);
    assert!(
        ticks
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(2))
    );
}

/// Takes the ticks of `iv` that are ready right now (without waiting), with their due times.
async fn ready_ticks(iv: &mut executor::time::Interval) -> Vec<std::time::Instant> {
    let mut out = Vec::new();
    while let std::task::Poll::Ready(t) = futures::poll!(std::pin::pin!(iv.tick())) {
        out.push(t);
    }
    out
}

#[test]
fn a_late_interval_consumer_gets_one_tick_with_skip_and_the_backlog_with_burst() {
    use executor::time::MissedTickBehavior::{Burst, Skip};
    let period = Duration::from_millis(10);
    for missed in [Skip, Burst] {
        let ready = executor::block_on(async {
            let mut iv = executor::time::interval(period);
            iv.set_missed_tick_behavior(missed);
            iv.tick().await;
            // The consumer looks away for five periods and more; the loop keeps running.
            executor::sleep(period * 5 + period / 2).await;
            ready_ticks(&mut iv).await
        });
        match missed {
            Skip => assert_eq!(ready.len(), 1, "Skip: one late tick, not a backlog"),
            _ => {
                assert!(ready.len() >= 5, "Burst keeps every missed tick: {ready:?}");
                // Each with its own due time, one period apart.
                assert!(ready.windows(2).all(|w| w[1] - w[0] == period), "{ready:?}");
            }
        }
    }
}
