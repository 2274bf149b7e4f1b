//! `cellular`: bring a modem up (AT + PPP), echo lines through a TCP or TLS server, hang up.
//!
//! ```text
//! cellular --device <tty path> --apn <name> --server <host:port> [--pin <digits>] [--tls]
//!          [--ca <cert.der>] [--lines N] [--guard-ms MS] [--link-timeout-s S] [--max-failures N]
//!          [--ppp-restart-ms MS] [--ppp-max-configure N] [--bulk-kib N] [--idle-s S] [--quiet]
//! ```
//!
//! `cellular --help` explains each option (the [`HELP`] text).
//!
//! Exits 0 only if every line came back unchanged; otherwise prints
//! `cellular: FAILED [<layer>] <what happened and what to check>` and exits 1 (2 for bad
//! arguments). The application itself is `cellular::run` (src/lib.rs), the same code the
//! FreeRTOS and Zephyr firmware run.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use cellular::{run, AppConfig};
use uasyncio_net::TlsClientConfig;

const USAGE: &str = "usage: cellular --device <tty path> --apn <name> --server <host:port> [--pin <digits>] \
[--tls] [--ca <cert.der>] [--lines N] [--guard-ms MS] [--link-timeout-s S] [--max-failures N] \
[--ppp-restart-ms MS] [--ppp-max-configure N] [--bulk-kib N] [--idle-s S] [--quiet] (--help: what each means)";

/// What `--help` prints.
pub const HELP: &str = "\
cellular: bring a modem up (AT, then PPP), echo lines through a TCP or TLS echo server, hang up.
Exits 0 if every line came back unchanged; else prints `cellular: FAILED [<layer>] ...` and exits 1
(2 for bad arguments).

  --device <path>        the modem's serial port (e.g. /dev/ttyUSB2), 115200 baud      (required)
  --apn <name>           the operator's access point name (e.g. internet)               (required)
  --server <host:port>   an echo server: every line sent must come back unchanged       (required)
  --pin <digits>         the SIM's PIN, if its PIN lock is on (4 to 8 digits)
  --tls                  TLS 1.3 to the server; without --ca the server's certificate is
                         NOT verified (a warning says so)
  --ca <cert.der>        the DER certificate the server must present (implies --tls)
  --lines N              lines to echo (default 10)
  --guard-ms MS          silence around `+++` when hanging up, the modem's S12 (default 1100)
  --link-timeout-s S     how long to wait for the link to come up (default 180)
  --max-failures N       link attempts (bring-up, dial, PPP) failing in a row before giving up
                         (default 3)
  --ppp-restart-ms MS    PPP's restart timer (default 3000)
  --ppp-max-configure N  PPP Configure-Requests per layer before giving up (default 10)
  --bulk-kib N           also move N KiB through the echo server and report the throughput
  --idle-s S             stay connected and idle S seconds, counting the loop's wake-ups
  --quiet                warnings and errors only in the log (stderr)
  --help, -h             this text";

/// `log` records to stderr, prefixed with the loop clock (ms).
struct StderrLog {
    level: log::LevelFilter,
}

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{:>8} ms {:<5}] {}", uasyncio::ticks_ms(), r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

struct Args {
    device: String,
    cfg: AppConfig,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut device = None;
    let mut apn = None;
    let mut server = None;
    let mut tls = false;
    let mut ca = None;
    let mut pin = None;
    let mut lines = 10u32;
    let mut guard_ms = None;
    let mut link_timeout_s = 180u32;
    let mut max_failures = 3u32;
    let mut ppp_restart_ms = None;
    let mut ppp_max_configure = None;
    let mut bulk_kib = 0u32;
    let mut idle_s = 0u32;
    let mut quiet = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--device" => device = Some(value("--device")?),
            "--apn" => apn = Some(value("--apn")?),
            "--server" => server = Some(value("--server")?),
            "--tls" => tls = true,
            "--pin" => pin = Some(value("--pin")?),
            "--ca" => ca = Some(value("--ca")?),
            "--lines" => lines = number(&value("--lines")?, "--lines")?,
            "--guard-ms" => guard_ms = Some(number(&value("--guard-ms")?, "--guard-ms")?),
            "--link-timeout-s" => link_timeout_s = number(&value("--link-timeout-s")?, "--link-timeout-s")?,
            "--max-failures" => max_failures = number(&value("--max-failures")?, "--max-failures")?,
            "--ppp-restart-ms" => ppp_restart_ms = Some(number(&value("--ppp-restart-ms")?, "--ppp-restart-ms")?),
            "--ppp-max-configure" => {
                ppp_max_configure = Some(number(&value("--ppp-max-configure")?, "--ppp-max-configure")?);
            }
            "--bulk-kib" => bulk_kib = number(&value("--bulk-kib")?, "--bulk-kib")?,
            "--idle-s" => idle_s = number(&value("--idle-s")?, "--idle-s")?,
            "--quiet" => quiet = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let device = device.ok_or("--device is required (the modem's tty, e.g. /dev/ttyUSB2)")?;
    let apn = apn.ok_or("--apn is required (your operator's access point name, e.g. internet)")?;
    let server = server.ok_or("--server is required (host:port of an echo server)")?;
    let (host, port) = server
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .filter(|(h, p)| !h.is_empty() && *p != 0)
        .ok_or_else(|| format!("--server {server:?} must be host:port with a port from 1 to 65535"))?;
    let mut cfg = AppConfig::new(&apn, host, port);
    cfg.modem.pin = pin;
    cfg.lines = lines;
    cfg.link_timeout_ms = link_timeout_s.saturating_mul(1000);
    cfg.supervisor.max_consecutive_failures = Some(max_failures.max(1));
    if let Some(g) = guard_ms {
        cfg.modem.guard_ms = g;
    }
    if let Some(ms) = ppp_restart_ms {
        cfg.ppp.restart_ms = ms;
    }
    if let Some(n) = ppp_max_configure {
        cfg.ppp.max_configure = n;
    }
    cfg.bulk_bytes = bulk_kib as usize * 1024;
    cfg.idle_ms = idle_s.saturating_mul(1000);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    cfg.random_seed = now ^ u64::from(std::process::id()).rotate_left(32);
    if tls || ca.is_some() {
        let mut t = TlsClientConfig::default();
        match ca {
            Some(path) => t.ca_der = Some(std::fs::read(&path).map_err(|e| format!("--ca {path}: {e}"))?),
            None => eprintln!(
                "cellular: warning: --tls without --ca: the server's certificate is not verified, so anyone \
                 on the path can pose as the server; give --ca <the server's or its CA's certificate, DER>"
            ),
        }
        // The TLS client's randomness: the host's /dev/urandom (a firmware uses its hardware RNG).
        t.seed = read_urandom().map_err(|e| format!("cannot read /dev/urandom for the TLS seed: {e}"))?;
        cfg.tls = Some(t);
    }
    Ok(Args { device, cfg, quiet })
}

fn read_urandom() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

fn number(s: &str, name: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("{name} {s:?} is not a whole number"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        // `--help`: the whole text, on stdout, and success.
        Err(msg) if msg.is_empty() => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("cellular: {msg}");
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let level = if args.quiet {
        log::LevelFilter::Warn
    } else {
        log::LevelFilter::Info
    };
    if log::set_logger(Box::leak(Box::new(StderrLog { level }))).is_ok() {
        log::set_max_level(level);
    }
    let port = match uasyncio_cellular::serial::tty::open(&args.device, 115_200) {
        Ok(p) => p,
        Err(e) => {
            println!("cellular: FAILED [AT] cannot open the modem's tty {}: {e}", args.device);
            return ExitCode::FAILURE;
        }
    };
    let before = uasyncio::diagnostics::allocated_task_cells();
    let outcome = uasyncio::run(async move {
        let r = run(port, args.cfg).await;
        // Let the stopped stack driver finish its last pass.
        uasyncio::sleep_ms(10).await?;
        // Tasks still alive besides this one: none may be left behind.
        Ok((
            r,
            uasyncio::diagnostics::allocated_task_cells().saturating_sub(before + 1),
        ))
    });
    match outcome {
        Ok((Ok(summary), tasks_left)) => {
            println!("cellular: OK {summary}; {tasks_left} task(s) left");
            if summary.sockets_left != 0 {
                println!(
                    "cellular: FAILED [TCP] {} socket(s) still open at exit",
                    summary.sockets_left
                );
                ExitCode::FAILURE
            } else if tasks_left != 0 {
                println!("cellular: FAILED [setup] {tasks_left} task(s) still alive at exit");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok((Err(e), _)) => {
            println!("cellular: FAILED {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("cellular: FAILED [setup] the event loop stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
