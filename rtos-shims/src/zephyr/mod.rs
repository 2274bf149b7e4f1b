//! The `zephyr` port: uasyncio's loop as one Zephyr thread.
//!
//! Zephyr's kernel API is mostly static inline functions and syscall wrappers that exist only
//! in the headers generated for one build, so this port calls a small C shim instead
//! (`rtos-shims/zephyr-shim/uasyncio_shim.c`, compiled by `cmake/zephyr.cmake` inside the
//! application's Zephyr build) which exports them as real symbols. What maps to what:
//!
//! | port item                    | Zephyr                                                   |
//! |------------------------------|----------------------------------------------------------|
//! | [`Semaphore`]                | `k_sem` with limit 1, allocated by the shim (it must not move) |
//! | `give` / `give_from_isr`     | `k_sem_give` (ISR-safe; the kernel reschedules on ISR exit) |
//! | `take(timeout)`              | `k_sem_take` with `K_TICKS(ceil(µs))`, `K_NO_WAIT` or `K_FOREVER` |
//! | [`now_us`]                   | `k_cycle_get_64` where the timer has a 64-bit counter, else `k_uptime_ticks` |
//! | [`in_isr`]                   | `k_is_in_isr`; on Cortex-M its IPSR read, inline         |
//! | [`current_thread_id`]        | `k_current_get`                                          |
//! | [`spawn_thread`]             | `k_thread_create` at `K_PRIO_PREEMPT(N - 1 - priority)`, stack and `k_thread` from the uasyncio heap |
//! | `critical-section`           | `irq_lock` / `irq_unlock` (restore state: the `u32` key); feature `critical-section-impl` |
//! | `#[global_allocator]`        | [`ZephyrHeap`]: a dedicated `k_heap` (`CONFIG_UASYNCIO_HEAP_SIZE`) or `k_aligned_alloc`/`k_free`; feature `global-allocator` |
//! | `log` backend                | `printk`, at `CONFIG_UASYNCIO_LOG_LEVEL` (unless the app installed a logger first) |
//! | `#[panic_handler]`           | prints the message through `printk`, then `k_panic()`; feature `panic-handler` |
//!
//! Feature `zephyr` turns on all three global items; `zephyr-port` alone none of them, for a
//! zephyr-lang-rust application (`CONFIG_RUST=y`) whose `zephyr` crate brings its own panic
//! handler (and, in later versions, an allocator).
//!
//! Time resolution is the clock's: microseconds on `native_sim` and wherever the timer driver
//! has a 64-bit cycle counter (`CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER`; on Cortex-M SysTick say
//! `CONFIG_CORTEX_M_SYSTICK_64BIT_CYCLE_COUNTER=y`), else one kernel tick
//! (`CONFIG_SYS_CLOCK_TICKS_PER_SEC`). Sleeps are always rounded up to whole ticks.
//!
//! Everything that is plain arithmetic lives in [`convert`] and is tested on the host.
#![cfg_attr(not(feature = "zephyr-port"), allow(dead_code))]

pub(crate) mod convert;

#[cfg(all(feature = "zephyr-port", feature = "critical-section-impl"))]
mod cs;
#[cfg(feature = "zephyr-port")]
mod ffi;
#[cfg(feature = "zephyr-port")]
mod heap;
#[cfg(feature = "zephyr-port")]
mod printk;

#[cfg(feature = "zephyr-port")]
pub use heap::ZephyrHeap;
#[cfg(feature = "zephyr-port")]
pub use port::{
    current_thread_id, in_isr, is_current_thread, now_us, ram_report, spawn_thread, tick_count, tick_period_us,
    Semaphore,
};

#[cfg(feature = "zephyr-port")]
mod port {
    use alloc::boxed::Box;
    use core::ffi::{c_char, c_void};
    use core::ptr::NonNull;
    use core::sync::atomic::AtomicU32;

    use super::{convert, ffi};
    use crate::{Error, ThreadBody, ThreadConfig};

    /// A binary semaphore: a Zephyr `k_sem` with a limit of 1, so gives that happen before a
    /// take collapse into one.
    ///
    /// The `k_sem` lives in the uasyncio heap, allocated by the shim: its wait queue links
    /// point into the object itself, so it must never move, and its size depends on Kconfig.
    /// Dropping the semaphore frees it; nobody may be waiting on it then.
    #[derive(Debug)]
    pub struct Semaphore {
        sem: NonNull<c_void>,
    }

    // SAFETY: a k_sem is a kernel object made to be given and taken from any thread or ISR;
    // the pointer is only ever passed to the kernel through the shim.
    unsafe impl Send for Semaphore {}
    // SAFETY: as above; every operation is a kernel call that synchronises internally.
    unsafe impl Sync for Semaphore {}

    impl Semaphore {
        /// Creates a semaphore in the taken (empty) state.
        pub fn new() -> Result<Self, Error> {
            // SAFETY: the shim allocates and initialises a k_sem, or returns null.
            let sem = unsafe { ffi::uasyncio_shim_sem_new() };
            NonNull::new(sem).map(|sem| Semaphore { sem }).ok_or(Error::NoMemory)
        }

        /// Gives the semaphore from a thread (`k_sem_give`).
        pub fn give(&self) {
            // SAFETY: `self.sem` is a live, initialised k_sem until drop.
            unsafe { ffi::uasyncio_shim_sem_give(self.sem.as_ptr()) }
        }

        /// Gives the semaphore from an interrupt handler. `k_sem_give` is ISR-safe in Zephyr,
        /// and the kernel switches to a woken higher-priority thread when the ISR returns.
        pub fn give_from_isr(&self) {
            self.give();
        }

        /// Waits until the semaphore is given or `timeout_us` microseconds passed (`None`:
        /// forever). Returns `true` if it was given (and takes it), `false` on timeout.
        /// The timeout is rounded up to whole kernel ticks.
        pub fn take(&self, timeout_us: Option<u64>) -> bool {
            // SAFETY: plain getters of Kconfig constants.
            let (tps, max) = unsafe {
                (
                    ffi::uasyncio_shim_ticks_per_sec(),
                    ffi::uasyncio_shim_max_timeout_ticks(),
                )
            };
            let ticks = convert::timeout_ticks(timeout_us, tps, max, &TICK_SCALE);
            // SAFETY: `self.sem` is a live, initialised k_sem until drop.
            unsafe { ffi::uasyncio_shim_sem_take(self.sem.as_ptr(), ticks) != 0 }
        }
    }

    impl Drop for Semaphore {
        fn drop(&mut self) {
            // SAFETY: the k_sem came from uasyncio_shim_sem_new and is not used after this.
            unsafe { ffi::uasyncio_shim_sem_delete(self.sem.as_ptr()) }
        }
    }

    /// The clock's `convert::Scale` ([`now_us`]) and the tick rate's ([`Semaphore::take`]),
    /// worked out at the first use; self-checking words, see `convert::Scale::cached`.
    static CLOCK_SCALE: AtomicU32 = AtomicU32::new(0);
    static TICK_SCALE: AtomicU32 = AtomicU32::new(0);

    /// Microseconds since boot; monotonic. Resolution: the 64-bit cycle counter where the
    /// timer driver has one, else one kernel tick.
    pub fn now_us() -> u64 {
        // SAFETY: reads of the kernel clock; callable from any context.
        let (raw, hz) = unsafe { (ffi::uasyncio_shim_clock_raw(), ffi::uasyncio_shim_clock_hz()) };
        convert::clock_to_us_cached(raw, hz, &CLOCK_SCALE)
    }

    /// 0: a tickless kernel keeps no tick count that is cheaper to read than [`now_us`]
    /// (`k_uptime_ticks` reads the timer driver too), so [`tick_count`] is never needed.
    pub fn tick_period_us() -> u32 {
        0
    }

    /// 0 (see [`tick_period_us`]).
    pub fn tick_count() -> u32 {
        0
    }

    /// Whether the caller runs in interrupt context (`k_is_in_isr`).
    ///
    /// On Cortex-M this reads IPSR inline, which is what Zephyr's `arch_is_in_isr()` does
    /// there (`arch/arm/include/cortex_m/exception.h` in 4.0,
    /// `arch/arm/include/aarch32/cortex_m/exc.h` in 3.4: `__get_IPSR() != 0`): every
    /// loop-local access asks, so this saves a call into the C shim each time. Elsewhere
    /// (native_sim, other architectures) it calls `k_is_in_isr` through the shim.
    #[inline]
    pub fn in_isr() -> bool {
        #[cfg(uasyncio_cortex_m)]
        {
            let ipsr: u32;
            // `pure`: within one context (a thread, or one handler) IPSR reads the same every
            // time, so repeated reads may be merged. The build script sets `uasyncio_cortex_m`
            // only for M-profile targets.
            // SAFETY: reading IPSR has no side effects and is allowed in every mode on M-profile.
            unsafe { core::arch::asm!("mrs {}, IPSR", out(reg) ipsr, options(pure, nomem, nostack, preserves_flags)) };
            // `MRS Rd, IPSR` reads the exception number (bits 8:0) and zeros (bits 31:9 are
            // reserved, read as zero: Armv7-M ARM B1.4.2), so the whole word is tested, as
            // Zephyr's own `arch_is_in_isr` does (arch/arm/include/cortex_m/exception.h):
            // one instruction fewer than a mask of bits 8:0.
            ipsr != 0
        }
        #[cfg(not(uasyncio_cortex_m))]
        {
            // SAFETY: k_is_in_isr has no preconditions.
            unsafe { ffi::uasyncio_shim_in_isr() != 0 }
        }
    }

    /// With `CONFIG_UASYNCIO_RAM_REPORT`, prints `uasyncio ram: thread … stack used … heap
    /// peak …` for the calling thread; otherwise does nothing. The loop thread of
    /// `uasyncio_start()` calls it before it reports itself returned, so that a C thread
    /// waiting on `uasyncio_loop_state()` cannot print into the middle of that line.
    pub fn ram_report() {
        // SAFETY: no preconditions; the shim reads the current thread and the heap's stats.
        unsafe { ffi::uasyncio_ram_report() }
    }

    /// The calling thread's `k_tid_t` as a number (never zero in a thread).
    pub fn current_thread_id() -> usize {
        // SAFETY: k_current_get has no preconditions.
        unsafe { ffi::uasyncio_shim_current_thread() }
    }

    /// Whether the caller is the thread `id`, a value [`current_thread_id`] returned.
    #[inline]
    pub fn is_current_thread(id: usize) -> bool {
        current_thread_id() == id
    }

    extern "C" fn thread_entry(arg: *mut c_void) {
        // SAFETY: `arg` is the pointer that spawn_thread made with Box::into_raw, handed to
        // exactly one thread, which takes it back exactly once here.
        let body = unsafe { Box::from_raw(arg.cast::<ThreadBody>()) };
        body();
    }

    /// Starts a Zephyr thread. `config.priority` counts as on FreeRTOS, higher is more urgent,
    /// and maps onto Zephyr's preemptible priorities: `K_PRIO_PREEMPT(N - 1 - priority)` with
    /// `N = CONFIG_NUM_PREEMPT_PRIORITIES`; `priority >= N` is [`Error::Refused`]. `stack_size` 0 means `CONFIG_UASYNCIO_LOOP_THREAD_STACK_SIZE`.
    /// The `k_thread` and its stack come from the uasyncio heap; a thread that returns has them
    /// freed by the next `spawn_thread`.
    pub fn spawn_thread(config: ThreadConfig, body: ThreadBody) -> Result<(), Error> {
        // SAFETY: getter of a Kconfig constant.
        let num_preempt = unsafe { ffi::uasyncio_shim_num_preempt_priorities() };
        let priority = convert::zephyr_priority(config.priority, num_preempt).ok_or(Error::Refused)?;
        let arg = Box::into_raw(Box::new(body)).cast::<c_void>();
        // SAFETY: the name pointer and length describe a &'static str (the shim copies it);
        // `arg` stays valid until thread_entry takes it back, or until we do on failure.
        let rc = unsafe {
            ffi::uasyncio_shim_thread_spawn(
                config.name.as_ptr().cast::<c_char>(),
                config.name.len(),
                config.stack_size,
                priority,
                thread_entry,
                arg,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: the thread was not created, so nobody else owns `arg`.
        drop(unsafe { Box::from_raw(arg.cast::<ThreadBody>()) });
        Err(if rc == -ffi::ENOMEM {
            Error::NoMemory
        } else {
            Error::Refused
        })
    }
}
