//! The loop thread's sleep: a binary semaphore, two ways.
//!
//! The event loop blocks here when it has nothing ready, until a waker gives it or the
//! nearest deadline passes. Two FreeRTOS objects can do that job:
//!
//! - [`BinarySemaphore`]: `xSemaphoreCreateBinary`. A kernel queue object (~80 bytes of heap
//!   on Cortex-M); any task may take it.
//! - [`NotifySemaphore`]: a direct-to-task notification (`xTaskNotifyGiveIndexed` /
//!   `ulTaskNotifyTakeIndexed`) on the index `configTASK_NOTIFICATION_ARRAY_ENTRIES - 1`. No
//!   kernel object at all; the give/take path is shorter (see the figures below). The task
//!   that takes is recorded at each `take` so gives know whom to notify; a give that comes
//!   before any take is remembered in an atomic flag, which is also what makes two gives
//!   before a take count once (a notification is a counter).
//!
//! [`Semaphore`] names the faster one, measured on both kernels (figures in
//! `ports/freertos/README.md`).
//!
//! Both are used the same way: one task takes (the loop thread); any task gives with `give`,
//! any interrupt handler with `give_from_isr`, which requests a context switch when it woke a
//! task of higher priority than the one it interrupted.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use super::{ffi, time};
use crate::Error;

/// This port's binary semaphore: [`NotifySemaphore`], the faster of the two. (The event loop
/// itself sleeps on a [`LoopSignal`], which needs no flag of its own.)
pub type Semaphore = NotifySemaphore;

/// Panics with a message naming `call` if the C side refused it (`rc` negative: an interrupt
/// handler, or the scheduler not running). The test is inline; the message and the panic
/// are built only on the refusal (cold), so a successful call pays one compare.
#[track_caller]
#[inline(always)]
fn check_task_context(rc: core::ffi::c_int, call: &str) {
    if rc < 0 {
        task_context_refused(rc, call);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn task_context_refused(rc: core::ffi::c_int, call: &str) {
    match rc {
        ffi::MISUSE => {
            panic!("rtos_shims::{call} called from an interrupt handler (task context only; an ISR may only give_from_isr)")
        }
        ffi::NOT_RUNNING => {
            panic!("rtos_shims::{call} would block before the FreeRTOS scheduler runs; call it from a task")
        }
        _ => {}
    }
}

#[track_caller]
fn check_not_isr(call: &str) {
    if super::in_isr() {
        panic!(
            "rtos_shims::{call} called from an interrupt handler (task context only; an ISR may only give_from_isr)"
        );
    }
}

/// A binary semaphore over `xSemaphoreCreateBinary`.
#[derive(Debug)]
pub struct BinarySemaphore {
    handle: *mut c_void,
}

// SAFETY: a FreeRTOS semaphore handle may be used from any task (task API) and any interrupt
// handler (FromISR API); the kernel serialises access internally. The handle is only deleted
// in `drop`, when no `&self` borrow (and so no give or take) can be in progress.
unsafe impl Send for BinarySemaphore {}
// SAFETY: see `Send`: every method takes `&self` and maps to a kernel call that is safe to
// make concurrently.
unsafe impl Sync for BinarySemaphore {}

impl BinarySemaphore {
    /// Creates the semaphore in the taken (empty) state. Task context only.
    pub fn new() -> Result<Self, Error> {
        check_not_isr("BinarySemaphore::new");
        // SAFETY: a plain C call that allocates a kernel object; no Rust invariants involved.
        let handle = unsafe { ffi::uasyncio_rtos_sem_create() };
        if handle.is_null() {
            return Err(Error::NoMemory);
        }
        Ok(BinarySemaphore { handle })
    }

    /// Gives the semaphore from a task (`xSemaphoreGive`). Panics in an interrupt handler.
    #[track_caller]
    pub fn give(&self) {
        // SAFETY: `handle` is a live semaphore (created in `new`, deleted only in `drop`).
        let rc = unsafe { ffi::uasyncio_rtos_sem_give(self.handle) };
        check_task_context(rc, "Semaphore::give");
    }

    /// Gives the semaphore from an interrupt handler (`xSemaphoreGiveFromISR`, then
    /// `portYIELD_FROM_ISR` if a higher-priority task woke). From a task it is `give`.
    pub fn give_from_isr(&self) {
        // SAFETY: `handle` is a live semaphore; the C side picks the API for the context.
        unsafe { ffi::uasyncio_rtos_sem_give_from_isr(self.handle) }
    }

    /// Waits until given or until `timeout_us` microseconds passed (`None`: forever).
    /// Returns `true` if it took the semaphore. Task context only, scheduler running.
    #[track_caller]
    pub fn take(&self, timeout_us: Option<u64>) -> bool {
        let ticks = match timeout_us {
            None => ffi::FOREVER,
            Some(us) => time::timeout_ticks(us),
        };
        // SAFETY: `handle` is a live semaphore; the C side refuses ISR and pre-scheduler calls.
        let rc = unsafe { ffi::uasyncio_rtos_sem_take(self.handle, ticks) };
        check_task_context(rc, "Semaphore::take");
        rc > 0
    }
}

impl Drop for BinarySemaphore {
    fn drop(&mut self) {
        // SAFETY: `handle` is live and, with `&mut self`, nobody else uses it any more.
        unsafe { ffi::uasyncio_rtos_sem_delete(self.handle) }
    }
}

/// A binary semaphore over a direct-to-task notification of the task that takes it.
///
/// Only one task may wait at a time (the loop thread). A different task may take later; the
/// notification then goes to the newest taker, and the old one may see one spurious wake-up
/// on its notification index, which its own `take` absorbs.
#[derive(Debug)]
pub struct NotifySemaphore {
    /// The task that takes (null until the first `take`).
    owner: AtomicPtr<c_void>,
    /// The semaphore's state; the notification is only the wake-up signal.
    given: AtomicBool,
}

impl NotifySemaphore {
    /// Creates the semaphore in the taken (empty) state. Allocates nothing; never fails.
    pub const fn new_const() -> Self {
        NotifySemaphore {
            owner: AtomicPtr::new(ptr::null_mut()),
            given: AtomicBool::new(false),
        }
    }

    /// Creates the semaphore in the taken (empty) state (same signature as the other ports).
    pub fn new() -> Result<Self, Error> {
        Ok(Self::new_const())
    }

    /// Gives from a task (`xTaskNotifyGiveIndexed`). Panics in an interrupt handler.
    #[track_caller]
    pub fn give(&self) {
        // Order: publish `given`, then read `owner`. `take` does the mirror image (publish
        // `owner`, then read `given`), all SeqCst, so one of the two sides sees the other.
        self.given.store(true, Ordering::SeqCst);
        notify_owner(self.owner.load(Ordering::SeqCst), "Semaphore::give");
    }

    /// Gives from an interrupt handler (`vTaskNotifyGiveIndexedFromISR`, then
    /// `portYIELD_FROM_ISR` if a higher-priority task woke). From a task it is `give`.
    pub fn give_from_isr(&self) {
        self.given.store(true, Ordering::SeqCst);
        let owner = self.owner.load(Ordering::SeqCst);
        if !owner.is_null() {
            // SAFETY: as in `give`; the C side picks the API valid for the context.
            unsafe { ffi::uasyncio_rtos_notify_give_from_isr(owner) }
        }
    }

    /// Waits until given or until `timeout_us` microseconds passed (`None`: forever).
    /// Returns `true` if it took the semaphore. Task context only, scheduler running.
    #[track_caller]
    pub fn take(&self, timeout_us: Option<u64>) -> bool {
        check_not_isr("Semaphore::take");
        // SAFETY: a plain C call reading the current task handle.
        let me = unsafe { ffi::uasyncio_rtos_current_task() };
        if self.owner.load(Ordering::Relaxed) != me {
            self.owner.store(me, Ordering::SeqCst);
        }
        if take_flag(&self.given) {
            return true;
        }
        let deadline = match timeout_us {
            None => None,
            Some(0) => return false,
            Some(us) => Some(time::now_us().saturating_add(us)),
        };
        loop {
            let ticks = match deadline {
                None => ffi::FOREVER,
                Some(deadline) => {
                    let now = time::now_us();
                    if now >= deadline {
                        return take_flag(&self.given);
                    }
                    time::timeout_ticks(deadline - now)
                }
            };
            // SAFETY: a plain C call; the C side refuses ISR and pre-scheduler calls.
            let rc = unsafe { ffi::uasyncio_rtos_notify_take(ticks) };
            check_task_context(rc, "Semaphore::take");
            // A notification may be stale (a give that raced with an earlier take): the flag
            // is the truth.
            if take_flag(&self.given) {
                return true;
            }
        }
    }
}

/// The event loop's wake-up signal: a direct-to-task notification and nothing else.
///
/// A [`NotifySemaphore`] keeps a flag beside the notification so that each give makes exactly
/// one take succeed. The loop does not need that: its wake stack (uasyncio's `raw::wake`)
/// already says whether it sleeps and whether a wake is pending, and a waker signals only
/// when it found the loop asleep. So this keeps no state of its own but the task to notify,
/// and is shorter on both sides of the interrupt → task path: no flag to set when signalling,
/// none to clear after waking. In exchange [`wait`](Self::wait) may return without a signal
/// (a signal that raced an earlier wait's timeout is still pending in the notification): the
/// caller looks at its own state again, which it does anyway.
///
/// The protocol, which the loop follows:
/// 1. the waiting task calls [`prepare`](Self::prepare), which records it as the task to
///    notify;
/// 2. then publishes that it is about to wait, with a release (or stronger) atomic operation;
/// 3. then calls [`wait`](Self::wait).
///
/// A signaller that has read that publication with an acquire (or stronger) operation sees
/// the task recorded in step 1, so its [`signal`](Self::signal) or
/// [`signal_from_isr`](Self::signal_from_isr) notifies the right task.
///
/// ```no_run
/// let sig = rtos_shims::LoopSignal::new().unwrap();
/// sig.prepare(); // then publish "sleeping" in your own atomic state word
/// sig.wait(Some(10_000)); // returns when signalled, after 10 ms, or spuriously
/// ```
#[derive(Debug)]
pub struct LoopSignal {
    /// The task that waits (null until the first `prepare`).
    owner: AtomicPtr<c_void>,
}

impl LoopSignal {
    /// A signal nobody waits on yet. Allocates nothing; never fails.
    pub fn new() -> Result<Self, Error> {
        Ok(Self::inert())
    }

    /// A signal nobody will ever wait on (signals do nothing), made without the kernel: for
    /// the cross-context half of a loop that can never run.
    pub const fn inert() -> Self {
        LoopSignal {
            owner: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Records the calling task as the one to notify (step 1 above). Task context only.
    #[track_caller]
    pub fn prepare(&self) {
        check_not_isr("LoopSignal::prepare");
        // SAFETY: a plain C call reading the current task handle.
        let me = unsafe { ffi::uasyncio_rtos_current_task() };
        // Relaxed: the caller's release publication (step 2) orders this store before any
        // signaller's read of `owner` that matters (see the type's docs).
        if self.owner.load(Ordering::Relaxed) != me {
            self.owner.store(me, Ordering::Relaxed);
        }
    }

    /// Wakes the waiting task from a task (`xTaskNotifyGiveIndexed`). Panics in an interrupt
    /// handler. Before any `prepare` it does nothing (nobody can be waiting).
    #[track_caller]
    pub fn signal(&self) {
        notify_owner(self.owner.load(Ordering::Relaxed), "LoopSignal::signal");
    }

    /// Wakes the waiting task from an interrupt handler (`vTaskNotifyGiveIndexedFromISR`, then
    /// `portYIELD_FROM_ISR` if that woke a task of higher priority than the one interrupted).
    /// For callers that know they run in an interrupt handler ([`in_isr`](super::in_isr)):
    /// it does not ask again. Before any `prepare` it does nothing.
    pub fn signal_from_isr(&self) {
        let owner = self.owner.load(Ordering::Relaxed);
        if !owner.is_null() {
            // SAFETY: a live task handle, as in `notify_owner`; the caller runs in an ISR.
            unsafe { ffi::uasyncio_rtos_notify_give_isr(owner) }
        }
    }

    /// Wakes the task that waits, or is about to (step 3 above, after step 2 was read):
    /// [`signal`](Self::signal) or [`signal_from_isr`](Self::signal_from_isr), as `isr` says
    /// the caller runs in an interrupt handler (a caller that asked [`in_isr`](super::in_isr)
    /// once already passes its answer).
    ///
    /// # Safety
    /// The caller read the waiting task's publication (step 2) as the type's docs say, so
    /// the task recorded by [`prepare`](Self::prepare) is seen and no test for "nobody
    /// prepared yet" is made: the event loop's interrupt → task path pays none.
    ///
    /// ```no_run
    /// let sig = rtos_shims::LoopSignal::new().unwrap();
    /// sig.prepare();
    /// // SAFETY: this task prepared, in program order before.
    /// unsafe { sig.signal_waiter(rtos_shims::in_isr()) };
    /// ```
    #[inline]
    #[track_caller]
    pub unsafe fn signal_waiter(&self, isr: bool) {
        let owner = self.owner.load(Ordering::Relaxed);
        debug_assert!(!owner.is_null(), "LoopSignal::signal_waiter before prepare");
        if isr {
            // `owner` is the task that prepared (the caller's contract), a live task handle as
            // in `notify_owner`, and the caller runs in an ISR.
            // SAFETY: as just argued.
            unsafe { ffi::uasyncio_rtos_notify_give_isr(owner) }
        } else {
            notify_owner(owner, "LoopSignal::signal_waiter");
        }
    }

    /// Blocks the calling task until signalled or until `timeout_us` microseconds passed
    /// (`None`: no deadline; `Some(0)` returns at once); may return early without a signal
    /// (see the type's docs). Task context only, scheduler running: the task that called
    /// `prepare`.
    #[track_caller]
    pub fn wait(&self, timeout_us: Option<u64>) {
        let ticks = match timeout_us {
            None => ffi::FOREVER,
            Some(0) => return,
            Some(us) => time::timeout_ticks(us),
        };
        // SAFETY: a plain C call; the C side refuses ISR and pre-scheduler calls.
        let rc = unsafe { ffi::uasyncio_rtos_notify_take(ticks) };
        check_task_context(rc, "LoopSignal::wait");
    }
}

/// The task-side give of [`NotifySemaphore::give`] and [`LoopSignal::signal`]: notifies
/// `owner` (`xTaskNotifyGiveIndexed`); a null owner (nobody waited yet) is notified nothing.
/// Panics, naming `call`, in an interrupt handler.
#[track_caller]
fn notify_owner(owner: *mut c_void, call: &str) {
    if owner.is_null() {
        check_not_isr(call);
        return;
    }
    // `owner` is a task handle the waiting side stored (`take`, `prepare`): the loop thread,
    // which is not deleted while its loop, and so this semaphore or signal, exists.
    // SAFETY: as just argued, a live task handle.
    let rc = unsafe { ffi::uasyncio_rtos_notify_give(owner) };
    check_task_context(rc, call);
}

/// Reads the flag and clears it, as one step with respect to every giver.
#[cfg(target_has_atomic = "8")]
fn take_flag(flag: &AtomicBool) -> bool {
    flag.swap(false, Ordering::SeqCst)
}

/// Reads the flag and clears it, as one step with respect to every giver: Armv6-M has no
/// atomic read-modify-write, so a load and a store inside the kernel's critical section.
#[cfg(not(target_has_atomic = "8"))]
fn take_flag(flag: &AtomicBool) -> bool {
    // Soundness: a plain C call (taskENTER_CRITICAL, or the FromISR variant in an ISR); the
    // state goes back to the matching exit below. Inside it no task switch happens and no
    // interrupt that may call FreeRTOS runs (on Armv6-M the port masks all interrupts), and
    // those are the only contexts that give (an interrupt above
    // configMAX_SYSCALL_INTERRUPT_PRIORITY must not call FreeRTOS, so it must not give): a
    // store of `true` cannot fall between the load and the store below.
    // SAFETY: as argued in the comment just above.
    let state = unsafe { ffi::uasyncio_rtos_critical_enter() };
    let given = flag.load(Ordering::SeqCst);
    flag.store(false, Ordering::SeqCst);
    // SAFETY: `state` comes from the enter above, in the same context, in LIFO order.
    unsafe { ffi::uasyncio_rtos_critical_exit(state) };
    given
}
