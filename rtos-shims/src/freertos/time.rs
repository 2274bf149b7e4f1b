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

/// The length of a kernel tick in microseconds, rounded up: [`tick_count`] is a cheap clock
/// (see it for what it promises).
///
/// ```no_run
/// assert!(rtos_shims::tick_period_us() >= 1); // FreeRTOS: 1,000 at configTICK_RATE_HZ 1000
/// ```
pub fn tick_period_us() -> u32 {
    // SAFETY: a plain C call returning a constant of the configuration.
    unsafe { ffi::uasyncio_rtos_tick_us_ceil() }
}

/// The kernel's tick count, its low 32 bits (`xTaskGetTickCount`; task context only): a clock
/// that costs a call and a load, where [`now_us`] enters a critical section. It bounds
/// `now_us` from above: if `t0` was read before a `now_us()` that returned `u0`, then when this
/// returns `t1` (fewer than 2^31 ticks later) the clock is below
/// `u0 + (t1.wrapping_sub(t0) + 3) * tick_period_us()` (`now_us` counts a tick whose SysTick
/// interrupt is still pending, one ahead of the kernel; two more cover the parts of a tick
/// before `u0` and after `t1`).
pub fn tick_count() -> u32 {
    // SAFETY: a plain C call; the loop thread calls it, a task.
    unsafe { ffi::uasyncio_rtos_tick_count() }
}

/// The number of ticks to block so that the wake is at or after `now_us() + timeout_us`.
pub(crate) fn timeout_ticks(timeout_us: u64) -> u64 {
    // SAFETY: a plain C call with no pointer arguments.
    unsafe { ffi::uasyncio_rtos_timeout_ticks(timeout_us) }
}
