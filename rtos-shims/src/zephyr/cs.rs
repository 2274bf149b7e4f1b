//! The `critical-section` implementation: `irq_lock()` / `irq_unlock(key)`.
//!
//! `irq_lock` masks interrupts on this CPU (on SMP it also takes Zephyr's global lock) and
//! returns a key that restores the previous state, so sections nest. The key is the
//! restore state (`critical-section` feature `restore-state-u32`).

use super::ffi;

struct ZephyrCriticalSection;
critical_section::set_impl!(ZephyrCriticalSection);

// SAFETY: irq_lock/irq_unlock give mutual exclusion against every thread and interrupt handler
// on the CPU (and, on SMP, the global lock against other CPUs), and the key restores exactly
// the state that acquire saw, as critical-section requires for nesting.
unsafe impl critical_section::Impl for ZephyrCriticalSection {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        // SAFETY: irq_lock may be called from any context.
        unsafe { ffi::uasyncio_shim_irq_lock() }
    }

    unsafe fn release(key: critical_section::RawRestoreState) {
        // SAFETY: `key` comes from the matching acquire, as critical-section guarantees.
        unsafe { ffi::uasyncio_shim_irq_unlock(key) }
    }
}
