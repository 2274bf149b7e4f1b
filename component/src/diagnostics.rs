//! Counters for tests and leak hunting (feature `diagnostics`).

use core::sync::atomic::Ordering;

use crate::raw::cell::LIVE_CELLS;

/// Task cells allocated and not yet freed, across every loop in the process: finished tasks
/// whose handles or wakers are still held count too. (Not to be confused with
/// [`Loop::live_tasks`](crate::Loop::live_tasks): the unfinished tasks of one loop.)
///
/// ```
/// let before = uasyncio::diagnostics::allocated_task_cells();
/// let t = uasyncio::create_task(async { Ok(()) });
/// uasyncio::get_event_loop().run_until_complete(async { Ok(()) }).unwrap();
/// assert!(t.done());
/// assert_eq!(uasyncio::diagnostics::allocated_task_cells(), before + 1); // `t` holds its cell
/// drop(t);
/// assert_eq!(uasyncio::diagnostics::allocated_task_cells(), before);
/// ```
pub fn allocated_task_cells() -> usize {
    LIVE_CELLS.load(Ordering::Relaxed)
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
    core::mem::size_of::<crate::raw::Header>() + 2 * core::mem::size_of::<usize>()
}
