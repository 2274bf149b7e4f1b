//! # uasyncio-cellular: a modem on a UART, from the receive interrupt to PPP
//!
//! Layers, each its own module, each using only the ones above it in this list:
//!
//! | module | what it does |
//! |---|---|
//! | [`serial`] | the UART: an interrupt-fed [`serial::RxRing`], an async [`serial::SerialPort`], a host tty, C entry points |
//! | [`at`] | an AT command client: commands, final result codes, intermediate lines, URCs |
//! | [`modem`] | bring-up (sync, echo off, SIM, registration, PDP context, dial) and hang-up |
//! | [`link`] | the supervisor: bring up, run the data link (PPP), hang up, back off, redial |
//!
//! Errors of the whole stack are [`CellularError`], which names the layer a failure
//! happened in and what the user should check.
//!
//! ## Crate features
//! - `std`: the runtime's host port and [`serial::tty`] (a tty or pty as a serial port).
//! - `ffi`: `serial::ffi`, C entry points for a C UART driver's interrupt handler
//!   (`include/uasyncio_serial.h`).
//!
//! ## Tests
//! ```text
//! cargo test -p uasyncio-cellular --features std,ffi          # unit + scenario tests (virtual time)
//! RUSTFLAGS="--cfg loom" cargo test -p uasyncio-cellular --lib --release loom_   # the ring under loom
//! cargo +nightly miri test -p uasyncio-cellular --lib --features std           # under Miri (small sizes)
//! ```
//! The scenario tests (`src/tests.rs`) run the AT client, the modem and the supervisor
//! against a scripted fake modem (`src/testkit.rs`) on an in-memory pipe, on the loop's
//! virtual clock, so guard times and back-offs are checked to the millisecond.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod at;
mod error;
pub mod link;
pub mod modem;
mod select;
pub mod serial;

#[cfg(all(test, not(loom)))]
mod testkit;
#[cfg(all(test, not(loom)))]
mod tests;

pub use error::{CellularError, Layer, RegistrationProblem, SimProblem};
