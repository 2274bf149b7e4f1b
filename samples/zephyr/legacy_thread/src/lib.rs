//! The Rust half of the legacy-thread sample: two async tasks fed by a C thread.
//!
//! `main.c` starts this loop with `uasyncio_start()` (uasyncio.h) and passes the message
//! queue it created as the entry's argument. One task receives the C thread's samples from
//! the queue; another waits on the `ALARM` flag that the C thread sets. The entry returns 0
//! when the main coroutine succeeded (`run_entry`), which C reads back with
//! `uasyncio_loop_state()`.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use core::ffi::{c_char, c_int, c_void};

use uasyncio::ffi::{run_entry, MessageQueue};
use uasyncio::{create_task, ThreadSafeFlag};

/// Set by the C thread every fifth sample (`uasyncio_flag_set(&ALARM)`).
#[no_mangle]
pub static ALARM: ThreadSafeFlag = ThreadSafeFlag::new();

const SAMPLES: u32 = 20;

extern "C" {
    fn printk(fmt: *const c_char, ...);
}

/// Waits on the alarm flag forever; each set (or burst of sets) is one wake.
async fn alarms() -> uasyncio::Result<()> {
    let mut n: u32 = 0;
    loop {
        ALARM.wait().await?;
        n += 1;
        // SAFETY: printk with a NUL-terminated format and one u32 for %u.
        unsafe { printk(c"loop: alarm %u from the C thread\n".as_ptr(), n) };
    }
}

/// Receives `SAMPLES` messages of two little-endian `u32`s: (sequence number, value).
async fn samples(queue: &'static MessageQueue) -> uasyncio::Result<()> {
    let mut buf = [0u8; 8];
    for _ in 0..SAMPLES {
        let len = queue.recv_into(&mut buf).await?;
        let n = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let v = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        // SAFETY: printk with a NUL-terminated format; %u, %u, %u match three u32s.
        unsafe { printk(c"loop: sample %u = %u (%u bytes)\n".as_ptr(), n, v, len as u32) };
    }
    // SAFETY: printk with a NUL-terminated format and one u32 for %u.
    unsafe { printk(c"loop: received %u samples\n".as_ptr(), SAMPLES) };
    Ok(())
}

/// The loop thread's entry (`uasyncio_entry_t`); `arg` is the C thread's queue.
///
/// # Safety
/// `arg` is NULL or a queue from `uasyncio_queue_create()` (main.c passes its queue).
#[no_mangle]
pub unsafe extern "C" fn app_loop(arg: *mut c_void) -> c_int {
    // SAFETY: by this function's contract.
    let Some(queue) = (unsafe { MessageQueue::from_c(arg) }) else {
        return -22;
    };
    run_entry(async move {
        create_task(alarms());
        samples(queue).await
    })
}
