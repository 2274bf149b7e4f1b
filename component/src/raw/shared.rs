//! The cross-context half of a loop, [`Shared`]: its wake stack, idle word and semaphore
//! (the primitives and their argument are in [`wake`](super::wake)), and its task cell cache
//! ([`cache`](super::cache)). Every task cell points at the `Shared` of its loop, so a waker
//! on any thread or in an interrupt handler can reach it, and it outlives the loop's thread
//! while a cell or waker of that loop is alive.

use core::ptr::NonNull;

use rtos_shims::Semaphore;

use super::cache::CellCache;
use super::wake::{IdleState, Linked, WakeStack};

/// The part of a loop that other threads and interrupt handlers may touch.
pub(crate) struct Shared<N> {
    /// Freed task cells kept for the next spawns (`raw::cache`).
    pub(crate) cells: CellCache,
    stack: WakeStack<N>,
    idle: IdleState,
    /// `None` only for the placeholder of a task created where no loop can exist.
    sem: Option<Semaphore>,
}

impl<N: Linked> Shared<N> {
    pub(crate) fn new() -> crate::Result<Self> {
        let sem = Semaphore::new().map_err(|_| crate::Error::Os(12 /* ENOMEM */))?;
        Ok(Shared {
            cells: CellCache::new(),
            stack: WakeStack::new(),
            idle: IdleState::new(),
            sem: Some(sem),
        })
    }

    /// A loop half that can never run (for tasks created where no loop can exist).
    pub(crate) fn orphan() -> Self {
        Shared {
            cells: CellCache::new(),
            stack: WakeStack::new(),
            idle: IdleState::new(),
            sem: None,
        }
    }

    /// Queues a woken task from another thread or an ISR and wakes the loop if it sleeps.
    /// The caller hands over one reference to the task.
    /// `isr`: the caller runs in an interrupt handler (`rtos_shims::in_isr()`).
    pub(crate) fn push_remote(&self, task: NonNull<N>, isr: bool) {
        if let Err(task) = self.stack.push(task) {
            // The loop is gone (its thread exited): nobody will run the task again, so give
            // the reference back instead of queueing it.
            // SAFETY: the caller handed this reference over to the queue.
            unsafe { N::release(task) };
            return;
        }
        if self.idle.pend() {
            if let Some(sem) = &self.sem {
                if isr {
                    sem.give_from_isr();
                } else {
                    sem.give();
                }
            }
        }
    }

    /// Takes every task woken from other contexts, oldest first.
    pub(crate) fn drain(&self, f: impl FnMut(NonNull<N>)) {
        self.stack.drain(f);
    }

    /// Drains for the last time; later wakes from other contexts are dropped.
    pub(crate) fn close(&self, f: impl FnMut(NonNull<N>)) {
        self.stack.close(f);
    }

    pub(crate) fn has_remote(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Blocks the loop thread until a wake or `timeout_us` passed (`None`: no deadline).
    pub(crate) fn sleep(&self, timeout_us: Option<u64>) {
        if !self.idle.try_sleep() {
            return;
        }
        if let Some(sem) = &self.sem {
            sem.take(timeout_us);
        }
        self.idle.woke();
    }
}
