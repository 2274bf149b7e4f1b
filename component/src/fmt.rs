//! The one logging shim: every module logs through these macros, never through `log` directly,
//! so a port can route them elsewhere (Zephyr's printk, or nothing) in one place.

macro_rules! log_error {
    ($($arg:tt)*) => { ::log::error!(target: "uasyncio", $($arg)*) };
}

pub(crate) use log_error as error;
