//! The global allocator: the uasyncio heap of the C shim.
//!
//! With `CONFIG_UASYNCIO_HEAP_SIZE > 0` (the default) the shim owns a `k_heap` of that size,
//! so Rust and C cannot starve each other's heaps; with `0` it uses the system heap through
//! `k_aligned_alloc` / `k_free`. Both honour [`Layout::align`], never block, and are
//! callable from an interrupt handler. Allocation failure returns null, which Rust's
//! `alloc` turns into its allocation-error path (a panic message through printk, then
//! `k_panic`). That message ("memory allocation of 120 bytes failed") does not say which
//! heap ran out, so a refused allocation is remembered in [`LAST_FAILED`] and the panic
//! handler adds a line naming the Kconfig option to raise.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use super::ffi;

/// The uasyncio heap of the C shim as a [`GlobalAlloc`]: the `k_heap` of
/// `CONFIG_UASYNCIO_HEAP_SIZE`, or the system heap when that is 0.
///
/// Feature `global-allocator` (on with `zephyr`) installs it as the `#[global_allocator]`.
/// Without it (`zephyr-port` alone), a firmware that has no allocator yet installs it itself:
///
/// ```ignore
/// // ignore: links only inside a Zephyr build, against the C shim.
/// #[global_allocator]
/// static HEAP: rtos_shims::ZephyrHeap = rtos_shims::ZephyrHeap;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ZephyrHeap;

/// Size in bytes of the last allocation the heap refused (0: none so far). Read by the panic
/// handler; a plain store, so it works on cores without compare-and-swap.
pub(super) static LAST_FAILED: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "global-allocator")]
#[global_allocator]
static HEAP: ZephyrHeap = ZephyrHeap;

// SAFETY: the shim returns memory of at least `size` bytes aligned to `align` or null, and
// frees exactly what it handed out; the kernel heap is internally synchronised.
unsafe impl GlobalAlloc for ZephyrHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: align is a non-zero power of two and size is non-zero (GlobalAlloc contract).
        let ptr: *mut u8 = unsafe { ffi::uasyncio_shim_alloc(layout.align(), layout.size()).cast() };
        if ptr.is_null() {
            LAST_FAILED.store(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from alloc above (GlobalAlloc contract).
        unsafe { ffi::uasyncio_shim_free(ptr.cast()) }
    }
}
