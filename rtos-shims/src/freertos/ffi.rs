//! The C functions of `ports/freertos/uasyncio_freertos_port.c`.
//!
//! Only fixed-width types cross this boundary: `BaseType_t` and `TickType_t` are 64-bit on the
//! POSIX port and 32-bit on Cortex-M, so the C side converts. The application links that C
//! file, compiled against its own `FreeRTOSConfig.h` (`cmake/freertos.cmake` does it for CMake
//! builds).

use core::ffi::{c_char, c_int, c_void};

/// `ticks` value for "block until given".
pub(crate) const FOREVER: u64 = u64::MAX;
/// `uasyncio_rtos_task_create` succeeded.
pub(crate) const OK: c_int = 0;
/// `uasyncio_rtos_task_create` found no memory for the task.
pub(crate) const NOMEM: c_int = -1;
/// A task-only call was made from an interrupt handler.
pub(crate) const MISUSE: c_int = -3;
/// A blocking call was made before the scheduler started.
pub(crate) const NOT_RUNNING: c_int = -4;

extern "C" {
    pub(crate) fn uasyncio_rtos_sem_create() -> *mut c_void;
    pub(crate) fn uasyncio_rtos_sem_delete(sem: *mut c_void);
    pub(crate) fn uasyncio_rtos_sem_give(sem: *mut c_void) -> c_int;
    pub(crate) fn uasyncio_rtos_sem_give_from_isr(sem: *mut c_void);
    pub(crate) fn uasyncio_rtos_sem_take(sem: *mut c_void, ticks: u64) -> c_int;

    pub(crate) fn uasyncio_rtos_notify_give(task: *mut c_void) -> c_int;
    pub(crate) fn uasyncio_rtos_notify_give_from_isr(task: *mut c_void);
    /// `uasyncio_rtos_notify_give_from_isr` for a caller known to run in an interrupt handler.
    pub(crate) fn uasyncio_rtos_notify_give_isr(task: *mut c_void);
    pub(crate) fn uasyncio_rtos_notify_take(ticks: u64) -> c_int;

    /// The application's (or the C port's weak default) panic hook: `msg` NUL-terminated.
    #[cfg_attr(not(feature = "panic-handler"), allow(dead_code))]
    pub(crate) fn uasyncio_panic_hook(msg: *const c_char, len: usize);
    /// Stops like a failed `configASSERT`; never returns.
    #[cfg_attr(not(feature = "panic-handler"), allow(dead_code))]
    pub(crate) fn uasyncio_rtos_panic_stop() -> !;
    /// `taskDISABLE_INTERRUPTS()`.
    #[cfg_attr(not(all(feature = "panic-handler", not(target_has_atomic = "8"))), allow(dead_code))]
    pub(crate) fn uasyncio_rtos_panic_mask();

    pub(crate) fn uasyncio_rtos_now_us() -> u64;
    pub(crate) fn uasyncio_rtos_timeout_ticks(timeout_us: u64) -> u64;
    pub(crate) fn uasyncio_rtos_tick_count() -> u32;
    pub(crate) fn uasyncio_rtos_tick_us_ceil() -> u32;

    // Cortex-M reads IPSR inline instead (see `thread::in_isr`).
    #[cfg_attr(all(target_arch = "arm", target_os = "none"), allow(dead_code))]
    pub(crate) fn uasyncio_rtos_in_isr() -> c_int;
    pub(crate) fn uasyncio_rtos_current_task() -> *mut c_void;
    pub(crate) fn uasyncio_rtos_thread_id() -> usize;

    /// The running task's TCB: the kernel's own global (tasks.c, FreeRTOS V11 with
    /// `configNUMBER_OF_CORES == 1`, which the C port checks), exactly what
    /// `xTaskGetCurrentTaskHandle()` returns there. Read directly because the loop asks for
    /// its thread's identity on every loop-local access: two loads instead of two calls.
    pub(crate) static pxCurrentTCB: *mut c_void;

    pub(crate) fn uasyncio_rtos_task_create(
        name: *const c_char,
        name_len: usize,
        stack_bytes: usize,
        priority: u32,
        arg: *mut c_void,
    ) -> c_int;
    pub(crate) fn uasyncio_rtos_stack_high_water_bytes(task: *mut c_void) -> usize;

    // Used by the critical-section impl, and on targets without atomic swap (Armv6-M).
    #[cfg_attr(
        not(any(feature = "critical-section-impl", not(target_has_atomic = "8"))),
        allow(dead_code)
    )]
    pub(crate) fn uasyncio_rtos_critical_enter() -> u32;
    #[cfg_attr(
        not(any(feature = "critical-section-impl", not(target_has_atomic = "8"))),
        allow(dead_code)
    )]
    pub(crate) fn uasyncio_rtos_critical_exit(state: u32);

    pub(crate) static uasyncio_rtos_heap_alignment: usize;

    pub(crate) fn pvPortMalloc(size: usize) -> *mut c_void;
    pub(crate) fn vPortFree(ptr: *mut c_void);
}
