//! Task wakers: `Send + Sync` as `std` requires, cheap on the loop's own thread.
//!
//! # How a wake travels
//! A [`WakeTarget`] is the header of every task's allocation, and what its [`Waker`] points at.
//! Waking it:
//! 1. sets `scheduled` (a task already scheduled is not queued twice);
//! 2. on the loop's own thread, while that loop runs: pushes `(key, id)` onto the loop's
//!    microtask queue, so the task is polled like a promise continuation;
//! 3. anywhere else (another thread, or this thread while the loop is not running): finds the
//!    loop's [`Inbox`](super::inbox::Inbox) inbox in a process-wide registry by loop id (`inbox.rs`), pushes
//!    `(key, id)` onto it and wakes the poll phase through the poller.
//!
//! A waker touches only the header, so a waker that outlives its loop or migrates to another
//! thread never touches `!Send` data: after the loop is dropped, it is gone from the registry
//! (and its `Inbox` closed), and a wake is a no-op.
//!
//! # Counted references
//! The header holds the allocation's reference count (`refs`), as async-task's header does: each
//! [`Waker`], the loop's task slab and the [`JoinHandle`](super::JoinHandle) own one count
//! (`raw.rs`). Whoever drops the last count frees the allocation through `dealloc`, on whatever
//! thread that is: a waker may be the last. That is sound because the loop's thread drops
//! everything `!Send` in the task (its future, its output) before it lets go of its own counts
//! (see the ground rules in `mod.rs`), so what the last count frees is plain memory.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::inbox::registry;
use crate::runtime::context;

/// Identifies one task: its slot in the loop's task slab and its unique id (slots are reused,
/// ids never are, so a stale wake of a finished task is recognised and ignored).
///
/// 16 bytes with a niche (`_niche`), so that an enum of it and one-pointer variants (the check
/// queue's `CheckEntry`) is 16 bytes too: such an entry is pushed and popped in two registers.
/// At 24 bytes the compiler built it on the stack in 8-byte stores and copied it in 16-byte
/// loads, a store-forwarding stall in every yield (docs/benchmarks.md, "Second pass").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskRef {
    /// Unique (per loop) id of the task; never reused.
    pub(crate) id: u64,
    /// Slot in the loop's task slab (a slab of more than `u32::MAX` live tasks is refused at
    /// spawn).
    key: u32,
    /// Always `Niche::Zero`: its 255 invalid values are where an enum holding a `TaskRef` keeps
    /// its tag.
    _niche: Niche,
}

/// A byte with one valid value (see [`TaskRef`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Niche {
    Zero = 0,
}

/// The key of the `block_on` future's reference: never a slab key.
const MAIN_KEY: u32 = u32::MAX;

impl TaskRef {
    /// The reference to slot `key` holding task `id`.
    ///
    /// # Panics
    /// If `key` is `u32::MAX` or more: more live tasks on one loop than that (some 400 GB of
    /// tasks), the last key being the `block_on` future's.
    #[inline]
    pub(crate) fn new(key: usize, id: u64) -> Self {
        let key = u32::try_from(key)
            .ok()
            .filter(|&k| k != MAIN_KEY)
            .expect("more than u32::MAX - 1 live tasks on one loop");
        TaskRef {
            id,
            key,
            _niche: Niche::Zero,
        }
    }

    /// The reference to the `block_on` future `id` (a key no slab entry has).
    #[inline]
    pub(crate) fn main(id: u64) -> Self {
        TaskRef {
            id,
            key: MAIN_KEY,
            _niche: Niche::Zero,
        }
    }

    /// Whether this is the `block_on` future's reference.
    #[inline]
    pub(crate) fn is_main(self) -> bool {
        self.key == MAIN_KEY
    }

    /// Slot in the loop's task slab.
    #[inline]
    pub(crate) fn key(self) -> usize {
        self.key as usize
    }
}

/// The shared, thread-safe part of a task: the header of its allocation, and what its waker
/// points at. `#[repr(C)]` and first in every allocation that holds one (`Task<F>` in `mod.rs`,
/// or alone for the `block_on` future), so a pointer to it is a pointer to the allocation.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct WakeTarget {
    /// Counted references to the allocation (wakers, the slab's, the join handle's).
    refs: AtomicUsize,
    /// Frees the allocation this header heads; called once, by whoever drops the last count.
    dealloc: unsafe fn(NonNull<WakeTarget>),
    /// Which task this is.
    pub(crate) task: TaskRef,
    /// Id of the loop that owns the task (loops on one thread are told apart by it, and other
    /// threads find the loop's [`Inbox`](super::inbox::Inbox) by it).
    pub(crate) loop_id: u64,
    /// True from the moment a wake queues the task until the loop starts polling it.
    /// Invariant: while true, a queue entry will poll the task (or it is gone), so further wakes
    /// need not queue it again. (A task resuming from `yield_now` has a check-queue entry that
    /// does not set the flag.)
    pub(crate) scheduled: AtomicBool,
}

/// Counts above this abort the process, as `Arc`'s do (a count that wraps would free a live
/// allocation).
const MAX_REFS: usize = isize::MAX as usize;

impl WakeTarget {
    /// A header with one count (its creator's) and `scheduled` set (the first poll is queued by
    /// the spawner). `dealloc` must free the allocation the header will be placed at the start of.
    pub(crate) fn new(
        task: TaskRef,
        loop_id: u64,
        dealloc: unsafe fn(NonNull<WakeTarget>),
    ) -> Self {
        WakeTarget {
            refs: AtomicUsize::new(1),
            dealloc,
            task,
            loop_id,
            scheduled: AtomicBool::new(true),
        }
    }

    /// Takes one more count.
    #[inline]
    pub(crate) fn retain(&self) {
        // Relaxed, as `Arc::clone`: a new count is made from an existing one, which already
        // keeps the allocation alive.
        if self.refs.fetch_add(1, Ordering::Relaxed) > MAX_REFS {
            std::process::abort();
        }
    }

    fn wake(&self) {
        if self.scheduled.load(Ordering::Relaxed) || self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let queued = context::try_with_current(|inner| {
            inner.id == self.loop_id && {
                inner.schedule_woken(self);
                true
            }
        });
        if queued != Some(true) {
            if let Some(remote) = registry::find(self.loop_id) {
                remote.push(self.task);
            }
        }
    }
}

/// Drops one count of the allocation headed by `header`, freeing it if that was the last.
///
/// # Safety
/// The caller owns one count of a live allocation headed by `header`, and gives it up: neither
/// it nor anything derived from it is used afterwards.
#[inline]
pub(crate) unsafe fn release(header: NonNull<WakeTarget>) {
    // SAFETY: the caller's count keeps the header alive until the decrement below.
    let h = unsafe { header.as_ref() };
    // Release, then an Acquire fence before freeing, as `Arc::drop`: every use made through
    // other counts happens before the free.
    if h.refs.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    fence(Ordering::Acquire);
    let dealloc = h.dealloc;
    // SAFETY: that was the last count: nobody else can reach the allocation, and `dealloc` is the
    // function its creator stored for it.
    unsafe { dealloc(header) };
}

/// A waker for `header` that owns no count, for a poll made while something else keeps the
/// allocation alive. It must not be dropped as a `Waker` (it is `ManuallyDrop`); clones of it
/// own their counts as usual.
///
/// # Safety
/// `header` stays alive for as long as the returned waker is used.
#[inline]
pub(crate) unsafe fn borrowed_waker(header: NonNull<WakeTarget>) -> std::mem::ManuallyDrop<Waker> {
    // SAFETY: per the caller's promise the header is alive while the waker is used, and the
    // `ManuallyDrop` keeps it from releasing a count it does not own.
    std::mem::ManuallyDrop::new(unsafe {
        Waker::from_raw(RawWaker::new(header.as_ptr().cast_const().cast(), &VTABLE))
    })
}

/// Whether `waker` is a task waker (one of this module's) for `header`.
#[inline]
pub(crate) fn is_waker_of(waker: &Waker, header: *const WakeTarget) -> bool {
    waker.data() == header.cast() && ptr::eq(waker.vtable(), &VTABLE)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_by_ref_raw, drop_raw);

unsafe fn clone_raw(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live header (the waker being cloned keeps it alive); the clone owns the
    // count taken here.
    unsafe { &*data.cast::<WakeTarget>() }.retain();
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake_raw(data: *const ()) {
    // SAFETY: `wake` consumes the waker: the header is alive until its count is released.
    unsafe {
        wake_by_ref_raw(data);
        drop_raw(data);
    }
}

unsafe fn wake_by_ref_raw(data: *const ()) {
    // SAFETY: the waker is borrowed, so its count keeps the header alive.
    unsafe { &*data.cast::<WakeTarget>() }.wake();
}

unsafe fn drop_raw(data: *const ()) {
    // SAFETY: dropping the waker gives up the count it owned (a borrowed waker is never dropped).
    unsafe { release(NonNull::new_unchecked(data.cast_mut().cast())) };
}

/// A header allocated on its own (the `block_on` future's: the future lives in `block_on`'s
/// frame, only its header is shared), with one count, which the caller owns and gives up with
/// [`release`]. The header is freed when the last count (the caller's or a waker's) is gone.
pub(crate) fn standalone_header(task: TaskRef, loop_id: u64) -> NonNull<WakeTarget> {
    /// Frees a header allocated by `standalone_header`.
    unsafe fn dealloc_alone(header: NonNull<WakeTarget>) {
        // SAFETY: `header` came from `Box::into_raw` below, and this is the last count.
        drop(unsafe { Box::from_raw(header.as_ptr()) });
    }
    NonNull::from(Box::leak(Box::new(WakeTarget::new(
        task,
        loop_id,
        dealloc_alone,
    ))))
}
