//! The few QEMU mps2-an385 devices the benchmark needs, written for it: CMSDK UART0 (output),
//! CMSDK timers 0 and 1, the NVIC, semihosting (command line and exit) and the interrupt
//! vector table.
//!
//! Where the numbers come from:
//! - Memory map and interrupt numbers: ARM Application Note AN385 (Cortex-M3 on the MPS2
//!   board), as QEMU 7.2 models it in `hw/arm/mps2.c`: UART0 at 0x4000_4000, timer0 at
//!   0x4000_0000 (IRQ 8), timer1 at 0x4000_1000 (IRQ 9), SYSCLK 25 MHz. The FreeRTOS firmware
//!   uses the same (`ports/freertos/mps2-an385/board.h`).
//! - Register layouts: ARM Cortex-M System Design Kit Technical Reference Manual (DDI 0479):
//!   APB timer CTRL +0x0 (bit 0 enable, bit 3 interrupt enable), VALUE +0x4, RELOAD +0x8,
//!   INTSTATUS/INTCLEAR +0xC; APB UART DATA +0x0, STATE +0x4 (bit 0 TX full), CTRL +0x8
//!   (bit 0 TX enable), BAUDDIV +0x10.
//! - NVIC: ARMv7-M Architecture Reference Manual, ISER0 0xE000_E100, ICER0 0xE000_E180,
//!   ICPR0 0xE000_E280, IPR byte n at 0xE000_E400 + n.
//! - Semihosting: Arm's semihosting specification (`bkpt 0xAB`, operation in r0, parameter
//!   block in r1; SYS_GET_CMDLINE 0x15, SYS_EXIT 0x18 with ADP_Stopped_ApplicationExit
//!   0x20026 / ADP_Stopped_RunTimeErrorUnknown 0x20023).

use core::fmt;
use core::ptr::{read_volatile, write_volatile};

const UART0: usize = 0x4000_4000;
/// CMSDK timer0 (its interrupt drives the interrupt → task benchmark).
pub const TIMER0: usize = 0x4000_0000;
/// CMSDK timer1 (free-running clock, no interrupt).
pub const TIMER1: usize = 0x4000_1000;
/// Timer0's interrupt number.
pub const TIMER0_IRQ: u32 = 8;

const CTRL: usize = 0x0;
const VALUE: usize = 0x4;
const RELOAD: usize = 0x8;
const INTCLEAR: usize = 0xC;

const NVIC_ISER0: usize = 0xE000_E100;
const NVIC_ICER0: usize = 0xE000_E180;
const NVIC_ICPR0: usize = 0xE000_E280;
const NVIC_IPR: usize = 0xE000_E400;

fn write(addr: usize, v: u32) {
    // SAFETY: every caller passes one of the device registers listed above, which exist on
    // this board and take word writes.
    unsafe { write_volatile(addr as *mut u32, v) }
}

/// Enables UART0's transmitter.
pub fn uart_init() {
    write(UART0 + 0x10, 16);
    write(UART0 + 0x8, 1);
}

/// UART0 as a `fmt::Write`.
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: STATE register of UART0, always readable.
            while unsafe { read_volatile((UART0 + 0x4) as *const u32) } & 1 != 0 {}
            write(UART0, u32::from(b));
        }
        Ok(())
    }
}

/// Prints a line on UART0 (QEMU's `-serial stdio`).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::board::Uart, $($arg)*);
    }};
}

/// Starts `timer` counting down from `reload` at SYSCLK, reloading at zero; with `irq` set it
/// raises its interrupt each time it reaches zero.
pub fn timer_start(timer: usize, reload: u32, irq: bool) {
    write(timer + CTRL, 0);
    write(timer + INTCLEAR, 1);
    write(timer + RELOAD, reload);
    write(timer + VALUE, reload);
    write(timer + CTRL, if irq { 1 | 8 } else { 1 });
}

/// Stops `timer` and clears its interrupt.
pub fn timer_stop(timer: usize) {
    write(timer + CTRL, 0);
    write(timer + INTCLEAR, 1);
}

/// Clears `timer`'s pending interrupt (from its handler).
#[inline(always)]
pub fn timer_clear(timer: usize) {
    write(timer + INTCLEAR, 1);
}

/// `timer`'s current count.
#[inline(always)]
pub fn timer_value(timer: usize) -> u32 {
    // SAFETY: VALUE register of a CMSDK timer, always readable.
    unsafe { read_volatile((timer + VALUE) as *const u32) }
}

/// Sets interrupt `irq`'s priority, clears it if pending and enables it.
pub fn irq_enable(irq: u32, priority: u8) {
    // SAFETY: the NVIC priority byte of an interrupt this board has (irq < 32).
    unsafe { write_volatile((NVIC_IPR + irq as usize) as *mut u8, priority) };
    write(NVIC_ICPR0, 1 << irq);
    write(NVIC_ISER0, 1 << irq);
}

/// Disables interrupt `irq`.
pub fn irq_disable(irq: u32) {
    write(NVIC_ICER0, 1 << irq);
}

fn semihost(op: u32, arg: usize) -> u32 {
    let mut r0 = op;
    // SAFETY: a semihosting call: QEMU (`-semihosting`) reads the parameter block at `arg`,
    // which the caller keeps alive across the call, and writes only the buffer it names.
    unsafe {
        core::arch::asm!("bkpt 0xAB", inout("r0") r0, in("r1") arg, options(nostack));
    }
    r0
}

/// Copies the semihosting command line (`-semihosting-config arg=..`) into `buf`; empty if
/// there is none or it is not UTF-8.
pub fn cmdline(buf: &mut [u8]) -> &str {
    let mut block: [usize; 2] = [buf.as_mut_ptr() as usize, buf.len() - 1];
    if semihost(0x15, block.as_mut_ptr() as usize) != 0 {
        return "";
    }
    let n = block[1].min(buf.len() - 1);
    core::str::from_utf8(&buf[..n]).unwrap_or("")
}

/// Ends the QEMU run: exit code 0 for `code == 0`, 1 otherwise.
pub fn exit(code: i32) -> ! {
    cortex_m::interrupt::disable();
    loop {
        semihost(0x18, if code == 0 { 0x20026 } else { 0x20023 });
    }
}

extern "C" {
    fn DefaultHandler();
    fn TIMER0_Handler();
}

/// The device interrupt vectors (AN385 has 32 external interrupts); only timer0's is ours.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
pub static __INTERRUPTS: [unsafe extern "C" fn(); 32] = {
    let mut v = [DefaultHandler as unsafe extern "C" fn(); 32];
    v[TIMER0_IRQ as usize] = TIMER0_Handler;
    v
};
