//! The loop's timer heap, and the handle a future arms on it.
//!
//! A binary heap keyed by `(deadline, sequence)`, so equal deadlines fire in the order they
//! were set, with each entry's position tracked in a slab. Arming, firing and disarming are
//! all O(log n); nothing scans the heap and nothing ticks periodically: the loop sleeps in
//! its semaphore until the top entry's deadline.
//!
//! Deadlines are in microseconds of the loop's clock (the port's monotonic clock, or virtual
//! time in tests). The user-facing `sleep` is in [`crate::time`], one layer up.

use alloc::vec::Vec;
use core::task::Waker;

use slab::Slab;

use super::LoopCore;

const FIRED: u32 = u32::MAX;

struct Entry {
    deadline: u64,
    seq: u64,
    slot: u32,
}

impl Entry {
    fn before(&self, other: &Entry) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

struct Slot {
    /// Index in `heap`, or `FIRED`.
    pos: u32,
    waker: Option<Waker>,
}

/// The loop's timers: an indexed binary heap (see the module docs).
pub(crate) struct Timers {
    heap: Vec<Entry>,
    slots: Slab<Slot>,
    seq: u64,
}

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            heap: Vec::new(),
            slots: Slab::new(),
            seq: 0,
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.heap.first().map(|e| e.deadline)
    }

    /// Arms a timer; returns its key.
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> u32 {
        let pos = self.heap.len();
        let slot = self.slots.insert(Slot {
            pos: pos as u32,
            waker: Some(waker),
        }) as u32;
        self.seq += 1;
        self.heap.push(Entry {
            deadline,
            seq: self.seq,
            slot,
        });
        self.sift_up(pos);
        slot
    }

    /// Whether the timer has fired.
    pub(crate) fn fired(&self, key: u32) -> bool {
        self.slots.get(key as usize).is_none_or(|s| s.pos == FIRED)
    }

    pub(crate) fn set_waker(&mut self, key: u32, waker: &Waker) {
        if let Some(slot) = self.slots.get_mut(key as usize) {
            match &slot.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => slot.waker = Some(waker.clone()),
            }
        }
    }

    /// Disarms (if still armed) and frees the timer.
    pub(crate) fn remove(&mut self, key: u32) {
        let Some(slot) = self.slots.try_remove(key as usize) else {
            return;
        };
        if slot.pos == FIRED {
            return;
        }
        let pos = slot.pos as usize;
        let last = self.heap.len() - 1;
        self.swap(pos, last);
        self.heap.pop();
        if pos < self.heap.len() {
            self.place(pos);
            if !self.sift_up(pos) {
                self.sift_down(pos);
            }
        }
    }

    /// Fires every timer due at `now`, in deadline order; their wakers go to `out`.
    pub(crate) fn expire(&mut self, now: u64, out: &mut Vec<Waker>) {
        while self.heap.first().is_some_and(|e| e.deadline <= now) {
            let last = self.heap.len() - 1;
            self.swap(0, last);
            let Some(top) = self.heap.pop() else { break };
            if !self.heap.is_empty() {
                self.place(0);
                self.sift_down(0);
            }
            if let Some(slot) = self.slots.get_mut(top.slot as usize) {
                slot.pos = FIRED;
                if let Some(w) = slot.waker.take() {
                    out.push(w);
                }
            }
        }
    }

    /// Exchanges two heap entries through two disjoint borrows. (`slice::swap` must allow
    /// `a == b`, so it goes through `ptr::swap`, which at opt-level "z" calls `memmove`: 1.6 KiB
    /// of flash that nothing else in the core needs.)
    fn swap(&mut self, a: usize, b: usize) {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        if lo == hi {
            return;
        }
        let (left, right) = self.heap.split_at_mut(hi);
        if let (Some(x), Some(y)) = (left.get_mut(lo), right.first_mut()) {
            core::mem::swap(x, y);
        }
    }

    fn place(&mut self, pos: usize) {
        let slot = self.heap[pos].slot as usize;
        if let Some(s) = self.slots.get_mut(slot) {
            s.pos = pos as u32;
        }
    }

    /// Moves the entry at `pos` up; true if it moved.
    fn sift_up(&mut self, mut pos: usize) -> bool {
        let start = pos;
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !self.heap[pos].before(&self.heap[parent]) {
                break;
            }
            self.swap(pos, parent);
            self.place(pos);
            pos = parent;
        }
        self.place(pos);
        pos != start
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.heap[right].before(&self.heap[left]) {
                right
            } else {
                left
            };
            if !self.heap[child].before(&self.heap[pos]) {
                break;
            }
            self.swap(pos, child);
            self.place(pos);
            pos = child;
        }
        self.place(pos);
    }
}

/// A timer armed by a future on its loop; disarmed when dropped.
#[derive(Default)]
pub(crate) struct Timer {
    armed: Option<(u32, u32)>,
}

impl Timer {
    /// Arms at `deadline_us` (first call) or refreshes the waker; true once it has fired.
    pub(crate) fn poll_at(&mut self, core: &LoopCore, deadline_us: u64, waker: &Waker) -> bool {
        let mut timers = core.timers.borrow_mut();
        match self.armed {
            Some((key, epoch)) if epoch == core.epoch.get() => {
                if timers.fired(key) {
                    timers.remove(key);
                    self.armed = None;
                    true
                } else {
                    timers.set_waker(key, waker);
                    false
                }
            }
            // The loop was reset since: the old timer is gone; count it as fired.
            Some(_) => {
                self.armed = None;
                true
            }
            None => {
                self.armed = Some((timers.insert(deadline_us, waker.clone()), core.epoch.get()));
                false
            }
        }
    }

    pub(crate) fn disarm(&mut self, core: &LoopCore) {
        if let Some((key, epoch)) = self.armed.take() {
            if epoch == core.epoch.get() {
                if let Ok(mut timers) = core.timers.try_borrow_mut() {
                    timers.remove(key);
                }
            }
        }
    }
}

impl Drop for Timer {
    /// Inlined test, out-of-line disarm: most sleeps are dropped after they fired (or were
    /// never armed: `sleep_ms(0)`), and then dropping costs one test at the await.
    #[inline]
    fn drop(&mut self) {
        if self.armed.is_some() {
            self.disarm_on_drop();
        }
    }
}

impl Timer {
    /// Cold: as a plain call, the test before it compiled to a predicated call, paid by every
    /// dropped sleep (Cortex-M3: a task switch, which drops a `sleep_ms(0)`, 213 -> 210
    /// instructions).
    #[cold]
    #[inline(never)]
    fn disarm_on_drop(&mut self) {
        super::with_core(|core| self.disarm(core));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use core::task::{RawWaker, RawWakerVTable};

    /// A waker that only carries a number (the timer's key), to see which timers fired.
    fn tagged(tag: usize) -> Waker {
        fn clone(data: *const ()) -> RawWaker {
            RawWaker::new(data, &VTABLE)
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        // The data pointer is a number, not an address; no vtable function dereferences it.
        // SAFETY: the vtable's functions never touch the data, so any pointer value is valid.
        unsafe { Waker::from_raw(RawWaker::new(core::ptr::without_provenance(tag), &VTABLE)) }
    }

    /// Random arming, disarming and firing against a sorted map: every `expire` fires exactly
    /// the due timers, in (deadline, arming order), and `fired` agrees. Deadlines come from a
    /// small range, so many are equal (the FIFO tie-break is exercised).
    #[test]
    fn heap_matches_a_sorted_model() {
        let mut seed = 0x2545_f491_u32;
        let mut next = |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % n
        };
        let mut timers = Timers::new();
        let mut model: BTreeMap<(u64, u64), u32> = BTreeMap::new();
        let mut armed: Vec<(u32, (u64, u64))> = Vec::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for _ in 0..if cfg!(miri) { 300 } else { 20_000 } {
            match next(10) {
                0..=4 => {
                    let deadline = now + u64::from(next(8));
                    seq += 1;
                    let key = timers.insert(deadline, tagged(seq as usize));
                    model.insert((deadline, seq), key);
                    armed.push((key, (deadline, seq)));
                }
                5..=7 if !armed.is_empty() => {
                    let (key, at) = armed.swap_remove(next(armed.len() as u32) as usize);
                    assert!(!timers.fired(key));
                    timers.remove(key);
                    model.remove(&at);
                }
                _ => {
                    now += u64::from(next(3));
                    let mut out = Vec::new();
                    timers.expire(now, &mut out);
                    let due: Vec<(u64, u64)> = model.range(..(now + 1, 0)).map(|(k, _)| *k).collect();
                    let fired: Vec<u64> = out.iter().map(|w| w.data() as u64).collect();
                    assert_eq!(fired, due.iter().map(|d| d.1).collect::<Vec<_>>());
                    for at in due {
                        let key = model.remove(&at).unwrap_or(u32::MAX);
                        assert!(timers.fired(key));
                        armed.retain(|a| a.0 != key);
                        timers.remove(key);
                    }
                }
            }
            assert_eq!(timers.next_deadline(), model.keys().next().map(|k| k.0));
        }
    }
}
