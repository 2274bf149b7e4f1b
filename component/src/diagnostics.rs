//! Counters for tests and leak hunting (feature `diagnostics`).

use crate::atomic::{AtomicUsize, Ordering};

pub(crate) static LIVE_TASKS: AtomicUsize = AtomicUsize::new(0);

/// Task cells allocated and not yet freed, across every loop in the process.
pub fn live_tasks() -> usize {
    LIVE_TASKS.load(Ordering::Relaxed)
}
