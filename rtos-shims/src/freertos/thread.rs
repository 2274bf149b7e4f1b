//! Tasks: identity, interrupt context, starting one.

use alloc::boxed::Box;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

use super::ffi;
use crate::{Error, ThreadBody, ThreadConfig};

/// Identity reported before `vTaskStartScheduler()`: the one context that runs then.
const BEFORE_SCHEDULER: usize = 1;
/// Identity reported in an interrupt handler: never the interrupted task's, so code that
/// compares with the loop thread's id takes its cross-context path there.
const INTERRUPT: usize = usize::MAX;

/// Whether the caller runs in an interrupt handler: IPSR on Cortex-M; on the POSIX simulator,
/// inside the tick hook's `uasyncio_isr_enter()`/`uasyncio_isr_exit()` bracket.
#[inline]
pub fn in_isr() -> bool {
    #[cfg(all(target_arch = "arm", target_os = "none"))]
    {
        let ipsr: u32;
        // SAFETY: reading IPSR has no side effects; it is readable in every mode on M-profile.
        // `pure`: within one execution context (a task, or one handler) IPSR reads the same
        // every time (an interrupt that comes in between returns to the same state), so the
        // compiler may merge repeated reads.
        unsafe { core::arch::asm!("mrs {}, IPSR", out(reg) ipsr, options(pure, nomem, nostack, preserves_flags)) };
        // `MRS Rd, IPSR` reads the exception number (bits 8:0) and zeros (bits 31:9 are
        // reserved, read as zero: Armv7-M ARM B1.4.2), so the whole word is tested, as
        // Zephyr's own `arch_is_in_isr` does (arch/arm/include/cortex_m/exception.h):
        // one instruction fewer than a mask of bits 8:0.
        ipsr != 0
    }
    #[cfg(not(all(target_arch = "arm", target_os = "none")))]
    {
        // SAFETY: a plain C call with no arguments.
        unsafe { ffi::uasyncio_rtos_in_isr() != 0 }
    }
}

/// Set once a call has seen the scheduler running. FreeRTOS never returns to "not started"
/// (`vTaskEndScheduler` is not supported by the Cortex-M ports), so from then on the
/// scheduler-state query can be skipped.
static SCHEDULER_STARTED: AtomicBool = AtomicBool::new(false);

/// The calling task's handle (`xTaskGetCurrentTaskHandle()`), non-zero. In an interrupt
/// handler `usize::MAX`, before the scheduler starts `1`: neither is ever a task handle.
///
/// The loop calls this on every access to its thread-local half (a wake, a spawn, a
/// cancellation check), so it is kept short: once the scheduler is known to run, a read of
/// the kernel's `pxCurrentTCB` (no call).
#[inline]
pub fn current_thread_id() -> usize {
    if in_isr() {
        return INTERRUPT;
    }
    if SCHEDULER_STARTED.load(Ordering::Relaxed) {
        // SAFETY: `pxCurrentTCB` is a word-sized kernel global that lives for the whole
        // program; a volatile read of it is what `xTaskGetCurrentTaskHandle()` does. In task
        // context it is the running task's handle (the scheduler runs, so that is the
        // caller): the kernel changes it only in a context switch, which completes before this
        // task runs again, so the caller always reads its own handle.
        return unsafe { core::ptr::read_volatile(core::ptr::addr_of!(ffi::pxCurrentTCB)) } as usize;
    }
    // SAFETY: a plain C call with no arguments (it repeats the ISR check, then asks the
    // scheduler state and the current handle).
    let id = unsafe { ffi::uasyncio_rtos_thread_id() };
    if id != BEFORE_SCHEDULER && id != INTERRUPT {
        SCHEDULER_STARTED.store(true, Ordering::Relaxed);
    }
    id
}

/// Whether the caller is the thread `id`, a value [`current_thread_id`] returned:
/// `current_thread_id() == id`, in fewer instructions for the common question "am I the loop
/// thread?" asked by the loop thread.
///
/// A task handle as `id` can only have been returned once the scheduler ran, and FreeRTOS
/// never stops it again on these ports, so outside an interrupt handler `pxCurrentTCB` is
/// the caller's handle: one read and one compare, without the scheduler-state test. Any other
/// `id` (1 before the scheduler, `usize::MAX` in a handler) is never a handle, and is
/// answered by the full comparison.
#[inline]
pub fn is_current_thread(id: usize) -> bool {
    if in_isr() {
        return id == INTERRUPT;
    }
    // SAFETY: as in `current_thread_id`: a volatile read of a word-sized kernel global.
    let tcb = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(ffi::pxCurrentTCB)) } as usize;
    if tcb == id && id != 0 {
        return true;
    }
    is_current_thread_slow(id)
}

/// The rest of [`is_current_thread`], out of line: off the loop thread's path.
#[inline(never)]
fn is_current_thread_slow(id: usize) -> bool {
    current_thread_id() == id
}

/// Starts a FreeRTOS task (`xTaskCreate`) that runs `body` and then deletes itself.
///
/// `stack_size` is in bytes (rounded up to whole `StackType_t` words, at least
/// `configMINIMAL_STACK_SIZE`); `priority` must be below `configMAX_PRIORITIES`. May be called
/// before the scheduler starts. Fails with [`Error::Refused`] in an interrupt handler or for a
/// bad priority or stack size, with [`Error::NoMemory`] when the FreeRTOS heap is exhausted.
pub fn spawn_thread(config: ThreadConfig, body: ThreadBody) -> Result<(), Error> {
    let arg = Box::into_raw(Box::new(body)).cast::<c_void>();
    // SAFETY: the name pointer and length describe a live `&'static str`; `arg` is a leaked
    // `Box<ThreadBody>` that only `uasyncio_rtos_thread_main` (the new task) takes back.
    let rc = unsafe {
        ffi::uasyncio_rtos_task_create(
            config.name.as_ptr().cast(),
            config.name.len(),
            config.stack_size,
            u32::from(config.priority),
            arg,
        )
    };
    if rc == ffi::OK {
        return Ok(());
    }
    // SAFETY: the task was not created, so `arg` is still ours: take the box back to drop it.
    drop(unsafe { Box::from_raw(arg.cast::<ThreadBody>()) });
    Err(if rc == ffi::NOMEM {
        Error::NoMemory
    } else {
        Error::Refused
    })
}

/// The entry of every task started by [`spawn_thread`], called by the C side's task function,
/// which deletes the task when this returns.
///
/// # Safety
/// `arg` must be the pointer [`spawn_thread`] passed, used once.
#[no_mangle]
unsafe extern "C" fn uasyncio_rtos_thread_main(arg: *mut c_void) {
    // SAFETY: by the contract above, `arg` is a `Box<ThreadBody>` leaked by `spawn_thread`
    // for exactly this call.
    let body = unsafe { Box::from_raw(arg.cast::<ThreadBody>()) };
    body();
}

/// The least free stack the task ever had, in bytes (`uxTaskGetStackHighWaterMark`), for the
/// task with identity `thread_id` (a value of [`current_thread_id`] of a live task). On the
/// POSIX simulator tasks run on pthread stacks and the figure means little.
pub fn stack_high_water_bytes(thread_id: usize) -> usize {
    if thread_id == INTERRUPT || thread_id == BEFORE_SCHEDULER {
        return 0;
    }
    // SAFETY: `thread_id` is a live task's handle by the documented contract; FreeRTOS reads
    // its TCB.
    unsafe { ffi::uasyncio_rtos_stack_high_water_bytes(thread_id as *mut c_void) }
}
