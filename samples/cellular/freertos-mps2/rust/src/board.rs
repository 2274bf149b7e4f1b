//! The C board glue (`../board.c`, `../main.c`) seen from Rust: console, semihosting,
//! the modem UART's transmit queue, the clock and the RX statistics.

use core::fmt;

use uasyncio::ThreadSafeFlag;
use uasyncio_cellular::serial::{ffi, SerialPort, UartTx};

/// `BoardRxStats` of board.h.
#[repr(C)]
pub struct RxStats {
    /// Nonzero: the handler measures.
    pub on: u32,
    /// RX interrupts taken.
    pub irqs: u32,
    /// Bytes handed to `uasyncio_serial_rx_isr`.
    pub bytes: u32,
    /// Clock ticks spent inside the handler, summed.
    pub isr_ticks: u32,
    /// Clock at the entry of the first interrupt not yet read.
    pub first_stamp: u32,
    /// `first_stamp` is set; the reader clears it.
    pub first_valid: u32,
}

extern "C" {
    fn board_console_write(s: *const u8, len: usize);
    fn board_exit(code: i32) -> !;
    fn board_read_file(path: *const u8, buf: *mut u8, size: usize) -> i32;
    fn board_modem_tx_write(bytes: *const u8, len: usize) -> usize;
    fn board_modem_tx_idle() -> i32;
    fn board_clock() -> u32;
    fn cell_main_stack_unused_bytes() -> u32;
    fn cell_heap_free() -> usize;
    fn cell_heap_min_free() -> usize;
    static mut board_rx_stats: RxStats;
}

/// UART1, the console, as a `fmt::Write`.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `s` is a valid slice for the duration of the call; the C function only
        // reads it (polled UART1 writes).
        unsafe { board_console_write(s.as_ptr(), s.len()) };
        Ok(())
    }
}

/// Prints a line on the console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::board::Console, $($arg)*);
        let _ = $crate::board::Console.write_str("\r\n");
    }};
}

/// Ends the QEMU run: exit code 0 for `code == 0`, 1 otherwise.
pub fn exit(code: i32) -> ! {
    // SAFETY: a C function that never returns.
    unsafe { board_exit(code) }
}

/// Reads a host file through semihosting (at most 64 KiB).
pub fn read_host_file(path: &str) -> Option<alloc::vec::Vec<u8>> {
    let mut cpath = alloc::vec::Vec::with_capacity(path.len() + 1);
    cpath.extend_from_slice(path.as_bytes());
    cpath.push(0);
    let mut buf = alloc::vec![0u8; 64 * 1024];
    // SAFETY: `cpath` is NUL-terminated; `buf` is writable for its length.
    let n = unsafe { board_read_file(cpath.as_ptr(), buf.as_mut_ptr(), buf.len()) };
    let n = usize::try_from(n).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The free-running SYSCLK counter (timer1, counts down, 40 ns per tick).
#[inline(always)]
pub fn clock() -> u32 {
    // SAFETY: reads one timer register.
    unsafe { board_clock() }
}

/// Stack bytes of the main task never used so far.
pub fn stack_unused() -> u32 {
    // SAFETY: a FreeRTOS query on the running task's handle.
    unsafe { cell_main_stack_unused_bytes() }
}

/// (free now, least free ever) bytes of the FreeRTOS heap.
pub fn heap() -> (usize, usize) {
    // SAFETY: plain FreeRTOS queries.
    unsafe { (cell_heap_free(), cell_heap_min_free()) }
}

/// The RX interrupt statistics (shared with the C handler).
pub fn rx_stats() -> *mut RxStats {
    &raw mut board_rx_stats
}

/// The transmit half of the modem UART: the C driver's queue, drained by the TX interrupt,
/// which sets `ffi::SERIAL_TX_READY` when a writer that found the queue full may go on.
pub struct ModemTx;

impl UartTx for ModemTx {
    fn try_write(&mut self, bytes: &[u8]) -> usize {
        // SAFETY: `bytes` is valid for reads for the duration of the call; the queue
        // function runs in a critical section against the TX interrupt.
        unsafe { board_modem_tx_write(bytes.as_ptr(), bytes.len()) }
    }

    fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> {
        Some(&ffi::SERIAL_TX_READY)
    }

    fn tx_idle(&mut self) -> bool {
        // SAFETY: reads the queue indices and a UART register.
        unsafe { board_modem_tx_idle() != 0 }
    }
}

/// The modem's serial port: the RX ring the C interrupt handler fills + [`ModemTx`].
pub type ModemPort = SerialPort<ModemTx, { ffi::SERIAL_RX_SIZE }>;

/// The modem's serial port (one per boot: the ring has one reader).
pub fn modem_port() -> ModemPort {
    SerialPort::new(&ffi::SERIAL_RX, ModemTx)
}
