//! # rtos-shims: the one seam between uasyncio and the operating system
//!
//! Everything `uasyncio` needs from the kernel underneath it goes through this crate, and
//! nothing else in the project names an RTOS function. The port is chosen by cargo feature,
//! exactly one of:
//!
//! | feature    | kernel                          | semaphore                     | clock                 |
//! |------------|---------------------------------|-------------------------------|-----------------------|
//! | `std`      | a hosted OS (Linux, macOS)      | `Mutex<bool>` + `Condvar`     | `std::time::Instant`  |
//! | `freertos` | FreeRTOS (POSIX port, ARM_CM3)  | binary semaphore              | tick count            |
//! | `zephyr`   | Zephyr (through a small C shim) | `k_sem`                       | `k_uptime_ticks`      |
//!
//! Each port provides the same items, and the API below is the whole contract:
//!
//! - [`Semaphore`]: a **binary** semaphore. `give` from a thread, `give_from_isr` from an
//!   interrupt handler (it requests a context switch when it woke a higher-priority thread),
//!   `take(timeout)` from the loop thread. Gives coalesce: two gives before a take are one.
//! - [`LoopSignal`]: what the event loop sleeps on: `prepare` then `wait(timeout)` on the
//!   loop thread, `signal` from a thread, `signal_from_isr` from an interrupt handler (or
//!   `signal_waiter`, `unsafe`, for a caller that knows the loop thread prepared). Like
//!   the semaphore, but `wait` may return without a signal: the loop keeps the truth in its
//!   own wake stack, so a port may drop the semaphore's state (FreeRTOS: a bare notification).
//! - [`now_us`]: a monotonic clock in microseconds since an arbitrary origin (boot).
//! - [`in_isr`]: whether the caller runs in interrupt context.
//! - [`current_thread_id`]: a non-zero number that identifies the calling thread among live
//!   threads; [`is_current_thread`]: whether the caller is the thread of such a number.
//! - [`spawn_thread`]: start a thread with a name, a stack size and a priority.
//! - The [`critical-section`](https://docs.rs/critical-section) implementation for the port.
//!
//! ## Global items
//!
//! A firmware has exactly one `critical-section` implementation, one `#[global_allocator]`
//! and one `#[panic_handler]`. The port can provide each, behind its own feature, so that a
//! firmware whose other crates bring one (cortex-m's `critical-section-single-core`,
//! freertos-rust's allocator) turns ours off:
//!
//! | feature                 | item                                   | on with      |
//! |-------------------------|----------------------------------------|--------------|
//! | `critical-section-impl` | the port's `critical-section` impl     | `freertos`, `zephyr` |
//! | `global-allocator`      | `#[global_allocator]` over the port's heap | `zephyr` |
//! | `panic-handler`         | `#[panic_handler]`                     | `zephyr`     |
//!
//! On FreeRTOS, `freertos` is `freertos-port` + `critical-section-impl`; `freertos-port` alone
//! installs nothing global. On Zephyr, `zephyr` is `zephyr-port` + all three; `zephyr-port`
//! alone installs nothing global (for zephyr-lang-rust, whose `zephyr` crate has a panic
//! handler). A second item of a kind is refused by the toolchain: rustc names
//! both crates for a second allocator ("the `#[global_allocator]` in ... conflicts with global
//! allocator in: rtos_shims") or panic handler ("found duplicate lang item `panic_impl`"), the
//! linker says "multiple definition of `_critical_section_1_0_acquire`" for a second critical
//! section (with LTO, rustc: "Linking globals named '_critical_section_1_0_acquire': symbol
//! multiply defined!"). The `std` port ignores these features (std provides all three).
//!
//! The set is deliberately small: it is what a single-threaded event loop needs to sleep
//! until a deadline or a wake, and to be woken from another thread or an interrupt.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

use alloc::boxed::Box;
use core::fmt;

#[cfg(feature = "std")]
mod std_port;
#[cfg(feature = "std")]
pub use std_port::{
    current_thread_id, in_isr, is_current_thread, now_us, spawn_thread, tick_count, tick_period_us, Semaphore,
};

#[cfg(feature = "freertos-port")]
mod freertos;
#[cfg(feature = "freertos-port")]
pub use freertos::{
    current_thread_id, in_isr, is_current_thread, now_us, spawn_thread, stack_high_water_bytes, tick_count,
    tick_period_us, BinarySemaphore, FreeRtosHeap, LoopSignal, NotifySemaphore, Semaphore,
};

#[cfg(any(feature = "zephyr-port", test))]
mod zephyr;
#[cfg(feature = "zephyr-port")]
pub use zephyr::{
    current_thread_id, in_isr, is_current_thread, now_us, ram_report, spawn_thread, tick_count, tick_period_us,
    Semaphore, ZephyrHeap,
};

#[cfg(any(feature = "std", feature = "zephyr-port"))]
pub use semaphore_signal::LoopSignal;

/// [`LoopSignal`] on the ports whose semaphore is already as short as a bare signal can be
/// (the `std` port's `Condvar`, Zephyr's `k_sem`): the semaphore itself, with the signal's
/// names. (FreeRTOS has its own, without the semaphore's flag.)
#[cfg(any(feature = "std", feature = "zephyr-port"))]
mod semaphore_signal {
    use crate::{Error, Semaphore};

    /// What the event loop sleeps on: see the crate docs. Here a [`Semaphore`], so `wait`
    /// returns early only when a signal was left over from an earlier wait.
    ///
    /// ```
    /// let sig = rtos_shims::LoopSignal::new().unwrap();
    /// sig.prepare();
    /// sig.signal();
    /// sig.wait(None); // returns at once: the signal came first
    /// ```
    #[derive(Debug)]
    pub struct LoopSignal {
        /// `None` for an inert signal.
        sem: Option<Semaphore>,
    }

    impl LoopSignal {
        /// A signal nobody waits on yet.
        pub fn new() -> Result<Self, Error> {
            Semaphore::new().map(|sem| LoopSignal { sem: Some(sem) })
        }

        /// A signal nobody will ever wait on (signals do nothing), made without the kernel:
        /// for the cross-context half of a loop that can never run.
        pub const fn inert() -> Self {
            LoopSignal { sem: None }
        }

        /// Before the waiting thread publishes that it is about to wait: nothing to record
        /// here (the semaphore wakes whoever waits).
        pub fn prepare(&self) {}

        /// Wakes the waiting thread (from a thread).
        pub fn signal(&self) {
            if let Some(sem) = &self.sem {
                sem.give();
            }
        }

        /// Wakes the waiting thread (from an interrupt handler).
        pub fn signal_from_isr(&self) {
            if let Some(sem) = &self.sem {
                sem.give_from_isr();
            }
        }

        /// Wakes the thread that waits, or is about to: [`signal`](Self::signal) or
        /// [`signal_from_isr`](Self::signal_from_isr), as `isr` says the caller runs in an
        /// interrupt handler. Here both are the same give, so `isr` is not looked at (Zephyr's
        /// `k_sem_give` is ISR-safe), and the signal is known not to be inert: the event loop's
        /// interrupt → task path pays neither test.
        ///
        /// # Safety
        /// The signal was made by [`new`](Self::new), not [`inert`](Self::inert). (The event
        /// loop calls it only after its thread, in `wait`'s protocol, published that it
        /// sleeps, which no inert signal's owner ever does.)
        ///
        /// ```
        /// let sig = rtos_shims::LoopSignal::new().unwrap();
        /// sig.prepare();
        /// // SAFETY: made by `new`.
        /// unsafe { sig.signal_waiter(rtos_shims::in_isr()) };
        /// sig.wait(None); // returns at once: the signal came first
        /// ```
        #[inline]
        pub unsafe fn signal_waiter(&self, isr: bool) {
            let _ = isr;
            debug_assert!(self.sem.is_some(), "LoopSignal::signal_waiter on an inert signal");
            // SAFETY: the caller's contract: made by `new`, which always holds a semaphore.
            unsafe { self.sem.as_ref().unwrap_unchecked() }.give();
        }

        /// Blocks until signalled or until `timeout_us` microseconds passed (`None`: no
        /// deadline).
        pub fn wait(&self, timeout_us: Option<u64>) {
            if let Some(sem) = &self.sem {
                let _ = sem.take(timeout_us);
            }
        }
    }
}

#[cfg(any(
    all(feature = "std", feature = "freertos-port"),
    all(feature = "std", feature = "zephyr-port"),
    all(feature = "freertos-port", feature = "zephyr-port")
))]
compile_error!("rtos-shims: the `std`, `freertos` (or `freertos-port`) and `zephyr` (or `zephyr-port`) ports are exclusive: enable exactly one (through your `uasyncio` dependency: `default-features = false, features = [\"freertos\"]` turns `std` off)");

#[cfg(not(any(feature = "std", feature = "freertos-port", feature = "zephyr-port")))]
compile_error!("rtos-shims: enable exactly one port feature: `std`, `freertos` (or `freertos-port`) or `zephyr` (or `zephyr-port`), e.g. `uasyncio = { ..., default-features = false, features = [\"freertos\"] }` in your Cargo.toml");

/// How to start a thread with [`spawn_thread`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadConfig {
    /// A short name for debuggers and kernel thread lists.
    pub name: &'static str,
    /// Stack size in bytes.
    pub stack_size: usize,
    /// Priority: higher is more urgent on every port (FreeRTOS's own scale; Zephyr maps `p`
    /// to `K_PRIO_PREEMPT(CONFIG_NUM_PREEMPT_PRIORITIES - 1 - p)`). Ignored by the `std` port.
    pub priority: u8,
}

impl Default for ThreadConfig {
    fn default() -> Self {
        ThreadConfig {
            name: "uasyncio",
            stack_size: 16 * 1024,
            priority: 2,
        }
    }
}

/// What a port call can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The kernel could not allocate the object (heap exhausted).
    NoMemory,
    /// The kernel refused the request (bad priority, bad stack size, ...).
    Refused,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoMemory => f.write_str("out of memory"),
            Error::Refused => f.write_str("refused by the kernel"),
        }
    }
}

/// The body of a thread started by [`spawn_thread`].
pub type ThreadBody = Box<dyn FnOnce() + Send + 'static>;
