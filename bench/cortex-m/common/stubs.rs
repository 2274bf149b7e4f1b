//! What every size-measurement image shares and that is *not* part of the measured runtime:
//! the reset vector, a panic handler that spins, the global allocator and do-nothing stand-ins
//! for the C functions of `ports/freertos/uasyncio_freertos_port.c` and the FreeRTOS heap.
//! `size-base` links exactly this (its entry keeps every stub), so the other images' sizes
//! minus `size-base`'s are the cost of the API each uses. The image is never run.

use core::ffi::{c_char, c_int, c_void};

#[global_allocator]
static HEAP: rtos_shims::FreeRtosHeap = rtos_shims::FreeRtosHeap;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

extern "C" {
    fn size_entry() -> i32;
}

/// The reset handler: runs the image's entry, then spins.
#[no_mangle]
pub extern "C" fn Reset() -> ! {
    // SAFETY: `size_entry` is the image's own `#[no_mangle] extern "C"` function.
    let r = unsafe { size_entry() };
    core::hint::black_box(r);
    // An image that is only measured never runs this; a bare `loop {}` keeps the figures
    // comparable with those of earlier commits (a spin hint would add to every image).
    #[allow(clippy::empty_loop)]
    loop {}
}

#[link_section = ".vector_table.reset"]
#[no_mangle]
#[used]
static RESET_VECTOR: extern "C" fn() -> ! = Reset;

#[no_mangle]
static uasyncio_rtos_heap_alignment: usize = 8;

/// The kernel's running-task pointer, which the port reads directly (a stand-in, as above).
#[no_mangle]
#[allow(non_upper_case_globals)]
static pxCurrentTCB: usize = 1;

macro_rules! stubs {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $val:expr;)*) => {
        $(
            // Opaque (black_box on arguments and result, never inlined) so that LTO cannot
            // fold the runtime's code around a constant result.
            #[no_mangle]
            #[inline(never)]
            pub extern "C" fn $name($($arg: $ty),*) -> $ret {
                $(core::hint::black_box($arg);)*
                core::hint::black_box($val)
            }
        )*
        /// Every stub, for `size-base` to keep.
        pub fn keep_all() {
            $(core::hint::black_box($name as *const ());)*
        }
    };
}

stubs! {
    uasyncio_rtos_sem_create() -> *mut c_void = core::ptr::dangling_mut::<c_void>();
    uasyncio_rtos_sem_delete(s: *mut c_void) -> () = ();
    uasyncio_rtos_sem_give(s: *mut c_void) -> c_int = 0;
    uasyncio_rtos_sem_give_from_isr(s: *mut c_void) -> () = ();
    uasyncio_rtos_sem_take(s: *mut c_void, t: u64) -> c_int = 0;
    uasyncio_rtos_notify_give(t: *mut c_void) -> c_int = 0;
    uasyncio_rtos_notify_give_from_isr(t: *mut c_void) -> () = ();
    uasyncio_rtos_notify_give_isr(t: *mut c_void) -> () = ();
    uasyncio_rtos_notify_take(t: u64) -> c_int = 0;
    uasyncio_rtos_now_us() -> u64 = 0;
    uasyncio_rtos_timeout_ticks(us: u64) -> u64 = us;
    uasyncio_rtos_tick_count() -> u32 = 0;
    uasyncio_rtos_tick_us_ceil() -> u32 = 1000;
    uasyncio_rtos_in_isr() -> c_int = 0;
    uasyncio_rtos_current_task() -> *mut c_void = core::ptr::dangling_mut::<c_void>();
    uasyncio_rtos_thread_id() -> usize = 1;
    uasyncio_rtos_task_create(n: *const c_char, l: usize, s: usize, p: u32, a: *mut c_void) -> c_int = -1;
    uasyncio_rtos_stack_high_water_bytes(t: *mut c_void) -> usize = 0;
    uasyncio_rtos_critical_enter() -> u32 = 0;
    uasyncio_rtos_critical_exit(s: u32) -> () = ();
    pvPortMalloc(n: usize) -> *mut c_void = core::ptr::null_mut();
    vPortFree(p: *mut c_void) -> () = ();
}
