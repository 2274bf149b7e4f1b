//! The Rust half of the uasyncio firmware for QEMU mps2-an385: the global allocator (the
//! FreeRTOS heap), the panic handler (prints on UART0, then a failing semihosting exit, like
//! `configASSERT`), and the test and measurement programs that `main.c` hands over to by name.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod app;
mod bench;
mod board;
/// The Cortex-M benchmarks' method, shared with embassy's image (bench/cortex-m/embassy-mps2).
#[path = "../../../../bench/cortex-m/common/measure.rs"]
mod measure;
mod selftest;
#[cfg(feature = "stats")]
mod wakeups;

// The C API (`uasyncio.h`): its symbols are linked from `uasyncio::ffi`.
pub use uasyncio::ffi;

use core::fmt::Write;

#[global_allocator]
static HEAP: rtos_shims::FreeRtosHeap = rtos_shims::FreeRtosHeap;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = write!(board::Uart, "\r\npanic: {info}\r\n");
    board::exit(1)
}

/// Runs the program named by `cmd` (the semihosting command line after "fw"); returns the
/// process verdict (0 = pass).
///
/// # Safety
/// `cmd` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn fw_rust_main(cmd: *const u8, len: usize) -> i32 {
    // SAFETY: by the contract above.
    let bytes = unsafe { core::slice::from_raw_parts(cmd, len) };
    let cmd = core::str::from_utf8(bytes).unwrap_or("");
    let mut words = cmd.split_ascii_whitespace();
    let mode = words.next().unwrap_or("selftest");
    let shift = cmd
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("shift="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(7u32);
    match mode {
        "selftest" => selftest::run(),
        "shim-sem" => bench::shim::<rtos_shims::BinarySemaphore>("rtos-shims BinarySemaphore", shift),
        "shim-notify" => bench::shim::<rtos_shims::NotifySemaphore>("rtos-shims NotifySemaphore", shift),
        "bench-flag" => app::bench_flag(shift),
        "bench-yield" => bench::yield_switch(shift, false),
        "bench-yield-timer" => bench::yield_switch(shift, true),
        "bench-spawn" => bench::spawn(shift),
        "flag-isr" => app::flag_isr(),
        "queue-isr" => app::queue_isr(),
        "tsq-isr" => app::tsq_isr(),
        "misuse-isr" => app::misuse_isr(),
        "task-ram" => app::task_ram(),
        #[cfg(feature = "conformance")]
        "large-future" => app::large_future(),
        #[cfg(feature = "stats")]
        "wakeups" => wakeups::run_all(),
        #[cfg(feature = "conformance")]
        "conformance" => conformance(words.next()),
        other => {
            println!("unknown mode '{other}'");
            1
        }
    }
}

#[cfg(feature = "conformance")]
/// Runs the conformance suite (tests/conformance) on this board, one case after the other on
/// the main task's loop; `filter` keeps cases whose name contains it (`!text`: drops them).
fn conformance(filter: Option<&str>) -> i32 {
    let (mut passed, mut failed) = (0u32, 0u32);
    for case in uasyncio_conformance::cases() {
        let skip = match filter {
            Some(f) if f.starts_with("shift=") => false,
            Some(f) => match f.strip_prefix('!') {
                Some(excluded) => case.name.contains(excluded),
                None => !case.name.contains(f),
            },
            None => false,
        };
        if skip {
            continue;
        }
        let heap_before = board::heap_free();
        match (case.run)() {
            Ok(()) => {
                passed += 1;
                println!("test {} ... ok", case.name);
            }
            Err(e) => {
                failed += 1;
                println!("test {} ... FAILED\r\n{e}", case.name);
            }
        }
        let _ = heap_before;
    }
    println!("{passed} passed, {failed} failed");
    i32::from(failed != 0)
}
