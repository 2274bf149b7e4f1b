//! Size: the core runtime alone: `run`, `create_task` (and awaiting the task), `sleep_ms`.
#![no_std]
#![no_main]

#[path = "../../common/stubs.rs"]
mod stubs;

#[no_mangle]
pub extern "C" fn size_entry() -> i32 {
    stubs::keep_all();
    let r = uasyncio::run(async {
        let t = uasyncio::create_task(async {
            uasyncio::sleep_ms(core::hint::black_box(10)).await?;
            Ok(core::hint::black_box(1u32))
        });
        uasyncio::sleep_ms(0).await?;
        t.await
    });
    match r {
        Ok(v) => v as i32,
        Err(_) => -1,
    }
}
