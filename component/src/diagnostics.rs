//! Counters for tests and leak hunting (feature `diagnostics`).

// A plain atomic even under loom: it is a static counter outside the modelled protocols
// (and loom's atomics cannot be statics). Otherwise the crate's, which are portable-atomic's
// on targets without atomic read-modify-write (Armv6-M).
#[cfg(not(loom))]
use crate::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
use core::sync::atomic::{AtomicUsize, Ordering};

pub(crate) static LIVE_TASKS: AtomicUsize = AtomicUsize::new(0);

/// Task cells allocated and not yet freed, across every loop in the process.
pub fn live_tasks() -> usize {
    LIVE_TASKS.load(Ordering::Relaxed)
}

/// Bytes a task costs beyond its future (or its output, whichever is larger, since they
/// share the cell): the cell's header, plus the loop's registry slot while it is unfinished.
/// The ready queue adds one pointer while the task is queued.
///
/// ```
/// assert!(uasyncio::diagnostics::task_overhead_bytes() <= 128);
/// ```
pub fn task_overhead_bytes() -> usize {
    // A slab slot is an enum of the task pointer and a free-list index: two words.
    core::mem::size_of::<crate::task::raw::Header>() + 2 * core::mem::size_of::<usize>()
}
