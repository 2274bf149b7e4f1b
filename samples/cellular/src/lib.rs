//! # The cellular sample's application: modem → PPP → TCP (or TLS) echo
//!
//! One `async fn`, [`run`], that a firmware calls with its serial port, and that the host
//! binary (`src/main.rs`) calls with a tty. It is `no_std` + `alloc` and knows nothing of the
//! board: the FreeRTOS firmware on QEMU mps2-an385 and the Zephyr apps link this same code.
//!
//! What it does, in order:
//! 1. builds a network stack on a PPP link ([`uasyncio_net::ppp::ppp_stack`]) and a
//!    [`Supervisor`] over the modem, and starts the supervisor in its own task: it syncs
//!    the modem, checks the SIM, waits for registration, sets the PDP context, dials, runs
//!    PPP, and redials with back-off when the call drops;
//! 2. waits until the link is up (IPCP gave the stack an address and a DNS server);
//! 3. connects to the echo server by name (DNS over the link) or address, with TLS if asked,
//!    sends [`AppConfig::lines`] lines, and checks that each comes back unchanged. When the
//!    connection breaks (the call dropped: `NO CARRIER`), it waits for the supervisor to
//!    bring the link back, reconnects and resends the line that was not echoed, at most
//!    [`AppConfig::max_reconnects`] times;
//! 4. closes the stream, cancels the supervisor (which hangs up: guard time, `+++`, guard
//!    time, `ATH`), shuts the stack down, and reports a [`Summary`].
//!
//! Every failure is an [`AppError`] that names the layer — AT, SIM, registration, PPP, TCP,
//! TLS — so a person reading the log knows where to look first.

#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use embedded_io_async::{Read, Write};
use uasyncio::{create_task, Error, Event, Task};
use uasyncio_cellular::link::{DataLink, LinkEnd, LinkState, Supervisor, SupervisorConfig, UpSignal};
use uasyncio_cellular::modem::{Modem, ModemConfig};
use uasyncio_cellular::{CellularError, Layer};
use uasyncio_net::ppp::{ppp_stack, PppConfig, PppLink};
use uasyncio_net::{Stack, StackConfig, TlsClientConfig};

/// What the application does; [`AppConfig::new`] gives the defaults.
#[derive(Clone)]
pub struct AppConfig {
    /// The modem: APN, PIN, timeouts, guard time.
    pub modem: ModemConfig,
    /// The supervisor: back-off and how many failures in a row it accepts.
    pub supervisor: SupervisorConfig,
    /// PPP settings (restart timer, keep-alive).
    pub ppp: PppConfig,
    /// The echo server: a name (resolved over the link) or a dotted IPv4 address.
    pub server: String,
    /// Its TCP port.
    pub port: u16,
    /// TLS settings, or `None` for plain TCP.
    pub tls: Option<TlsClientConfig>,
    /// Lines to send and check.
    pub lines: u32,
    /// Bytes per line, the newline included (at least 16).
    pub line_len: usize,
    /// How long to wait for the link to come up, ms.
    pub link_timeout_ms: u32,
    /// How long one connect, or one line's echo, may take, ms.
    pub io_timeout_ms: u32,
    /// Reconnects allowed after a broken connection (a dropped call).
    pub max_reconnects: u32,
    /// Seed for the stack's sequence numbers and ports (make it differ per boot).
    pub random_seed: u64,
    /// Benchmark: after the lines, push this many bytes through the echo server on one
    /// connection (writer and reader at once) and report the rate. 0: off.
    pub bulk_bytes: usize,
    /// Benchmark: after that, keep the link up and idle this long (ms) and count the network
    /// stack's wake-ups. 0: off.
    pub idle_ms: u32,
}

impl AppConfig {
    /// The defaults for `apn` and the server `server:port`.
    pub fn new(apn: &str, server: &str, port: u16) -> Self {
        AppConfig {
            modem: ModemConfig::new(apn),
            supervisor: SupervisorConfig {
                max_consecutive_failures: Some(3),
                ..SupervisorConfig::default()
            },
            ppp: PppConfig::default(),
            server: server.into(),
            port,
            tls: None,
            lines: 10,
            line_len: 64,
            link_timeout_ms: 180_000,
            io_timeout_ms: 30_000,
            max_reconnects: 3,
            random_seed: 0x5EED_CE11,
            bulk_bytes: 0,
            idle_ms: 0,
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines sent and echoed back unchanged (all of them, on success).
    pub lines: u32,
    /// Payload bytes echoed.
    pub bytes: usize,
    /// Loop time from the start until the link was first up, ms.
    pub link_up_ms: u64,
    /// Loop time of the echo exchange itself (connect included), ms.
    pub echo_ms: u64,
    /// Connections made (1 plus the reconnects).
    pub connections: u32,
    /// Calls dialled by the supervisor.
    pub dials: u32,
    /// Times a link that was up went down.
    pub drops: u32,
    /// The address IPCP gave us.
    pub address: Option<core::net::Ipv4Addr>,
    /// TCP sockets still in the stack at the end (0: none leaked).
    pub sockets_left: usize,
    /// Loop time from `CONNECT` to the link being up (LCP + IPCP), ms, for the last call.
    pub connect_to_up_ms: u64,
    /// Benchmark: bytes pushed through the echo server and the loop time it took, ms.
    pub bulk: Option<(usize, u64)>,
    /// Benchmark: (idle ms, stack driver passes + PPP task wake-ups in that time).
    pub idle_wakeups: Option<(u32, u64)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines ({} bytes) echoed over {} connection(s); address {}; link up after {} ms; \
             echo {} ms; {} dial(s), {} drop(s); CONNECT->up {} ms",
            self.lines,
            self.bytes,
            self.connections,
            self.address.map_or_else(|| "-".to_string(), |a| a.to_string()),
            self.link_up_ms,
            self.echo_ms,
            self.dials,
            self.drops,
            self.connect_to_up_ms
        )?;
        if let Some((n, ms)) = self.bulk {
            let rate = (n as u64 * 1000).checked_div(ms.max(1)).unwrap_or(0);
            write!(f, "; bulk {n} bytes each way in {ms} ms ({rate} B/s)")?;
        }
        if let Some((ms, w)) = self.idle_wakeups {
            write!(f, "; idle {ms} ms: {w} network wake-up(s)")?;
        }
        write!(f, "; {} socket(s) left", self.sockets_left)
    }
}

/// A failed run, by the layer that failed.
#[derive(Debug, Clone)]
pub enum AppError {
    /// The link never came up: the supervisor's last failure (AT, SIM, registration, PPP),
    /// or a timeout.
    Link(CellularError),
    /// A TCP connection failed (connect, DNS, reset), after the reconnects allowed.
    Tcp(Error),
    /// TLS failed.
    Tls(Error),
    /// A line came back different (the line number and what was received).
    Echo {
        /// Which line (0-based).
        line: u32,
        /// What came back instead (lossy UTF-8).
        got: String,
    },
    /// The runtime or a setting refused something (a bug or a misconfiguration).
    Setup(Error),
}

impl AppError {
    /// The layer to look at first: `"AT"`, `"SIM"`, `"registration"`, `"PPP"`, `"TCP"`,
    /// `"TLS"`, `"echo"` or `"setup"`.
    pub fn layer(&self) -> &'static str {
        match self {
            AppError::Link(e) => match e.layer() {
                Some(Layer::At) => "AT",
                Some(Layer::Sim) => "SIM",
                Some(Layer::Registration) => "registration",
                Some(Layer::Ppp) => "PPP",
                Some(Layer::Tcp) => "TCP",
                Some(Layer::Tls) => "TLS",
                Some(Layer::Config) | None => "setup",
            },
            AppError::Tcp(_) => "TCP",
            AppError::Tls(_) => "TLS",
            AppError::Echo { .. } => "echo",
            AppError::Setup(_) => "setup",
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.layer())?;
        match self {
            AppError::Link(e) => write!(f, "the link did not come up: {e}"),
            AppError::Tcp(e) => write!(f, "TCP to the echo server failed: {e}"),
            AppError::Tls(e) => write!(f, "TLS to the echo server failed: {e}"),
            AppError::Echo { line, got } => write!(f, "line {line} came back as {got:?}"),
            AppError::Setup(e) => write!(f, "{e}"),
        }
    }
}

/// The PPP link, noting the loop time at which each call's data phase starts (`CONNECT`).
struct TimedLink {
    link: PppLink,
    connected_at: Rc<Cell<u64>>,
}

impl DataLink for TimedLink {
    async fn run<IO: Read + Write>(&mut self, io: &mut IO, up: &UpSignal) -> LinkEnd {
        self.connected_at.set(uasyncio::ticks_ms());
        DataLink::run(&mut self.link, io, up).await
    }
}

/// Runs the application on `io`, a serial port to the modem (see the module docs).
///
/// Must run inside a uasyncio loop (`uasyncio::run`).
///
/// **Cancellation:** a cancel of the calling task ends the echo at its next await; the
/// supervisor is then cancelled too (it hangs up) and the run returns
/// `Err(AppError::Setup(Error::Cancelled))`. **Dropping** the future drops the supervisor
/// task's handle only: the supervisor keeps the modem up until the loop ends.
pub async fn run<IO: Read + Write + 'static>(io: IO, cfg: AppConfig) -> Result<Summary, AppError> {
    let t0 = uasyncio::ticks_ms();
    let mut stack_cfg = StackConfig::for_ip_link();
    stack_cfg.random_seed = cfg.random_seed;
    stack_cfg.connect_timeout_ms = cfg.io_timeout_ms;
    let (stack, ppp) = ppp_stack(stack_cfg, cfg.ppp.clone()).map_err(AppError::Setup)?;
    let connected_at = Rc::new(Cell::new(0));
    let link = TimedLink {
        link: ppp.clone(),
        connected_at: connected_at.clone(),
    };
    let supervisor = Supervisor::new(Modem::new(io, cfg.modem.clone()), link, cfg.supervisor.clone());
    let state = supervisor.state();
    // Set when the supervisor stops (it gave up), so a wait for "link up" ends at once.
    let stopped = Rc::new(Event::new());
    let sup_task: Task<CellularError> = create_task({
        let stopped = stopped.clone();
        async move {
            let mut supervisor = supervisor;
            let e = supervisor.run().await;
            stopped.set();
            Ok(e)
        }
    });

    let outcome = echo(&stack, &ppp, &state, &stopped, &cfg, t0, &connected_at).await;
    // Counted before our own hang-up, which is not a drop.
    let stats = state.stats();

    // Stop the supervisor: it hangs up the call, then returns `Cancelled`.
    let _ = sup_task.cancel();
    let _ = sup_task.await;
    let sockets_left = wait_sockets_closed(&stack, cfg.io_timeout_ms).await;
    stack.shutdown();
    let mut summary = outcome?;
    summary.dials = stats.dials;
    summary.drops = stats.drops;
    summary.sockets_left = sockets_left;
    Ok(summary)
}

/// Steps 2 and 3 of the module docs.
async fn echo(
    stack: &Stack,
    ppp: &PppLink,
    state: &LinkState,
    stopped: &Event,
    cfg: &AppConfig,
    t0: u64,
    connected_at: &Cell<u64>,
) -> Result<Summary, AppError> {
    if cfg.line_len < 16 {
        return Err(AppError::Setup(Error::value("AppConfig::line_len must be at least 16")));
    }
    let mut summary = Summary::default();
    wait_link_up(state, stopped, cfg.link_timeout_ms).await?;
    let now = uasyncio::ticks_ms();
    summary.link_up_ms = now - t0;
    summary.connect_to_up_ms = now.saturating_sub(connected_at.get());
    summary.address = ppp.ipv4_address();
    let t_echo = uasyncio::ticks_ms();
    let mut next = 0u32;
    let mut reconnects = 0u32;
    while next < cfg.lines {
        if !state.is_up() {
            wait_link_up(state, stopped, cfg.link_timeout_ms).await?;
        }
        summary.connections += 1;
        match echo_lines(stack, cfg, &mut next, &mut summary.bytes).await {
            Ok(()) => {}
            Err(e @ (AppError::Echo { .. } | AppError::Setup(_))) => return Err(e),
            Err(e) => {
                if reconnects >= cfg.max_reconnects || matches!(e, AppError::Tcp(Error::Cancelled)) {
                    return Err(e);
                }
                reconnects += 1;
                log::warn!("cellular app: {e}; reconnecting ({reconnects}/{})", cfg.max_reconnects);
                // The call dropped (or the server reset us): let the supervisor notice and
                // redial before the next connect.
                if state.is_up() && !ppp.is_up() {
                    let _ = state.wait_down().await;
                }
            }
        }
    }
    summary.lines = next;
    summary.echo_ms = uasyncio::ticks_ms() - t_echo;
    if cfg.bulk_bytes > 0 {
        let t = uasyncio::ticks_ms();
        bulk(stack, cfg).await?;
        summary.bulk = Some((cfg.bulk_bytes, uasyncio::ticks_ms() - t));
    }
    if cfg.idle_ms > 0 {
        let before = stack.stats().driver_passes + ppp.stats().wakeups;
        uasyncio::sleep_ms(cfg.idle_ms).await.map_err(AppError::Setup)?;
        let after = stack.stats().driver_passes + ppp.stats().wakeups;
        summary.idle_wakeups = Some((cfg.idle_ms, after - before));
    }
    Ok(summary)
}

/// The bulk benchmark: one connection, a writer task pushing `bulk_bytes` while this task
/// reads the echo back and checks it.
async fn bulk(stack: &Stack, cfg: &AppConfig) -> Result<(), AppError> {
    let tls = cfg.tls.is_some();
    let tag = move |e: Error| if tls { AppError::Tls(e) } else { AppError::Tcp(e) };
    let (reader, writer) = within(
        cfg.io_timeout_ms,
        stack.open_connection(&cfg.server, cfg.port, cfg.tls.as_ref()),
    )
    .await
    .map_err(tag)?;
    let total = cfg.bulk_bytes;
    let pattern = |i: usize| (i % 251) as u8;
    let sender = create_task({
        let writer = writer.clone();
        async move {
            let mut chunk = [0u8; 1024];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                for (k, b) in chunk[..n].iter_mut().enumerate() {
                    *b = pattern(sent + k);
                }
                writer.write(&chunk[..n]);
                writer.drain().await?;
                sent += n;
            }
            Ok(())
        }
    });
    let mut got = 0;
    let mut buf = [0u8; 1024];
    while got < total {
        let n = within(cfg.io_timeout_ms, reader.readinto(&mut buf))
            .await
            .map_err(tag)?;
        if n == 0 {
            return Err(tag(Error::Eof));
        }
        if buf[..n].iter().enumerate().any(|(k, &b)| b != pattern(got + k)) {
            return Err(AppError::Echo {
                line: u32::MAX,
                got: format!("bulk data differs near byte {got}"),
            });
        }
        got += n;
    }
    sender.await.map_err(tag)?;
    writer.close();
    let _ = within(cfg.io_timeout_ms, writer.wait_closed()).await;
    Ok(())
}

/// Waits until the supervisor reports the link up, or fails with the supervisor's reason.
async fn wait_link_up(state: &LinkState, stopped: &Event, timeout_ms: u32) -> Result<(), AppError> {
    let mut up = pin!(state.wait_up());
    let mut gave_up = pin!(stopped.wait());
    let waited = within(
        timeout_ms,
        poll_fn(|cx| {
            if let Poll::Ready(r) = up.as_mut().poll(cx) {
                return Poll::Ready(r.map(|()| true));
            }
            // The supervisor gave up: no need to wait for the deadline.
            if let Poll::Ready(r) = gave_up.as_mut().poll(cx) {
                return Poll::Ready(r.map(|()| false));
            }
            Poll::Pending
        }),
    )
    .await;
    match waited {
        Ok(true) => Ok(()),
        Ok(false) => Err(AppError::Link(
            state
                .last_error()
                .unwrap_or_else(|| CellularError::Ppp("the supervisor stopped".into())),
        )),
        Err(Error::Timeout) => Err(AppError::Link(state.last_error().unwrap_or_else(|| {
            CellularError::Ppp(format!("the link did not come up within {timeout_ms} ms"))
        }))),
        Err(e) => Err(AppError::Setup(e)),
    }
}

/// One connection: sends lines from `*next` on and checks each echo; `*next` counts the
/// lines that came back.
async fn echo_lines(stack: &Stack, cfg: &AppConfig, next: &mut u32, bytes: &mut usize) -> Result<(), AppError> {
    let tls = cfg.tls.is_some();
    let tag = |e: Error| if tls { AppError::Tls(e) } else { AppError::Tcp(e) };
    let (reader, writer) = match within(
        cfg.io_timeout_ms,
        stack.open_connection(&cfg.server, cfg.port, cfg.tls.as_ref()),
    )
    .await
    {
        Ok(pair) => pair,
        // A connect that fails before TLS starts is a TCP failure even with TLS on.
        Err(e @ Error::Os(_)) => return Err(AppError::Tcp(e)),
        Err(e) => return Err(tag(e)),
    };
    let result = async {
        while *next < cfg.lines {
            let line = make_line(*next, cfg.line_len);
            writer.write(&line);
            within(cfg.io_timeout_ms, writer.drain()).await.map_err(tag)?;
            let got = within(cfg.io_timeout_ms, reader.readline()).await.map_err(tag)?;
            if got.is_empty() {
                return Err(tag(Error::Eof));
            }
            if got != line {
                return Err(AppError::Echo {
                    line: *next,
                    got: String::from_utf8_lossy(&got).into_owned(),
                });
            }
            *bytes += got.len();
            *next += 1;
        }
        Ok(())
    }
    .await;
    writer.close();
    let _ = within(cfg.io_timeout_ms, writer.wait_closed()).await;
    result
}

/// `fut`, or `Err(Timeout)` after `ms` of loop time; `fut` is dropped then (every future
/// used here may be dropped half way: stream reads and writes lose no data, a connect
/// abandons its socket).
///
/// Unlike `uasyncio::wait_for_ms`, `fut` may borrow: it runs inside the calling task, not
/// as a task of its own, so nothing is cancelled but the wait itself.
///
/// **Cancellation:** a cancel of the calling task reaches whichever of `fut` and the timer
/// polls first; both return `Err(Cancelled)`.
async fn within<T>(ms: u32, fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let mut fut = pin!(fut);
    let mut timer = pin!(uasyncio::sleep_ms(ms));
    poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(Error::Timeout)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Line `n`: `"line <n> "` then a repeating pattern, `len` bytes with the newline.
pub fn make_line(n: u32, len: usize) -> Vec<u8> {
    let mut line = format!("line {n:06} ").into_bytes();
    let mut c = b'a' + (n % 26) as u8;
    while line.len() + 1 < len {
        line.push(c);
        c = if c == b'z' { b'a' } else { c + 1 };
    }
    line.push(b'\n');
    line
}

/// Waits (bounded) for closing sockets to finish; returns how many TCP sockets are left.
async fn wait_sockets_closed(stack: &Stack, timeout_ms: u32) -> usize {
    let deadline = uasyncio::ticks_ms() + u64::from(timeout_ms);
    while stack.stats().tcp_sockets > 0 && uasyncio::ticks_ms() < deadline {
        if uasyncio::sleep_ms(50).await.is_err() {
            break;
        }
    }
    stack.stats().tcp_sockets
}

#[cfg(test)]
mod tests {
    use super::make_line;

    #[test]
    fn lines_have_the_asked_length_and_one_newline() {
        for n in [0, 7, 25, 26, 999_999] {
            let l = make_line(n, 64);
            assert_eq!(l.len(), 64);
            assert_eq!(l.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(l.last(), Some(&b'\n'));
        }
    }
}
