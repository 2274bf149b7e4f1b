//! The cellular sample as a Zephyr app: the Rust half.
//!
//! The module's shim starts the loop thread (`CONFIG_UASYNCIO_LOOP_THREAD`), whose body is
//! [`rust_main`]: it runs the uasyncio loop (`uasyncio::run`) with the shared application of
//! the cellular sample (`cellular::run`, `samples/cellular/src/lib.rs`, the code the host
//! binary and the FreeRTOS firmware run) over the modem's serial port.
//!
//! The serial port is Zephyr's UART interrupt API, in C (`main.c`): the UART callback reads
//! the receive FIFO (`uart_fifo_read`) into `uasyncio_serial_rx_isr`, which fills the
//! receive ring of `uasyncio_cellular::serial::ffi` and sets its `ThreadSafeFlag`; the
//! transmit side ([`ModemTx`]) queues bytes for the same callback, which moves them into the
//! UART with `uart_fifo_fill` and sets the TX-ready flag when a writer waits for room.
//! When the ring is full the callback masks the receive interrupt instead of dropping bytes
//! (the UART, and behind it QEMU's chardev or the pty, holds them); [`ModemPort`] unmasks it
//! after every read.
//!
//! Command line (native_sim: the words after `-testargs`; QEMU: the semihosting command
//! line after the program name): `session` (the default and only program: a TCP echo to
//! `host:7000`, then a TLS echo to `host:7443`), `ca=PATH` (DER certificate, read from the
//! host: native_sim is a Linux process, QEMU reads through semihosting), `seed=HEX` (64 hex
//! digits of entropy), `lines=N`, `guard=MS` (the modem's `+++` guard time), `apn=`,
//! `pin=` (the SIM's PIN, when its PIN lock is on), `host=`, `notls`.
//!
//! **Entropy.** Neither board has a hardware RNG in this setup: TLS's randomness comes from
//! `seed=`, which `scripts/cellular-zephyr.sh` fills from the host's `/dev/urandom` on every
//! run; without it a fixed value mixed with the clock is used and a warning printed. A
//! product must seed from a hardware RNG (Zephyr's entropy driver on a TRNG).
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ffi::{c_char, c_int};

use uasyncio::ThreadSafeFlag;
use uasyncio_cellular::serial::{ffi, SerialError, SerialPort, UartTx};

extern "C" {
    fn printk(fmt: *const c_char, ...);
    fn cell_board_name() -> *const c_char;
    fn cell_board_cmdline(buf: *mut u8, size: usize) -> c_int;
    fn cell_board_read_file(path: *const c_char, buf: *mut u8, size: usize) -> c_int;
    fn cell_board_exit(code: c_int);
    fn cell_modem_init() -> c_int;
    fn cell_modem_tx_write(bytes: *const u8, len: usize) -> usize;
    fn cell_modem_tx_idle() -> c_int;
    fn cell_modem_rx_resume();
    fn cell_modem_print_stats();
    fn uasyncio_ram_report();
}

/// Prints one line through printk.
fn print_line(s: &str) {
    let mut line = String::with_capacity(s.len() + 2);
    line.push_str(s);
    line.push('\n');
    line.push('\0');
    // SAFETY: "%s" with a NUL-terminated string that lives across the call.
    unsafe { printk(c"%s".as_ptr(), line.as_ptr()) };
}

/// Prints a formatted line through printk.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::print_line(&alloc::format!($($arg)*))
    };
}

/// Room left in the receive ring that `uasyncio_serial_rx_isr` fills, in bytes. The C UART
/// callback reads no more than this from the UART, and masks the receive interrupt at 0.
/// ISR-safe (two atomic loads).
#[no_mangle]
pub extern "C" fn cell_serial_rx_room() -> usize {
    ffi::SERIAL_RX.capacity().saturating_sub(ffi::SERIAL_RX.len())
}

/// The transmit half of the modem UART: the queue in `main.c`, drained by the UART's TX
/// interrupt (`uart_fifo_fill`), which sets [`ffi::SERIAL_TX_READY`] when a writer that found
/// the queue full, or a flush, may go on.
pub struct ModemTx;

impl UartTx for ModemTx {
    fn try_write(&mut self, bytes: &[u8]) -> usize {
        // SAFETY: `bytes` is valid for reads for the duration of the call; the C function
        // copies it under irq_lock().
        unsafe { cell_modem_tx_write(bytes.as_ptr(), bytes.len()) }
    }

    fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> {
        Some(&ffi::SERIAL_TX_READY)
    }

    fn tx_idle(&mut self) -> bool {
        // SAFETY: reads the queue indices under irq_lock().
        unsafe { cell_modem_tx_idle() != 0 }
    }
}

/// The modem's serial port: the receive ring the UART callback fills, and [`ModemTx`].
/// After every read it unmasks the receive interrupt if the callback masked it (ring full).
pub struct ModemPort(SerialPort<ModemTx, { ffi::SERIAL_RX_SIZE }>);

impl ModemPort {
    /// The port (one at a time: the ring has one reader, released when the port drops).
    pub fn new() -> Self {
        ModemPort(SerialPort::new(&ffi::SERIAL_RX, ModemTx))
    }
}

impl Default for ModemPort {
    fn default() -> Self {
        Self::new()
    }
}

impl embedded_io::ErrorType for ModemPort {
    type Error = SerialError;
}

/// **Cancellation / dropping:** as `SerialPort`'s read: no byte is lost.
impl embedded_io_async::Read for ModemPort {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
        let r = self.0.read(buf).await;
        // SAFETY: sets the UART's receive interrupt enable if the callback cleared it.
        unsafe { cell_modem_rx_resume() };
        r
    }
}

/// **Cancellation / dropping:** as `SerialPort`'s write: a write that returned has queued
/// its bytes; one waiting for room has queued none.
impl embedded_io_async::Write for ModemPort {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, SerialError> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), SerialError> {
        self.0.flush().await
    }
}

/// `key=value` from the command line.
fn param<'a>(cmd: &'a str, key: &str) -> Option<&'a str> {
    cmd.split_ascii_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn param_num<T: core::str::FromStr>(cmd: &str, key: &str, default: T) -> T {
    param(cmd, key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 64 hex digits → 32 bytes.
fn parse_seed(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let s = core::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Reads a host file (at most 16 KiB: a certificate): native_sim through the host's `open`/`read`, QEMU
/// through semihosting.
fn read_host_file(path: &str) -> Option<Vec<u8>> {
    let mut cpath = Vec::with_capacity(path.len() + 1);
    cpath.extend_from_slice(path.as_bytes());
    cpath.push(0);
    let mut buf = alloc::vec![0u8; 16 * 1024];
    // SAFETY: `cpath` is NUL-terminated; `buf` is writable for its length.
    let n = unsafe { cell_board_read_file(cpath.as_ptr().cast(), buf.as_mut_ptr(), buf.len()) };
    let n = usize::try_from(n).ok()?;
    buf.truncate(n);
    buf.shrink_to_fit();
    Some(buf)
}

/// What the command line asks for.
struct Options {
    apn: String,
    host: String,
    guard_ms: u32,
    lines: u32,
    tls: bool,
    ca_der: Option<Vec<u8>>,
    seed: [u8; 32],
    pin: Option<String>,
}

fn options(cmd: &str) -> Result<Options, String> {
    let tls = cfg!(feature = "tls") && !cmd.split_ascii_whitespace().any(|w| w == "notls");
    let ca_der = match param(cmd, "ca").filter(|_| tls) {
        Some(path) => Some(
            read_host_file(path)
                .ok_or_else(|| alloc::format!("cannot read the CA certificate '{path}' from the host"))?,
        ),
        None if tls => {
            println!("WARNING: no ca= given: the TLS server's certificate is not verified (anyone on the path can pose as the server)");
            None
        }
        None => None,
    };
    let seed = match param(cmd, "seed").map(parse_seed) {
        Some(Some(s)) => s,
        Some(None) => return Err("seed= must be 64 hex digits".into()),
        None => {
            println!("WARNING: no seed= given: TLS randomness from a fixed value and the clock (never do this in a product: use a hardware RNG)");
            let mut s = *b"uasyncio cellular: not random!!!";
            for (i, b) in rtos_shims::now_us().to_le_bytes().iter().enumerate() {
                s[i] ^= b;
            }
            s
        }
    };
    Ok(Options {
        apn: param(cmd, "apn").unwrap_or("internet").to_string(),
        host: param(cmd, "host").unwrap_or("echo.test").to_string(),
        guard_ms: param_num(cmd, "guard", 1_100u32),
        lines: param_num(cmd, "lines", 5u32),
        tls,
        ca_der,
        seed,
        pin: param(cmd, "pin").map(|p| p.to_string()),
    })
}

/// The shared application twice (TCP echo, then TLS echo); the verdict (0 = pass).
fn session(cmd: &str) -> i32 {
    let opts = match options(cmd) {
        Ok(o) => o,
        Err(e) => {
            println!("session: {e}");
            return 1;
        }
    };
    let mut net = [0u8; 8];
    net.copy_from_slice(&opts.seed[24..]);
    let net_seed = u64::from_le_bytes(net);
    let mut tcp = cellular::AppConfig::new(&opts.apn, &opts.host, 7000);
    tcp.modem.guard_ms = opts.guard_ms;
    tcp.modem.pin = opts.pin.clone();
    tcp.lines = opts.lines;
    tcp.random_seed = net_seed;
    let tls = opts.tls.then(|| {
        let mut c = tcp.clone();
        c.port = 7443;
        c.random_seed = net_seed.rotate_left(17);
        c.tls = Some(uasyncio_net::TlsClientConfig {
            server_name: Some(opts.host.clone()),
            ca_der: opts.ca_der.clone(),
            seed: opts.seed,
        });
        c
    });
    if tls.is_none() {
        println!("report: TLS echo not run (built without the `tls` feature, or `notls`)");
    }
    let result = uasyncio::run(async move {
        let mut runs = alloc::vec![("TCP", tcp)];
        runs.extend(tls.map(|c| ("TLS", c)));
        let mut failed = 0;
        for (what, cfg) in runs {
            // One serial port per run: the ring's reader is released when a run ends.
            match cellular::run(ModemPort::new(), cfg).await {
                Ok(s) => println!("report: {what} echo (shared application): {s}"),
                Err(e) => {
                    println!("session: {what} echo FAILED: {e}");
                    failed += 1;
                }
            }
        }
        Ok(failed)
    });
    println!("report: receive ring overruns {}", ffi::SERIAL_RX.overruns());
    // SAFETY: plain C function: prints the UART callback's counters.
    unsafe { cell_modem_print_stats() };
    match result {
        Ok(0) => 0,
        Ok(_) => 1,
        Err(e) => {
            println!("session: the loop failed: {e}");
            1
        }
    }
}

/// The loop thread's body (started by the module's shim, `CONFIG_UASYNCIO_LOOP_THREAD`):
/// reads the command line, brings the modem UART up, runs the program, prints
/// `firmware: PASS` or `firmware: FAIL` and ends the process (native_sim) or QEMU
/// (semihosting) with the verdict.
#[no_mangle]
pub extern "C" fn rust_main() {
    let mut buf = alloc::vec![0u8; 512];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { cell_board_cmdline(buf.as_mut_ptr(), buf.len()) };
    buf.truncate(usize::try_from(n).unwrap_or(0));
    let cmd = String::from_utf8_lossy(&buf).into_owned();
    // SAFETY: the C function returns a static NUL-terminated string.
    let board = unsafe { core::ffi::CStr::from_ptr(cell_board_name()) };
    println!("cellular zephyr ({}): {cmd}", board.to_str().unwrap_or("?"));
    // SAFETY: plain C function: sets the UART callback and enables its receive interrupt.
    let code = if unsafe { cell_modem_init() } != 0 {
        println!("the modem UART is not ready");
        1
    } else {
        match cmd.split_ascii_whitespace().next().unwrap_or("session") {
            "session" => session(&cmd),
            other => {
                println!("unknown program '{other}' (session)");
                1
            }
        }
    };
    // SAFETY: the shim's report (prints with CONFIG_UASYNCIO_RAM_REPORT=y, else nothing).
    unsafe { uasyncio_ram_report() };
    print_line(if code == 0 { "firmware: PASS" } else { "firmware: FAIL" });
    // SAFETY: plain C function (it may return on a board without a way to exit).
    unsafe { cell_board_exit(code) };
}
