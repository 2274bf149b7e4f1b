//! A k_timer interrupt handler wakes an async Rust task.
//!
//! The handler ([`isr_signal_on_expiry`], called from the k_timer expiry function in
//! `main.c`, i.e. in interrupt context) stores what happened in atomics and sets a
//! [`ThreadSafeFlag`]: that is the whole ISR rule (atomics and one semaphore give, nothing
//! that allocates or blocks). The task waits on the flag in the loop thread, reads the
//! atomics and prints. Sets that happen while the task is busy coalesce into one wake, as in
//! MicroPython, so the task reads a counter rather than counting wakes.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use uasyncio::{run, ThreadSafeFlag};

/// Expiries the sample waits for.
const EXPIRIES: u32 = 10;

static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();
static EXPIRY_COUNT: AtomicU32 = AtomicU32::new(0);
static IN_ISR: AtomicBool = AtomicBool::new(true);
/// Low 32 bits of the clock at the last expiry (Cortex-M3 has no 64-bit atomics; a
/// wrapping difference of two such stamps is exact for gaps under 71 minutes).
static LAST_US: AtomicU32 = AtomicU32::new(0);

extern "C" {
    fn isr_signal_start_timer(period_ms: u32);
    fn printk(fmt: *const core::ffi::c_char, ...);
}

/// The interrupt side: record, then signal. Returns nonzero to stop the timer.
#[no_mangle]
pub extern "C" fn isr_signal_on_expiry() -> c_int {
    IN_ISR.fetch_and(rtos_shims::in_isr(), Ordering::Relaxed);
    LAST_US.store(rtos_shims::now_us() as u32, Ordering::Relaxed);
    let n = EXPIRY_COUNT.fetch_add(1, Ordering::Release) + 1;
    FLAG.set();
    c_int::from(n >= EXPIRIES)
}

/// The task side: wait, read, print, until all expiries were seen.
async fn wait_for_expiries() -> uasyncio::Result<u32> {
    let mut wakes = 0;
    let mut seen = 0;
    // SAFETY: plain C function; starts the k_timer.
    unsafe { isr_signal_start_timer(100) };
    while seen < EXPIRIES {
        FLAG.wait().await?;
        wakes += 1;
        seen = EXPIRY_COUNT.load(Ordering::Acquire);
        let latency = (rtos_shims::now_us() as u32).wrapping_sub(LAST_US.load(Ordering::Relaxed));
        // SAFETY: printk with a NUL-terminated format; both %u match u32.
        unsafe {
            printk(
                c"task woken by ISR: expiry %u (%u us after it)\n".as_ptr(),
                seen,
                latency,
            )
        };
    }
    Ok(wakes)
}

/// The loop thread's body.
#[no_mangle]
pub extern "C" fn rust_main() {
    let wakes = run(wait_for_expiries()).unwrap_or(0);
    let in_isr = if IN_ISR.load(Ordering::Relaxed) { c"yes" } else { c"NO" };
    // SAFETY: printk with a NUL-terminated format and matching arguments.
    unsafe {
        printk(
            c"isr_signal: done, %u expiries, %u wakes, in ISR: %s\n".as_ptr(),
            EXPIRY_COUNT.load(Ordering::Relaxed),
            wakes,
            in_isr.as_ptr(),
        )
    };
}
