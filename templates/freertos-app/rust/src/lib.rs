//! The Rust half of the template application: the uasyncio loop's entry (started from C with
//! `uasyncio_start`) and its async tasks.
//!
//! - `irq_counter` awaits `APP_IRQ_FLAG`, which the board's interrupt sets from C
//!   (`uasyncio_flag_set_from_isr`), until it has seen `IRQ_WAKES` wakes;
//! - `heartbeat` sleeps and prints, like any periodic job;
//! - the main coroutine receives the legacy C task's messages from a uasyncio queue until the
//!   empty "done" message, then waits for the two tasks and returns (the C side reads the
//!   loop's exit code with `uasyncio_loop_state`).
//!
//! The firmware-wide items (global allocator, panic handler) are declared here; the FreeRTOS
//! critical-section implementation comes with uasyncio's `freertos` feature. uasyncio can
//! provide all three (features `critical-section-impl`, `global-allocator`, `panic-handler`;
//! `freertos-port` is the port without any): exactly one of each per firmware.
#![no_std]

extern crate alloc;

use core::ffi::{c_int, c_void};
use core::fmt::{self, Write};

use uasyncio::ffi::{run_entry, MessageQueue, E_INVAL};
use uasyncio::{create_task, sleep_ms, Error, Result, ThreadSafeFlag};

// The C API's symbols (uasyncio.h) are linked from `uasyncio::ffi`.
pub use uasyncio::ffi;

/// The Rust heap is the FreeRTOS heap (`pvPortMalloc`), alignment honoured. (With uasyncio's
/// feature `global-allocator`, uasyncio declares this one: delete these lines.)
#[global_allocator]
static HEAP: uasyncio::FreeRtosHeap = uasyncio::FreeRtosHeap;

/// Set by the board's interrupt through the C API; C declares it with
/// `UASYNCIO_FLAG_DECLARE(APP_IRQ_FLAG)`.
#[no_mangle]
pub static APP_IRQ_FLAG: ThreadSafeFlag = ThreadSafeFlag::new();

const IRQ_WAKES: u32 = 20;
const HEARTBEATS: u32 = 5;

extern "C" {
    fn app_board_write(s: *const u8, len: usize);
    fn app_board_exit(code: c_int) -> !;
    fn app_stack_unused_bytes() -> usize;
}

/// The board's console, for `write!`.
struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `s` is valid for `s.len()` bytes for the duration of the call; the board
        // function only reads them.
        unsafe { app_board_write(s.as_ptr(), s.len()) };
        Ok(())
    }
}

macro_rules! println {
    ($($arg:tt)*) => {{
        let _ = writeln!(Console, $($arg)*);
    }};
}

/// Prints the message and ends the program. (With uasyncio's feature `panic-handler`,
/// uasyncio's handler calls main.c's `uasyncio_panic_hook` instead: delete this function.)
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Console, "\npanic: {info}");
    // SAFETY: ends the program; never returns.
    unsafe { app_board_exit(1) }
}

/// The loop task's entry, passed to `uasyncio_start` by main.c; `arg` is the queue the legacy
/// C task feeds.
///
/// # Safety
/// `arg` is NULL or a queue from `uasyncio_queue_create` (which lives forever).
#[no_mangle]
pub unsafe extern "C" fn app_loop_entry(arg: *mut c_void) -> c_int {
    // SAFETY: by the contract above (main.c passes the queue from `uasyncio_queue_create`).
    let Some(queue) = (unsafe { MessageQueue::from_c(arg) }) else {
        return E_INVAL;
    };
    run_entry(app_main(queue))
}

async fn irq_counter() -> Result<u32> {
    let mut wakes = 0;
    while wakes < IRQ_WAKES {
        APP_IRQ_FLAG.wait().await?;
        wakes += 1;
    }
    Ok(wakes)
}

async fn heartbeat() -> Result<u32> {
    for n in 1..=HEARTBEATS {
        sleep_ms(30).await?;
        println!("rust: heartbeat {n}");
    }
    Ok(HEARTBEATS)
}

async fn app_main(queue: &'static MessageQueue) -> Result<()> {
    println!("rust: loop running");
    let irqs = create_task(irq_counter());
    let beats = create_task(heartbeat());
    let mut buf = [0u8; 4];
    let mut received = 0u32;
    loop {
        let n = queue.recv_into(&mut buf).await?;
        if n == 0 {
            break; // the legacy task's "done"
        }
        let value = u32::from_ne_bytes(buf);
        received += 1;
        if value != received {
            return Err(Error::value("legacy messages out of order"));
        }
    }
    let irq_wakes = irqs.await?;
    let beats = beats.await?;
    println!("rust: {received} messages from the C task, {irq_wakes} interrupt wakes, {beats} heartbeats");
    // SAFETY: a plain C call from the loop task (uxTaskGetStackHighWaterMark(NULL)).
    let unused = unsafe { app_stack_unused_bytes() };
    println!("rust: loop task stack never used: {unused} bytes");
    Ok(())
}
