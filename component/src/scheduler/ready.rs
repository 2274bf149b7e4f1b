//! The loop's ready queue: an intrusive FIFO list through the task headers' `next` link.
//!
//! A task is in at most one queue at a time — this one or the cross-context wake stack
//! (`raw::wake`) — because only whoever sets its `SCHEDULED` bit queues it, and the loop
//! clears the bit only after taking the task out (`LoopCore::run_one`). So the one `next`
//! link serves both: while a task sits here its bit is set, no waker on another context
//! touches the link, and only the loop's thread reads or writes it. Each entry owns one
//! reference to its task, as the `TaskRef` it was pushed as did.
//!
//! Compared with a `VecDeque<TaskRef>` behind a `RefCell` (what this replaced), a push or a pop
//! is a few loads and stores with no borrow flag, ring arithmetic or growth, and the queue
//! needs no memory of its own.

use core::cell::Cell;
use core::ptr::{self, NonNull};

use crate::atomic::Ordering;
use crate::raw::{Header, TaskRef};

/// The ready queue (see the module docs). Loop thread only (it is `!Sync` through its cells).
pub(crate) struct ReadyQueue {
    head: Cell<Option<NonNull<Header>>>,
    tail: Cell<Option<NonNull<Header>>>,
}

impl ReadyQueue {
    pub(crate) const fn new() -> Self {
        ReadyQueue {
            head: Cell::new(None),
            tail: Cell::new(None),
        }
    }

    /// The entries, counted by walking the list (no count is kept: a push and a pop are then
    /// a few stores fewer; only `Loop::stop` asks).
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        let mut at = self.head.get();
        while let Some(p) = at {
            n += 1;
            // SAFETY: an entry of this queue: alive (its reference), its link only ours.
            at = NonNull::new(unsafe { p.as_ref() }.next.load(Ordering::Relaxed));
        }
        n
    }

    /// The newest entry, if any (the loop's pass runs up to it).
    pub(crate) fn tail(&self) -> Option<NonNull<Header>> {
        self.tail.get()
    }

    /// Appends `task`, whose `SCHEDULED` bit the caller set (so it is in no other queue).
    pub(crate) fn push_back(&self, task: TaskRef) {
        let ptr = task.into_raw();
        // The module docs: the task is in no queue, and its bit keeps wakers off the link.
        // SAFETY: the entry's reference keeps the header alive; the link is ours to write.
        unsafe { ptr.as_ref() }.next.store(ptr::null_mut(), Ordering::Relaxed);
        match self.tail.replace(Some(ptr)) {
            // SAFETY: `tail` is an entry of this queue: alive, its link only ours.
            Some(tail) => unsafe { tail.as_ref() }.next.store(ptr.as_ptr(), Ordering::Relaxed),
            None => self.head.set(Some(ptr)),
        }
    }

    /// Takes the oldest entry, with its reference.
    pub(crate) fn pop_front(&self) -> Option<TaskRef> {
        let ptr = self.head.get()?;
        // Read before the task leaves the queue and its link may serve the wake stack again.
        // SAFETY: an entry of this queue: alive (its reference), its link only ours.
        let next = NonNull::new(unsafe { ptr.as_ref() }.next.load(Ordering::Relaxed));
        self.head.set(next);
        if next.is_none() {
            self.tail.set(None);
        }
        Some(TaskRef::from_raw(ptr))
    }

    /// Takes every entry out (oldest first) into a list the caller drops when it chooses.
    pub(crate) fn take_all(&self) -> alloc::vec::Vec<TaskRef> {
        let mut out = alloc::vec::Vec::new();
        while let Some(task) = self.pop_front() {
            out.push(task);
        }
        out
    }
}

impl Drop for ReadyQueue {
    fn drop(&mut self) {
        while self.pop_front().is_some() {}
    }
}
