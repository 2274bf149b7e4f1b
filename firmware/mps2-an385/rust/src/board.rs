//! The C board support (ports/freertos/mps2-an385/board.c and main.c) seen from Rust.

use core::fmt;

extern "C" {
    fn board_uart_write(s: *const u8, len: usize);
    fn board_exit(code: i32) -> !;
    fn board_irq_enable(irq: i32, priority: u8);
    fn board_irq_disable(irq: i32);
    fn board_timer_start(timer: *mut u32, reload: u32);
    fn board_timer_stop(timer: *mut u32);
    fn fw_report_latency(what: *const u8, ticks: *mut u32, n: usize, shift: u32);
    /// `main.c`: what TIMER0_Handler does (3 = call `fw_isr_hook`).
    pub static mut fw_isr_mode: u32;
    /// `main.c`: the function TIMER0_Handler calls in mode 3.
    pub static mut fw_isr_hook: Option<extern "C" fn()>;
    /// `main.c`: timer0 interrupts so far.
    pub static fw_timer0_irqs: u32;
    static mut fw_isr_queue: *mut core::ffi::c_void;
    static fw_isr_queue_ok: u32;
    static fw_isr_queue_full: u32;
    fn xPortGetFreeHeapSize() -> usize;
}

/// TIMER0_Handler mode: call `fw_isr_hook`.
pub const ISR_HOOK: u32 = 3;
/// TIMER0_Handler mode: `uasyncio_flag_set_from_isr(&FW_TIMER_FLAG)` (C API).
pub const ISR_FLAG: u32 = 4;
/// TIMER0_Handler mode: `uasyncio_queue_send(fw_isr_queue, ..)` (C API).
pub const ISR_QUEUE: u32 = 5;
/// TIMER0_Handler mode: `uasyncio_queue_create` from the ISR (misuse).
pub const ISR_MISUSE: u32 = 6;
/// CMSDK timer0 base and IRQ.
pub const TIMER0: usize = 0x4000_0000;
pub const TIMER0_IRQ: i32 = 8;
/// NVIC priority for interrupts that call FromISR APIs (below configMAX_SYSCALL 0xA0).
pub const IRQ_PRIORITY: u8 = 0xC0;

/// UART0 as a `fmt::Write`.
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `s` is a valid slice for the duration of the call.
        unsafe { board_uart_write(s.as_ptr(), s.len()) };
        Ok(())
    }
}

/// Prints on UART0.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::board::Uart, $($arg)*);
    }};
}

/// Ends the QEMU run: exit code 0 for `code == 0`, 1 otherwise.
pub fn exit(code: i32) -> ! {
    // SAFETY: a C function that never returns.
    unsafe { board_exit(code) }
}

/// Installs `hook` as TIMER0_Handler's body and starts timer0 with a period of `reload + 1`
/// SYSCLK cycles.
pub fn timer0_start(hook: extern "C" fn(), reload: u32) {
    timer0_start_mode(ISR_HOOK, Some(hook), reload);
}

/// Starts timer0 with TIMER0_Handler in `mode` (one of the `ISR_*` constants).
pub fn timer0_start_mode(mode: u32, hook: Option<extern "C" fn()>, reload: u32) {
    // SAFETY: the interrupt is disabled while the hook and mode are written; TIMER0_Handler
    // reads them only once enabled.
    unsafe {
        board_irq_disable(TIMER0_IRQ);
        fw_isr_hook = hook;
        fw_isr_mode = mode;
        board_irq_enable(TIMER0_IRQ, IRQ_PRIORITY);
        board_timer_start(TIMER0 as *mut u32, reload);
    }
}

/// Sets the queue TIMER0_Handler sends to in `ISR_QUEUE` mode.
pub fn set_isr_queue(queue: *mut core::ffi::c_void) {
    // SAFETY: written while timer0's interrupt is off (callers start the timer after).
    unsafe { fw_isr_queue = queue }
}

/// (ok, full) counts of the ISR's queue sends.
pub fn isr_queue_counts() -> (u32, u32) {
    // SAFETY: word-sized reads of counters only the ISR writes.
    unsafe {
        (
            core::ptr::read_volatile(&raw const fw_isr_queue_ok),
            core::ptr::read_volatile(&raw const fw_isr_queue_full),
        )
    }
}

/// Free bytes in the FreeRTOS heap.
pub fn heap_free() -> usize {
    // SAFETY: a plain FreeRTOS call.
    unsafe { xPortGetFreeHeapSize() }
}

/// Stops timer0 and its interrupt.
pub fn timer0_stop() {
    // SAFETY: plain register writes through the C board code.
    unsafe {
        board_timer_stop(TIMER0 as *mut u32);
        board_irq_disable(TIMER0_IRQ);
        fw_isr_mode = 0;
    }
}

/// Timer0's current count (counts down at 25 MHz).
#[inline(always)]
pub fn timer0_value() -> u32 {
    // SAFETY: VALUE register of the CMSDK timer at 0x40000004, always readable.
    unsafe { core::ptr::read_volatile((TIMER0 + 4) as *const u32) }
}

/// Number of timer0 interrupts so far.
pub fn timer0_irqs() -> u32 {
    // SAFETY: a word-sized read of a counter only the ISR writes.
    unsafe { core::ptr::read_volatile(&raw const fw_timer0_irqs) }
}

/// Prints a latency report line (the same format as the C benchmarks).
pub fn report_latency(what: &str, ticks: &mut [u32], shift: u32) {
    let mut name = [0u8; 64];
    let n = what.len().min(name.len() - 1);
    name[..n].copy_from_slice(&what.as_bytes()[..n]);
    // SAFETY: `name` is NUL-terminated; `ticks` is a valid mutable slice.
    unsafe { fw_report_latency(name.as_ptr(), ticks.as_mut_ptr(), ticks.len(), shift) }
}
