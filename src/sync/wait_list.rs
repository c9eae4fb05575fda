//! A FIFO queue of waiting futures, kept in a slab and linked by keys (no intrusive pointers, no
//! `unsafe`): O(1) push, pop and removal from the middle.
//!
//! # Ground rules
//! - A waiter owns its key from [`WaitList::push_back`] until it calls [`WaitList::remove`]
//!   (when it completes or is dropped). Keys are reused by the slab only after that, so a waiter
//!   never sees another waiter's node under its key.
//! - A node is either **queued** (linked into the FIFO) or **dequeued** (popped by whoever served
//!   it, still in the slab so its owner can read the outcome it was left in `value`).
//! - The list never clones, wakes or drops a waker itself, and its owners never do while their
//!   `RefCell` borrow of it is held: a waker's clone, wake and drop may run any code, including
//!   code that uses the same primitive. So [`WaitList::push_back`] and
//!   [`WaitList::replace_waker`] take a clone the caller made before borrowing, and
//!   [`WaitList::pop_front`], [`WaitList::replace_waker`] and [`WaitList::remove`] hand the
//!   waker they take out back to the caller, to wake or drop once the borrow has ended.

use std::fmt;
use std::task::Waker;

use slab::Slab;

/// "No node": the end of the list.
const NIL: usize = usize::MAX;

/// One waiter.
#[derive(Debug)]
struct Node<T> {
    /// Previous queued node (towards the head), or `NIL`. Meaningless once dequeued.
    prev: usize,
    /// Next queued node (towards the tail), or `NIL`. Meaningless once dequeued.
    next: usize,
    /// Whether the node is linked into the FIFO.
    queued: bool,
    /// Who to wake when the node is served; `None` once taken by the server.
    waker: Option<Waker>,
    /// What the waiter asked for, and what it was given.
    value: T,
}

/// A FIFO of waiters with stable keys.
pub(crate) struct WaitList<T> {
    /// Every node, queued or dequeued-but-not-yet-removed.
    nodes: Slab<Node<T>>,
    /// Oldest queued node, or `NIL`. `NIL` exactly when `tail` is `NIL`.
    head: usize,
    /// Newest queued node, or `NIL`.
    tail: usize,
}

impl<T> Default for WaitList<T> {
    fn default() -> Self {
        WaitList::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for WaitList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut k = self.head;
        while k != NIL {
            list.entry(&self.nodes[k].value);
            k = self.nodes[k].next;
        }
        list.finish()
    }
}

impl<T> WaitList<T> {
    /// An empty list (no allocation until the first waiter).
    pub(crate) const fn new() -> Self {
        WaitList {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Whether no waiter is queued (dequeued nodes awaiting removal do not count).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Number of queued waiters (walks the list: for `Debug` and tests).
    pub(crate) fn queued(&self) -> usize {
        let mut n = 0;
        let mut k = self.head;
        while k != NIL {
            n += 1;
            k = self.nodes[k].next;
        }
        n
    }

    /// Queues a waiter at the tail and returns its key.
    pub(crate) fn push_back(&mut self, value: T, waker: Waker) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: NIL,
            queued: true,
            waker: Some(waker),
            value,
        });
        match self.tail {
            NIL => self.head = key,
            t => self.nodes[t].next = key,
        }
        self.tail = key;
        key
    }

    /// The oldest queued waiter's value.
    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        (self.head != NIL).then(|| &self.nodes[self.head].value)
    }

    /// Dequeues the oldest waiter, lets `serve` record its outcome, and returns its waker.
    /// The node stays in the slab until its owner removes it.
    pub(crate) fn pop_front(&mut self, serve: impl FnOnce(&mut T)) -> Option<Waker> {
        let key = self.head;
        if key == NIL {
            return None;
        }
        self.unlink(key);
        let node = &mut self.nodes[key];
        serve(&mut node.value);
        node.waker.take()
    }

    /// Whether `key`'s node is still queued.
    #[inline]
    pub(crate) fn is_queued(&self, key: usize) -> bool {
        self.nodes[key].queued
    }

    /// Whether `key`'s stored waker already wakes the same task as `waker` (no clone needed).
    #[inline]
    fn has_waker_for(&self, key: usize, waker: &Waker) -> bool {
        self.nodes[key]
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(waker))
    }

    /// The step every waiter's poll takes to keep its queued waker current, without cloning or
    /// dropping a waker under the caller's borrow: `Some(displaced)` once `key` holds a waker for
    /// `waker` (`displaced` is the one it replaced, for the caller to drop after its borrow);
    /// `None` when a clone is needed: the caller ends its borrow, puts `waker.clone()` in `fresh`
    /// and looks again (the clone may have changed the state).
    pub(crate) fn keep_waker(
        &mut self,
        key: usize,
        waker: &Waker,
        fresh: &mut Option<Waker>,
    ) -> Option<Option<Waker>> {
        if self.has_waker_for(key, waker) {
            return Some(None);
        }
        fresh.take().map(|w| self.replace_waker(key, w))
    }

    /// Stores `waker` (cloned by the caller before borrowing) for `key`'s node and returns the
    /// one it replaces, for the caller to drop once its borrow has ended.
    fn replace_waker(&mut self, key: usize, waker: Waker) -> Option<Waker> {
        self.nodes[key].waker.replace(waker)
    }

    /// Removes `key`'s node (dequeuing it first if it is still queued) and returns its value and
    /// its waker, if still there (for the caller to drop once its borrow has ended).
    pub(crate) fn remove(&mut self, key: usize) -> (T, Option<Waker>) {
        if self.nodes[key].queued {
            self.unlink(key);
        }
        let node = self.nodes.remove(key);
        (node.value, node.waker)
    }

    /// Unlinks a queued node from the FIFO.
    fn unlink(&mut self, key: usize) {
        let node = &mut self.nodes[key];
        debug_assert!(node.queued, "unlinking a node that is not queued");
        node.queued = false;
        let (prev, next) = (node.prev, node.next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
        debug_assert_eq!(self.head == NIL, self.tail == NIL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(list: &WaitList<u32>) -> Vec<u32> {
        let mut v = Vec::new();
        let mut k = list.head;
        while k != NIL {
            v.push(list.nodes[k].value);
            k = list.nodes[k].next;
        }
        v
    }

    #[test]
    fn pops_in_push_order_and_keeps_popped_nodes_until_removed() {
        let mut l = WaitList::default();
        let keys: Vec<_> = (0..4)
            .map(|i| l.push_back(i, Waker::noop().clone()))
            .collect();
        assert_eq!(order(&l), [0, 1, 2, 3]);
        assert!(l.pop_front(|v| *v += 10).is_some());
        assert!(!l.is_queued(keys[0]));
        assert_eq!(order(&l), [1, 2, 3]);
        assert_eq!(l.remove(keys[0]).0, 10);
        assert_eq!(l.queued(), 3);
    }

    #[test]
    fn removal_from_head_middle_and_tail_relinks() {
        let mut l = WaitList::default();
        let k: Vec<_> = (0..5)
            .map(|i| l.push_back(i, Waker::noop().clone()))
            .collect();
        l.remove(k[2]);
        assert_eq!(order(&l), [0, 1, 3, 4]);
        l.remove(k[0]);
        assert_eq!(order(&l), [1, 3, 4]);
        l.remove(k[4]);
        assert_eq!(order(&l), [1, 3]);
        let k5 = l.push_back(5, Waker::noop().clone());
        assert_eq!(order(&l), [1, 3, 5]);
        l.remove(k[1]);
        l.remove(k[3]);
        l.remove(k5);
        assert!(l.is_empty());
        assert_eq!(l.front(), None);
    }

    #[test]
    fn displaced_and_removed_wakers_are_handed_back_to_the_caller() {
        // A `static` vtable: `will_wake` compares vtable addresses, and Miri gives every use of
        // a `const` one (as in `Waker::noop` or `Waker::from(Arc<impl Wake>)`) its own address.
        use std::task::{RawWaker, RawWakerVTable};
        static VTABLE: RawWakerVTable =
            RawWakerVTable::new(|p| RawWaker::new(p, &VTABLE), |_| {}, |_| {}, |_| {});
        let nop = |data: usize| {
            let data = std::ptr::without_provenance::<()>(data);
            // SAFETY: the vtable's functions do nothing and never read the data pointer.
            unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
        };
        let waker = nop(1);
        let mut l = WaitList::default();
        let k = l.push_back(0u32, waker.clone());
        assert!(l.has_waker_for(k, &waker));
        assert!(!l.has_waker_for(k, &nop(2)));
        assert!(l.replace_waker(k, Waker::noop().clone()).is_some());
        let (v, w) = l.remove(k);
        assert_eq!((v, w.is_some()), (0, true));
        let k = l.push_back(1, Waker::noop().clone());
        assert!(l.pop_front(|_| {}).is_some());
        assert!(l.remove(k).1.is_none(), "the server took the waker");
    }
}
