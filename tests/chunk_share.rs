//! `Strategy::Share`: a chunked job keeps its share of the loop when the loop's other work
//! between its chunks grows. Only lower bounds on durations are asserted (a loaded machine only
//! lengthens what is measured).

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use executor::chunk::{ChunkObserver, Chunker, Strategy};
use executor::{EventLoop, set_immediate};

/// Records when each chunk starts and ends.
#[derive(Default)]
struct Edges(RefCell<Vec<(bool, Instant)>>);

impl ChunkObserver for Edges {
    fn chunk_end(&self) {
        self.0.borrow_mut().push((false, Instant::now()));
    }
    fn chunk_start(&self) {
        self.0.borrow_mut().push((true, Instant::now()));
    }
}

/// Between every two chunks an immediate holds the loop for 3 ms; at a 50 % share each chunk
/// after such a gap lasts at least as long as the gap (a 500 µs `Slice` would not).
#[test]
fn a_share_chunk_lasts_as_long_as_the_gap_before_it() {
    let edges = common::within(common::LIMIT, || {
        let ev = EventLoop::new();
        let edges = Rc::new(Edges::default());
        let e = edges.clone();
        ev.block_on(async move {
            let mut chunker = Chunker::new(Strategy::Share {
                percent: 50,
                slice: Duration::from_micros(500),
            });
            chunker.set_observer(e);
            // The loop's other work: 3 ms before every check phase the job resumes in.
            fn hog(left: u32) {
                if left > 0 {
                    set_immediate(move || {
                        common::busy(Duration::from_millis(3));
                        hog(left - 1);
                    });
                }
            }
            hog(12);
            let mut x = 0u64;
            while chunker.chunks() < 10 {
                x = x.wrapping_mul(31).wrapping_add(1);
                chunker.tick().await;
            }
            std::hint::black_box(x);
        });
        edges.0.take()
    });
    // Pairs (end, start, end): the gap before a chunk and the chunk.
    let mut checked = 0;
    for w in edges.windows(3) {
        if let [(false, end), (true, start), (false, next_end)] = w {
            let gap = start.duration_since(*end);
            let chunk = next_end.duration_since(*start);
            if gap >= Duration::from_millis(3) {
                assert!(
                    chunk >= gap.min(Duration::from_micros(500) * 64),
                    "chunk {chunk:?} after a gap of {gap:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "most chunks followed a hog: {checked}");
}
