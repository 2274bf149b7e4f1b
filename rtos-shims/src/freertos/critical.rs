//! The `critical-section` implementation: FreeRTOS' own critical sections.
//!
//! In a task, `taskENTER_CRITICAL()` (which nests, and on Cortex-M masks interrupts up to
//! `configMAX_SYSCALL_INTERRUPT_PRIORITY`); in an interrupt handler,
//! `taskENTER_CRITICAL_FROM_ISR()`, whose saved mask is the restore state. Interrupts above
//! `configMAX_SYSCALL_INTERRUPT_PRIORITY` are not masked: they must not touch uasyncio, as
//! FreeRTOS already requires of them.

use super::ffi;

struct FreeRtosCriticalSection;

critical_section::set_impl!(FreeRtosCriticalSection);

// SAFETY: acquire and release map to the kernel's critical-section entry and exit, which
// exclude every task and every interrupt allowed to call into FreeRTOS. The state returned
// by `uasyncio_rtos_critical_enter` records which kind was entered (task or ISR, with the
// saved mask) and `critical-section` hands it back unchanged to the matching release, in
// LIFO order.
unsafe impl critical_section::Impl for FreeRtosCriticalSection {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        // SAFETY: a plain C call; the C side picks the variant valid for the current context.
        unsafe { ffi::uasyncio_rtos_critical_enter() }
    }

    unsafe fn release(state: critical_section::RawRestoreState) {
        // SAFETY: `state` comes from the matching `acquire` (the `Impl` contract).
        unsafe { ffi::uasyncio_rtos_critical_exit(state) }
    }
}
