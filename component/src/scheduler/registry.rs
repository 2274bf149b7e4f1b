//! The loop's registry of unfinished tasks: a [`Slab`] of their references (its key is kept
//! in the task, so a finished task leaves it in O(1)), reached without a `RefCell`.
//!
//! A `RefCell` checked and wrote its borrow flag around every insertion and removal, two per
//! spawn and two per finish (Cortex-M3: 14 instructions of a spawn + complete). Without one,
//! exclusive access is argued instead: every access is on the loop's thread (the registry
//! lives in the `!Sync` `LoopCore`), and each method below is one short sequence of `Slab`
//! operations that keeps no reference into the slab past its return and calls nothing that
//! could come back to the registry — the slab's own code, `TaskRef::clone`, and the allocator
//! when the slab grows. A `TaskRef` taken out is dropped by the caller after the method
//! returned: its drop may free the task and run its future's drop, which may spawn.

use alloc::vec::Vec;
use core::cell::UnsafeCell;

use slab::Slab;

use crate::raw::TaskRef;

#[derive(Default)]
pub(crate) struct Registry {
    slab: UnsafeCell<Slab<TaskRef>>,
}

impl Registry {
    /// Runs `f` on the slab. `f` is one of the short sequences the module docs list: it must
    /// not reach the registry again.
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut Slab<TaskRef>) -> R) -> R {
        // The loop's thread only, and no other reference to the slab exists while `f` runs
        // (the module docs: no method keeps one, and `f` does not re-enter).
        // SAFETY: exclusive access, as just argued.
        f(unsafe { &mut *self.slab.get() })
    }

    /// Adds `task`; returns its key.
    #[inline(always)]
    pub(crate) fn insert(&self, task: TaskRef) -> usize {
        self.with(|s| s.insert(task))
    }

    /// Takes out the entry at `key`, if any; the caller drops it (after this returned).
    #[inline(always)]
    pub(crate) fn remove(&self, key: usize) -> Option<TaskRef> {
        self.with(|s| s.try_remove(key))
    }

    /// How many tasks are registered.
    pub(crate) fn len(&self) -> usize {
        self.with(|s| s.len())
    }

    /// Whether no task is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.with(|s| s.is_empty())
    }

    /// A reference to every registered task, in key order.
    pub(crate) fn snapshot(&self) -> Vec<TaskRef> {
        self.with(|s| s.iter().map(|(_, t)| t.clone()).collect())
    }

    /// Takes every entry out, leaving the registry empty.
    pub(crate) fn take(&self) -> Slab<TaskRef> {
        self.with(core::mem::take)
    }
}
