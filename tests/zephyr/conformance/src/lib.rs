//! Runs every case of `uasyncio-conformance` (`tests/conformance`) in the loop thread of a
//! Zephyr image, one after another (each case starts from a fresh loop), prints one line per
//! case and `N passed, N failed, N skipped`, and exits with the number of failures.
//!
//! A case that needs more heap than the board's `CONFIG_UASYNCIO_HEAP_SIZE` ([`BIG_CASES`])
//! is skipped, and says so: an allocation failure stops a Zephyr image (the Rust alloc error
//! handler panics), it cannot be caught as a case failure.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use alloc::ffi::CString;
use core::ffi::{c_char, c_int};

/// Cases with a large working set, and the heap they need (bytes).
const BIG_CASES: &[(&str, usize)] = &[
    // 10,000 sleeping tasks at once.
    ("loop::many_sleepers_fire_in_deadline_order", 2 * 1024 * 1024),
];

extern "C" {
    fn conformance_heap_size() -> usize;
    fn printk(fmt: *const c_char, ...);
    fn uasyncio_test_exit(status: c_int) -> !;
}

fn c_text(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// The loop thread's body (CONFIG_UASYNCIO_LOOP_THREAD=y).
#[no_mangle]
pub extern "C" fn rust_main() {
    let (mut passed, mut failed, mut skipped): (c_int, c_int, c_int) = (0, 0, 0);
    // SAFETY: plain C getter of a Kconfig value.
    let heap = unsafe { conformance_heap_size() };
    for case in uasyncio_conformance::cases() {
        let name = c_text(case.name);
        if let Some(&(_, need)) = BIG_CASES.iter().find(|(n, need)| *n == case.name && heap < *need) {
            skipped += 1;
            // SAFETY: printk with a NUL-terminated format, a C string and two size_t (%zu).
            unsafe {
                printk(
                    c"skip %s: needs a %zu-byte heap, this board has %zu\n".as_ptr(),
                    name.as_ptr(),
                    need,
                    heap,
                )
            };
            continue;
        }
        match (case.run)() {
            Ok(()) => {
                passed += 1;
                // SAFETY: printk with a NUL-terminated format and one C string for %s.
                unsafe { printk(c"ok   %s\n".as_ptr(), name.as_ptr()) };
            }
            Err(e) => {
                failed += 1;
                let msg = c_text(&e);
                // SAFETY: printk with a NUL-terminated format and two C strings.
                unsafe { printk(c"FAIL %s: %s\n".as_ptr(), name.as_ptr(), msg.as_ptr()) };
            }
        }
    }
    // SAFETY: printk with a NUL-terminated format and three c_int arguments.
    unsafe {
        printk(
            c"conformance: %d passed, %d failed, %d skipped\n".as_ptr(),
            passed,
            failed,
            skipped,
        )
    };
    // SAFETY: ends the image with this status.
    unsafe { uasyncio_test_exit(failed) }
}
