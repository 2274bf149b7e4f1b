//! A FIFO of waiting futures with stable keys: what `Event`, `Lock`, `Semaphore` and `Queue`
//! queue their waiters in.
//!
//! Each waiter gets a key when it starts waiting and keeps it until it stops (woken, cancelled
//! or dropped), so removal from the middle of the queue — a cancelled waiter — is O(1) and
//! keeps the others in order. Nodes live in a slab, linked by index.

use core::task::Waker;

use slab::Slab;

const NIL: u32 = u32::MAX;

struct Node {
    waker: Option<Waker>,
    prev: u32,
    next: u32,
    notified: bool,
}

pub(crate) struct WaitQueue {
    nodes: Slab<Node>,
    head: u32,
    tail: u32,
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        WaitQueue {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Appends a waiter; returns its key.
    pub(crate) fn push(&mut self, waker: &Waker) -> u32 {
        let key = self.nodes.insert(Node {
            waker: Some(waker.clone()),
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

    /// Puts a waiter at the head, ahead of every other waiter; returns its key. For a woken
    /// waiter that found the resource taken and waits again without losing its place.
    pub(crate) fn push_front(&mut self, waker: &Waker) -> u32 {
        let key = self.nodes.insert(Node {
            waker: Some(waker.clone()),
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

    /// Whether the waiter was notified (and so is out of the queue).
    pub(crate) fn is_notified(&self, key: u32) -> bool {
        self.nodes.get(key as usize).is_none_or(|n| n.notified)
    }

    pub(crate) fn set_waker(&mut self, key: u32, waker: &Waker) {
        if let Some(node) = self.nodes.get_mut(key as usize) {
            match &node.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => node.waker = Some(waker.clone()),
            }
        }
    }

    /// Forgets the waiter; returns whether it had been notified.
    pub(crate) fn remove(&mut self, key: u32) -> bool {
        let Some(node) = self.nodes.try_remove(key as usize) else {
            return false;
        };
        if !node.notified {
            self.unlink(node.prev, node.next);
        }
        node.notified
    }

    /// Notifies the oldest waiter: it leaves the queue (its key stays valid) and its waker is
    /// returned for the caller to wake once no borrow is held.
    pub(crate) fn notify_one(&mut self) -> Option<Waker> {
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
        self.head == NIL
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
        let a = q.push(w);
        let b = q.push(w);
        let c = q.push(w);
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
        let a = q.push(w);
        let b = q.push_front(w);
        q.notify_one();
        assert!(q.is_notified(b) && !q.is_notified(a));
        q.notify_one();
        assert!(q.is_notified(a));
        assert!(q.is_empty());
        let c = q.push_front(w);
        q.notify_one();
        assert!(q.is_notified(c));
        assert!(q.is_empty());
    }
}
