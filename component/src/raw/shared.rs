//! The cross-context half of a loop, [`Shared`]: its wake stack (which is also the word that
//! says whether the loop sleeps; the argument is in [`wake`](super::wake)), the signal the loop
//! sleeps on, and its task cell cache
//! ([`cache`](super::cache)). Every task cell points at the `Shared` of its loop, so a waker
//! on any thread or in an interrupt handler can reach it, and it outlives the loop's thread
//! while a cell or waker of that loop is alive.

use core::cell::UnsafeCell;
use core::ptr::NonNull;

use rtos_shims::LoopSignal;

use super::cache::CellCache;
use super::wake::{Linked, WakeStack};
use crate::atomic::Arc;

/// Most references a loop keeps in reserve (see [`Reserve`]); a freed cell's beyond these is
/// dropped as before.
const RESERVE_MAX: u32 = 256;

/// References to its own `Shared` that the loop's thread keeps for the cells it creates.
///
/// Every task cell holds an `Arc` to its loop's `Shared`, so that a waker anywhere can reach
/// the loop. Cloning it at each spawn and dropping it at each free were two atomic
/// read-modify-writes per task (locked instructions on x86, `LDREX`/`STREX` loops on
/// Cortex-M). A cell freed on the loop's thread instead leaves its reference here, and the
/// next spawn takes it back: in a steady state no atomic operation at all. A cell freed
/// elsewhere (a waker's last reference on another thread) drops its reference as before.
///
/// Loop thread only, like the cell cache's `local` list: `open` while a loop owns this
/// `Shared` (from [`Shared::open_reserve`] to [`Shared::close_reserve`], both called by the
/// loop on its thread). While it is open the loop holds its own `Arc` as well, so a reference
/// put here is never the last one; once closed, a freed cell's reference is dropped, and the
/// close gave back every reference kept.
struct Reserve {
    count: UnsafeCell<u32>,
    open: UnsafeCell<bool>,
}

// SAFETY: both fields are touched only by the loop's thread (see above); other threads never
// reach them (they only drop their `Arc`s).
unsafe impl Sync for Reserve {}
// SAFETY: as above; the fields are plain numbers.
unsafe impl Send for Reserve {}

/// The part of a loop that other threads and interrupt handlers may touch.
pub(crate) struct Shared<N> {
    /// Freed task cells kept for the next spawns (`raw::cache`).
    pub(crate) cells: CellCache,
    stack: WakeStack<N>,
    /// What the loop thread sleeps on; inert for the placeholder of a task created where no
    /// loop can exist.
    signal: LoopSignal,
    reserve: Reserve,
}

impl<N: Linked> Shared<N> {
    pub(crate) fn new() -> crate::Result<Self> {
        let signal = LoopSignal::new().map_err(|_| crate::Error::Os(12 /* ENOMEM */))?;
        Ok(Shared {
            cells: CellCache::new(),
            stack: WakeStack::new(),
            signal,
            reserve: Reserve::new(),
        })
    }

    /// A loop half that can never run (for tasks created where no loop can exist).
    pub(crate) fn orphan() -> Self {
        Shared {
            cells: CellCache::new(),
            stack: WakeStack::new(),
            signal: LoopSignal::inert(),
            reserve: Reserve::new(),
        }
    }

    /// Starts keeping freed cells' references ([`Reserve`]).
    ///
    /// # Safety
    /// Called by the loop that owns `this`, on its thread, while it holds `this`.
    pub(crate) unsafe fn open_reserve(this: &Arc<Self>) {
        // SAFETY: the loop's thread (the contract), the only one that touches the reserve.
        unsafe { *this.reserve.open.get() = true };
    }

    /// Gives back every reference kept and stops keeping them.
    ///
    /// # Safety
    /// Called by the loop that owns `this`, on its thread, before it drops its own `Arc`.
    pub(crate) unsafe fn close_reserve(this: &Arc<Self>) {
        // SAFETY: the loop's thread (the contract).
        let (count, open) = unsafe { (&mut *this.reserve.count.get(), &mut *this.reserve.open.get()) };
        *open = false;
        for _ in 0..core::mem::take(count) {
            // Each kept reference is one strong count of `this`, owned by the reserve, and
            // the loop's own `Arc` keeps `this` alive past these.
            // SAFETY: as just argued: a count we own, given back once.
            unsafe { Arc::decrement_strong_count(Arc::as_ptr(this)) };
        }
    }

    /// `this` for a new cell: a kept reference if there is one, else a clone.
    ///
    /// # Safety
    /// The loop's thread (of the loop that owns `this`).
    #[inline]
    pub(crate) unsafe fn cell_ref(this: &Arc<Self>) -> Arc<Self> {
        // SAFETY: the loop's thread (the contract).
        let count = unsafe { &mut *this.reserve.count.get() };
        if *count == 0 {
            return this.clone();
        }
        *count -= 1;
        // SAFETY: a strong count the reserve owned, handed to the new `Arc` once.
        unsafe { Arc::from_raw(Arc::as_ptr(this)) }
    }

    /// The reference of a cell freed on the loop's thread: kept while the reserve is open and
    /// not full, else dropped.
    ///
    /// # Safety
    /// The loop's thread (of the loop that owns `this`'s `Shared`, if any).
    #[inline(never)]
    pub(crate) unsafe fn put_cell_ref(this: Arc<Self>) {
        // SAFETY: the loop's thread (the contract).
        let (count, open) = unsafe { (&mut *this.reserve.count.get(), *this.reserve.open.get()) };
        if open && *count < RESERVE_MAX {
            *count += 1;
            // The strong count stays, owned by the reserve now (see `Reserve`: not the last).
            let _ = Arc::into_raw(this);
        }
    }

    /// Gives back a cell freed off the loop's thread: its block to the cache's cross-context
    /// stack, its reference to `this` dropped. Out of line and not generic: one copy for
    /// every cell type's `dealloc`.
    ///
    /// # Safety
    /// `block` came from `this.cells` with `layout` and nothing uses it any more.
    #[inline(never)]
    pub(crate) unsafe fn free_cell_remote(this: Arc<Self>, block: *mut u8, layout: core::alloc::Layout) {
        // SAFETY: the contract.
        unsafe { this.cells.give(block, layout) };
        drop(this);
    }

    /// Queues a woken task from another thread or an ISR and wakes the loop if it sleeps.
    /// The caller hands over one reference to the task.
    /// `isr`: the caller runs in an interrupt handler (`rtos_shims::in_isr()`).
    pub(crate) fn push_remote(&self, task: NonNull<N>, isr: bool) {
        let asleep = match self.stack.push(task) {
            Ok(asleep) => asleep,
            Err(task) => {
                // The loop is gone (its thread exited): nobody will run the task again, so
                // give the reference back instead of queueing it.
                // SAFETY: the caller handed this reference over to the queue.
                unsafe { N::release(task) };
                return;
            }
        };
        if asleep {
            // The push replaced `sleeping`, which only `sleep` stores, after the loop thread's
            // `prepare`: a loop that runs, whose signal `new` made (an orphan's never sleeps),
            // and whose `prepare` the push's Acquire made visible.
            // SAFETY: as just argued.
            unsafe { self.signal.signal_waiter(isr) };
        }
    }

    /// Takes every task woken from other contexts, oldest first, if any: one look at the
    /// wake stack when it is empty (the common case), one swap when it is not.
    #[inline]
    pub(crate) fn drain(&self, f: impl FnMut(NonNull<N>)) {
        if !self.stack.is_empty() {
            self.stack.drain_seen(f);
        }
    }

    /// Drains for the last time; later wakes from other contexts are dropped.
    pub(crate) fn close(&self, f: impl FnMut(NonNull<N>)) {
        self.stack.close(f);
    }

    pub(crate) fn has_remote(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Blocks the loop thread until a wake or `timeout_us` passed (`None`: no deadline), unless
    /// a wake came since the last drain; either way then takes every task woken from other
    /// contexts so far, oldest first, as [`drain`](Self::drain) does (so the loop need not
    /// drain again before it runs them).
    ///
    /// The signal's protocol ([`LoopSignal`]): `prepare` records this thread, the wake stack's
    /// compare-and-swap to sleeping publishes it (release), and a waker signals only after
    /// its push replaced sleeping (acquire). `wait` may return without a wake: the swap after
    /// it finds nothing then, and the loop looks at its queues again either way.
    pub(crate) fn sleep(&self, timeout_us: Option<u64>, f: impl FnMut(NonNull<N>)) {
        self.signal.prepare();
        if !self.stack.try_sleep() {
            // Something was pushed: the CAS read a node, so the stack is open and not empty.
            self.stack.drain_seen(f);
            return;
        }
        self.signal.wait(timeout_us);
        self.stack.wake(f);
    }
}

impl Reserve {
    fn new() -> Self {
        Reserve {
            count: UnsafeCell::new(0),
            open: UnsafeCell::new(false),
        }
    }
}
