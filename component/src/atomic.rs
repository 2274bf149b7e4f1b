//! Atomics used by the cross-context wake path, switched to `loom`'s under `--cfg loom` so the
//! same code is model-checked (see `src/loom_tests.rs`).
//!
//! On targets without atomic read-modify-write (Armv6-M: `thumbv6m-none-eabi`, Cortex-M0/M0+/M1)
//! the same names come from `portable-atomic`, whose `critical-section` fallback runs each
//! read-modify-write inside `critical_section::with`, and `Arc` from `portable-atomic-util`
//! (built on those atomics). The lock-free arguments of the wake path still hold there: each
//! compare-and-swap or swap is one indivisible step with respect to every task and every
//! interrupt the critical section masks (on FreeRTOS all that may call the kernel), which is
//! all they assume; what is lost is only that a setter never masks interrupts.

#[cfg(loom)]
// AtomicI32 and AtomicU8 serve only the C API (`ffi`) and the no_std loop slot.
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

#[cfg(all(not(loom), target_has_atomic = "ptr"))]
// AtomicI32 and AtomicU8 serve only the C API (`ffi`) and the no_std loop slot.
#[allow(unused_imports)]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

#[cfg(all(not(loom), not(target_has_atomic = "ptr")))]
// AtomicI32 and AtomicU8 serve only the C API (`ffi`) and the no_std loop slot.
#[allow(unused_imports)]
pub(crate) use portable_atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

#[cfg(target_has_atomic = "ptr")]
pub(crate) use alloc::sync::Arc;

#[cfg(not(target_has_atomic = "ptr"))]
pub(crate) use portable_atomic_util::Arc;
