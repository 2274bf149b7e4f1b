//! The C shim's functions (`rtos-shims/zephyr-shim/uasyncio_shim.h`), declared for Rust.
//!
//! The shim is compiled inside the Zephyr build with the application's Kconfig and exports
//! Zephyr's static-inline and syscall APIs as plain functions. Types match the header
//! exactly: `int` is `c_int`, `size_t` is `usize`, `uintptr_t` is `usize`.
//!
//! In a zephyr-lang-rust application (`CONFIG_UASYNCIO_ZEPHYR_SYS=y`) the crate
//! `uasyncio-zephyr-sys` (`rtos-shims/zephyr-sys-port`, outside the workspace) defines the
//! functions of `uasyncio_shim_kernel.c` in Rust through `zephyr-sys` instead; the
//! declarations here are the contract for both, with the same names and types.

use core::ffi::{c_char, c_int, c_uint, c_void};

extern "C" {
    pub(crate) fn uasyncio_shim_alloc(align: usize, size: usize) -> *mut c_void;
    pub(crate) fn uasyncio_shim_free(ptr: *mut c_void);

    pub(crate) fn uasyncio_shim_sem_new() -> *mut c_void;
    pub(crate) fn uasyncio_shim_sem_delete(sem: *mut c_void);
    pub(crate) fn uasyncio_shim_sem_give(sem: *mut c_void);
    pub(crate) fn uasyncio_shim_sem_take(sem: *mut c_void, ticks: i64) -> c_int;
    pub(crate) fn uasyncio_shim_max_timeout_ticks() -> i64;

    pub(crate) fn uasyncio_shim_ticks_per_sec() -> u32;
    pub(crate) fn uasyncio_shim_clock_raw() -> u64;
    pub(crate) fn uasyncio_shim_clock_hz() -> u32;

    // Cortex-M reads IPSR inline instead (see `in_isr`).
    #[cfg_attr(uasyncio_cortex_m, allow(dead_code))]
    pub(crate) fn uasyncio_shim_in_isr() -> c_int;
    pub(crate) fn uasyncio_shim_current_thread() -> usize;
    // Used by the critical-section impl only (feature `critical-section-impl`).
    #[cfg_attr(not(feature = "critical-section-impl"), allow(dead_code))]
    pub(crate) fn uasyncio_shim_irq_lock() -> c_uint;
    #[cfg_attr(not(feature = "critical-section-impl"), allow(dead_code))]
    pub(crate) fn uasyncio_shim_irq_unlock(key: c_uint);

    pub(crate) fn uasyncio_shim_num_preempt_priorities() -> c_int;
    pub(crate) fn uasyncio_shim_thread_spawn(
        name: *const c_char,
        name_len: usize,
        stack_size: usize,
        priority: c_int,
        entry: extern "C" fn(arg: *mut c_void),
        arg: *mut c_void,
    ) -> c_int;

    pub(crate) fn uasyncio_shim_print(buf: *const c_char, len: usize);
    /// `CONFIG_UASYNCIO_RAM_REPORT`: prints the calling thread's stack high-water mark and the
    /// uasyncio heap's peak (`uasyncio_shim.c`); without it, does nothing.
    pub(crate) fn uasyncio_ram_report();
    pub(crate) fn uasyncio_shim_log_level() -> c_int;
    // Used by the panic handler only (feature `panic-handler`).
    #[cfg_attr(not(feature = "panic-handler"), allow(dead_code))]
    pub(crate) fn uasyncio_shim_heap_size() -> usize;
    #[cfg_attr(not(feature = "panic-handler"), allow(dead_code))]
    pub(crate) fn uasyncio_shim_panic() -> !;
}

/// Zephyr's `ENOMEM` (newlib and Zephyr's minimal libc agree on 12).
pub(crate) const ENOMEM: c_int = 12;
