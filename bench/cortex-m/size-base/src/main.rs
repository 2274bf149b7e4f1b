//! Size baseline: reset vector, panic handler, allocator and C stubs; no uasyncio API.
#![no_std]
#![no_main]

#[path = "../../common/stubs.rs"]
mod stubs;

#[no_mangle]
pub extern "C" fn size_entry() -> i32 {
    stubs::keep_all();
    0
}
