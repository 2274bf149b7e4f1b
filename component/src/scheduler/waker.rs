//! The waker of every task, and where a wake goes.
//!
//! A wake on the loop's own thread of a task that is not being polled costs a `fetch_or` on
//! the task's state word and a push to the loop's ready queue; a task that wakes itself (a
//! yield) costs no atomic operation at all: its `SCHEDULED` bit is still set from the poll,
//! and the loop requeues it when the poll returns. A wake from another thread or an interrupt
//! handler goes through the cross-context path of the layer below (`raw::wake`), which takes
//! one reference to the task with it (the state word's protocol: [`Header::notify_remote`]).

use core::ptr::{self, NonNull};
use core::task::{RawWaker, RawWakerVTable, Waker};

use crate::raw::{counted_ref_on_loop, drop_ref, inc_ref, Header};

/// Marks the task ready and puts it in its loop's queue, unless it already is in one.
///
/// Callable from any thread and from interrupt context: from a foreign context it touches
/// only atomics, the wake stack and (if the loop sleeps) the semaphore.
pub(crate) fn schedule(ptr: NonNull<Header>) {
    // SAFETY: `counted` false: the caller keeps its reference, which keeps the header alive.
    unsafe { schedule_with(ptr, false) }
}

/// [`schedule`] for a caller that owns a reference to the task and gives it up (the waiter
/// slot of a `ThreadSafeFlag`): a queue entry takes that reference over, instead of taking a
/// new one while the caller gives its own back — two atomic operations less on the interrupt
/// → task path. Same contexts as `schedule`.
///
/// # Safety
/// The caller owns one reference to `ptr` and does not use it afterwards.
pub(crate) unsafe fn schedule_owned(ptr: NonNull<Header>) {
    // SAFETY: the caller's contract is `schedule_with`'s with `counted`.
    unsafe { schedule_with(ptr, true) }
}

/// Both: `counted` says whether the caller hands its reference over (a queue entry takes it,
/// or it is given back here) or keeps it (an entry gets a new one).
///
/// # Safety
/// The caller owns a reference to `ptr`; with `counted`, it does not use it afterwards.
#[inline(always)]
unsafe fn schedule_with(ptr: NonNull<Header>, counted: bool) {
    // SAFETY: the caller's reference keeps the header alive.
    let header = unsafe { ptr.as_ref() };
    // The context is asked once: an interrupt handler is never the loop's thread, so it goes
    // straight to the cross-context path without asking the loop's slot.
    let isr = rtos_shims::in_isr();
    // SAFETY: not an interrupt handler (`isr` is false); `counted` as the caller's.
    if !isr && unsafe { super::wake_local(ptr, counted) } {
        return;
    }
    if header.notify_remote(isr) {
        // Not on the loop's thread: the wake stack entry takes a reference over.
        if !counted {
            inc_ref(ptr);
        }
        header.shared.push_remote(ptr, isr);
    } else if counted {
        // Queued already, or being polled (the loop polls it again):
        // SAFETY: the caller's reference, given back once.
        unsafe { drop_ref(ptr) };
    }
}

static WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

fn header_ptr(data: *const ()) -> NonNull<Header> {
    // SAFETY (of the non-null claim): every RawWaker of this vtable is made from a
    // `NonNull<Header>` in `waker` or `waker_clone`.
    NonNull::new(data.cast_mut().cast::<Header>()).unwrap_or(NonNull::dangling())
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    inc_ref(header_ptr(data));
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    let ptr = header_ptr(data);
    schedule(ptr);
    // SAFETY: `wake` consumes the waker, which owned one reference.
    unsafe { drop_ref(ptr) };
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    schedule(header_ptr(data));
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the dropped waker owned one reference.
    unsafe { drop_ref(header_ptr(data)) };
}

/// A copy of the waker of the task this thread's loop is polling, made from a reference the
/// task's loop-thread references hold spare (the last wake handed one over) instead of an
/// atomic increment where there is one ([`counted_ref_on_loop`]): what a task's join slot
/// and the loop's wait queues keep for a task that awaits them itself.
///
/// # Safety
/// `ptr` is the task this thread's loop is polling now: we are on its loop's thread and the
/// loop holds a `TaskRef` to it for the whole poll.
pub(crate) unsafe fn spare_waker(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the caller's contract is `counted_ref_on_loop`'s.
    let ptr = unsafe { counted_ref_on_loop(ptr) };
    // The vtable upholds the RawWaker contract (see `waker_ref`), and the waker owns the
    // counted reference just made, which its drop or wake gives back.
    // SAFETY: as just argued.
    unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr().cast_const().cast(), &WAKER_VTABLE)) }
}

/// A waker that borrows the caller's reference (no refcount traffic): the loop's poll path.
pub(crate) fn waker_ref(ptr: &NonNull<Header>) -> core::mem::ManuallyDrop<Waker> {
    // SAFETY: the vtable's functions uphold the RawWaker contract (clone takes a reference,
    // wake/drop give one back, `schedule` is safe from any thread). The waker is wrapped in
    // ManuallyDrop so the caller's borrowed reference is never given back, and `clone()` on
    // it takes a reference of its own.
    core::mem::ManuallyDrop::new(unsafe {
        Waker::from_raw(RawWaker::new(ptr.as_ptr().cast_const().cast(), &WAKER_VTABLE))
    })
}

/// The task a waker belongs to, if it is one of ours.
///
/// Inlined at every runtime await (the cancel check); a waker of ours is told by its vtable
/// alone, with no test of its data for null (Cortex-M3: two instructions fewer per check).
#[inline(always)]
pub(crate) fn waker_task(waker: &Waker) -> Option<NonNull<Header>> {
    if ptr::eq(waker.vtable(), &WAKER_VTABLE) {
        // Every RawWaker of this private vtable is made here, from a `NonNull<Header>`
        // (`spare_waker`, `waker_ref`, `waker_clone`), so its data is not null.
        // SAFETY: as just argued.
        Some(unsafe { NonNull::new_unchecked(waker.data().cast_mut().cast::<Header>()) })
    } else {
        None
    }
}

/// A yield's poll (`sleep(0)`) by a task of ours that its loop is polling, with no cancel
/// pending: `Some(true)` on the second poll (done), `Some(false)` on the first, the task
/// marked to be queued again when the poll returns (`Requeue::WOKEN`); `None` otherwise
/// (a cancel to take, a waker not of our tasks, a task not being polled): the whole way.
///
/// Neither the loop nor the thread is looked up: only the task's `flags` and `requeue` are
/// read and `requeue` written, atomics (see `raw::cell`'s module docs). From the loop's own
/// thread, a task whose `requeue` is not `IDLE` is the one being polled. From any other
/// thread (a foreign executor polling with our task's waker) the store can only cost the
/// task one poll more, leave that foreign poller unwoken, or leave `WOKEN` on a task that is
/// not being polled until its next poll resets it (meanwhile a yield polled with its waker
/// on the loop's thread takes this path and does not wake it); it cannot lose a wake of the
/// task's own, which only the loop's poll resets.
///
/// The cancel check is `cancel::no_cancel_pending`'s, written out: a shared helper answering
/// with the task compiled the awaiting state machine longer (Cortex-M3: a task switch 137 →
/// 141 and 145 instructions, two shapes tried).
#[inline(always)]
pub(crate) fn own_yield(cx: &core::task::Context<'_>, yielded: bool) -> Option<bool> {
    let task = waker_task(cx.waker())?;
    // The waker owns a counted reference to the task for as long as `cx` lives, and only
    // atomics of its loop-thread part are touched.
    // SAFETY: as just argued, the header is alive and nothing non-atomic is read or written.
    let local = &unsafe { task.as_ref() }.local;
    if local.has(crate::raw::flag::CANCEL_PENDING) {
        return None;
    }
    if yielded {
        return Some(true);
    }
    if !local.yield_if_polled() {
        return None;
    }
    Some(false)
}
