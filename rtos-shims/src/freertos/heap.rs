//! A `GlobalAlloc` over the FreeRTOS heap (`pvPortMalloc` / `vPortFree`).
//!
//! `pvPortMalloc` aligns to `portBYTE_ALIGNMENT` (8 on Cortex-M3 and on the POSIX port). A
//! larger `Layout::align` is honoured by over-allocating `size + word + align - 1` bytes and
//! returning the first suitably aligned address at least one word inside the block; the
//! block's start is stored in the word just below the returned pointer, where `dealloc` finds
//! it. Requests up to
//! `portBYTE_ALIGNMENT` cost nothing extra.
//!
//! The FreeRTOS heaps lock with `vTaskSuspendAll`, which an interrupt handler must not call:
//! an allocation from interrupt context returns null (an allocation failure) instead.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;

use super::ffi;

/// The FreeRTOS heap as Rust's global allocator. A firmware declares it (or turns on the
/// feature `global-allocator`, which does this for it):
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: rtos_shims::FreeRtosHeap = rtos_shims::FreeRtosHeap;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FreeRtosHeap;

/// Feature `global-allocator`: the firmware's global allocator is the FreeRTOS heap. A second
/// `#[global_allocator]` in the firmware is a compile error naming both crates.
#[cfg(all(feature = "global-allocator", not(test)))]
#[global_allocator]
static GLOBAL_HEAP: FreeRtosHeap = FreeRtosHeap;

fn heap_alignment() -> usize {
    // SAFETY: a `const size_t` defined by the C side, never written.
    unsafe { ffi::uasyncio_rtos_heap_alignment }
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` that nothing else uses until `dealloc`: either `pvPortMalloc`'s own block
// (when its alignment suffices) or an aligned address inside an over-sized block whose start
// is stored just below it. `dealloc` receives the same layout (GlobalAlloc contract) and so
// takes the same branch, freeing exactly what `pvPortMalloc` returned.
unsafe impl GlobalAlloc for FreeRtosHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if super::in_isr() {
            return ptr::null_mut();
        }
        let min_align = heap_alignment();
        if layout.align() <= min_align {
            // SAFETY: a plain C call; it returns null or a block of `size` bytes.
            return unsafe { ffi::pvPortMalloc(layout.size()) }.cast();
        }
        // Room for the stored block start (one word) plus the worst-case padding.
        let word = size_of::<*mut u8>();
        let align = layout.align().max(word);
        let Some(total) = layout.size().checked_add(word + align - 1) else {
            return ptr::null_mut();
        };
        // SAFETY: a plain C call; it returns null or a block of `total` bytes.
        let raw = unsafe { ffi::pvPortMalloc(total) }.cast::<u8>();
        if raw.is_null() {
            return raw;
        }
        let start = raw as usize;
        let offset = ((start + word + align - 1) & !(align - 1)) - start;
        // SAFETY: `offset` is in `word..word + align`, so `aligned` and the `size` bytes after
        // it lie inside the `size + word + align - 1`-byte block.
        let aligned = unsafe { raw.add(offset) };
        // SAFETY: the word below `aligned` lies inside the block (offset >= one word) and is
        // word-aligned because `aligned` is aligned to at least a word.
        unsafe { aligned.cast::<*mut u8>().sub(1).write(raw) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let block = if layout.align() <= heap_alignment() {
            ptr
        } else {
            // SAFETY: `alloc` stored the block's start in the word below `ptr` for this layout.
            unsafe { ptr.cast::<*mut u8>().sub(1).read() }
        };
        // SAFETY: `block` is what `pvPortMalloc` returned, freed once (GlobalAlloc contract).
        unsafe { ffi::vPortFree(block.cast::<c_void>()) }
    }
}
