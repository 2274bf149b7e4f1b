//! The C API: `component/include/uasyncio.h`, for C code in the same firmware.
//!
//! A firmware's legacy C threads and interrupt handlers talk to the Rust event loop through
//! three things, all defined here with the C ABI:
//!
//! - **The loop thread.** `uasyncio_start` creates the RTOS thread (priority, stack) that runs
//!   a Rust entry point; the entry calls [`run_entry`], which runs the event loop until its
//!   main coroutine returns. Only one loop thread per firmware (the `no_std` build has one
//!   loop, see `scheduler::current`).
//! - **Flags.** `uasyncio_flag_set` is [`ThreadSafeFlag::set`]: atomics, a lock-free push and,
//!   only when the loop sleeps, the semaphore's `FromISR` give. It is as safe in an interrupt
//!   handler as in a thread. A flag is a Rust `static` exported with `#[no_mangle]` (C declares
//!   it with `UASYNCIO_FLAG_DECLARE`), or created from C with `uasyncio_flag_create`.
//! - **Messages.** [`MessageQueue`]: a bounded FIFO of small byte messages. Senders (C threads
//!   and ISRs) never block and never allocate: a full queue returns `UASYNCIO_E_FULL` and the
//!   message is dropped (and counted). One Rust task awaits it.
//!
//! ## The queue
//! Dmitry Vyukov's bounded queue: each slot has a sequence number; a sender claims a position
//! with a compare-and-swap, copies the message into the slot, then publishes it by advancing
//! the slot's sequence. The receiver (one task on the loop thread) takes the slot whose
//! sequence says "published", copies out, and hands the slot back by advancing its sequence a
//! lap. No lock and no critical section: an interrupt that preempts a sender half way through
//! its copy claims the next slot and goes on; the receiver simply sees the earlier slot as not
//! yet published until that sender finishes (and sets the flag). The slot count is the
//! capacity rounded up to a power of two, so positions wrap cleanly at `usize::MAX`; the
//! capacity itself is enforced exactly, checked against the same position the claim swaps.
//!
//! ## Misuse
//! `[task only]` functions check the context and panic with a message naming the call when
//! called from an interrupt handler: on a firmware the panic handler prints it and stops, as a
//! failed `configASSERT` would. Everything else reports bad input through status codes.

use crate::atomic::{AtomicI32, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::future::Future;

use crate::{run, Error, Result, ThreadSafeFlag};

/// `UASYNCIO_OK`.
pub const OK: c_int = 0;
/// `UASYNCIO_E_FULL`: the queue is full; the message was dropped.
pub const E_FULL: c_int = -1;
/// `UASYNCIO_E_TOO_BIG`: the message is longer than the queue's item size.
pub const E_TOO_BIG: c_int = -2;
/// `UASYNCIO_E_INVAL`: a NULL pointer or a zero size.
pub const E_INVAL: c_int = -3;
/// `UASYNCIO_E_NOMEM`: the RTOS heap is exhausted.
pub const E_NOMEM: c_int = -4;
/// `UASYNCIO_E_STACK`: `stack_bytes` is below [`MIN_STACK_BYTES`].
pub const E_STACK: c_int = -5;
/// `UASYNCIO_E_STATE`: wrong state (the loop thread is already started, or a loop-thread-only
/// call was made on another thread).
pub const E_STATE: c_int = -6;
/// `UASYNCIO_E_PRIORITY`: the RTOS refused `uasyncio_start`'s thread: its priority (or, on
/// FreeRTOS, a stack too large for `configSTACK_DEPTH_TYPE`).
pub const E_PRIORITY: c_int = -7;

/// `UASYNCIO_MIN_STACK_BYTES`: the least `stack_bytes` that `uasyncio_start` accepts.
///
/// The loop thread's own frames (the scheduler, a task poll, a wake) plus one formatted
/// message (a panic or a `write!`) used 1,268 bytes on Cortex-M3 (the FreeRTOS template,
/// `uxTaskGetStackHighWaterMark`); this floor is that with headroom, doubled on 64-bit
/// targets. It only refuses sizes that cannot work: the coroutines' own frames come on top,
/// so measure your application's high-water mark and keep a margin.
#[cfg(target_pointer_width = "64")]
pub const MIN_STACK_BYTES: u32 = 4096;
/// `UASYNCIO_MIN_STACK_BYTES` (see the 64-bit definition).
#[cfg(not(target_pointer_width = "64"))]
pub const MIN_STACK_BYTES: u32 = 2048;

#[cfg(target_pointer_width = "64")]
const E_STACK_MESSAGE: &CStr = c"UASYNCIO_E_STACK: uasyncio_config_t.stack_bytes is below UASYNCIO_MIN_STACK_BYTES (4096 on this target); give the loop thread more stack";
#[cfg(not(target_pointer_width = "64"))]
const E_STACK_MESSAGE: &CStr = c"UASYNCIO_E_STACK: uasyncio_config_t.stack_bytes is below UASYNCIO_MIN_STACK_BYTES (2048 on this target); give the loop thread more stack";

#[track_caller]
fn task_only(call: &str) {
    if rtos_shims::in_isr() {
        panic!("{call} called from an interrupt handler; uasyncio.h marks it [task only]");
    }
}

// ---- the loop thread -------------------------------------------------------------------------

/// The loop thread's entry, as C sees it (`uasyncio_entry_t`).
pub type Entry = extern "C" fn(arg: *mut c_void) -> c_int;

/// `uasyncio_config_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Thread name (NUL-terminated, copied); NULL for "uasyncio".
    pub name: *const c_char,
    /// Stack size in bytes.
    pub stack_bytes: u32,
    /// Priority in the RTOS's scale.
    pub priority: u32,
    /// The entry; required.
    pub entry: Option<Entry>,
    /// Its argument.
    pub arg: *mut c_void,
}

const NOT_STARTED: u8 = 0;
const RUNNING: u8 = 1;
const RETURNED: u8 = 2;

static LOOP_STATE: AtomicU8 = AtomicU8::new(NOT_STARTED);
static LOOP_THREAD: AtomicUsize = AtomicUsize::new(0);
static LOOP_EXIT: AtomicI32 = AtomicI32::new(0);
/// The loop thread's stack high-water mark in bytes, recorded as it returns (its handle is
/// gone after that: the thread deletes itself).
static LOOP_STACK_UNUSED: AtomicUsize = AtomicUsize::new(0);

/// Runs `coro` as the loop's main coroutine on the calling thread ([`run`]) and turns the
/// outcome into the entry's return value: 0 for `Ok`, else [`exit_code`]. A Rust entry for
/// `uasyncio_start` is typically:
///
/// ```ignore
/// #[no_mangle]
/// extern "C" fn app_loop(_arg: *mut core::ffi::c_void) -> core::ffi::c_int {
///     uasyncio::ffi::run_entry(app_main())
/// }
/// ```
///
/// An error also leaves its text for C, in [`uasyncio_loop_error`] (a return code alone says
/// only `-1` for most errors). Cost: the error's formatting code, 2,396 B of text on Cortex-M3
/// in the FreeRTOS template firmware, which formats no error otherwise.
#[inline(always)]
pub fn run_entry<F, T>(coro: F) -> c_int
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    // A new run starts without the last one's text (which is left allocated: C may hold it).
    LOOP_ERROR.store(core::ptr::null_mut(), Ordering::Release);
    match run(coro) {
        Ok(_) => OK,
        Err(e) => {
            record_loop_error(&e);
            exit_code(&e)
        }
    }
}

/// The text of the error the last [`run_entry`] ended with (see [`uasyncio_loop_error`]).
static LOOP_ERROR: core::sync::atomic::AtomicPtr<c_char> = core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Keeps `error`'s text, NUL-terminated, for [`uasyncio_loop_error`]. The block is never
/// freed: a C caller may hold the pointer for as long as it likes. One block per failed run
/// (a firmware runs its loop once; a host test that runs many leaks a few bytes per failure).
fn record_loop_error(error: &Error) {
    use core::fmt::Write as _;
    let mut text = String::new();
    // Formatting into a `String` fails only when the allocator does; then there is no text.
    if write!(text, "{error}").is_err() {
        return;
    }
    // NUL-terminated for C; a NUL inside (a message never has one, a user's might) would cut
    // it short, so it becomes a space. Bytes, not chars: a NUL is never part of a UTF-8
    // sequence, and this stays small (no `CString`, no char re-encoding).
    let mut bytes = text.into_bytes();
    for b in bytes.iter_mut().filter(|b| **b == 0) {
        *b = b' ';
    }
    bytes.push(0);
    let text: &'static mut [u8] = alloc::boxed::Box::leak(bytes.into_boxed_slice());
    LOOP_ERROR.store(text.as_mut_ptr().cast::<c_char>(), Ordering::Release);
}

/// `uasyncio_loop_error`: the text of the error the loop's main coroutine ended with, when
/// the entry ran it through [`run_entry`] (e.g. `"RuntimeError: ThreadSafeFlag already has a
/// waiting task"`), NUL-terminated and valid until the program ends; NULL while it runs,
/// when it returned `Ok`, or when the entry did not use `run_entry`. [ISR-safe]
///
/// ```
/// use core::ffi::CStr;
/// assert_eq!(uasyncio::ffi::run_entry(async { Err::<(), _>(uasyncio::Error::value("no modem")) }), -1);
/// // SAFETY: not NULL after a failed run_entry, and NUL-terminated.
/// let text = unsafe { CStr::from_ptr(uasyncio::ffi::uasyncio_loop_error()) };
/// assert_eq!(text.to_str(), Ok("ValueError: no modem"));
/// assert_eq!(uasyncio::ffi::run_entry(async { Ok(()) }), 0);
/// assert!(uasyncio::ffi::uasyncio_loop_error().is_null());
/// ```
#[no_mangle]
pub extern "C" fn uasyncio_loop_error() -> *const c_char {
    LOOP_ERROR.load(Ordering::Acquire)
}

/// A negative number for an error, errno-style: `Os(n)` → `-n`, `Timeout` → `-110`
/// (`ETIMEDOUT`), `Cancelled` → `-125` (`ECANCELED`), anything else `-1`.
pub fn exit_code(error: &Error) -> c_int {
    match error {
        Error::Os(n) if *n != 0 => -n.saturating_abs(),
        Error::Timeout => -110,
        Error::Cancelled => -125,
        _ => -1,
    }
}

struct StartArgs {
    entry: Entry,
    arg: *mut c_void,
}

// SAFETY: `arg` is an opaque pointer the C caller hands to its own entry on the loop thread;
// the C API documents that it is passed as is. Nothing on the Rust side dereferences it.
unsafe impl Send for StartArgs {}

fn thread_name(name: *const c_char) -> &'static str {
    if name.is_null() {
        return "uasyncio";
    }
    // SAFETY: uasyncio.h requires `name` to be NUL-terminated when not NULL.
    let name = unsafe { CStr::from_ptr(name) }.to_str().unwrap_or("uasyncio");
    let mut short = String::new();
    for c in name.chars().take(15) {
        short.push(c);
    }
    // Once per firmware (a second start is refused before this point): the leak is bounded.
    Box::leak(short.into_boxed_str())
}

/// `uasyncio_start`: starts the loop thread. [task only]
///
/// # Safety
/// `config` is NULL or points to a valid `uasyncio_config_t` whose `name` is NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_start(config: *const Config) -> c_int {
    task_only("uasyncio_start");
    // SAFETY: by the contract above.
    let Some(config) = (unsafe { config.as_ref() }) else {
        return E_INVAL;
    };
    let Some(entry) = config.entry else {
        return E_INVAL;
    };
    let Ok(priority) = u8::try_from(config.priority) else {
        return E_PRIORITY;
    };
    if config.stack_bytes < MIN_STACK_BYTES {
        return E_STACK;
    }
    if LOOP_STATE
        .compare_exchange(NOT_STARTED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return E_STATE;
    }
    let thread = rtos_shims::ThreadConfig {
        name: thread_name(config.name),
        stack_size: config.stack_bytes as usize,
        priority,
    };
    let args = StartArgs { entry, arg: config.arg };
    let body = Box::new(move || {
        let args = args;
        LOOP_THREAD.store(rtos_shims::current_thread_id(), Ordering::Release);
        let code = (args.entry)(args.arg);
        LOOP_EXIT.store(code, Ordering::Release);
        // The thread deletes itself once this body returns, so its handle must not outlive
        // it: the stack figure is taken now, and `uasyncio_loop_thread` answers NULL.
        #[cfg(feature = "freertos-port")]
        LOOP_STACK_UNUSED.store(
            rtos_shims::stack_high_water_bytes(rtos_shims::current_thread_id()),
            Ordering::Release,
        );
        LOOP_THREAD.store(0, Ordering::Release);
        // The RAM report first: once the state says RETURNED, a C thread polling
        // uasyncio_loop_state() may print, and its line would split the report's.
        #[cfg(feature = "zephyr-port")]
        rtos_shims::ram_report();
        LOOP_STATE.store(RETURNED, Ordering::Release);
    });
    match rtos_shims::spawn_thread(thread, body) {
        Ok(()) => OK,
        Err(e) => {
            LOOP_STATE.store(NOT_STARTED, Ordering::Release);
            match e {
                rtos_shims::Error::NoMemory => E_NOMEM,
                // The entry and the stack's minimum were checked above, and `[task only]`
                // keeps interrupt handlers out: what the kernel refuses is the priority (or,
                // on FreeRTOS, a stack too large for `configSTACK_DEPTH_TYPE`; the message
                // says both).
                rtos_shims::Error::Refused => E_PRIORITY,
            }
        }
    }
}

/// `uasyncio_boot_loop_began`: the Zephyr module's boot-time loop thread
/// (`CONFIG_UASYNCIO_LOOP_THREAD=y`, `K_THREAD_DEFINE`) is the loop thread: called by the
/// module's `SYS_INIT`, before `main()`, so that a `uasyncio_start()` is refused
/// ([`E_STATE`], whose text names the Kconfig option) instead of starting a second loop, and
/// `uasyncio_loop_state()`/`uasyncio_loop_thread()` describe it. Not for applications.
#[no_mangle]
pub extern "C" fn uasyncio_boot_loop_began(thread: usize) {
    if LOOP_STATE
        .compare_exchange(NOT_STARTED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        LOOP_THREAD.store(thread, Ordering::Release);
    }
}

/// `uasyncio_boot_loop_returned`: the boot-time loop thread's `rust_main()` returned (it
/// returns nothing: the exit code reads 0; [`uasyncio_loop_error`] has the text if it ran
/// its coroutine through [`run_entry`]). Not for applications.
#[no_mangle]
pub extern "C" fn uasyncio_boot_loop_returned() {
    LOOP_THREAD.store(0, Ordering::Release);
    LOOP_STATE.store(RETURNED, Ordering::Release);
}

/// `uasyncio_status_str`: a message for a status code that names what to change; never NULL.
/// [ISR-safe]
#[no_mangle]
pub extern "C" fn uasyncio_status_str(status: c_int) -> *const c_char {
    status_str(status).as_ptr()
}

/// The message of [`uasyncio_status_str`], NUL-terminated.
pub fn status_str(status: c_int) -> &'static CStr {
    match status {
        OK => c"UASYNCIO_OK",
        E_FULL => c"UASYNCIO_E_FULL: the queue is full and the message was dropped; receive faster or create the queue with a larger capacity",
        E_TOO_BIG => c"UASYNCIO_E_TOO_BIG: the message is longer than the queue's item_size; send less or create the queue with a larger item_size",
        E_INVAL => c"UASYNCIO_E_INVAL: a NULL pointer or a zero size (uasyncio_start: a NULL config or no entry function)",
        E_NOMEM => c"UASYNCIO_E_NOMEM: the RTOS heap is exhausted; enlarge it (FreeRTOS: configTOTAL_HEAP_SIZE)",
        E_STACK => E_STACK_MESSAGE,
        E_STATE => c"UASYNCIO_E_STATE: wrong state: a loop-thread-only call made on another thread, or uasyncio_start with the loop thread already started (on Zephyr CONFIG_UASYNCIO_LOOP_THREAD=y starts it at boot: set it to n to use uasyncio_start)",
        E_PRIORITY => c"UASYNCIO_E_PRIORITY: the RTOS refused the loop thread: uasyncio_config_t.priority must be below configMAX_PRIORITIES (FreeRTOS) or CONFIG_NUM_PREEMPT_PRIORITIES (Zephyr); on FreeRTOS also a stack_bytes too large for configSTACK_DEPTH_TYPE",
        _ => c"unknown uasyncio status code",
    }
}

/// `uasyncio_loop_state`: 0 not started, 1 running, 2 returned. [ISR-safe]
///
/// # Safety
/// `exit_code` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_loop_state(exit_code: *mut c_int) -> c_int {
    let state = LOOP_STATE.load(Ordering::Acquire);
    if state == RETURNED && !exit_code.is_null() {
        // SAFETY: by the contract above.
        unsafe { exit_code.write(LOOP_EXIT.load(Ordering::Acquire)) };
    }
    c_int::from(state)
}

/// `uasyncio_dump_tasks`: writes [`crate::task::dump_tasks`]'s text (the task count and, with
/// feature `stats`, statistics; then one line per unfinished task: id, name, state, what it
/// waits on) into `buf`, NUL-terminated and cut to `len - 1` bytes; returns the length of the whole dump (as `snprintf` does: a return of
/// `len` or more means it was cut), or [`E_STATE`] when not called on the loop's thread (the
/// loop's data belongs to it), [`E_INVAL`] for a NULL `buf` with `len > 0`. `len` 0 only
/// measures. [loop thread only]
///
/// # Safety
/// `buf` is valid for `len` bytes of writes (or NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn uasyncio_dump_tasks(buf: *mut c_char, len: usize) -> c_int {
    if buf.is_null() && len > 0 {
        return E_INVAL;
    }
    if rtos_shims::in_isr() || crate::scheduler::try_with(|_| ()).is_none() {
        return E_STATE;
    }
    let mut text = alloc::string::String::new();
    if crate::task::dump_tasks(&mut text).is_err() {
        return E_NOMEM;
    }
    if len > 0 {
        let n = text.len().min(len - 1);
        // SAFETY: `buf` is valid for `len` bytes (the contract) and `n + 1 <= len`; `text`
        // is a separate allocation, so the ranges do not overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            buf.add(n).write(0);
        }
    }
    c_int::try_from(text.len()).unwrap_or(c_int::MAX)
}

/// `uasyncio_log_tasks`: logs the dump of [`uasyncio_dump_tasks`] through `log` at info level
/// (on Zephyr: `printk`, with `CONFIG_UASYNCIO_LOG_LEVEL` >= 3), line by line; for a debugger
/// (`call uasyncio_log_tasks()` with the loop's thread selected) or a shell command. Returns
/// [`OK`] or [`E_STATE`] off the loop's thread. [loop thread only]
#[no_mangle]
pub extern "C" fn uasyncio_log_tasks() -> c_int {
    if rtos_shims::in_isr() || crate::scheduler::try_with(|_| ()).is_none() {
        return E_STATE;
    }
    let mut text = alloc::string::String::new();
    if crate::task::dump_tasks(&mut text).is_err() {
        return E_NOMEM;
    }
    for line in text.lines() {
        log::info!("{line}");
    }
    OK
}

/// `uasyncio_loop_thread`: the loop thread's identity (FreeRTOS: its `TaskHandle_t`) while it
/// runs; NULL before it runs and once its entry returned (the thread then deletes itself).
/// [ISR-safe]
#[no_mangle]
pub extern "C" fn uasyncio_loop_thread() -> *mut c_void {
    LOOP_THREAD.load(Ordering::Acquire) as *mut c_void
}

/// `uasyncio_loop_stack_unused`: once the loop thread returned, the least free stack it ever
/// had, in bytes (FreeRTOS `uxTaskGetStackHighWaterMark`, taken as it returned); 0 before
/// that, and on ports that do not measure it (Zephyr: `CONFIG_UASYNCIO_RAM_REPORT`; on the
/// FreeRTOS POSIX simulator tasks run on pthread stacks and the figure means little).
/// [ISR-safe]
#[no_mangle]
pub extern "C" fn uasyncio_loop_stack_unused() -> usize {
    if LOOP_STATE.load(Ordering::Acquire) == RETURNED {
        LOOP_STACK_UNUSED.load(Ordering::Acquire)
    } else {
        0
    }
}

// ---- flags -------------------------------------------------------------------------------------

/// `uasyncio_flag_set`: [`ThreadSafeFlag::set`]. [ISR-safe]
///
/// # Safety
/// `flag` is NULL or points to a live `ThreadSafeFlag` (a `static`, or from
/// `uasyncio_flag_create`).
#[no_mangle]
pub unsafe extern "C" fn uasyncio_flag_set(flag: *const ThreadSafeFlag) {
    // SAFETY: by the contract above.
    if let Some(flag) = unsafe { flag.as_ref() } {
        flag.set();
    }
}

/// `uasyncio_flag_set_from_isr`: the same as `uasyncio_flag_set` (which picks the `FromISR`
/// path by itself in an interrupt handler). [ISR-safe]
///
/// # Safety
/// As [`uasyncio_flag_set`].
#[no_mangle]
pub unsafe extern "C" fn uasyncio_flag_set_from_isr(flag: *const ThreadSafeFlag) {
    // SAFETY: same contract.
    unsafe { uasyncio_flag_set(flag) }
}

/// `uasyncio_flag_is_set`: 1 if set. [ISR-safe]
///
/// # Safety
/// As [`uasyncio_flag_set`].
#[no_mangle]
pub unsafe extern "C" fn uasyncio_flag_is_set(flag: *const ThreadSafeFlag) -> c_int {
    // SAFETY: by the contract above.
    c_int::from(unsafe { flag.as_ref() }.is_some_and(ThreadSafeFlag::is_set))
}

/// `uasyncio_flag_create`: a flag on the heap that lives forever; NULL when out of memory.
/// [task only]
#[no_mangle]
pub extern "C" fn uasyncio_flag_create() -> *const ThreadSafeFlag {
    task_only("uasyncio_flag_create");
    let mut slot: Vec<ThreadSafeFlag> = Vec::new();
    if slot.try_reserve_exact(1).is_err() {
        return core::ptr::null();
    }
    slot.push(ThreadSafeFlag::new());
    Box::leak(slot.into_boxed_slice()).as_ptr()
}

/// The Rust view of a flag that C created or received: `None` for NULL.
///
/// # Safety
/// `flag` is NULL or points to a `ThreadSafeFlag` that lives forever (a `static`, or from
/// `uasyncio_flag_create`).
pub unsafe fn flag_from_c(flag: *const c_void) -> Option<&'static ThreadSafeFlag> {
    // SAFETY: by the contract above.
    unsafe { flag.cast::<ThreadSafeFlag>().as_ref() }
}

// ---- message queue -----------------------------------------------------------------------------

/// Why [`MessageQueue::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The queue holds `capacity` messages already; this one was dropped.
    Full,
    /// The message is longer than the item size.
    TooBig,
}

struct Slot {
    /// Vyukov's sequence number: `pos` free for the sender of `pos`, `pos + 1` published for
    /// the receiver of `pos`.
    seq: AtomicUsize,
    len: UnsafeCell<usize>,
}

/// A bounded queue of small byte messages from C threads and interrupt handlers to one task on
/// the loop (see the module docs for the algorithm). `uasyncio_queue_t` in C.
pub struct MessageQueue {
    slots: Box<[Slot]>,
    data: Box<[UnsafeCell<u8>]>,
    mask: usize,
    capacity: usize,
    item_size: usize,
    send_pos: AtomicUsize,
    recv_pos: AtomicUsize,
    dropped: AtomicU32,
    ready: ThreadSafeFlag,
}

// SAFETY: the slot bytes and lengths (`UnsafeCell`s) are written only by the one sender that
// claimed the slot's position with a CAS, before it publishes the slot with a Release store
// of `seq`, and read only by the receiver after an Acquire load of that `seq`; the receiver
// gives the slot back with another Release store that the next sender Acquires. Everything
// else is atomics. So no byte is ever accessed by two contexts at once.
unsafe impl Sync for MessageQueue {}
// SAFETY: owns its buffers; see `Sync`.
unsafe impl Send for MessageQueue {}

impl core::fmt::Debug for MessageQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MessageQueue")
            .field("capacity", &self.capacity)
            .field("item_size", &self.item_size)
            .field("count", &self.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl MessageQueue {
    /// A queue of `capacity` messages of at most `item_size` bytes each. Fails with
    /// `ValueError` for a zero size and with `OSError(ENOMEM)` when the heap is too small.
    pub fn new(capacity: usize, item_size: usize) -> Result<Self> {
        if capacity == 0 || item_size == 0 {
            return Err(Error::value("queue capacity and item size must be non-zero"));
        }
        let no_memory = || Error::Os(12);
        let slot_count = capacity.checked_next_power_of_two().ok_or_else(no_memory)?;
        let bytes = slot_count.checked_mul(item_size).ok_or_else(no_memory)?;
        let mut slots = Vec::new();
        slots.try_reserve_exact(slot_count).map_err(|_| no_memory())?;
        slots.extend((0..slot_count).map(|i| Slot {
            seq: AtomicUsize::new(i),
            len: UnsafeCell::new(0),
        }));
        let mut data = Vec::new();
        data.try_reserve_exact(bytes).map_err(|_| no_memory())?;
        data.resize_with(bytes, || UnsafeCell::new(0));
        Ok(MessageQueue {
            slots: slots.into_boxed_slice(),
            data: data.into_boxed_slice(),
            mask: slot_count - 1,
            capacity,
            item_size,
            send_pos: AtomicUsize::new(0),
            recv_pos: AtomicUsize::new(0),
            dropped: AtomicU32::new(0),
            ready: ThreadSafeFlag::new(),
        })
    }

    /// The largest message, in bytes.
    pub fn item_size(&self) -> usize {
        self.item_size
    }

    /// How many messages it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages waiting (a snapshot).
    pub fn len(&self) -> usize {
        let sent = self.send_pos.load(Ordering::Acquire);
        sent.wrapping_sub(self.recv_pos.load(Ordering::Acquire))
            .min(self.capacity)
    }

    /// Whether no message waits (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends refused because the queue was full, so far.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn slot_bytes(&self, index: usize) -> *mut u8 {
        // `index <= mask`, so the range `index * item_size ..+ item_size` is inside `data`.
        self.data[index * self.item_size..].as_ptr().cast_mut().cast::<u8>()
    }

    /// Queues a copy of `msg` and wakes the receiver. Never blocks, never allocates: callable
    /// from any thread and from interrupt handlers.
    pub fn send(&self, msg: &[u8]) -> core::result::Result<(), SendError> {
        if msg.len() > self.item_size {
            return Err(SendError::TooBig);
        }
        let mut pos = self.send_pos.load(Ordering::Relaxed);
        let slot = loop {
            if pos.wrapping_sub(self.recv_pos.load(Ordering::Acquire)) >= self.capacity {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return Err(SendError::Full);
            }
            let slot = &self.slots[pos & self.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos) as isize;
            if diff == 0 {
                match self.send_pos.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break slot,
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                // The receiver has not given this slot back yet: full.
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return Err(SendError::Full);
            } else {
                pos = self.send_pos.load(Ordering::Relaxed);
            }
        };
        // SAFETY: the CAS gave this sender exclusive use of the slot until the Release store
        // below (see `Sync`); the slot's bytes hold `item_size >= msg.len()` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(msg.as_ptr(), self.slot_bytes(pos & self.mask), msg.len());
            *slot.len.get() = msg.len();
        }
        slot.seq.store(pos.wrapping_add(1), Ordering::Release);
        self.ready.set();
        Ok(())
    }

    /// Takes the oldest published message into `buf` without waiting: `Ok(Some(len))`,
    /// `Ok(None)` if none waits, `Err(ValueError)` (message kept) if `buf` is too small.
    /// Loop thread only (one receiver).
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        let pos = self.recv_pos.load(Ordering::Relaxed);
        let slot = &self.slots[pos & self.mask];
        let seq = slot.seq.load(Ordering::Acquire);
        if seq != pos.wrapping_add(1) {
            return Ok(None);
        }
        // SAFETY: the Acquire load saw the sender's publication: the slot is ours to read
        // until we hand it back below.
        let len = unsafe { *slot.len.get() };
        if buf.len() < len {
            return Err(Error::value("receive buffer is smaller than the message"));
        }
        // SAFETY: as above; `len <= item_size` bytes are inside the slot.
        unsafe { core::ptr::copy_nonoverlapping(self.slot_bytes(pos & self.mask), buf.as_mut_ptr(), len) };
        self.recv_pos.store(pos.wrapping_add(1), Ordering::Release);
        slot.seq.store(pos.wrapping_add(self.mask + 1), Ordering::Release);
        Ok(Some(len))
    }

    /// Waits for the next message and copies it into `buf`; returns its length.
    /// `Err(ValueError)` (message kept) if `buf` is smaller than the message.
    ///
    /// One receiving task at a time (a second concurrent receiver gets `RuntimeError`).
    ///
    /// **Cancellation:** returns `Err(Cancelled)`; no message is lost (a message that arrived
    /// meanwhile stays queued for the next receive). **Dropping** the future loses nothing
    /// either: a message is taken out only in the poll that returns it, and the receiver's
    /// place goes to the next receive.
    pub async fn recv_into(&self, buf: &mut [u8]) -> Result<usize> {
        loop {
            if let Some(len) = self.try_recv_into(buf)? {
                return Ok(len);
            }
            self.ready.wait().await?;
        }
    }

    /// Waits for the next message and returns it in a new `Vec`. Same rules as
    /// [`recv_into`](Self::recv_into), cancellation and dropping included: a message is taken
    /// out only in the poll that returns it.
    pub async fn recv(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        buf.try_reserve_exact(self.item_size).map_err(|_| Error::Os(12))?;
        buf.resize(self.item_size, 0);
        let len = self.recv_into(&mut buf).await?;
        buf.truncate(len);
        Ok(buf)
    }

    /// The C handle of a queue that lives forever.
    pub fn as_c_ptr(&'static self) -> *mut c_void {
        (self as *const MessageQueue).cast_mut().cast()
    }

    /// The Rust view of a queue from `uasyncio_queue_create` (or [`as_c_ptr`](Self::as_c_ptr)):
    /// `None` for NULL.
    ///
    /// # Safety
    /// `queue` is NULL or a pointer obtained from one of those two.
    pub unsafe fn from_c(queue: *const c_void) -> Option<&'static MessageQueue> {
        // SAFETY: by the contract above.
        unsafe { queue.cast::<MessageQueue>().as_ref() }
    }
}

/// `uasyncio_queue_create`: NULL for a zero size or when out of memory. [task only]
#[no_mangle]
pub extern "C" fn uasyncio_queue_create(capacity: usize, item_size: usize) -> *mut c_void {
    task_only("uasyncio_queue_create");
    let Ok(queue) = MessageQueue::new(capacity, item_size) else {
        return core::ptr::null_mut();
    };
    let mut boxed = Vec::new();
    if boxed.try_reserve_exact(1).is_err() {
        return core::ptr::null_mut();
    }
    boxed.push(queue);
    let queue: &'static MessageQueue = &Box::leak(boxed.into_boxed_slice())[0];
    queue.as_c_ptr()
}

/// `uasyncio_queue_send`. [ISR-safe]
///
/// # Safety
/// `queue` is NULL or from `uasyncio_queue_create`; `msg` is valid for `len` bytes when
/// `len > 0`.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_queue_send(queue: *const c_void, msg: *const c_void, len: usize) -> c_int {
    // SAFETY: by the contract above.
    let Some(queue) = (unsafe { MessageQueue::from_c(queue) }) else {
        return E_INVAL;
    };
    let bytes: &[u8] = if len == 0 {
        &[]
    } else if msg.is_null() {
        return E_INVAL;
    } else {
        // SAFETY: by the contract above.
        unsafe { core::slice::from_raw_parts(msg.cast::<u8>(), len) }
    };
    match queue.send(bytes) {
        Ok(()) => OK,
        Err(SendError::Full) => E_FULL,
        Err(SendError::TooBig) => E_TOO_BIG,
    }
}

/// `uasyncio_queue_count`. [ISR-safe]
///
/// # Safety
/// `queue` is NULL or from `uasyncio_queue_create`.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_queue_count(queue: *const c_void) -> usize {
    // SAFETY: by the contract above.
    unsafe { MessageQueue::from_c(queue) }.map_or(0, MessageQueue::len)
}

/// `uasyncio_queue_dropped`. [ISR-safe]
///
/// # Safety
/// `queue` is NULL or from `uasyncio_queue_create`.
#[no_mangle]
pub unsafe extern "C" fn uasyncio_queue_dropped(queue: *const c_void) -> u32 {
    // SAFETY: by the contract above.
    unsafe { MessageQueue::from_c(queue) }.map_or(0, MessageQueue::dropped)
}
