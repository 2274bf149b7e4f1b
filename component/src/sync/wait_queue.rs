//! A FIFO of waiting futures with stable keys: what `Event`, `Lock`, `Semaphore` and `Queue`
//! queue their waiters in.
//!
//! Each waiter gets a key when it starts waiting and keeps it until it stops (woken, cancelled
//! or dropped), so removal from the middle of the queue — a cancelled waiter — is O(1) and
//! keeps the others in order. Nodes live in a slab, linked by index.
//!
//! ## The inline slot
//! Most primitives have at most one waiter at a time (an `Event` two tasks ping-pong on, a
//! `Queue` with one consumer). That waiter sits in `slot`, inline in the queue, and never
//! touches the slab: no insert, no unlink, no free-list bookkeeping. It is the same FIFO; the
//! order is "the slot, if it is [`Slot::Waiting`], then the list", which holds because:
//! - `push` takes the slot only when it is free **and** the list is empty, so every waiter in
//!   the list came later than the slot's;
//! - `push_front` takes the slot when it is free (the slot goes first, as it should). When the
//!   slot is waiting, its waiter moves to the head of the list first ([`Slot::Moved`] keeps
//!   its key valid) and the new waiter goes in front of it;
//! - a notified or moved slot is not free, so nothing new enters it until its waiter leaves
//!   (`remove`), and a waiter never moves from the list into the slot.
//!
//! ## A waiter's poll
//! Every primitive's waiter, polled again, runs [`repoll`] after its cancel check (notified:
//! leave; still queued: refresh the waker). The `!Sync` ones whose waiters are woken by a
//! hand-off (`Event`, `Lock`) try [`left_notified`] first: the same "notified: leave", before
//! the cancel check that looks up the loop, when the waker's task has no cancel pending.
//! `#[inline(always)]` on both and on `remove`: when LLVM left `remove` out of line in the
//! fast path, the host's `Event` ping-pong took 4–5 % more instructions (callgrind, two
//! variants); the inlining costs 174 B of flash with the primitives at opt-level "z".
//!
//! Measured with callgrind on x86 (`uasyncio-bench --child ours --quick --workloads …`,
//! instructions per operation): `Event` ping-pong 880 → 738, the two `Queue` round-trip rows
//! 2,480 → 2,318, and a `Lock` with ten tasks queued on it 785 → 804 (there the slot is
//! rarely free, and each operation pays its checks).

use core::cell::RefCell;
use core::task::{Context, Waker};

use slab::Slab;

const NIL: u32 = u32::MAX;
/// The key of the waiter in the inline slot. Slab keys stay far below it (each node takes
/// more than a byte, so no address space holds `u32::MAX - 1` of them).
const SLOT: u32 = u32::MAX - 1;

struct Node {
    waker: Option<Waker>,
    prev: u32,
    next: u32,
    notified: bool,
}

/// The inline slot's state (see the module doc).
enum Slot {
    /// No waiter holds the slot's key.
    Free,
    /// The slot's waiter, first in the queue.
    Waiting(Waker),
    /// The slot's waiter was notified and is out of the queue.
    Notified,
    /// A `push_front` moved the slot's waiter into the list under this key.
    Moved(u32),
}

/// What [`repoll`] found.
pub(crate) enum Repoll {
    /// The waiter has no key: it has not started waiting (or already left).
    NotWaiting,
    /// The waiter was notified and has left the queue.
    Notified,
    /// The waiter is still queued; its waker is the current one.
    Waiting,
}

/// A waiter's poll after its cancel check: notified, it leaves the queue (`*key` becomes
/// `None`) and the answer is [`Repoll::Notified`]; still queued, its waker is updated and the
/// answer is [`Repoll::Waiting`]; with no key (the queue is not borrowed then),
/// [`Repoll::NotWaiting`]. The one sequence every primitive's waiter runs.
#[inline(always)]
pub(crate) fn repoll(queue: &RefCell<WaitQueue>, key: &mut Option<u32>, waker: &Waker) -> Repoll {
    let Some(k) = *key else {
        return Repoll::NotWaiting;
    };
    let mut q = queue.borrow_mut();
    if q.leave_if_notified(key, k) {
        Repoll::Notified
    } else {
        q.set_waker(k, waker);
        Repoll::Waiting
    }
}

/// The fast path of a waiter polled again after a wake-up, for the primitives that are
/// `!Sync` (so the caller is on the queue's thread): when the waker's task has no cancel
/// pending ([`crate::cancel::no_cancel_pending`], no look-up of the loop) and the waiter was
/// notified, it leaves the queue, `*key` becomes `None` and the answer is true. False means
/// "take the whole path" (with the cancel check); nothing has changed then.
#[inline(always)]
pub(crate) fn left_notified(queue: &RefCell<WaitQueue>, key: &mut Option<u32>, cx: &Context<'_>) -> bool {
    let Some(k) = *key else { return false };
    if !crate::cancel::no_cancel_pending(cx) {
        return false;
    }
    queue.borrow_mut().leave_if_notified(key, k)
}

pub(crate) struct WaitQueue {
    slot: Slot,
    nodes: Slab<Node>,
    head: u32,
    tail: u32,
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        WaitQueue {
            slot: Slot::Free,
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Appends a waiter (a copy of its waker, see `cancel::Waiting::clone_waker`); returns its
    /// key.
    pub(crate) fn push(&mut self, waker: Waker) -> u32 {
        if matches!(self.slot, Slot::Free) && self.head == NIL {
            self.slot = Slot::Waiting(waker);
            return SLOT;
        }
        self.push_back_node(waker)
    }

    /// Puts a waiter at the head, ahead of every other waiter; returns its key. For a woken
    /// waiter that found the resource taken and waits again without losing its place.
    pub(crate) fn push_front(&mut self, waker: Waker) -> u32 {
        match core::mem::replace(&mut self.slot, Slot::Free) {
            Slot::Free => {
                self.slot = Slot::Waiting(waker);
                return SLOT;
            }
            // The slot's waiter was first: it becomes the list's head, still reached through
            // its key.
            Slot::Waiting(first) => {
                let key = self.push_front_node(first);
                self.slot = Slot::Moved(key);
            }
            other => self.slot = other,
        }
        self.push_front_node(waker)
    }

    /// Whether the waiter was notified (and so is out of the queue).
    pub(crate) fn is_notified(&self, key: u32) -> bool {
        match (key, &self.slot) {
            (SLOT, Slot::Waiting(_)) => false,
            (SLOT, Slot::Moved(key)) => self.node_notified(*key),
            (SLOT, _) => true,
            (key, _) => self.node_notified(key),
        }
    }

    pub(crate) fn set_waker(&mut self, key: u32, waker: &Waker) {
        let slot = match (key, &mut self.slot) {
            (SLOT, Slot::Waiting(w)) => w,
            (SLOT, Slot::Moved(key)) => {
                let key = *key;
                return self.set_node_waker(key, waker);
            }
            (SLOT, _) => return,
            (key, _) => return self.set_node_waker(key, waker),
        };
        if !slot.will_wake(waker) {
            *slot = waker.clone();
        }
    }

    /// The waiter `k` (the value in `*key`), if it was notified, leaves the queue and `*key`
    /// becomes `None`: true. Otherwise nothing changes: false. What [`repoll`] and
    /// [`left_notified`] share.
    #[inline(always)]
    fn leave_if_notified(&mut self, key: &mut Option<u32>, k: u32) -> bool {
        if !self.is_notified(k) {
            return false;
        }
        self.remove(k);
        *key = None;
        true
    }

    /// Forgets the waiter; returns whether it had been notified.
    #[inline(always)]
    pub(crate) fn remove(&mut self, key: u32) -> bool {
        if key == SLOT {
            return match core::mem::replace(&mut self.slot, Slot::Free) {
                Slot::Waiting(_) => false,
                Slot::Moved(key) => self.remove_node(key),
                Slot::Notified => true,
                Slot::Free => false,
            };
        }
        self.remove_node(key)
    }

    /// Notifies the oldest waiter: it leaves the queue (its key stays valid) and its waker is
    /// returned for the caller to wake once no borrow is held.
    pub(crate) fn notify_one(&mut self) -> Option<Waker> {
        if let Slot::Waiting(_) = self.slot {
            if let Slot::Waiting(waker) = core::mem::replace(&mut self.slot, Slot::Notified) {
                return Some(waker);
            }
        }
        let key = self.head;
        let node = self.nodes.get_mut(key as usize)?;
        node.notified = true;
        let (prev, next) = (node.prev, node.next);
        let waker = node.waker.take();
        self.unlink(prev, next);
        Some(waker.unwrap_or_else(noop_waker))
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL && !matches!(self.slot, Slot::Waiting(_))
    }

    fn push_back_node(&mut self, waker: Waker) -> u32 {
        let key = self.nodes.insert(Node {
            waker: Some(waker),
            prev: self.tail,
            next: NIL,
            notified: false,
        }) as u32;
        match self.nodes.get_mut(self.tail as usize) {
            Some(tail) => tail.next = key,
            None => self.head = key,
        }
        self.tail = key;
        key
    }

    fn push_front_node(&mut self, waker: Waker) -> u32 {
        let key = self.nodes.insert(Node {
            waker: Some(waker),
            prev: NIL,
            next: self.head,
            notified: false,
        }) as u32;
        match self.nodes.get_mut(self.head as usize) {
            Some(head) => head.prev = key,
            None => self.tail = key,
        }
        self.head = key;
        key
    }

    fn node_notified(&self, key: u32) -> bool {
        self.nodes.get(key as usize).is_none_or(|n| n.notified)
    }

    fn set_node_waker(&mut self, key: u32, waker: &Waker) {
        if let Some(node) = self.nodes.get_mut(key as usize) {
            match &node.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => node.waker = Some(waker.clone()),
            }
        }
    }

    fn remove_node(&mut self, key: u32) -> bool {
        let Some(node) = self.nodes.try_remove(key as usize) else {
            return false;
        };
        if !node.notified {
            self.unlink(node.prev, node.next);
        }
        node.notified
    }

    fn unlink(&mut self, prev: u32, next: u32) {
        match self.nodes.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }
}

fn noop_waker() -> Waker {
    Waker::noop().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_removal_from_the_middle() {
        let w = Waker::noop();
        let mut q = WaitQueue::new();
        let a = q.push(w.clone());
        let b = q.push(w.clone());
        let c = q.push(w.clone());
        assert!(!q.remove(b));
        assert!(q.notify_one().is_some());
        assert!(q.is_notified(a));
        assert!(!q.is_notified(c));
        assert!(q.notify_one().is_some());
        assert!(q.is_notified(c));
        assert!(q.is_empty());
        assert!(q.remove(a));
        assert!(q.remove(c));
        assert!(q.notify_one().is_none());
    }

    #[test]
    fn push_front_goes_first() {
        let w = Waker::noop();
        let mut q = WaitQueue::new();
        let a = q.push(w.clone());
        let b = q.push_front(w.clone());
        q.notify_one();
        assert!(q.is_notified(b) && !q.is_notified(a));
        q.notify_one();
        assert!(q.is_notified(a));
        assert!(q.is_empty());
        let c = q.push_front(w.clone());
        q.notify_one();
        assert!(q.is_notified(c));
        assert!(q.is_empty());
    }

    #[test]
    fn push_front_ahead_of_a_waiting_slot() {
        let w = Waker::noop();
        let mut q = WaitQueue::new();
        let a = q.push(w.clone()); // the slot
        let b = q.push(w.clone()); // the list
        let c = q.push_front(w.clone()); // ahead of a: a moves into the list
        assert_eq!(a, SLOT);
        assert!(!q.is_notified(a) && !q.is_notified(b) && !q.is_notified(c));
        q.notify_one();
        assert!(q.is_notified(c) && !q.is_notified(a));
        q.notify_one();
        assert!(q.is_notified(a) && !q.is_notified(b));
        assert!(q.remove(a));
        // The slot is free again, but b still waits in the list: a new waiter goes behind it.
        let d = q.push(w.clone());
        assert_ne!(d, SLOT);
        q.notify_one();
        assert!(q.is_notified(b) && !q.is_notified(d));
        q.notify_one();
        assert!(q.is_notified(d));
        assert!(q.is_empty());
        assert!(!q.remove(a), "a key removed twice");
    }

    /// Random operations against a model (a `VecDeque` of keys): the order of notification,
    /// what `remove` returns and what `is_notified` says must match at every step.
    #[test]
    fn matches_a_simple_model() {
        use alloc::collections::VecDeque;
        use alloc::vec::Vec;
        let w = Waker::noop();
        let mut seed: u32 = 0x2545_f491;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % n
        };
        // Safe code only: under Miri a few rounds suffice.
        let rounds = if cfg!(miri) { 5 } else { 200 };
        for _round in 0..rounds {
            let mut q = WaitQueue::new();
            // model: waiting keys in order; `live`: every key held, with whether notified
            let mut model: VecDeque<u32> = VecDeque::new();
            let mut live: Vec<(u32, bool)> = Vec::new();
            for _ in 0..60 {
                match rand(4) {
                    0 => {
                        let k = q.push(w.clone());
                        model.push_back(k);
                        live.push((k, false));
                    }
                    1 => {
                        let k = q.push_front(w.clone());
                        model.push_front(k);
                        live.push((k, false));
                    }
                    2 if !live.is_empty() => {
                        let (k, notified) = live.swap_remove(rand(live.len()));
                        assert_eq!(q.remove(k), notified);
                        model.retain(|&m| m != k);
                    }
                    _ => {
                        let woke = q.notify_one().is_some();
                        match model.pop_front() {
                            Some(k) => {
                                assert!(woke);
                                let entry = live.iter_mut().find(|e| e.0 == k);
                                if let Some(e) = entry {
                                    e.1 = true;
                                }
                            }
                            None => assert!(!woke),
                        }
                    }
                }
                let mut keys: Vec<u32> = live.iter().map(|e| e.0).collect();
                keys.sort_unstable();
                keys.dedup();
                assert_eq!(keys.len(), live.len(), "a key handed out twice");
                for &(k, notified) in &live {
                    assert_eq!(q.is_notified(k), notified);
                }
            }
        }
    }
}
