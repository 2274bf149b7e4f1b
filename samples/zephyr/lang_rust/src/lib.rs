//! uasyncio as a plain dependency of a zephyr-lang-rust application.
//!
//! zephyr-lang-rust's `main()` calls [`rust_main`]; it runs the uasyncio loop in the main
//! thread. A `k_timer` expiry function (C, interrupt context, `src/timer.c`) sets [`TICK`]
//! through `uasyncio_flag_set`; a task awaits it and prints through the `zephyr` crate's
//! `printkln!`. The `zephyr` crate provides the panic handler; uasyncio (features
//! `zephyr-port`, `global-allocator`, `critical-section-impl`) adds the allocator and the
//! critical section, which this branch of the `zephyr` crate does not have.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use uasyncio::{create_task, run, ThreadSafeFlag};
// The port's kernel calls (semaphore, heap, clock, output) through zephyr-sys: linked only
// when named.
use uasyncio_zephyr_sys as _;
use zephyr::printkln;

/// Ticks the task waits for.
const TICKS: u32 = 5;

/// Set by the k_timer expiry function in `timer.c` (interrupt context).
#[no_mangle]
pub static TICK: ThreadSafeFlag = ThreadSafeFlag::new();

extern "C" {
    fn lang_rust_start_timer(period_ms: u32);
    fn lang_rust_stop_timer();
    /// The shim's RAM report of the calling thread (prints only with
    /// CONFIG_UASYNCIO_RAM_REPORT=y).
    fn uasyncio_ram_report();
}

async fn wait_for_ticks() -> uasyncio::Result<u32> {
    // SAFETY: plain C function; starts the k_timer.
    unsafe { lang_rust_start_timer(100) };
    for n in 1..=TICKS {
        TICK.wait().await?;
        printkln!("lang_rust: tick {} from the k_timer ISR", n);
    }
    // SAFETY: plain C function; stops the k_timer.
    unsafe { lang_rust_stop_timer() };
    Ok(TICKS)
}

/// Called by zephyr-lang-rust's `main()`.
#[no_mangle]
extern "C" fn rust_main() {
    printkln!("lang_rust: uasyncio on {}", zephyr::kconfig::CONFIG_BOARD);
    let result = run(async { create_task(wait_for_ticks()).await });
    match result {
        Ok(n) => printkln!("lang_rust: done, {} ticks", n),
        Err(e) => printkln!("lang_rust: loop failed: {}", e),
    }
    // SAFETY: plain C function of the shim; prints from the calling (main) thread.
    unsafe { uasyncio_ram_report() };
}
