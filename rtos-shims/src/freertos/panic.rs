//! Feature `panic-handler`: the firmware's `#[panic_handler]`.
//!
//! FreeRTOS has no console of its own, so the handler formats the panic message (location
//! and text, cut at 255 bytes) into a static buffer and hands it to the C function
//! `uasyncio_panic_hook(msg, len)`, which the application defines to print or log it (the C
//! port carries a weak default that does nothing). Then it stops as a failed `configASSERT`
//! would: `uasyncio_rtos_panic_stop` calls `configASSERT(0)` if the configuration defines it,
//! then disables interrupts and spins (on the POSIX simulator: `abort()`).
//!
//! The buffer is a single static: a panic is the end of the firmware, and a second panic
//! while formatting (a nested one) finds the flag set and stops without formatting again.

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use super::ffi;

const CAPACITY: usize = 256;

struct Buffer {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Write for Buffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the terminating NUL.
        let room = CAPACITY - 1 - self.len;
        let n = s.len().min(room);
        if let (Some(dst), Some(src)) = (self.bytes.get_mut(self.len..self.len + n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        Ok(())
    }
}

static PANICKING: AtomicBool = AtomicBool::new(false);
static mut BUFFER: Buffer = Buffer {
    bytes: [0; CAPACITY],
    len: 0,
};

/// Claims the buffer: true for the first panic only.
#[cfg(target_has_atomic = "8")]
fn first_panic() -> bool {
    !PANICKING.swap(true, Ordering::AcqRel)
}

/// Claims the buffer: true for the first panic only. Without compare-and-swap (Armv6-M) a
/// load and a store, with interrupts disabled first so that no interrupt handler can panic
/// between them on this single core (tasks do not switch with interrupts off).
#[cfg(not(target_has_atomic = "8"))]
fn first_panic() -> bool {
    // Soundness: a plain C call (taskDISABLE_INTERRUPTS); the firmware stops after a panic, so
    // interrupts never need to come back.
    // SAFETY: as argued in the comment just above.
    unsafe { ffi::uasyncio_rtos_panic_mask() };
    if PANICKING.load(Ordering::Acquire) {
        return false;
    }
    PANICKING.store(true, Ordering::Release);
    true
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if first_panic() {
        // Soundness: `PANICKING` was false, so this is the first panic in the firmware and the
        // only code that ever touches `BUFFER`: every later panic (another task, an ISR, or
        // a nested one from inside the formatting below) sees the flag set and skips this.
        // SAFETY: as argued in the comment just above.
        let buffer = unsafe { &mut *core::ptr::addr_of_mut!(BUFFER) };
        let _ = write!(buffer, "panic: {info}");
        let len = buffer.len;
        if let Some(end) = buffer.bytes.get_mut(len) {
            *end = 0;
        }
        // Soundness: the pointer and length describe initialised bytes of a static that nothing
        // else writes from now on; the hook only reads them.
        // SAFETY: as argued in the comment just above.
        unsafe { ffi::uasyncio_panic_hook(buffer.bytes.as_ptr().cast(), len) };
    }
    // SAFETY: a plain C call that does not return.
    unsafe { ffi::uasyncio_rtos_panic_stop() }
}
