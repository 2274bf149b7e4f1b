//! A loop's cache of freed task cells, so that a spawn reuses memory instead of calling the
//! allocator (on FreeRTOS `pvPortMalloc`/`vPortFree`: a scheduler suspension and a free-list
//! walk each, most of a spawn's cost on Cortex-M).
//!
//! Cells up to [`MAX_CACHED`] bytes with an alignment of at most [`ALIGN`] are allocated in
//! size classes of [`GRANULE`] bytes (the cell's size rounded up). When such a cell is freed,
//! its memory goes back to its class here instead of to the heap, up to [`PER_CLASS`] blocks
//! per class; beyond that, and for larger cells, the heap as before. What the cache holds is
//! freed when the loop's shared half goes (the last task cell and waker of the loop are gone).
//!
//! ## Who touches what
//! - **Taking** a block happens only in `raw::allocate`, which only the loop's thread calls
//!   (a spawn; or the one-off orphan task, whose `Shared` no other context has seen yet). It
//!   pops from `local`, a plain singly linked list only that thread touches.
//! - **Giving** a block back happens wherever the last reference to a cell is dropped: the
//!   loop's thread, another thread, or an interrupt handler (a waker's last reference). It
//!   pushes onto `returned`, the same lock-free stack the wake path uses
//!   ([`WakeStack`]: one compare-and-swap, no lock, no allocation),
//!   with the block's own first word as the link.
//! - When `local` is empty, the loop's thread takes the whole `returned` stack with one swap
//!   (single consumer, so no ABA) and makes it its `local` list.
//! - A block freed **on the loop's thread** (the last `TaskRef` dropped there: the common
//!   case) goes straight onto `local` instead (`give_local`), no atomic operation involved.
//! - `count` (blocks on `returned`) is an atomic: a give from any context increments it only
//!   if below the cap; `local_len` (blocks on `local`) is the loop thread's own and capped the
//!   same way on `give_local`. Blocks moved from `returned` to `local` keep the total at
//!   most 2 × [`PER_CLASS`] per class.

use alloc::alloc::{alloc, dealloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};

use super::wake::{Linked, WakeStack};
use crate::atomic::{AtomicPtr, AtomicU32, Ordering};

/// Size classes are multiples of this many bytes.
pub(crate) const GRANULE: usize = 32;
/// Largest cell the cache serves.
pub(crate) const MAX_CACHED: usize = 256;
/// Largest alignment the cache serves (cached blocks are allocated with it).
pub(crate) const ALIGN: usize = 8;
/// Blocks kept per class at most.
pub(crate) const PER_CLASS: u32 = 16;
const CLASSES: usize = MAX_CACHED / GRANULE;

/// A freed block, reinterpreted: its first word links it into a list.
#[repr(C)]
pub(crate) struct FreeBlock {
    next: AtomicPtr<FreeBlock>,
}

impl Linked for FreeBlock {
    fn next(&self) -> &AtomicPtr<Self> {
        &self.next
    }

    unsafe fn release(node: NonNull<Self>) {
        // Never called: the cache's stack is never closed (`close` is not used on it).
        let _ = node;
    }
}

struct Class {
    /// Blocks given back from any context.
    returned: WakeStack<FreeBlock>,
    /// Blocks the loop's thread may take: a plain list (see the module docs).
    local: UnsafeCell<*mut FreeBlock>,
    /// Blocks in `local` (loop's thread only).
    local_len: UnsafeCell<u32>,
    /// Blocks in `returned`.
    count: AtomicU32,
}

/// The cache of one loop (in its `Shared` half).
pub(crate) struct CellCache {
    classes: [Class; CLASSES],
}

// SAFETY: `local` is only touched by the loop's thread (`take`, and `Drop`, which runs when
// no other reference to the cache exists); `returned` and `count` are atomics. See the
// module docs.
unsafe impl Sync for CellCache {}
// SAFETY: as above: moving the cache between threads moves plain pointers to blocks it owns.
unsafe impl Send for CellCache {}

/// The class and block layout for a cell of `layout`, if the cache serves it.
#[inline]
pub(crate) fn class_of(layout: Layout) -> Option<(usize, Layout)> {
    if layout.size() > MAX_CACHED || layout.align() > ALIGN || layout.size() == 0 {
        return None;
    }
    let class = (layout.size() - 1) / GRANULE;
    let block = Layout::from_size_align((class + 1) * GRANULE, ALIGN).ok()?;
    Some((class, block))
}

impl CellCache {
    pub(crate) fn new() -> Self {
        CellCache {
            classes: core::array::from_fn(|_| Class {
                returned: WakeStack::new(),
                local: UnsafeCell::new(ptr::null_mut()),
                local_len: UnsafeCell::new(0),
                count: AtomicU32::new(0),
            }),
        }
    }

    /// A block for a cell of `layout`: from the cache if it has one, else from the heap (with
    /// the class's layout when the cache serves it, so the block can come back here). Null
    /// when the heap is exhausted.
    ///
    /// # Safety
    /// Called on the loop's thread only (see the module docs).
    #[inline]
    pub(crate) unsafe fn take(&self, layout: Layout) -> *mut u8 {
        let Some((class, block)) = class_of(layout) else {
            // SAFETY: a cell's layout is never zero-sized (it holds a header).
            return unsafe { alloc(layout) };
        };
        // SAFETY: loop thread only (this function's contract).
        if let Some(b) = unsafe { self.pop_local(class) } {
            return b;
        }
        // SAFETY: as above.
        unsafe { self.take_slow(class, block) }
    }

    /// The next block of `class`'s own list, if it has one.
    ///
    /// # Safety
    /// Called on the loop's thread only (see the module docs).
    #[inline(always)]
    unsafe fn pop_local(&self, class: usize) -> Option<*mut u8> {
        let c = &self.classes[class];
        // Loop thread only (this function's contract): no other access to `local` and
        // `local_len`, so the two exclusive borrows are the only ones.
        // SAFETY: as just argued.
        let (local, local_len) = unsafe { (&mut *c.local.get(), &mut *c.local_len.get()) };
        let b = NonNull::new(*local)?;
        // SAFETY: a block of our list; its link was written when it joined it.
        *local = unsafe { b.as_ref() }.next.load(Ordering::Relaxed);
        *local_len -= 1;
        Some(b.as_ptr().cast())
    }

    /// [`take`](Self::take) when `class`'s own list is empty: the blocks other contexts gave
    /// back become the list, or the heap gives a new block. Out of line: one copy for every
    /// cell type, off the common path.
    ///
    /// # Safety
    /// Called on the loop's thread only (see the module docs).
    #[inline(never)]
    unsafe fn take_slow(&self, class: usize, block: Layout) -> *mut u8 {
        let c = &self.classes[class];
        // Loop thread only (this function's contract): no other access to `local` and
        // `local_len`, so the two exclusive borrows are the only ones.
        // SAFETY: as just argued.
        let (local, local_len) = unsafe { (&mut *c.local.get(), &mut *c.local_len.get()) };
        let mut list: *mut FreeBlock = ptr::null_mut();
        let mut tail: *mut FreeBlock = ptr::null_mut();
        let mut n = 0;
        c.returned.drain(|b| {
            n += 1;
            // Keep the order (oldest first): append at the tail.
            // SAFETY: a drained block is ours alone; its link is written before use.
            unsafe { b.as_ref() }.next.store(ptr::null_mut(), Ordering::Relaxed);
            if tail.is_null() {
                list = b.as_ptr();
            } else {
                // SAFETY: `tail` is a block of this list, ours alone.
                unsafe { &*tail }.next.store(b.as_ptr(), Ordering::Relaxed);
            }
            tail = b.as_ptr();
        });
        *local = list;
        if n > 0 {
            c.count.fetch_sub(n, Ordering::Relaxed);
            *local_len = n;
        }
        // SAFETY: loop thread only (the contract).
        if let Some(b) = unsafe { self.pop_local(class) } {
            return b;
        }
        // SAFETY: the class layout is not zero-sized.
        unsafe { alloc(block) }
    }

    /// Gives back the block of a freed cell of `layout` (its contents already dropped).
    /// Callable from any context, an interrupt handler included (see the module docs).
    ///
    /// # Safety
    /// `ptr` came from [`take`](Self::take) of this cache with the same `layout`, and nothing
    /// uses it any more.
    pub(crate) unsafe fn give(&self, ptr: *mut u8, layout: Layout) {
        let Some((class, block)) = class_of(layout) else {
            // SAFETY: allocated by `take` with this layout (uncached classes use it as is).
            unsafe { dealloc(ptr, layout) };
            return;
        };
        let c = &self.classes[class];
        let kept = c
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < PER_CLASS).then_some(n + 1)
            })
            .is_ok();
        if !kept {
            // SAFETY: allocated by `take` with the class layout.
            unsafe { dealloc(ptr, block) };
            return;
        }
        let node = ptr.cast::<FreeBlock>();
        // SAFETY: the block is at least GRANULE bytes, aligned to ALIGN, and unused: room for
        // the link, written before the block is published by the push.
        unsafe {
            node.write(FreeBlock {
                next: AtomicPtr::new(ptr::null_mut()),
            })
        };
        // SAFETY: just written, non-null (it came from the allocator).
        let node = unsafe { NonNull::new_unchecked(node) };
        // The stack is never closed and never asleep: the push succeeds and asks for no signal.
        let _ = c.returned.push(node);
    }
}

impl CellCache {
    /// [`give`](Self::give) on the loop's thread: the block goes straight to the loop's own
    /// list (no atomic operation), up to [`PER_CLASS`] blocks there.
    ///
    /// # Safety
    /// As [`give`](Self::give), and called on the loop's thread only (as `take`).
    pub(crate) unsafe fn give_local(&self, ptr: *mut u8, layout: Layout) {
        let Some((class, block)) = class_of(layout) else {
            // SAFETY: allocated by `take` with this layout (uncached classes use it as is).
            unsafe { dealloc(ptr, layout) };
            return;
        };
        let c = &self.classes[class];
        // Loop thread only (this function's contract): no other access to `local` and
        // `local_len`, so the two exclusive borrows are the only ones.
        // SAFETY: as just argued.
        let (local, local_len) = unsafe { (&mut *c.local.get(), &mut *c.local_len.get()) };
        if *local_len >= PER_CLASS {
            // SAFETY: allocated by `take` with the class layout.
            unsafe { dealloc(ptr, block) };
            return;
        }
        let node = ptr.cast::<FreeBlock>();
        // SAFETY: the block is at least GRANULE bytes, aligned to ALIGN, and unused: room for
        // the link; the list is this thread's alone.
        unsafe {
            node.write(FreeBlock {
                next: AtomicPtr::new(*local),
            })
        };
        *local = node;
        *local_len += 1;
    }
}

impl Drop for CellCache {
    fn drop(&mut self) {
        for (class, c) in self.classes.iter_mut().enumerate() {
            let Ok(block) = Layout::from_size_align((class + 1) * GRANULE, ALIGN) else {
                continue;
            };
            let mut free = |b: NonNull<FreeBlock>| {
                // SAFETY: every block in the cache was allocated with its class layout and is
                // unused; `&mut self`: nothing else can reach the cache.
                unsafe { dealloc(b.as_ptr().cast(), block) };
            };
            let mut node = *c.local.get_mut();
            while let Some(b) = NonNull::new(node) {
                // SAFETY: a block of the local list; read its link before freeing it.
                node = unsafe { b.as_ref() }.next.load(Ordering::Relaxed);
                free(b);
            }
            c.returned.drain(&mut free);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    extern crate std;
    use alloc::vec::Vec;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn classes_round_up_and_big_or_overaligned_cells_are_not_cached() {
        assert_eq!(class_of(layout(1)).map(|(c, b)| (c, b.size())), Some((0, 32)));
        assert_eq!(class_of(layout(32)).map(|(c, b)| (c, b.size())), Some((0, 32)));
        assert_eq!(class_of(layout(33)).map(|(c, b)| (c, b.size())), Some((1, 64)));
        assert_eq!(class_of(layout(256)).map(|(c, b)| (c, b.size())), Some((7, 256)));
        assert!(class_of(layout(257)).is_none());
        assert!(class_of(Layout::from_size_align(64, 16).unwrap()).is_none());
    }

    #[test]
    fn a_block_given_on_the_loop_thread_is_reused_and_its_cap_holds() {
        let cache = CellCache::new();
        let l = layout(40);
        // SAFETY: one thread plays the loop's; every block given back came from `take`.
        unsafe {
            let a = cache.take(l);
            cache.give_local(a, l);
            assert_eq!(cache.take(l), a, "the block comes back");
            let blocks: Vec<*mut u8> = (0..PER_CLASS + 3).map(|_| cache.take(l)).collect();
            for b in &blocks {
                cache.give_local(*b, l);
            }
            assert_eq!(*cache.classes[1].local_len.get(), PER_CLASS);
            let mut held: Vec<*mut u8> = (0..PER_CLASS).map(|_| cache.take(l)).collect();
            assert_eq!(*cache.classes[1].local_len.get(), 0);
            // A block given from elsewhere joins the loop's list once that runs dry.
            cache.give(a, l);
            assert_eq!(cache.take(l), a);
            assert_eq!(cache.classes[1].count.load(Ordering::Relaxed), 0);
            held.push(a);
            // Miri checks that nothing leaks or is freed twice (here and in the cache's Drop).
            for b in held {
                cache.give_local(b, l);
            }
        }
    }

    #[test]
    fn a_freed_block_is_reused_and_the_cap_holds() {
        let cache = CellCache::new();
        let l = layout(100);
        // SAFETY: one thread plays the loop's; every block given back came from `take`.
        unsafe {
            let a = cache.take(l);
            cache.give(a, l);
            assert_eq!(cache.take(l), a, "the block comes back");
            cache.give(a, l);
            // More than the cap: the extra blocks go to the heap (Miri checks nothing leaks
            // and nothing is freed twice, here and in the cache's Drop).
            let blocks: Vec<*mut u8> = (0..PER_CLASS + 4).map(|_| cache.take(l)).collect();
            for b in &blocks {
                cache.give(*b, l);
            }
            assert_eq!(cache.classes[3].count.load(Ordering::Relaxed), PER_CLASS);
            let big = layout(1000);
            let b = cache.take(big);
            cache.give(b, big);
        }
    }

    #[test]
    fn blocks_given_back_on_other_threads_are_taken_in_order() {
        let cache = std::sync::Arc::new(CellCache::new());
        let l = layout(48);
        // SAFETY: this thread is the only one that takes.
        let blocks: Vec<usize> = (0..8).map(|_| unsafe { cache.take(l) } as usize).collect();
        let c2 = cache.clone();
        let given = blocks.clone();
        std::thread::spawn(move || {
            for b in given {
                // SAFETY: each block came from `take` with `l` and is unused.
                unsafe { c2.give(b as *mut u8, l) };
            }
        })
        .join()
        .unwrap();
        // SAFETY: the taking thread.
        let again: Vec<usize> = (0..8).map(|_| unsafe { cache.take(l) } as usize).collect();
        assert_eq!(again, blocks, "oldest first");
        for b in again {
            // SAFETY: as above.
            unsafe { cache.give(b as *mut u8, l) };
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::sync::Arc;

    /// A block given back on another thread while the loop takes: the loop gets either a
    /// cached block or a fresh one, never a block twice, and nothing leaks (loom checks).
    #[test]
    fn give_races_take() {
        loom::model(|| {
            let cache = Arc::new(CellCache::new());
            let l = Layout::from_size_align(40, 8).unwrap();
            // SAFETY: the model's main thread is the loop's.
            let a = unsafe { cache.take(l) } as usize;
            let c2 = cache.clone();
            let t = loom::thread::spawn(move || {
                // SAFETY: `a` came from `take` and the main thread no longer uses it.
                unsafe { c2.give(a as *mut u8, l) };
            });
            // SAFETY: the loop's thread.
            let b = unsafe { cache.take(l) } as usize;
            t.join().unwrap();
            // SAFETY: the loop's thread.
            let c = unsafe { cache.take(l) } as usize;
            assert_ne!(b, c);
            assert!(b == a || c == a || cache.classes[1].count.load(Ordering::Relaxed) == 1);
            // SAFETY: both came from `take`.
            unsafe {
                cache.give(b as *mut u8, l);
                cache.give(c as *mut u8, l);
            }
        });
    }
}
