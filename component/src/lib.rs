//! # uasyncio — MicroPython's `asyncio`, as a Rust async runtime for one RTOS thread
//!
//! The API of MicroPython's `asyncio` module, with its names and its behaviour, in idiomatic
//! Rust. The loop runs on **one thread** — an RTOS task on FreeRTOS or Zephyr, any thread on a
//! host — and other threads and interrupt handlers signal it through [`ThreadSafeFlag`].
//!
//! | MicroPython                         | here                                                   |
//! |-------------------------------------|--------------------------------------------------------|
//! | `asyncio.run(coro)`                 | [`run`]                                                |
//! | `asyncio.create_task(coro)`         | [`create_task`] → [`Task`]                             |
//! | `asyncio.current_task()`            | [`current_task`] → [`TaskRef`]                         |
//! | `asyncio.sleep(t)`, `sleep_ms(t)`   | [`sleep`], [`sleep_ms`]                                |
//! | `asyncio.wait_for(aw, t)`, `_ms`    | [`wait_for`], [`wait_for_ms`]                          |
//! | `asyncio.gather(*aws, return_exceptions=…)` | [`gather()`] / [`gather!`], `.return_exceptions()` |
//! | `Task.cancel()`                     | [`Task::cancel`]                                       |
//! | `Event`, `Lock`, `ThreadSafeFlag`   | [`Event`], [`Lock`], [`ThreadSafeFlag`]                |
//! | `asyncio.wait(tasks, timeout, return_when)` (CPython) | [`wait()`], [`wait_ms`], [`FIRST_COMPLETED`], [`FIRST_EXCEPTION`], [`ALL_COMPLETED`] |
//! | `asyncio.TaskGroup`, `ExceptionGroup` (CPython 3.11) | [`TaskGroup::run`], [`TaskGroup::create_task`], [`Error::Group`] |
//! | `Semaphore`, `BoundedSemaphore` (CPython) | [`Semaphore`], [`BoundedSemaphore`] → [`SemaphoreGuard`](sync::SemaphoreGuard) |
//! | `Queue`, `QueueFull`, `QueueEmpty` (CPython) | [`Queue`], [`QueueFull`], [`Error::QueueEmpty`] |
//! | `get_event_loop()`, `new_event_loop()`, `Loop` | [`get_event_loop`], [`new_event_loop`], [`Loop`] |
//! | exceptions                          | [`Error`] (see the table there)                        |
//!
//! A Python `raise` is an `Err` returned from an await; `?` propagates it. Cancellation is
//! cooperative, as in Python: see [`cancel`] and the [`task`] module.
//!
//! ```
//! use uasyncio::{create_task, run, sleep_ms};
//!
//! async fn blink(led: &'static str, period_ms: u32, times: u32) -> uasyncio::Result<()> {
//!     for _ in 0..times {
//!         println!("{led} on");
//!         sleep_ms(5).await?;
//!         println!("{led} off");
//!         sleep_ms(period_ms).await?;
//!     }
//!     Ok(())
//! }
//!
//! run(async {
//!     create_task(blink("LED1", 70, 2));
//!     create_task(blink("LED2", 40, 3));
//!     sleep_ms(200).await
//! }).unwrap();
//! ```
//!
//! ## Crate features
//! - `std` (default): the host port of [`rtos_shims`]. Firmware builds use
//!   `default-features = false` and pick their kernel's port.
//! - `stats` (default): the loop's counters, poll timing and traces (`Loop::stats`,
//!   `measure_polls`, `start_trace` / `stop_trace`, the counters line of
//!   [`task::dump_tasks`]). A firmware asks for it; without it none of this is compiled and
//!   every poll is cheaper (Cortex-M3: a task switch 158 instructions instead of 177). With
//!   `default-features = false` on the host, add it back: `features = ["std", "stats"]`.
//! - `freertos`: the FreeRTOS port of [`rtos_shims`] (`default-features = false`), with its
//!   `critical-section` implementation; `freertos-port`: the port without it.
//! - `zephyr`: the Zephyr port with all three global items; `zephyr-port`: the port without
//!   them (a zephyr-lang-rust app, whose `zephyr` crate brings some).
//! - `critical-section-impl`, `global-allocator`, `panic-handler`: the port's global items
//!   (one of each per firmware; see [`rtos_shims`]' "Global items").
//! - `ffi`: the C API of `component/include/uasyncio.h` (`uasyncio::ffi`).
//! - `diagnostics`: counts live task allocations (`diagnostics::allocated_task_cells`).
//! - `rtos-trace`: calls the `rtos-trace` hooks (SEGGER SystemView and the like); off, no code.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// Runs `$body` with `$fut` moved to the heap first when the future is larger than
/// [`task::LARGE_FUTURE_BYTES`], else with `$fut` as it is. Used where a caller's future enters
/// the runtime by value: passed on by value through the layers below (`run` → the main task →
/// `create_task` → the task's cell), a large future was copied onto the stack at each of them
/// (Cortex-M3 and x86-64 release builds: a 6 KiB future took about 19 KiB of the loop
/// thread's stack, 3 copies; a new user's firmware hard-faulted). Boxed here, what moves on
/// is a pointer, and the future is copied once, from the caller's frame to the heap. The
/// size test is a constant: each instantiation keeps one branch.
///
/// Used only where the future is first stored or wrapped (`create_task`, `promote_to_task`,
/// `TaskGroup::create_task`); the public functions that pass it on to them (`run`,
/// `run_entry`, `run_until_complete`, `Loop::create_task`, `wait_for`) are
/// `#[inline(always)]`, so no call boundary copies it before it is boxed.
macro_rules! box_if_large {
    ($fut:ident => $body:expr) => {
        if core::mem::size_of_val(&$fut) > $crate::task::LARGE_FUTURE_BYTES {
            let $fut = alloc::boxed::Box::pin($fut);
            $body
        } else {
            $body
        }
    };
}

// The core's layers, bottom up (the `raw` module doc says what each holds); a module uses
// only those listed before it.
mod atomic;
pub mod cancel;
mod error;
mod event_loop;
mod fmt;
pub mod funcs;
mod raw;
mod scheduler;
pub mod sync;
pub mod task;
mod time;

#[cfg(feature = "diagnostics")]
pub mod diagnostics;
#[cfg(feature = "ffi")]
pub mod ffi;

#[cfg(all(test, loom))]
mod loom_tests;

pub use error::{Error, Result, UserError};
pub use event_loop::{get_event_loop, new_event_loop, run, ExceptionContext, ExceptionHandler, Loop};
#[cfg(feature = "stats")]
pub use event_loop::{LoopStats, Trace};
pub use funcs::{
    gather, wait, wait_for, wait_for_ms, wait_ms, ReturnWhen, TaskGroup, ALL_COMPLETED, FIRST_COMPLETED,
    FIRST_EXCEPTION,
};
pub use sync::{
    BoundedSemaphore, Event, Lock, LockGuard, Queue, QueueFull, Semaphore, ThreadSafeFlag, ThreadSafeQueue,
    TryRecvError, TrySendError,
};
pub use task::{all_tasks, create_task, current_task, Task, TaskRef};
pub use time::{sleep, sleep_ms, ticks_ms, Sleep};

/// The FreeRTOS heap (`pvPortMalloc`/`vPortFree`, alignment honoured) as a Rust global
/// allocator, re-exported from [`rtos_shims`] so that a firmware crate needs `uasyncio` as its
/// only dependency:
///
/// ```ignore
/// // Not run: needs a FreeRTOS kernel linked in.
/// #[global_allocator]
/// static HEAP: uasyncio::FreeRtosHeap = uasyncio::FreeRtosHeap;
/// ```
#[cfg(feature = "freertos-port")]
pub use rtos_shims::FreeRtosHeap;
