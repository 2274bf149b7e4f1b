//! The global allocator: the uasyncio heap of the C shim.
//!
//! With `CONFIG_UASYNCIO_HEAP_SIZE > 0` (the default) the shim owns a `k_heap` of that size,
//! so Rust and C cannot starve each other's heaps; with `0` it uses the system heap through
//! `k_aligned_alloc` / `k_free`. Both honour [`Layout::align`], never block, and are
//! callable from an interrupt handler. Allocation failure returns null, which Rust's
//! `alloc` turns into its allocation-error path (a panic message through printk, then
//! `k_panic`).

use core::alloc::{GlobalAlloc, Layout};

use super::ffi;

struct ZephyrHeap;

#[global_allocator]
static HEAP: ZephyrHeap = ZephyrHeap;

// SAFETY: the shim returns memory of at least `size` bytes aligned to `align` or null, and
// frees exactly what it handed out; the kernel heap is internally synchronised.
unsafe impl GlobalAlloc for ZephyrHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: align is a non-zero power of two and size is non-zero (GlobalAlloc contract).
        unsafe { ffi::uasyncio_shim_alloc(layout.align(), layout.size()).cast() }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from alloc above (GlobalAlloc contract).
        unsafe { ffi::uasyncio_shim_free(ptr.cast()) }
    }
}
