//! uasyncio's Zephyr kernel calls through `zephyr-sys`, for zephyr-lang-rust applications
//! (`CONFIG_RUST=y`).
//!
//! The Zephyr port of `rtos-shims` calls the functions that `rtos-shims/src/zephyr/ffi.rs`
//! declares (`uasyncio_shim_*`). Without zephyr-lang-rust the C shim
//! (`rtos-shims/zephyr-shim/uasyncio_shim_kernel.c`) defines them. With it
//! (`CONFIG_UASYNCIO_ZEPHYR_SYS=y`, the default under `CONFIG_RUST=y`) the module's CMake leaves
//! that file out and this crate defines them in Rust, calling the kernel through zephyr-sys,
//! Zephyr's bindgen bindings. Static-inline functions and syscall wrappers such as
//! `k_sem_give`, `k_sem_take`, `k_current_get`, `k_cycle_get_64` and `k_str_out` reach the
//! kernel through the `<name>__extern` wrappers that bindgen generates
//! (`wrap_static_fns`) and zephyr-lang-rust compiles into the application.
//!
//! What stays in C (`uasyncio_shim.c`), because zephyr-sys does not expose it:
//! - `irq_lock` / `irq_unlock` (the `critical-section` implementation): macros over the
//!   arch's always-inline `arch_irq_lock`, outside zephyr-sys's allowlist (`k_*`, `sys_*`,
//!   `gpio_*`). The exposed `k_spin_lock` is no replacement: critical sections nest, and a
//!   nested take of one `k_spinlock` is an assertion failure with `CONFIG_SPIN_VALIDATE`
//!   (and a deadlock on SMP).
//! - the heap object (`K_HEAP_DEFINE`, a macro that places the `k_heap` where the kernel
//!   initialises it at boot); the calls on it are made here, on the exported symbol.
//! - thread creation (`uasyncio_shim_thread_spawn`): the stack object's size and alignment
//!   (`K_KERNEL_STACK_LEN`, `Z_KERNEL_STACK_OBJ_ALIGN`) are function-like macros that depend
//!   on the arch and on MPU/userspace Kconfig, which bindgen does not translate.
//! - `k_panic()` (arch macro), `SYS_INIT`, `K_THREAD_DEFINE` and the RAM report.
//!
//! The application's crate must link this crate, with `use uasyncio_zephyr_sys as _;`
//! (a dependency that no code names is not linked); `cmake/zephyr.cmake` checks that the
//! crate's Cargo.toml depends on it.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use core::ffi::{c_char, c_int, c_void};
use core::mem::{align_of, size_of};

use zephyr_sys as sys;

mod kconfig {
    include!(concat!(env!("OUT_DIR"), "/kconfig.rs"));
}

#[cfg(CONFIG_TIMER_READS_ITS_FREQUENCY_AT_RUNTIME)]
compile_error!(
    "uasyncio-zephyr-sys: CONFIG_TIMER_READS_ITS_FREQUENCY_AT_RUNTIME=y is not supported \
     (zephyr-lang-rust does not support such boards either)"
);

const K_NO_WAIT: sys::k_timeout_t = sys::k_timeout_t { ticks: 0 };

/// `K_FOREVER`: `(k_ticks_t)-1` (k_ticks_t is `i64` with `CONFIG_TIMEOUT_64BIT`, else `u32`).
#[allow(clippy::unnecessary_cast)]
const K_FOREVER: sys::k_timeout_t = sys::k_timeout_t {
    ticks: -1i64 as sys::k_ticks_t,
};

// ---------------------------------------------------------------------------------------
// Heap: the k_heap of CONFIG_UASYNCIO_HEAP_SIZE (defined in C by K_HEAP_DEFINE), or the
// system heap when that is 0. Never blocks; ISR-safe.

// A k_heap holds a k_spinlock, an empty struct without SMP or CONFIG_SPIN_VALIDATE, which
// rustc calls FFI-unsafe; only the address of the C object is used (zephyr-sys itself allows
// this lint for the same reason).
#[cfg(not(uasyncio_system_heap))]
#[allow(improper_ctypes)]
extern "C" {
    /// `K_HEAP_DEFINE(uasyncio_heap, CONFIG_UASYNCIO_HEAP_SIZE)` in `uasyncio_shim.c`.
    static mut uasyncio_heap: sys::k_heap;
}

/// Memory of `size` bytes aligned to `align` (a power of two) from the uasyncio heap, or null.
#[no_mangle]
pub extern "C" fn uasyncio_shim_alloc(align: usize, size: usize) -> *mut c_void {
    #[cfg(not(uasyncio_system_heap))]
    {
        // SAFETY: uasyncio_heap is the k_heap that the kernel initialised at boot; the kernel
        // synchronises its use, and only its address is taken here. K_NO_WAIT never blocks.
        unsafe { sys::k_heap_aligned_alloc(core::ptr::addr_of_mut!(uasyncio_heap), align, size, K_NO_WAIT) }
    }
    #[cfg(uasyncio_system_heap)]
    {
        // k_aligned_alloc() wants a power of two that is a multiple of sizeof(void *).
        let align = align.max(core::mem::size_of::<*mut c_void>());
        // SAFETY: plain allocation from the system heap; `align` is a power of two.
        unsafe { sys::k_aligned_alloc(align, size) }
    }
}

/// Frees memory from [`uasyncio_shim_alloc`] (null is ignored by the kernel).
///
/// # Safety
/// `ptr` is null or came from [`uasyncio_shim_alloc`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_shim_free(ptr: *mut c_void) {
    #[cfg(not(uasyncio_system_heap))]
    // SAFETY: the caller hands back memory of this heap (see above for the heap itself).
    unsafe {
        sys::k_heap_free(core::ptr::addr_of_mut!(uasyncio_heap), ptr)
    }
    #[cfg(uasyncio_system_heap)]
    // SAFETY: the caller hands back memory of the system heap.
    unsafe {
        sys::k_free(ptr)
    }
}

// ---------------------------------------------------------------------------------------
// Binary semaphore: a k_sem with limit 1, in the uasyncio heap (it must not move: its wait
// queue points into it). Its layout is bindgen's, computed with this build's Kconfig.

/// A new `k_sem` (count 0, limit 1), or null when the heap is full.
#[no_mangle]
pub extern "C" fn uasyncio_shim_sem_new() -> *mut c_void {
    let sem = uasyncio_shim_alloc(align_of::<sys::k_sem>(), size_of::<sys::k_sem>()).cast::<sys::k_sem>();
    if !sem.is_null() {
        // SAFETY: `sem` is fresh memory of a k_sem's size and alignment; k_sem_init
        // initialises every field. (0, 1) are valid arguments, so it cannot fail.
        unsafe { sys::k_sem_init(sem, 0, 1) };
    }
    sem.cast()
}

/// Frees a semaphore from [`uasyncio_shim_sem_new`].
///
/// # Safety
/// `sem` came from [`uasyncio_shim_sem_new`], nobody waits on it, and it is not used again.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_shim_sem_delete(sem: *mut c_void) {
    // SAFETY: as the caller promises.
    unsafe { uasyncio_shim_free(sem) }
}

/// `k_sem_give` (ISR-safe).
///
/// # Safety
/// `sem` is a live semaphore from [`uasyncio_shim_sem_new`].
#[no_mangle]
pub unsafe extern "C" fn uasyncio_shim_sem_give(sem: *mut c_void) {
    // SAFETY: `sem` is an initialised k_sem (caller's promise).
    unsafe { sys::k_sem_give(sem.cast()) }
}

/// `k_sem_take`: `ticks < 0` waits forever, `0` polls, else at most `ticks` kernel ticks
/// (the Rust side clamps to [`uasyncio_shim_max_timeout_ticks`]). Returns 1 if taken.
///
/// # Safety
/// `sem` is a live semaphore from [`uasyncio_shim_sem_new`].
#[no_mangle]
pub unsafe extern "C" fn uasyncio_shim_sem_take(sem: *mut c_void, ticks: i64) -> c_int {
    let timeout = match ticks {
        t if t < 0 => K_FOREVER,
        0 => K_NO_WAIT,
        // K_TICKS(t); t <= uasyncio_shim_max_timeout_ticks(), so the cast keeps the value.
        #[allow(clippy::unnecessary_cast)]
        t => sys::k_timeout_t {
            ticks: t as sys::k_ticks_t,
        },
    };
    // SAFETY: `sem` is an initialised k_sem (caller's promise).
    c_int::from(unsafe { sys::k_sem_take(sem.cast(), timeout) } == 0)
}

/// The largest relative timeout a `k_timeout_t` holds in this build.
#[no_mangle]
pub extern "C" fn uasyncio_shim_max_timeout_ticks() -> i64 {
    if cfg!(CONFIG_TIMEOUT_64BIT) {
        i64::MAX
    } else {
        // k_ticks_t is uint32_t and (k_ticks_t)-1 means K_FOREVER.
        i64::from(u32::MAX) - 1
    }
}

// ---------------------------------------------------------------------------------------
// Time.

/// `CONFIG_SYS_CLOCK_TICKS_PER_SEC`.
#[no_mangle]
pub extern "C" fn uasyncio_shim_ticks_per_sec() -> u32 {
    kconfig::SYS_CLOCK_TICKS_PER_SEC as u32
}

/// The monotonic clock: the 64-bit cycle counter where the timer driver has one, else the
/// kernel tick count.
#[no_mangle]
pub extern "C" fn uasyncio_shim_clock_raw() -> u64 {
    #[cfg(CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER)]
    {
        // SAFETY: reads the hardware counter; callable from any context.
        unsafe { sys::k_cycle_get_64() }
    }
    #[cfg(not(CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER))]
    {
        // SAFETY: reads the tick count; callable from any context. Never negative.
        unsafe { sys::k_uptime_ticks() as u64 }
    }
}

/// The rate of [`uasyncio_shim_clock_raw`] in Hz.
#[no_mangle]
pub extern "C" fn uasyncio_shim_clock_hz() -> u32 {
    if cfg!(CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER) {
        // sys_clock_hw_cycles_per_sec() is this constant unless the timer reads its rate at
        // run time (refused above).
        kconfig::SYS_CLOCK_HW_CYCLES_PER_SEC as u32
    } else {
        kconfig::SYS_CLOCK_TICKS_PER_SEC as u32
    }
}

// ---------------------------------------------------------------------------------------
// Context, threads, output.

/// 1 in interrupt context (`k_is_in_isr`), else 0.
#[no_mangle]
pub extern "C" fn uasyncio_shim_in_isr() -> c_int {
    // SAFETY: no preconditions.
    c_int::from(unsafe { sys::k_is_in_isr() })
}

/// The calling thread's `k_tid_t` (`k_current_get`) as a number.
#[no_mangle]
pub extern "C" fn uasyncio_shim_current_thread() -> usize {
    // SAFETY: no preconditions.
    unsafe { sys::k_current_get() as usize }
}

/// `CONFIG_NUM_PREEMPT_PRIORITIES`.
#[no_mangle]
pub extern "C" fn uasyncio_shim_num_preempt_priorities() -> c_int {
    kconfig::NUM_PREEMPT_PRIORITIES as c_int
}

/// Writes `len` bytes to the console (`k_str_out`, what printk uses); nothing without
/// `CONFIG_PRINTK`.
///
/// # Safety
/// `buf` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_shim_print(buf: *const c_char, len: usize) {
    #[cfg(CONFIG_PRINTK)]
    // SAFETY: k_str_out only reads the `len` bytes at `buf` (its pointer is not const in C).
    unsafe {
        sys::k_str_out(buf.cast_mut(), len)
    };
    #[cfg(not(CONFIG_PRINTK))]
    let _ = (buf, len);
}

/// `CONFIG_UASYNCIO_LOG_LEVEL`.
#[no_mangle]
pub extern "C" fn uasyncio_shim_log_level() -> c_int {
    kconfig::UASYNCIO_LOG_LEVEL as c_int
}

/// `CONFIG_UASYNCIO_HEAP_SIZE` (0: the system heap).
#[no_mangle]
pub extern "C" fn uasyncio_shim_heap_size() -> usize {
    kconfig::UASYNCIO_HEAP_SIZE as usize
}
