//! The one logging seam of the crate.
//!
//! Nothing else in the crate names a logging crate. Today the hooks compile to nothing;
//! a `log` or `defmt` backend plugs in here without touching the modules that call them.

/// A device dropped an outgoing frame (`errno` from the OS, 0 if none).
#[inline]
#[allow(dead_code)]
pub(crate) fn trace_frame_drop(_errno: i32) {}
