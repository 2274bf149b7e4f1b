//! The Zephyr module's boot-time loop thread as the C API sees it (host port): once its shim
//! recorded it (`uasyncio_boot_loop_began`, from `SYS_INIT` before `main()`), a
//! `uasyncio_start` is refused with `UASYNCIO_E_STATE` instead of starting a second loop, and
//! the loop's state and thread describe that thread until it returns. Its own process: the
//! loop state is one per program.
#![cfg(feature = "ffi")]

use core::ffi::{c_int, c_void, CStr};

use uasyncio::ffi::{self, Config, E_STATE, MIN_STACK_BYTES};

extern "C" fn entry(_arg: *mut c_void) -> c_int {
    0
}

#[test]
fn a_boot_time_loop_thread_refuses_a_second_start() {
    ffi::uasyncio_boot_loop_began(0x1234);
    let mut code: c_int = -99;
    // SAFETY: `code` is valid for a write.
    assert_eq!(unsafe { ffi::uasyncio_loop_state(&mut code) }, 1);
    assert_eq!(ffi::uasyncio_loop_thread() as usize, 0x1234);

    let config = Config {
        name: core::ptr::null(),
        stack_bytes: MIN_STACK_BYTES,
        priority: 1,
        entry: Some(entry),
        arg: core::ptr::null_mut(),
    };
    // SAFETY: `config` is a valid uasyncio_config_t with a NULL name.
    assert_eq!(unsafe { ffi::uasyncio_start(&config) }, E_STATE);
    // SAFETY: uasyncio_status_str returns a static NUL-terminated string.
    let msg = unsafe { CStr::from_ptr(ffi::uasyncio_status_str(E_STATE)) }.to_string_lossy();
    assert!(msg.contains("CONFIG_UASYNCIO_LOOP_THREAD=y"), "{msg}");

    ffi::uasyncio_boot_loop_returned();
    // SAFETY: `code` is valid for a write.
    assert_eq!(unsafe { ffi::uasyncio_loop_state(&mut code) }, 2);
    assert_eq!(code, 0);
    assert!(ffi::uasyncio_loop_thread().is_null());
}
