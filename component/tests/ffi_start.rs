//! The C API's early refusals (host port): `uasyncio_start` with a stack below
//! `UASYNCIO_MIN_STACK_BYTES`, and `uasyncio_status_str` naming what to change.
#![cfg(feature = "ffi")]

use core::ffi::{c_int, c_void, CStr};

use uasyncio::ffi::{self, Config, E_STACK, MIN_STACK_BYTES};

extern "C" fn entry(_arg: *mut c_void) -> c_int {
    0
}

#[test]
fn small_stack_is_refused_with_a_message() {
    for stack_bytes in [0, 1, MIN_STACK_BYTES - 1] {
        let config = Config {
            name: core::ptr::null(),
            stack_bytes,
            priority: 1,
            entry: Some(entry),
            arg: core::ptr::null_mut(),
        };
        // SAFETY: `config` is a valid uasyncio_config_t with a NULL name.
        let rc = unsafe { ffi::uasyncio_start(&config) };
        assert_eq!(rc, E_STACK, "stack_bytes = {stack_bytes}");
    }
    // The loop was never started: a later, valid start is still possible.
    // SAFETY: NULL is allowed.
    assert_eq!(unsafe { ffi::uasyncio_loop_state(core::ptr::null_mut()) }, 0);

    // SAFETY: uasyncio_status_str returns a static NUL-terminated string.
    let msg = unsafe { CStr::from_ptr(ffi::uasyncio_status_str(E_STACK)) }.to_string_lossy();
    assert!(msg.contains("stack_bytes is below UASYNCIO_MIN_STACK_BYTES"), "{msg}");
    assert!(msg.contains(&MIN_STACK_BYTES.to_string()), "{msg}");
    for code in [0, -1, -2, -3, -4, -5, -6, -7, -99] {
        assert!(!ffi::status_str(code).to_bytes().is_empty());
    }
}
