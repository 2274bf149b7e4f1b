//! MicroPython's asyncio blink example on Zephyr:
//!
//! ```python
//! async def blink(led, period_ms):
//!     while True:
//!         led.on()
//!         await asyncio.sleep_ms(5)
//!         led.off()
//!         await asyncio.sleep_ms(period_ms)
//!
//! async def main(led1, led2):
//!     asyncio.create_task(blink(led1, 700))
//!     asyncio.create_task(blink(led2, 400))
//!     await asyncio.sleep_ms(10_000)
//! ```
//!
//! Here `main` sleeps 3 s instead of 10 s. The uasyncio module starts the loop thread at
//! boot and calls [`rust_main`]; the LEDs are C functions of the firmware (`main.c`).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use alloc::rc::Rc;
use core::cell::Cell;
use core::ffi::{c_int, c_uint};

use uasyncio::{create_task, run, sleep_ms, ticks_ms};

extern "C" {
    fn board_led_set(led: c_int, on: c_int);
    fn board_blink_done(elapsed_ms: u32, led1: c_uint, led2: c_uint);
}

/// An LED of the board, driven through the firmware's C function; counts its blinks.
struct Led {
    id: c_int,
    blinks: Cell<c_uint>,
}

impl Led {
    const fn new(id: c_int) -> Self {
        Led {
            id,
            blinks: Cell::new(0),
        }
    }

    fn on(&self) {
        self.blinks.set(self.blinks.get() + 1);
        // SAFETY: plain C function of the firmware; called from the loop thread only.
        unsafe { board_led_set(self.id, 1) }
    }

    fn off(&self) {
        // SAFETY: as above.
        unsafe { board_led_set(self.id, 0) }
    }
}

/// Blinks `led` forever: on for 5 ms, off for `period_ms`. Cancelled at an await point, it
/// stops there (the LED stays in its last state).
async fn blink(led: Rc<Led>, period_ms: u32) -> uasyncio::Result<()> {
    loop {
        led.on();
        sleep_ms(5).await?;
        led.off();
        sleep_ms(period_ms).await?;
    }
}

/// The loop thread's body: runs `main` until it returns, then reports.
#[no_mangle]
pub extern "C" fn rust_main() {
    // Tasks run on this one thread, so they may share plain `Rc`s.
    let (led1, led2) = (Rc::new(Led::new(1)), Rc::new(Led::new(2)));
    let (l1, l2) = (led1.clone(), led2.clone());

    let t0 = ticks_ms();
    let result = run(async move {
        create_task(blink(l1, 700));
        create_task(blink(l2, 400));
        sleep_ms(3_000).await
    });
    let elapsed = (ticks_ms() - t0) as u32;
    if let Err(e) = result {
        log::error!("blink: main failed: {e}");
    }
    // SAFETY: plain C function of the firmware.
    unsafe { board_blink_done(elapsed, led1.blinks.get(), led2.blinks.get()) }
}
