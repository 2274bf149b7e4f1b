//! One waker slot shared between the loop thread (which registers) and any thread or
//! interrupt handler (which wakes).
//!
//! A small state word arbitrates access to the slot:
//! - `register` (loop thread) moves `IDLE → REGISTERING`, stores the waker, and moves back to
//!   `IDLE`. If a wake arrived meanwhile (the state gained `WAKING`), it wakes the new waker
//!   itself, so the wake is not lost.
//! - `wake` (any context) sets `WAKING` with `fetch_or`. Only the caller that found `IDLE`
//!   reads the slot; it wakes **by reference** — the waker stays in the slot, so no waker is
//!   ever dropped (and no memory freed) in an interrupt handler — and then clears `WAKING`.
//!   A concurrent second waker finds `WAKING` already set and leaves the wake to the first,
//!   whose wake happens after both flags were published.
//!
//! Model-checked with loom in `src/loom_tests.rs`.

use core::task::Waker;

use crate::atomic::{AtomicU32, Ordering, UnsafeCell};

const IDLE: u32 = 0;
const REGISTERING: u32 = 0b01;
const WAKING: u32 = 0b10;

pub(crate) struct AtomicWaker {
    state: AtomicU32,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the slot is only accessed by the holder of REGISTERING (exclusive, with no reader)
// or by the single holder of WAKING that found IDLE (shared read, with no writer); see the
// module docs. `Waker` itself is Send + Sync.
unsafe impl Sync for AtomicWaker {}
// SAFETY: as above; the slot holds a `Waker`, which is Send.
unsafe impl Send for AtomicWaker {}

impl AtomicWaker {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        AtomicWaker {
            state: AtomicU32::new(IDLE),
            waker: UnsafeCell::new(None),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        AtomicWaker {
            state: AtomicU32::new(IDLE),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` to be woken by the next [`wake`](Self::wake). Loop thread only (one
    /// registrant at a time).
    pub(crate) fn register(&self, waker: &Waker) {
        match self
            .state
            .compare_exchange(IDLE, REGISTERING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: REGISTERING is held: no waker reads the slot and no one else writes.
                let needs_store = self
                    .waker
                    .with(|slot| unsafe { (*slot).as_ref() }.is_none_or(|old| !old.will_wake(waker)));
                if needs_store {
                    let new = Some(waker.clone());
                    // SAFETY: as above. The old waker is dropped here, on the loop thread.
                    let old = self
                        .waker
                        .with_mut(|slot| unsafe { core::mem::replace(&mut *slot, new) });
                    drop(old);
                }
                if self
                    .state
                    .compare_exchange(REGISTERING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    // A wake came in while we held the slot; it skipped the slot, so deliver it.
                    self.state.swap(IDLE, Ordering::AcqRel);
                    waker.wake_by_ref();
                }
            }
            Err(_) => {
                // A wake is in progress right now: it may have read the old waker; wake the
                // new one so the task looks at its condition again.
                waker.wake_by_ref();
            }
        }
    }

    /// Empties the slot (loop thread), so a `static` flag does not keep the last waiter's
    /// task alive. If a wake is reading the slot right now, the waker stays; that only
    /// delays the free until the next registration.
    pub(crate) fn clear(&self) {
        if self
            .state
            .compare_exchange(IDLE, REGISTERING, Ordering::Acquire, Ordering::Acquire)
            .is_ok()
        {
            // SAFETY: REGISTERING is held: no waker reads the slot and no one else writes.
            let old = self.waker.with_mut(|slot| unsafe { (*slot).take() });
            // A wake that arrived meanwhile skipped the slot; with no waiter there is nothing
            // to deliver, so both bits can go.
            self.state.swap(IDLE, Ordering::AcqRel);
            drop(old);
        }
    }

    /// Wakes the registered waker, if any. Callable from any thread and from interrupt
    /// context (atomics only; the waker is woken by reference, never dropped here).
    pub(crate) fn wake(&self) {
        if self.state.fetch_or(WAKING, Ordering::AcqRel) == IDLE {
            self.waker.with(|slot| {
                // SAFETY: we hold WAKING and found no registration in progress: the slot is
                // not written until we clear WAKING.
                if let Some(w) = unsafe { &*slot } {
                    w.wake_by_ref();
                }
            });
            self.state.fetch_and(!WAKING, Ordering::AcqRel);
        }
    }
}
