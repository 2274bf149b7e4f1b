//! Network devices a [`crate::Stack`] can drive.
//!
//! A device is a smoltcp [`Device`](smoltcp::phy::Device) plus one thing smoltcp does not
//! have: a way to tell the event loop that frames arrived. [`NetDevice::poll_rx_ready`]
//! registers the stack driver's waker; the device calls it when a frame may be waiting
//! (from the loop thread, another thread, or an interrupt handler — a `Waker` from uasyncio
//! is sound in all three). The driver task never spins: it sleeps until this waker, a socket
//! operation, or smoltcp's own deadline.
//!
//! Provided devices:
//! - [`pair`]: two devices wired back to back in memory, with optional loss and reordering
//!   (tests, and trying the API without a network: `net/examples/pair_echo.rs`; run the
//!   loop on virtual time, `Loop::use_virtual_time`, for loss tests);
//! - `tap` (only with the feature `std`, and so in these docs only when built with it): a
//!   Linux TAP interface, read by a helper thread that waits in `poll(2)` and wakes the loop.

use core::task::{Context, Poll};

pub mod pair;
#[cfg(feature = "std")]
pub mod tap;

/// A smoltcp device that can wake the event loop when frames arrive.
pub trait NetDevice: smoltcp::phy::Device {
    /// `Ready` if a received frame may be waiting (a spurious `Ready` is harmless: the
    /// driver then finds nothing to receive). Otherwise remember `cx`'s waker and wake it
    /// when a frame arrives, and return `Pending`.
    fn poll_rx_ready(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
