//! C entry points for a C UART driver (feature `ffi`), declared in
//! `include/uasyncio_serial.h`.
//!
//! A firmware whose UART driver is written in C feeds one well-known receive ring,
//! [`SERIAL_RX`], from its receive interrupt (`uasyncio_serial_rx_isr`), and signals a
//! transmitter with room through [`SERIAL_TX_READY`] (`uasyncio_serial_tx_ready_isr`). The
//! Rust side builds its port from them:
//!
//! ```no_run
//! # // no_run: the C driver provides the bytes.
//! use uasyncio::ThreadSafeFlag;
//! use uasyncio_cellular::serial::{ffi, SerialPort, UartTx};
//! struct CUart; // its try_write calls the C driver's "queue bytes" function
//! impl UartTx for CUart {
//!     fn try_write(&mut self, bytes: &[u8]) -> usize { bytes.len() }
//!     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> { Some(&ffi::SERIAL_TX_READY) }
//! }
//! let port = SerialPort::new(&ffi::SERIAL_RX, CUart);
//! ```
//!
//! Every entry point is safe in an interrupt handler: atomics only (see `RxRing`).

use super::RxRing;
use uasyncio::ThreadSafeFlag;

/// Size in bytes of [`SERIAL_RX`] (`UASYNCIO_SERIAL_RX_SIZE` in the header).
pub const SERIAL_RX_SIZE: usize = 2048;

/// The receive ring that `uasyncio_serial_rx_isr` fills.
pub static SERIAL_RX: RxRing<SERIAL_RX_SIZE> = RxRing::new();

/// The flag that `uasyncio_serial_tx_ready_isr` sets.
pub static SERIAL_TX_READY: ThreadSafeFlag = ThreadSafeFlag::new();

/// Copies `len` received bytes from `bytes` into [`SERIAL_RX`] and wakes its reader; returns
/// the number accepted (the rest are counted as overruns). A null `bytes` or `len` 0
/// accepts nothing. ISR-safe.
///
/// # Safety
/// `bytes` must be null or valid for reads of `len` bytes for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_serial_rx_isr(bytes: *const u8, len: usize) -> usize {
    if bytes.is_null() || len == 0 {
        return 0;
    }
    // SAFETY: the caller guarantees `bytes` is valid for `len` bytes (see above).
    let slice = unsafe { core::slice::from_raw_parts(bytes, len) };
    SERIAL_RX.push_from_isr(slice)
}

/// Bytes [`SERIAL_RX`] has dropped because it was full (wraps at 2^32). ISR-safe.
#[no_mangle]
pub extern "C" fn uasyncio_serial_rx_overruns() -> u32 {
    SERIAL_RX.overruns()
}

/// Sets [`SERIAL_TX_READY`]: the transmitter has room again. ISR-safe.
#[no_mangle]
pub extern "C" fn uasyncio_serial_tx_ready_isr() {
    SERIAL_TX_READY.set();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn c_entry_points_feed_the_ring() {
        let bytes = b"RING\r\n";
        // SAFETY: valid pointer and length.
        assert_eq!(unsafe { uasyncio_serial_rx_isr(bytes.as_ptr(), bytes.len()) }, 6);
        // SAFETY: null is allowed.
        assert_eq!(unsafe { uasyncio_serial_rx_isr(core::ptr::null(), 5) }, 0);
        assert_eq!(uasyncio_serial_rx_overruns(), 0);
        uasyncio_serial_tx_ready_isr();
        assert!(SERIAL_TX_READY.is_set());
        let mut r = SERIAL_RX.reader().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.pop(&mut buf), 6);
    }
}
