//! The monotonic clock: the FreeRTOS tick count in microseconds.
//!
//! The C side widens a 32-bit `TickType_t` to 64 bits (a wrap is noticed at the next read;
//! the loop thread reads at least every 2^30 ticks because its waits are cut into chunks that
//! long), and on Cortex-M adds the position of the SysTick down-counter inside the current
//! tick, which gives microsecond resolution. On the POSIX simulator the resolution is one
//! tick (`configTICK_RATE_HZ`, 1 ms in our configuration).
//!
//! Timeouts are converted to ticks from the current position inside the tick, rounding up,
//! so a wait never ends before `now_us() + timeout`; it may end up to one tick later.

use super::ffi;

/// Microseconds since the tick count was zero (boot); monotonic. Callable from tasks and
/// from interrupt handlers.
pub fn now_us() -> u64 {
    // SAFETY: a plain C call; the C side enters the critical section fit for the context.
    unsafe { ffi::uasyncio_rtos_now_us() }
}

/// The number of ticks to block so that the wake is at or after `now_us() + timeout_us`.
pub(crate) fn timeout_ticks(timeout_us: u64) -> u64 {
    // SAFETY: a plain C call with no pointer arguments.
    unsafe { ffi::uasyncio_rtos_timeout_ticks(timeout_us) }
}
