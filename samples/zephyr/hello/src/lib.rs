#![no_std]
use uasyncio::{create_task, run, sleep_ms, ThreadSafeFlag};

/// Set by the interrupt handler in main.c: `uasyncio_flag_set(&BUTTON)`.
#[no_mangle]
pub static BUTTON: ThreadSafeFlag = ThreadSafeFlag::new();

async fn on_button() -> uasyncio::Result<()> {
    let mut presses = 0;
    loop {
        BUTTON.wait().await?;
        presses += 1;
        log::info!("pressed {presses}");
    }
}

/// The loop thread's body; the module starts that thread at boot (CONFIG_UASYNCIO_LOOP_THREAD).
#[no_mangle]
pub extern "C" fn rust_main() {
    let result = run(async {
        create_task(on_button());
        sleep_ms(3000).await?;
        log::info!("done");
        Ok(())
    });
    if let Err(e) = result {
        log::error!("loop: {e}");
    }
}
