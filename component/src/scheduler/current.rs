//! Where a thread finds its loop.
//!
//! With `std`, each thread that uses the API gets its own loop in a thread-local, created on
//! first use (cargo runs tests on parallel threads; each has its own loop). Without `std`
//! there is no thread-local storage: one loop serves the firmware, owned by the first thread
//! that uses it; another thread or an interrupt handler finds no loop here (and wakes tasks
//! through the cross-context path instead).

use super::LoopCore;
use crate::error::{Error, Result};

#[cfg(feature = "std")]
mod imp {
    use std::cell::OnceCell;

    use super::*;

    std::thread_local! {
        static CORE: OnceCell<LoopCore> = const { OnceCell::new() };
    }

    /// Runs `f` on this thread's loop, if it has one and is not tearing it down.
    pub(crate) fn try_with<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
        CORE.try_with(|cell| cell.get().map(f)).ok().flatten()
    }

    /// [`try_with`] (the host has no interrupt handlers).
    ///
    /// # Safety
    /// None on the host; the contract of the `no_std` version.
    pub(crate) unsafe fn try_with_in_task<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
        try_with(f)
    }

    /// [`try_with`] (a thread-local needs no identity check).
    ///
    /// # Safety
    /// None on the host; the contract of the `no_std` version.
    pub(crate) unsafe fn try_with_on_owner<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
        try_with(f)
    }

    /// Runs `f` on this thread's loop, creating it on first use.
    pub(crate) fn with_or_init<R>(f: impl FnOnce(&LoopCore) -> R) -> Result<R> {
        CORE.try_with(|cell| {
            if cell.get().is_none() {
                let _ = cell.set(LoopCore::new()?);
            }
            cell.get()
                .map(f)
                .ok_or_else(|| Error::runtime("no event loop on this thread"))
        })
        .unwrap_or_else(|_| Err(Error::runtime("the thread is exiting; its event loop is gone")))
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    use crate::atomic::{AtomicU8, AtomicUsize, Ordering};
    use core::cell::UnsafeCell;

    use super::*;

    const EMPTY: u8 = 0;
    const INITIALISING: u8 = 1;
    const READY: u8 = 2;

    struct Slot {
        owner: AtomicUsize,
        state: AtomicU8,
        core: UnsafeCell<Option<LoopCore>>,
    }

    // SAFETY: `core` is only touched by the owner thread (checked against `owner` on every
    // access, and never from interrupt context); the other fields are atomics.
    unsafe impl Sync for Slot {}

    static SLOT: Slot = Slot {
        owner: AtomicUsize::new(NO_OWNER),
        state: AtomicU8::new(EMPTY),
        core: UnsafeCell::new(None),
    };

    /// `owner` before any loop exists: no context has this identity (task handles are
    /// pointers; `rtos_shims` reports 1 before the scheduler starts and `usize::MAX` in an
    /// interrupt handler).
    const NO_OWNER: usize = 0;

    /// The loop's fast path, taken on every loop-local access (a wake, a cancellation check, a
    /// spawn): an interrupt check, one load and one identity query. (An interrupt handler
    /// must never match: on Zephyr `current_thread_id` there is the interrupted thread's.)
    ///
    /// `owner` alone decides, without looking at `state`: it is stored once, by the thread
    /// that initialised `core`, after `core` was written and before `state` became READY, and
    /// never changes again. A caller whose identity equals it is that thread, or a task
    /// created later in the same TCB memory after the owner was deleted. Either way it sees
    /// `core` complete without an `Acquire` on the load (see [`owner_is_caller`]).
    pub(crate) fn try_with<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
        if rtos_shims::in_isr() {
            return None;
        }
        // SAFETY: not an interrupt handler, just checked.
        unsafe { try_with_in_task(f) }
    }

    /// [`try_with`] for a caller that already knows it is not an interrupt handler (a waker
    /// that asked `in_isr()` once for its own purposes), so the question is not asked twice.
    ///
    /// # Safety
    /// The caller is not an interrupt handler. (In one, on Zephyr, `current_thread_id` is the
    /// interrupted thread's, which may be the owner: the handler would reach `core` while the
    /// loop thread uses it.)
    pub(crate) unsafe fn try_with_in_task<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
        if !owner_is_caller() {
            return None;
        }
        // SAFETY: the owner thread (just checked), not an interrupt handler (our contract).
        Some(f(unsafe { owned_core() }))
    }

    /// Whether the caller's identity is the loop's owner (the check `try_with` makes).
    ///
    /// The load is `Relaxed`: what it decides is whether the caller may read `core`, and a
    /// caller that finds its own identity there already sees `core` complete. Either it
    /// stored `owner` itself (in `claim`, after writing `core`: program order), or it is a
    /// task created in the TCB memory of that thread after the thread was deleted, which the
    /// kernel orders: the deletion and the creation both go through the kernel's critical
    /// sections (FreeRTOS; Zephyr's spinlocks), so everything the old thread did happened
    /// before the new one started. Any other caller's identity cannot match, whatever value
    /// it reads (a live thread's identity is unique; interrupt handlers and the time before
    /// the scheduler have identities no task has). On Cortex-M this leaves a `dmb` out of
    /// every loop-local access (a spawn, a yield, a wait).
    #[inline(always)]
    fn owner_is_caller() -> bool {
        rtos_shims::is_current_thread(SLOT.owner.load(Ordering::Relaxed))
    }

    /// The loop, for its owner thread.
    ///
    /// The owner thread's read of `core`: it was written before `owner` was stored (by the
    /// owner thread itself, or by a thread the kernel ordered before it: see
    /// [`owner_is_caller`]), is never written again, and no other context reads it, since
    /// every access comes through this function. So it is `Some`: `owner` holds an identity only once
    /// `core` was written (`NO_OWNER` before, which no caller has), and the slot is never
    /// emptied.
    ///
    /// # Safety
    /// The caller is the owner thread (its identity matched `owner`, or it holds a proof of
    /// it: see [`try_with_on_owner`]) and not an interrupt handler (in one, on Zephyr,
    /// `current_thread_id` is the interrupted thread's, which may be the owner).
    #[inline(always)]
    unsafe fn owned_core() -> &'static LoopCore {
        // SAFETY: the caller's contract, and the argument above: a shared read of a `Some`.
        unsafe { (*SLOT.core.get()).as_ref().unwrap_unchecked() }
    }

    /// [`try_with`] for a caller that holds proof it is the loop's own thread, not in an
    /// interrupt handler: no interrupt check and no identity query. The proof is a `!Send`
    /// value that the loop made on its thread (a task's handle: `create_task` succeeded
    /// there, so the slot is READY; `!Send` kept the value on that thread, and safe code
    /// cannot hand a `!Send` value to an interrupt handler, whose only way in is a static).
    ///
    /// # Safety
    /// The caller is the owner thread, not an interrupt handler, and the slot is READY.
    pub(crate) unsafe fn try_with_on_owner<R>(f: impl FnOnce(&LoopCore) -> R) -> Option<R> {
        debug_assert!(!rtos_shims::in_isr());
        debug_assert!(owner_is_caller());
        // SAFETY: the owner thread and not an interrupt handler (our contract).
        Some(f(unsafe { owned_core() }))
    }

    /// Runs `f` on the loop, creating it (owned by the calling thread) on first use. The
    /// common case is the loop's own thread: the interrupt check and the identity check of
    /// [`try_with`], nothing more; the rest is [`claim`], out of line.
    pub(crate) fn with_or_init<R>(f: impl FnOnce(&LoopCore) -> R) -> Result<R> {
        if rtos_shims::in_isr() {
            return Err(Error::runtime(
                "the event loop API is not available in interrupt context",
            ));
        }
        if !owner_is_caller() {
            claim()?;
        }
        // Not an interrupt handler (checked above); the owner thread (checked, or made so by
        // `claim`, whose `Ok` says the owner is the caller).
        // SAFETY: as just argued, the owner thread outside an interrupt handler.
        Ok(f(unsafe { owned_core() }))
    }

    /// The calling thread (not an interrupt handler) is not the loop's owner: it creates the
    /// loop and becomes the owner if there is none yet; `Ok` once it is the owner.
    #[cold]
    #[inline(never)]
    fn claim() -> Result<()> {
        let me = rtos_shims::current_thread_id();
        if SLOT.state.load(Ordering::Acquire) == EMPTY
            && SLOT
                .state
                .compare_exchange(EMPTY, INITIALISING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let core = match LoopCore::new() {
                Ok(core) => core,
                Err(e) => {
                    SLOT.state.store(EMPTY, Ordering::Release);
                    return Err(e);
                }
            };
            // Written without dropping the old value, which keeps a loop's whole drop glue
            // (never run on `no_std`: the slot is a static) out of the firmware.
            // SAFETY: INITIALISING excludes other access; `core` is still its first `None` (EMPTY is left once).
            unsafe { SLOT.core.get().write(Some(core)) };
            SLOT.owner.store(me, Ordering::Release);
            SLOT.state.store(READY, Ordering::Release);
        }
        if owner_is_caller() {
            Ok(())
        } else {
            Err(Error::runtime("the event loop belongs to another thread"))
        }
    }
}

pub(crate) use imp::{try_with, try_with_in_task, try_with_on_owner, with_or_init};
