//! The firmware's own programs on the portable layers: bring-up only (`at`) and one call
//! carrying TCP echo, a bulk transfer and TLS echo (`throughput`). The `session` program
//! uses the shared application of the cellular sample instead (`samples/cellular`).
//!
//! Written against the portable layers only — any `embedded_io_async::{Read, Write}` serial
//! port, [`uasyncio_cellular::modem`], [`uasyncio_net::ppp`] and [`uasyncio_net::Stack`] —
//! so it runs unchanged on the host (over a pty) and here on FreeRTOS (over the UART0
//! driver); it is `no_std` + `alloc` and names no board item.
//!
//! One session ([`session`]):
//! 1. [`Modem::bring_up`]: AT sync, echo off, SIM, registration, PDP context, dial.
//! 2. PPP over the same port ([`PppLink::run`]) and, next to it in the same task, the
//!    client ([`client`]): wait for IPCP, resolve and connect to `host:tcp_port`, echo
//!    `lines` lines; optionally move `bulk_bytes` through the echo server both ways (a
//!    throughput figure, never a verdict); then TLS to `host:tls_port` with the CA and echo
//!    `lines` lines again.
//! 3. Whichever of the two ends first ends the other (the link ending aborts the client's
//!    connections; the client finishing drops the link, which un-addresses the stack), then
//!    [`Modem::hang_up`].
//!
//! Every wait is bounded (the library's own deadlines, plus [`STEP_TIMEOUT_MS`] around each
//! echo exchange), so a broken peer gives an error that names the layer, never a hang.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use embedded_io_async::{Read, Write};
use uasyncio::{ticks_ms, wait_for_ms};
use uasyncio_cellular::modem::{Modem, ModemConfig};
use uasyncio_cellular::CellularError;
use uasyncio_net::ppp::{ppp_stack, PppConfig};
use uasyncio_net::{Stack, StackConfig, Stream};

/// Bound on one echo exchange (write a line, read it back), and on IPCP coming up, ms.
pub const STEP_TIMEOUT_MS: u32 = 30_000;

/// What a session does.
#[derive(Clone)]
pub struct Options {
    /// The APN of the PDP context.
    pub apn: String,
    /// The SIM's PIN, when its PIN lock is on.
    pub pin: Option<String>,
    /// Silence before and after `+++` when hanging up, ms (the modem's S12).
    pub guard_ms: u32,
    /// The echo server's name (resolved through the DNS server IPCP gives).
    pub host: String,
    /// Plain TCP echo port.
    pub tcp_port: u16,
    /// TLS echo port; `None` skips TLS.
    pub tls_port: Option<u16>,
    /// Lines to echo on each connection.
    pub lines: u32,
    /// Bytes to move through the TCP echo server for the throughput figure (0: none).
    pub bulk_bytes: usize,
    /// DER of the certificate the TLS server must present (checked with its name); `None`
    /// verifies nothing.
    pub ca_der: Option<Vec<u8>>,
    /// Entropy for TLS (client random, key share). **Must come from a hardware RNG** in a
    /// product; see the firmware's README for where this sample takes it from.
    pub tls_seed: [u8; 32],
    /// Seed of smoltcp's initial sequence numbers and local ports (differ per boot).
    pub net_seed: u64,
}

/// What a session measured.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The address IPCP gave.
    pub address: Option<core::net::Ipv4Addr>,
    /// Lines that came back through plain TCP.
    pub tcp_lines: u32,
    /// Lines that came back through TLS.
    pub tls_lines: u32,
    /// `(bytes, ms)` of the bulk transfer (sent and echoed back), if one ran.
    pub bulk: Option<(usize, u64)>,
    /// ms from the start of `session` to `CONNECT`, to IPCP up, to the client's end.
    pub timeline_ms: [u64; 3],
    /// PPP frames received, dropped, Configure-Requests re-sent.
    pub ppp_frames: (u64, u64, u32),
    /// IPv4 packets of the stack that the PPP link dropped (queue full, link down).
    pub ppp_tx_dropped: u64,
}

/// Brings the modem up to `CONNECT` and hangs up again: the AT layers alone.
///
/// **Cancellation:** `Err(CellularError::Cancelled)`; the modem may be left in data mode
/// (the next bring-up escapes it). Dropping the future is the same.
pub async fn bring_up_only<IO: Read + Write>(io: IO, opts: &Options) -> Result<(), CellularError> {
    let mut modem = Modem::new(io, modem_config(opts));
    let connected = modem.bring_up().await?;
    log::info!(
        "app: CONNECT {:?}, registration {:?}",
        connected.rate,
        connected.registration
    );
    modem.hang_up().await?;
    log::info!("app: hung up");
    Ok(())
}

fn modem_config(opts: &Options) -> ModemConfig {
    let mut cfg = ModemConfig::new(&opts.apn);
    cfg.guard_ms = opts.guard_ms;
    cfg.pin = opts.pin.clone();
    cfg
}

/// One whole session (see the module docs). `Ok` only if every line came back through TCP
/// and (when `tls_port` is set) through TLS.
///
/// **Cancellation:** `Err(CellularError::Cancelled)` from whichever step it was in; the
/// stack's connections are aborted and the modem may be left in data mode. Dropping the
/// future is the same.
pub async fn session<IO: Read + Write>(io: IO, opts: &Options) -> Result<Report, CellularError> {
    let t0 = ticks_ms();
    let mut report = Report::default();
    let mut modem = Modem::new(io, modem_config(opts));
    let connected = modem.bring_up().await?;
    report.timeline_ms[0] = ticks_ms() - t0;
    log::info!("app: CONNECT {:?} after {} ms", connected.rate, report.timeline_ms[0]);

    let mut stack_cfg = StackConfig::for_ip_link();
    stack_cfg.random_seed = opts.net_seed;
    let (stack, mut link) = ppp_stack(stack_cfg, PppConfig::default()).map_err(CellularError::Tcp)?;
    let watcher = link.clone();

    // The client runs as its own task; PPP runs in this one until either ends.
    let mut client_task = {
        let (stack, opts) = (stack.clone(), opts.clone());
        uasyncio::create_task(async move {
            let mut report = Report::default();
            Ok(client(&stack, &opts, &mut report, t0).await.map(|()| report))
        })
    };
    let outcome = select(link.run(modem.io_mut()), &mut client_task).await;
    let result = match outcome {
        Either::Left(end) => {
            // The link ended first: stop the client (its connections are aborted already).
            let _ = client_task.cancel();
            let _ = client_task.await;
            Err(CellularError::Ppp(format!("{end} (before the client finished)")))
        }
        Either::Right(Ok(Ok(r))) => {
            let timeline = report.timeline_ms;
            report = r;
            report.timeline_ms[0] = timeline[0];
            Ok(())
        }
        Either::Right(Ok(Err(e))) => Err(e),
        Either::Right(Err(e)) => Err(CellularError::Tcp(e)),
    };
    let s = watcher.stats();
    report.ppp_frames = (s.frames_in, s.frames_dropped, s.restarts);
    report.ppp_tx_dropped = s.tx_dropped;
    report.timeline_ms[2] = ticks_ms() - t0;
    // The link future is gone: the stack has no address and no connection any more.
    let hang = modem.hang_up().await;
    stack.shutdown();
    result?;
    hang?;
    Ok(report)
}

/// The client half of a session: runs while PPP runs (see the module docs).
async fn client(stack: &Stack, opts: &Options, report: &mut Report, t0: u64) -> Result<(), CellularError> {
    let s = stack.clone();
    wait_for_ms(async move { s.wait_config_up().await }, STEP_TIMEOUT_MS)
        .await
        .map_err(|e| CellularError::Ppp(format!("IPCP did not come up: {e}")))?;
    report.address = stack.ipv4_address();
    report.timeline_ms[1] = ticks_ms() - t0;
    log::info!(
        "app: PPP up, address {:?}, DNS {:?}",
        report.address,
        stack.dns_servers()
    );

    // Plain TCP echo.
    let (r, w) = stack
        .open_connection(&opts.host, opts.tcp_port, None)
        .await
        .map_err(|e| {
            log::warn!("app: open_connection({}, {}) failed: {e}", opts.host, opts.tcp_port);
            CellularError::Tcp(e)
        })?;
    log::info!("app: connected to {}:{}", opts.host, opts.tcp_port);
    report.tcp_lines = echo_lines(&r, &w, "tcp", opts.lines)
        .await
        .map_err(CellularError::Tcp)?;
    if opts.bulk_bytes > 0 {
        let t = ticks_ms();
        let (r2, w2, n) = (r.clone(), w.clone(), opts.bulk_bytes);
        wait_for_ms(async move { bulk(&r2, &w2, n).await }, STEP_TIMEOUT_MS * 4)
            .await
            .map_err(CellularError::Tcp)?;
        report.bulk = Some((opts.bulk_bytes, ticks_ms() - t));
    }
    close(&w).await;
    log::info!("app: TCP echo: {} of {} lines came back", report.tcp_lines, opts.lines);

    // TLS echo.
    if let Some(port) = opts.tls_port {
        let tls = uasyncio_net::TlsClientConfig {
            server_name: Some(opts.host.clone()),
            ca_der: opts.ca_der.clone(),
            seed: opts.tls_seed,
        };
        let (r, w) = stack
            .open_connection(&opts.host, port, Some(&tls))
            .await
            .map_err(|e| CellularError::Tls(format!("{e}")))?;
        report.tls_lines = echo_lines(&r, &w, "tls", opts.lines)
            .await
            .map_err(|e| CellularError::Tls(format!("{e}")))?;
        close(&w).await;
        log::info!("app: TLS echo: {} of {} lines came back", report.tls_lines, opts.lines);
    }
    Ok(())
}

/// Writes `n` numbered lines and reads each back; the count that came back equal.
async fn echo_lines(r: &Stream, w: &Stream, tag: &str, n: u32) -> uasyncio::Result<u32> {
    let mut ok = 0;
    for i in 0..n {
        let line = format!("{tag} line {i} from mps2-an385\n");
        w.write(line.as_bytes());
        let (r2, w2) = (r.clone(), w.clone());
        let got = wait_for_ms(
            async move {
                w2.drain().await?;
                r2.readline().await
            },
            STEP_TIMEOUT_MS,
        )
        .await
        .inspect_err(|e| log::warn!("app: {tag} line {i}: {e}"))?;
        if got == line.as_bytes() {
            ok += 1;
        } else {
            return Err(uasyncio::Error::Value(
                format!("{tag}: line {i} came back as {:?}", String::from_utf8_lossy(&got)).into(),
            ));
        }
    }
    Ok(ok)
}

/// Sends `total` bytes through the echo server and reads them back, concurrently.
async fn bulk(r: &Stream, w: &Stream, total: usize) -> uasyncio::Result<()> {
    let chunk: Vec<u8> = (0..1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    let writer = async {
        let mut sent = 0;
        while sent < total {
            let n = (total - sent).min(chunk.len());
            w.write(&chunk[..n]);
            w.drain().await?;
            sent += n;
        }
        Ok::<(), uasyncio::Error>(())
    };
    let reader = async {
        let mut got = 0;
        let mut buf = [0u8; 512];
        while got < total {
            let n = r.readinto(&mut buf).await?;
            if n == 0 {
                return Err(uasyncio::Error::Eof);
            }
            for (k, b) in buf[..n].iter().enumerate() {
                if *b != b'a' + ((got + k) % 1024 % 26) as u8 {
                    return Err(uasyncio::Error::Value(format!("bulk: byte {} differs", got + k).into()));
                }
            }
            got += n;
        }
        Ok(())
    };
    let (a, b) = join(writer, reader).await;
    a.and(b)
}

async fn close(w: &Stream) {
    w.close();
    let w2 = w.clone();
    let _ = wait_for_ms(async move { w2.wait_closed().await }, STEP_TIMEOUT_MS).await;
}

/// The first of two futures to finish.
pub enum Either<A, B> {
    /// The first one finished.
    Left(A),
    /// The second one finished.
    Right(B),
}

/// Polls both futures on the current task until one finishes; drops the other.
///
/// **Cancellation / dropping:** drops both futures (each documents what that does).
pub async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// Polls both futures on the current task until both finish.
///
/// **Cancellation / dropping:** drops both futures (each documents what that does).
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(x) = a.as_mut().poll(cx) {
                ra = Some(x);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(y) = b.as_mut().poll(cx) {
                rb = Some(y);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}
