//! The `freertos` port: FreeRTOS V11 (tested on the POSIX simulator port and on `ARM_CM3`).
//!
//! The kernel's API is mostly macros whose expansion depends on the application's
//! `FreeRTOSConfig.h`, and its integer types change width between ports (`BaseType_t` and
//! `TickType_t` are 64-bit on the POSIX port), so this port does not bind the kernel directly:
//! it calls the real functions of a small C file, `ports/freertos/uasyncio_freertos_port.c`,
//! that the application compiles against its own kernel and configuration. That is also why
//! neither `freertos-rust` nor `freertos-next` is a dependency: both hard-code 32-bit kernel
//! types, and their allocators ignore `Layout::align`. (`freertos-next` still serves, at build
//! time only, as the carrier of the V11.2.0 kernel sources for our tests and firmware.)
//!
//! What the port provides, and the FreeRTOS object behind it:
//!
//! | item                  | FreeRTOS                                                            |
//! |-----------------------|---------------------------------------------------------------------|
//! | [`Semaphore`]         | a direct-to-task notification (index `configTASK_NOTIFICATION_ARRAY_ENTRIES - 1`); [`BinarySemaphore`] is the `xSemaphoreCreateBinary` alternative |
//! | [`LoopSignal`]        | the same notification without the semaphore's flag (the loop's wake stack keeps the state) |
//! | [`now_us`]            | tick count widened to 64 bits, plus the SysTick position on Cortex-M |
//! | [`tick_count`]        | `xTaskGetTickCount()`, a cheap bound on `now_us` (and [`tick_period_us`]) |
//! | [`in_isr`]            | IPSR on Cortex-M; the tick hook's bracket on POSIX                    |
//! | [`current_thread_id`] | `xTaskGetCurrentTaskHandle()`                                        |
//! | [`spawn_thread`]      | `xTaskCreate`; the task deletes itself when the body returns         |
//! | critical section      | `taskENTER_CRITICAL` / `taskENTER_CRITICAL_FROM_ISR` (feature `critical-section-impl`) |
//! | [`FreeRtosHeap`]      | `pvPortMalloc` / `vPortFree`, over-allocating for large alignments; the `#[global_allocator]` with feature `global-allocator` |
//! | `#[panic_handler]`    | feature `panic-handler`: the message to the C hook `uasyncio_panic_hook`, then a stop like a failed `configASSERT` |
//!
//! Misuse is caught with a panic whose message names the call, which on a firmware reaches
//! the panic handler (prints, then stops like a failed `configASSERT`): a task-only call from
//! an interrupt handler, or a blocking wait before the scheduler runs.

#[cfg(feature = "critical-section-impl")]
mod critical;
mod ffi;
mod heap;
#[cfg(all(feature = "panic-handler", not(test)))]
mod panic;
mod semaphore;
mod thread;
mod time;

pub use heap::FreeRtosHeap;
pub use semaphore::{BinarySemaphore, LoopSignal, NotifySemaphore, Semaphore};
pub use thread::{current_thread_id, in_isr, is_current_thread, spawn_thread, stack_high_water_bytes};
pub use time::{now_us, tick_count, tick_period_us};
