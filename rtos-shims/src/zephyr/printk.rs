//! Output through `printk`: the `log` backend, the panic handler, and the port's boot hook.
//!
//! The shim calls [`uasyncio_zephyr_port_init`] once at boot (`SYS_INIT`, level
//! `APPLICATION`), before any static thread starts; it installs the logger with the level of
//! `CONFIG_UASYNCIO_LOG_LEVEL`. A record is formatted in pieces into a small stack buffer and
//! flushed to `printk` as it fills, so nothing allocates and an ISR may log. Records from
//! different threads may interleave on the console.

use core::ffi::c_char;
use core::fmt::{self, Write};

use super::ffi;

/// Formats into a fixed buffer and writes it to printk whenever it fills.
struct PrintkWriter {
    buf: [u8; 96],
    len: usize,
}

impl PrintkWriter {
    const fn new() -> Self {
        PrintkWriter { buf: [0; 96], len: 0 }
    }

    fn flush(&mut self) {
        if self.len > 0 {
            // SAFETY: the pointer and length describe initialised bytes of `buf`.
            unsafe { ffi::uasyncio_shim_print(self.buf.as_ptr().cast::<c_char>(), self.len) };
            self.len = 0;
        }
    }
}

impl Write for PrintkWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

struct PrintkLogger;

static LOGGER: PrintkLogger = PrintkLogger;

impl log::Log for PrintkLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut w = PrintkWriter::new();
        let _ = writeln!(w, "[{:<5} {}] {}", record.level(), record.target(), record.args());
        w.flush();
    }

    fn flush(&self) {}
}

fn level_filter(level: i32) -> log::LevelFilter {
    match level {
        i32::MIN..=0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Installs the printk logger at `CONFIG_UASYNCIO_LOG_LEVEL`. Called by the shim at boot;
/// if the application installed another logger first, that one stays.
#[no_mangle]
pub extern "C" fn uasyncio_zephyr_port_init() {
    // SAFETY: getter of a Kconfig constant.
    let level = level_filter(unsafe { ffi::uasyncio_shim_log_level() });
    #[cfg(target_has_atomic = "ptr")]
    let installed = log::set_logger(&LOGGER).is_ok();
    // SAFETY: without pointer-sized atomics, log offers only the racy setter; this runs once,
    // from SYS_INIT, before any thread that could log has started.
    #[cfg(not(target_has_atomic = "ptr"))]
    let installed = unsafe { log::set_logger_racy(&LOGGER) }.is_ok();
    if installed {
        log::set_max_level(level);
    }
}

/// Prints the panic message through printk and stops the system with `k_panic()` (Zephyr's
/// fatal error handler decides what happens next: halt, reboot, or exit on `native_sim`).
#[cfg(all(feature = "panic-handler", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut w = PrintkWriter::new();
    let _ = writeln!(w, "uasyncio: Rust panic: {info}");
    let failed = super::heap::LAST_FAILED.load(core::sync::atomic::Ordering::Relaxed);
    if failed != 0 {
        // SAFETY: getter of a Kconfig constant.
        let heap = unsafe { ffi::uasyncio_shim_heap_size() };
        let _ = if heap > 0 {
            writeln!(
                w,
                "uasyncio: the uasyncio heap (CONFIG_UASYNCIO_HEAP_SIZE={heap}) could not give \
                 {failed} bytes: raise CONFIG_UASYNCIO_HEAP_SIZE in prj.conf"
            )
        } else {
            writeln!(
                w,
                "uasyncio: the system heap (CONFIG_UASYNCIO_HEAP_SIZE=0) could not give \
                 {failed} bytes: raise CONFIG_HEAP_MEM_POOL_SIZE in prj.conf"
            )
        };
    }
    w.flush();
    // SAFETY: k_panic has no preconditions; it does not return.
    unsafe { ffi::uasyncio_shim_panic() }
}

/// `native_sim` builds the Rust part for a hosted Linux target, whose precompiled `core` and
/// `alloc` were built with unwinding and so reference the personality routine from their
/// unwind tables. Panics abort here (`panic = "abort"`), so the routine is never called; this
/// definition only satisfies the linker. Bare-metal targets have no such reference.
#[cfg(all(feature = "panic-handler", target_os = "linux", not(test)))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
