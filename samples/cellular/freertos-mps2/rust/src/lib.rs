//! The cellular sample as FreeRTOS firmware on QEMU mps2-an385: the Rust half.
//!
//! `main.c` starts one FreeRTOS task and calls [`cell_rust_main`] in it with the program
//! named on the semihosting command line; that task then runs the uasyncio loop
//! (`uasyncio::run`). The modem is UART0: its C receive interrupt (`board.c`) feeds
//! `uasyncio_serial_rx_isr` (the C entry point of `uasyncio_cellular::serial::ffi`), and
//! [`board::ModemTx`] queues transmit bytes for the C transmit interrupt. The
//! application itself ([`app`]) is generic over the serial port and names no board item.
//!
//! Programs (first word of the command line; `key=value` words after it):
//! - `at`: bring-up to `CONNECT` and hang-up ([`app::bring_up_only`]).
//! - `session`: the shared application of the cellular sample (`cellular::run`, the code
//!   the host binary runs) twice: a TCP echo to `host:7000`, then a TLS echo to
//!   `host:7443`; each run dials, runs PPP under the link supervisor and hangs up.
//! - `throughput`: one call carrying a TCP echo, a bulk transfer (`bulk=BYTES`) for the
//!   throughput figure, and a TLS echo ([`app::session`]).
//!
//! Options: `ca=PATH` (DER certificate read from the host through semihosting), `seed=HEX`
//! (64 hex digits of entropy, see below), `lines=N`, `guard=MS` (the modem's `+++` guard
//! time), `apn=`, `pin=` (the SIM's PIN, when its PIN lock is on), `host=`, `notls`,
//! `log=debug`.
//! - `bench-rx`: instructions from the UART RX interrupt to `read()` returning, under
//!   `-icount shift=S` (`shift=S`, `n=COMMANDS`).
//!
//! **Entropy.** This board has no RNG. TLS's randomness comes from `seed=`, which the test
//! script fills from the host's `/dev/urandom` on every boot; without it a fixed value
//! mixed with the timer is used and a warning printed. Either way it is a stand-in: a
//! product must seed from a hardware RNG (TRNG), or every device shares its key shares.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod app;
mod bench;
pub mod board;

use alloc::string::{String, ToString};
use core::fmt::Write;

#[global_allocator]
static HEAP: rtos_shims::FreeRtosHeap = rtos_shims::FreeRtosHeap;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = write!(board::Console, "\r\npanic: {info}\r\n");
    board::exit(1)
}

/// Log records on the console, with the loop's milliseconds.
struct ConsoleLog;

impl log::Log for ConsoleLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            println!(
                "[{:>6}] {:<5} {}: {}",
                uasyncio::ticks_ms(),
                r.level(),
                r.target(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

static LOGGER: ConsoleLog = ConsoleLog;

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

/// Runs the program named by `cmd` (the semihosting command line after "fw"); returns the
/// verdict (0 = pass).
///
/// # Safety
/// `cmd` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cell_rust_main(cmd: *const u8, len: usize) -> i32 {
    // SAFETY: by the contract above.
    let bytes = unsafe { core::slice::from_raw_parts(cmd, len) };
    let cmd = core::str::from_utf8(bytes).unwrap_or("");
    let program = cmd.split_ascii_whitespace().next().unwrap_or("session");
    let level = match param(cmd, "log") {
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        Some("warn") => log::LevelFilter::Warn,
        _ => log::LevelFilter::Info,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    match program {
        "at" | "throughput" => run_app(program, cmd),
        "session" => run_shared(cmd),
        "bench-rx" => bench::rx(param_num(cmd, "shift", 7u32), param_num(cmd, "n", 50u32)),
        other => {
            println!("unknown program '{other}' (at, session, throughput, bench-rx)");
            1
        }
    }
}

fn options(cmd: &str) -> Result<app::Options, String> {
    let ca_der = match param(cmd, "ca") {
        Some(path) => Some(
            board::read_host_file(path)
                .ok_or_else(|| alloc::format!("cannot read the CA certificate '{path}' through semihosting"))?,
        ),
        None => None,
    };
    let tls = cfg!(feature = "tls") && !cmd.split_ascii_whitespace().any(|w| w == "notls");
    if tls && ca_der.is_none() {
        println!("WARNING: no ca= given: the TLS server's certificate is not verified (anyone on the path can pose as the server)");
    }
    let tls_seed = match param(cmd, "seed").map(parse_seed) {
        Some(Some(s)) => s,
        Some(None) => return Err("seed= must be 64 hex digits".into()),
        None => {
            println!("WARNING: no seed= given: TLS randomness from a fixed value and the timer (never do this in a product: use a hardware RNG)");
            let mut s = *b"uasyncio cellular: not random!!!";
            for (i, b) in board::clock().to_le_bytes().iter().enumerate() {
                s[i] ^= b;
            }
            s
        }
    };
    let mut net = [0u8; 8];
    net.copy_from_slice(&tls_seed[24..]);
    Ok(app::Options {
        apn: param(cmd, "apn").unwrap_or("internet").to_string(),
        pin: param(cmd, "pin").map(ToString::to_string),
        guard_ms: param_num(cmd, "guard", 1_100u32),
        host: param(cmd, "host").unwrap_or("echo.test").to_string(),
        tcp_port: 7000,
        tls_port: tls.then_some(7443),
        lines: param_num(cmd, "lines", 5u32),
        bulk_bytes: param_num(cmd, "bulk", 0usize),
        ca_der,
        tls_seed,
        net_seed: u64::from_le_bytes(net),
    })
}

fn run_app(program: &str, cmd: &str) -> i32 {
    let opts = match options(cmd) {
        Ok(o) => o,
        Err(e) => {
            println!("{program}: {e}");
            return 1;
        }
    };
    let port = board::modem_port();
    let at_only = program == "at";
    let result = uasyncio::run(async move {
        if at_only {
            Ok(app::bring_up_only(port, &opts).await.map(|()| None))
        } else {
            Ok(app::session(port, &opts).await.map(Some))
        }
    });
    let (free, min_free) = board::heap();
    let verdict = match result {
        Ok(Ok(None)) => 0,
        Ok(Ok(Some(r))) => {
            println!(
                "report: address {:?}; tcp lines {}, tls lines {}; CONNECT at {} ms, PPP up at {} ms, done at {} ms; PPP frames in {} dropped {} restarts {}, packets dropped on send {}",
                r.address, r.tcp_lines, r.tls_lines, r.timeline_ms[0], r.timeline_ms[1], r.timeline_ms[2],
                r.ppp_frames.0, r.ppp_frames.1, r.ppp_frames.2, r.ppp_tx_dropped
            );
            if let Some((bytes, ms)) = r.bulk {
                println!(
                    "report: TCP over PPP under QEMU: {bytes} bytes sent and echoed back in {ms} ms ({} bytes/s each way, wall clock of the guest)",
                    (bytes as u64 * 1000) / ms.max(1)
                );
            }
            0
        }
        Ok(Err(e)) => {
            println!("{program}: FAILED: {}", uasyncio_cellular::link::describe(&e));
            1
        }
        Err(e) => {
            println!("{program}: the loop failed: {e}");
            1
        }
    };
    println!(
        "report: main task stack never used {} bytes; heap free {free} bytes (least ever {min_free})",
        board::stack_unused()
    );
    verdict
}

/// `session`: the shared application (`samples/cellular/src/lib.rs`), TCP then TLS.
fn run_shared(cmd: &str) -> i32 {
    let opts = match options(cmd) {
        Ok(o) => o,
        Err(e) => {
            println!("session: {e}");
            return 1;
        }
    };
    let mut tcp = cellular::AppConfig::new(&opts.apn, &opts.host, opts.tcp_port);
    tcp.modem.guard_ms = opts.guard_ms;
    tcp.modem.pin = opts.pin.clone();
    tcp.lines = opts.lines;
    tcp.random_seed = opts.net_seed;
    let tls = opts.tls_port.map(|port| {
        let mut c = tcp.clone();
        c.port = port;
        c.random_seed = opts.net_seed.rotate_left(17);
        c.tls = Some(uasyncio_net::TlsClientConfig {
            server_name: Some(opts.host.clone()),
            ca_der: opts.ca_der.clone(),
            seed: opts.tls_seed,
        });
        c
    });
    let result = uasyncio::run(async move {
        let mut runs = alloc::vec![("TCP", tcp)];
        runs.extend(tls.map(|c| ("TLS", c)));
        let mut failed = 0;
        for (what, cfg) in runs {
            // One serial port per run: the ring's reader is released when a run ends.
            match cellular::run(board::modem_port(), cfg).await {
                Ok(s) => println!("report: {what} echo (shared application): {s}"),
                Err(e) => {
                    println!("session: {what} echo FAILED: {e}");
                    failed += 1;
                }
            }
        }
        Ok(failed)
    });
    let (free, min_free) = board::heap();
    println!(
        "report: main task stack never used {} bytes; heap free {free} bytes (least ever {min_free})",
        board::stack_unused()
    );
    match result {
        Ok(0) => 0,
        Ok(_) => 1,
        Err(e) => {
            println!("session: the loop failed: {e}");
            1
        }
    }
}
