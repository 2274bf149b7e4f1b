//! PPP over a serial byte stream: a cellular modem in data mode as a smoltcp device.
//!
//! [`ppp_stack`] builds a [`Stack`] on an IP link (smoltcp `Medium::Ip`) and returns the
//! [`PppLink`] that carries it. [`PppLink::run`] runs PPP over a byte stream (the modem's
//! serial port after `CONNECT`) until the link ends, and says why ([`PppEnd`]); the caller
//! (a supervisor) hangs up, waits, redials and calls `run` again on the same link, and the
//! same stack comes back up with whatever address IPCP gives the next time.
//!
//! ```text
//!  serial bytes ─▶ Deframer ─▶ check ─▶ ppproto ─┬─ LCP/PAP/IPCP answers ─▶ serial
//!                  (text: NO CARRIER)             └─ IPv4 ─▶ rx queue ─▶ stack driver
//!  stack driver ─▶ tx queue ─▶ ppproto (HDLC) ─▶ serial
//! ```
//!
//! # Why ppproto, and what we add
//! The protocol work (HDLC framing and escaping, LCP, PAP, IPCP with its DNS options) is
//! [`ppproto`](https://docs.rs/ppproto)'s: it is small, `no_std` without an allocator, and
//! is what `embassy-net-ppp` uses. It is deliberately minimal, so this module supplies:
//! - **RFC 1661's restart timer.** ppproto never retransmits a Configure-Request, so one
//!   lost frame would stall negotiation. Every [`PppConfig::restart_ms`] without the layer
//!   in negotiation (LCP, PAP, then IPCP) opening, we give ppproto an empty Configure-Nak
//!   (Authenticate-Nak for PAP) of that protocol: it answers exactly as RFC 1661 wants for
//!   the TO+ event, sending its Configure-Request again and keeping its state. After
//!   [`PppConfig::max_configure`] requests the link ends with
//!   [`PppEnd::NegotiationTimeout`].
//! - **A guard in front of ppproto.** ppproto 0.2.1 panics on some well-formed input (tiny
//!   frames, long options, more than six options, long Echo-Requests, …). We decode each
//!   frame ourselves (flags, escapes, FCS), check it against those limits and hand ppproto
//!   only what it can digest, re-framed; the rest is dropped and counted
//!   ([`PppStats::frames_dropped`]). The copy this costs is small next to a serial line.
//! - **End of the call.** The modem prints `NO CARRIER` when the call drops. Knowing where
//!   frames end, we look for it only between frames (payload bytes can spell anything),
//!   and end with [`PppEnd::NoCarrier`]; end of file from the stream means the same.
//! - **Keepalive** (off by default): LCP Echo-Requests after
//!   [`PppConfig::echo_interval_ms`] without any frame received; after
//!   [`PppConfig::echo_failures`] unanswered in a row, [`PppEnd::EchoTimeout`].
//! - **The stack's configuration.** When IPCP opens, the stack gets the address as a /32,
//!   a default route via the peer (any address works on an IP link) and IPCP's DNS servers.
//!   ppproto accepts any four bytes as the address, and smoltcp panics on one that is not
//!   unicast: a broadcast, multicast, unspecified or loopback address ends the link with
//!   [`PppEnd::NegotiationTimeout`] instead (a gateway or DNS server of that kind is
//!   dropped: the placeholder gateway, fewer servers);
//!   when the link ends, all of it goes and every TCP connection is aborted (see
//!   [`PppLink::run`]).
//!
//! # Invariants
//! - Exactly one `run` at a time per link (a second one, on a clone, returns at once).
//! - Every exit from `run` — return or drop — leaves the stack unaddressed with its
//!   connections aborted and both packet queues empty; nothing leaks into the next call.
//! - Frames are written whole and in order; a write error ends the link ([`PppEnd::Io`]).
//!   A read error ends it too, except `ErrorKind::InvalidData`, which a byte stream uses
//!   to say input bytes were lost (a UART overrun): the damaged frame fails its FCS and is
//!   dropped, the link goes on, [`PppStats::input_losses`] counts it and a warning says it
//!   (the first loss, then every 64th).
//! - An idle open link with keepalive off sets no timer: the link task sleeps until bytes
//!   arrive or the stack sends; only smoltcp's own timers wake anything.
//! - Input is read only while the stack has room for what it may produce (a few packets
//!   queued), so a slow stack slows the line down rather than losing packets inside this
//!   module.
//!
//! # Trade-offs and limits
//! IPv4 only (no IPV6CP), MTU 1500 (ppproto negotiates no MRU), no compression (ppproto
//! rejects it). If IPCP closes after opening (an IPCP Terminate-Request or a
//! renegotiation), the link ends as [`PppEnd::PeerTerminated`] rather than trying to
//! re-open IPCP inside a ppproto that does not track it. A call that drops in the middle of
//! a frame hides the `NO CARRIER` inside frame bytes; only the keepalive (or the modem's
//! DCD line, which the caller may watch) notices that.
//! A peer whose Configure-Request carries more than six options, or an option with more
//! than four bytes of data, cannot be answered by ppproto: those requests are dropped and
//! the link ends with [`PppEnd::NegotiationTimeout`] naming the layer. Each `run` allocates
//! about 7 KB of buffers (a frame each way, ppproto's escaped output, a read chunk) and
//! frees them when it returns.
//!
//! ```no_run
//! # // no_run: needs a modem in data mode on a serial port.
//! # async fn f(
//! #     serial: &mut (impl embedded_io_async::Read + embedded_io_async::Write),
//! # ) -> uasyncio::Result<()> {
//! use uasyncio_net::ppp::{ppp_stack, PppConfig, PppEnd};
//! use uasyncio_net::StackConfig;
//!
//! let (stack, mut link) = ppp_stack(StackConfig::for_ip_link(), PppConfig::default())?;
//! let net = stack.clone();
//! uasyncio::create_task(async move {
//!     net.wait_config_up().await?;
//!     let (r, w) = net.open_connection("example.com", 80, None).await?;
//!     # let _ = (r, w);
//!     Ok(())
//! });
//! // … dial: ATD*99# → CONNECT, then:
//! match link.run(serial).await {
//!     PppEnd::Cancelled => return Err(uasyncio::Error::Cancelled),
//!     end => { /* hang up, back off, redial */ let _ = end; }
//! }
//! # Ok(()) }
//! ```

mod device;
mod frame;

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use core::fmt;
use core::future::{poll_fn, Future};
use core::net::Ipv4Addr;
use core::ops::Range;
use core::pin::pin;
use core::task::Poll;

use embedded_io::ErrorKind;
use embedded_io_async::{Read, Write};
use ppproto::pppos::{PPPoS, PPPoSAction};
use ppproto::{Config as PppprotoConfig, Phase};

use self::device::{PppDevice, Queues, MTU, RX_QUEUE};
use self::frame::{Deframer, Event};
use crate::rt::{self, errno, Error, Result};
use crate::select::yield_now;
use crate::stack::{is_host, Ipv4Config, Stack, StackConfig};

/// Largest frame accepted from the line, unescaped: address, control, protocol, MTU, FCS.
const MAX_FRAME: usize = 2 + 2 + MTU + 2;
/// Room for one escaped IP frame (every byte escaped in the worst case) or for the few
/// control frames ppproto emits in one poll (each at most 128 bytes before escaping).
const TX_BUF: usize = 2 * (MAX_FRAME + 2) + 16;
/// Bytes read from the line at once.
const READ_CHUNK: usize = 512;
/// Frames processed back to back (input that is always ready) before yielding once.
const BUSY_LIMIT: u32 = 16;
/// The default route's gateway when IPCP names no peer address (any address will do on an
/// IP link: there is no neighbour to resolve). The same placeholder pppd uses.
const PLACEHOLDER_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 64, 64, 64);

/// The most bytes a PAP user name and password may have together: ppproto builds the
/// Authenticate-Request (protocol 2 bytes, header 4, a length byte before each of the two)
/// in its 128-byte control packet buffer, and a longer one would panic there.
pub const PAP_CREDENTIALS_MAX: usize = frame::PPPROTO_MAX_PACKET - 8;

/// Settings of a [`PppLink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppConfig {
    /// RFC 1661 restart timer: a Configure-Request unanswered this long is sent again, ms.
    /// Default 3000.
    pub restart_ms: u32,
    /// Configure-Requests sent per layer (LCP, PAP, IPCP) before the link gives up with
    /// [`PppEnd::NegotiationTimeout`]. Default 10.
    pub max_configure: u32,
    /// LCP echo when nothing was received for this long, ms; 0 turns keepalive off (the
    /// default: an idle link then causes no wake-ups at all).
    pub echo_interval_ms: u32,
    /// Unanswered LCP echoes in a row before the link is declared dead
    /// ([`PppEnd::EchoTimeout`]). Default 3.
    pub echo_failures: u32,
    /// PAP user name, if the network asks for PAP. With the password at most
    /// [`PAP_CREDENTIALS_MAX`] bytes together. CHAP is not supported (ppproto offers PAP when
    /// asked for it).
    pub username: Option<String>,
    /// PAP password; with the user name at most [`PAP_CREDENTIALS_MAX`] bytes together.
    pub password: Option<String>,
}

impl Default for PppConfig {
    fn default() -> Self {
        PppConfig {
            restart_ms: 3000,
            max_configure: 10,
            echo_interval_ms: 0,
            echo_failures: 3,
            username: None,
            password: None,
        }
    }
}

impl PppConfig {
    fn validate(&self) -> Result<()> {
        if self.restart_ms == 0 {
            return Err(Error::Value("PppConfig::restart_ms must be at least 1".into()));
        }
        if self.max_configure == 0 {
            return Err(Error::Value("PppConfig::max_configure must be at least 1".into()));
        }
        if self.echo_interval_ms > 0 && self.echo_failures == 0 {
            return Err(Error::Value(
                "PppConfig::echo_failures must be at least 1 when echo_interval_ms is set".into(),
            ));
        }
        let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        if len(&self.username) + len(&self.password) > PAP_CREDENTIALS_MAX {
            return Err(Error::Value(
                "PppConfig: the PAP username and password together must be at most 120 bytes".into(),
            ));
        }
        Ok(())
    }
}

/// Why [`PppLink::run`] returned.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PppEnd {
    /// `NO CARRIER` seen on the line between frames, or end of file from the byte stream:
    /// the modem dropped the call.
    NoCarrier,
    /// A layer never opened after [`PppConfig::max_configure`] Configure-Requests, one
    /// every [`PppConfig::restart_ms`]. `phase` names it: `"LCP"`, `"PAP"` or `"IPCP"`
    /// (`"IPCP: the peer assigned no address"` when IPCP opened without one, and
    /// `"IPCP: the peer assigned a broadcast, multicast, unspecified or loopback address"`
    /// when it opened with one of those).
    NegotiationTimeout {
        /// The layer that did not open.
        phase: &'static str,
    },
    /// The peer closed the link: an LCP Terminate-Request (answered before returning), or
    /// IPCP closing after it had opened.
    PeerTerminated,
    /// [`PppConfig::echo_failures`] LCP echoes in a row went unanswered.
    EchoTimeout,
    /// The byte stream failed: `OSError` with the errno closest to the stream's
    /// `ErrorKind` (`EIO` when none fits; `EPIPE` when it accepted no bytes), or
    /// `RuntimeError` for a second `run` on the same link.
    Io(Error),
    /// The task running the link was cancelled.
    Cancelled,
}

impl fmt::Display for PppEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PppEnd::NoCarrier => f.write_str("PPP: the modem dropped the call (NO CARRIER)"),
            PppEnd::NegotiationTimeout { phase } => {
                write!(f, "PPP: {phase} did not open (peer silent or refusing)")
            }
            PppEnd::PeerTerminated => f.write_str("PPP: the peer terminated the link"),
            PppEnd::EchoTimeout => f.write_str("PPP: the peer stopped answering LCP echoes"),
            PppEnd::Io(e) => write!(f, "PPP: the serial stream failed: {e}"),
            PppEnd::Cancelled => f.write_str("PPP: cancelled"),
        }
    }
}

/// Counters of a link, over all its runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PppStats {
    /// Frames received and handed to ppproto.
    pub frames_in: u64,
    /// Frames received and dropped: bad FCS, too long, or refused by the guard.
    pub frames_dropped: u64,
    /// Configure-Requests re-sent by the restart timer.
    pub restarts: u32,
    /// LCP Echo-Requests sent.
    pub echoes_sent: u32,
    /// IPv4 packets the stack sent that were dropped (link down, queue over its limit,
    /// too large for a frame).
    pub tx_dropped: u64,
    /// Times the link task woke up: bytes, a packet to send, a timer. An idle link with
    /// keepalive off adds none.
    pub wakeups: u64,
    /// Reads that reported lost input bytes (`ErrorKind::InvalidData`, e.g. a serial
    /// overrun). The link went on; the damaged frame counts in `frames_dropped`.
    pub input_losses: u64,
}

struct Inner {
    stack: Stack,
    q: Rc<RefCell<Queues>>,
    cfg: PppConfig,
    up: Cell<bool>,
    addr: Cell<Option<Ipv4Addr>>,
    running: Cell<bool>,
    stats: Cell<PppStats>,
}

impl Inner {
    fn count(&self, f: impl FnOnce(&mut PppStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// The link is gone: unconfigure the stack, abort its connections, empty the queues.
    fn down(&self) {
        self.up.set(false);
        self.addr.set(None);
        self.q.borrow_mut().reset(false);
        self.stack.core.link_down();
    }
}

/// The PPP side of a [`Stack`] built by [`ppp_stack`]: runs the link over a byte stream.
///
/// A cheap handle (`Rc`): clone it to watch [`PppLink::is_up`] from another task while
/// one task runs the link. Lives on the loop thread that created the stack.
#[derive(Clone)]
pub struct PppLink {
    inner: Rc<Inner>,
}

/// A stack on a PPP link (smoltcp `Medium::Ip`) and the handle that runs PPP on a byte
/// stream.
///
/// `stack_cfg` must leave the address to the link: [`StackConfig::for_ip_link`] (its
/// `ipv4` is [`Ipv4Config::Unconfigured`]); its `mac` is ignored. The stack's driver task
/// starts on the running loop.
///
/// # Errors
/// `ValueError` for a static or DHCP address, `restart_ms` or `max_configure` of 0,
/// `echo_failures` of 0 with keepalive on, or a PAP user name and password of more than
/// [`PAP_CREDENTIALS_MAX`] bytes together.
pub fn ppp_stack(stack_cfg: StackConfig, ppp_cfg: PppConfig) -> Result<(Stack, PppLink)> {
    ppp_cfg.validate()?;
    if stack_cfg.ipv4 != Ipv4Config::Unconfigured {
        return Err(Error::Value(
            "a PPP stack gets its address from IPCP: use StackConfig::for_ip_link() \
             (ipv4: Ipv4Config::Unconfigured)"
                .into(),
        ));
    }
    let q = Rc::new(RefCell::new(Queues::default()));
    let stack = Stack::new(PppDevice { q: q.clone() }, stack_cfg)?;
    let link = PppLink {
        inner: Rc::new(Inner {
            stack: stack.clone(),
            q,
            cfg: ppp_cfg,
            up: Cell::new(false),
            addr: Cell::new(None),
            running: Cell::new(false),
            stats: Cell::new(PppStats::default()),
        }),
    };
    Ok((stack, link))
}

impl fmt::Debug for PppLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppLink")
            .field("up", &self.is_up())
            .field("ipv4_address", &self.ipv4_address())
            .field("running", &self.inner.running.get())
            .finish()
    }
}

impl PppLink {
    /// Run PPP over `io` (a modem already in data mode, after `CONNECT`) until the link
    /// ends, and say why.
    ///
    /// On IPCP up the stack gets the address (/32), a default route and IPCP's DNS servers
    /// ([`Stack::wait_config_up`] returns). When `run` returns, and when its future is
    /// dropped: the stack has no address, every TCP connection of the stack is aborted —
    /// a read or write on an open stream fails with `OSError` (`ENETDOWN` once `tcp.rs`
    /// reports link aborts, `ECONNRESET` until then), and the socket is reclaimed once the
    /// stream is dropped — and new connects fail at once with `OSError(ENETUNREACH)`.
    /// Listening servers stay and accept again on the next link. Call `run` again (after
    /// redialling) on a fresh or the same stream to bring the same stack up again.
    ///
    /// `io.read` must be cancel-safe (no byte lost when its future is dropped before it
    /// completes), as `embedded-io-async` recommends: `run` stops a pending read whenever
    /// it has a frame to send.
    ///
    /// Cancellation: a cancel of the running task ends the link as above and returns
    /// [`PppEnd::Cancelled`] (the cancel is consumed: the caller should return
    /// `Err(Cancelled)`). A frame being written may be cut short; the modem is to be hung
    /// up anyway. Dropping the future does the same without returning.
    pub async fn run<IO: Read + Write>(&mut self, io: &mut IO) -> PppEnd {
        let inner = &*self.inner;
        if inner.running.replace(true) {
            return PppEnd::Io(Error::Runtime(
                "PppLink::run is already running on a clone of this link".into(),
            ));
        }
        struct Guard<'a>(&'a Inner);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.0.down();
                self.0.running.set(false);
            }
        }
        let _guard = Guard(inner);
        inner.q.borrow_mut().reset(false);
        let mut engine = Engine::new(inner);
        match engine.run(io).await {
            Err(end) => end,
            Ok(never) => match never {},
        }
    }

    /// IPCP opened and the link has not ended.
    pub fn is_up(&self) -> bool {
        self.inner.up.get()
    }

    /// The address IPCP assigned, while the link is up.
    pub fn ipv4_address(&self) -> Option<Ipv4Addr> {
        self.inner.addr.get()
    }

    /// The stack this link carries.
    pub fn stack(&self) -> &Stack {
        &self.inner.stack
    }

    /// Counters over all runs (see [`PppStats`]).
    pub fn stats(&self) -> PppStats {
        let mut s = self.inner.stats.get();
        s.tx_dropped = self.inner.q.borrow().tx_dropped;
        s
    }
}

/// Map a byte-stream error to the link's end.
fn io_end<E: embedded_io::Error>(e: E) -> PppEnd {
    let errno = match e.kind() {
        ErrorKind::Interrupted => return PppEnd::Cancelled,
        ErrorKind::BrokenPipe | ErrorKind::WriteZero => errno::EPIPE,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => errno::ECONNRESET,
        ErrorKind::NotConnected => errno::ENOTCONN,
        ErrorKind::TimedOut => errno::ETIMEDOUT,
        ErrorKind::OutOfMemory => errno::ENOMEM,
        ErrorKind::InvalidInput => errno::EINVAL,
        _ => errno::EIO,
    };
    PppEnd::Io(Error::Os(errno))
}

/// Write all of `buf`; a write that takes nothing ends the link (where `write_all` would
/// panic). Cancellation: `Err(Cancelled)` between two writes or while one waits.
async fn write_all<IO: Write>(io: &mut IO, mut buf: &[u8]) -> core::result::Result<(), PppEnd> {
    while !buf.is_empty() {
        let n = {
            let mut w = pin!(io.write(buf));
            poll_fn(|cx| {
                if rt::cancel_requested(cx) {
                    return Poll::Ready(Err(PppEnd::Cancelled));
                }
                w.as_mut().poll(cx).map(|r| r.map_err(io_end))
            })
            .await?
        };
        if n == 0 {
            return Err(PppEnd::Io(Error::Os(errno::EPIPE)));
        }
        buf = buf.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// What woke the link task.
enum Wake<E> {
    Read(core::result::Result<usize, E>),
    Queue,
    Timer,
    Cancel,
}

/// The state of one `run`.
struct Engine<'a> {
    inner: &'a Inner,
    ppp: PPPoS<'a>,
    /// ppproto's receive buffer (its decoded frame; IPv4 packets are copied out of it).
    rx_buf: Vec<u8>,
    /// ppproto's transmit buffer.
    tx_buf: Vec<u8>,
    /// A checked frame re-framed for ppproto.
    feed: Vec<u8>,
    /// Our own frames for the wire (echo).
    out: Vec<u8>,
    deframer: Deframer,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    /// A received packet waiting for room in the stack's queue.
    held: Option<Vec<u8>>,
    /// The layer being negotiated, Configure-Requests sent for it, when to send the next.
    layer: Option<&'static str>,
    sent: u32,
    restart_at: u64,
    /// Last frame received or echo sent (keepalive), echoes unanswered, last echo id.
    quiet_since: u64,
    echo_out: u32,
    echo_id: u8,
    /// An LCP Terminate-Request came in.
    terminate: bool,
    /// Bytes written since the last flush.
    wrote: bool,
    /// Waits that found something ready at once, in a row.
    busy: u32,
}

impl<'a> Engine<'a> {
    fn new(inner: &'a Inner) -> Self {
        let cfg = &inner.cfg;
        let ppp = PPPoS::new(PppprotoConfig {
            username: cfg.username.as_deref().unwrap_or("").as_bytes(),
            password: cfg.password.as_deref().unwrap_or("").as_bytes(),
        });
        let now = rt::now_us();
        Engine {
            inner,
            ppp,
            rx_buf: vec![0; MAX_FRAME],
            tx_buf: vec![0; TX_BUF],
            feed: Vec::with_capacity(64),
            out: Vec::with_capacity(32),
            deframer: Deframer::new(MAX_FRAME),
            input: vec![0; READ_CHUNK],
            in_pos: 0,
            in_len: 0,
            held: None,
            layer: None,
            sent: 0,
            restart_at: now,
            quiet_since: now,
            echo_out: 0,
            echo_id: 0,
            terminate: false,
            wrote: false,
            busy: 0,
        }
    }

    fn restart_us(&self) -> u64 {
        u64::from(self.inner.cfg.restart_ms) * 1000
    }

    fn echo_us(&self) -> Option<u64> {
        let ms = self.inner.cfg.echo_interval_ms;
        (ms > 0).then_some(u64::from(ms) * 1000)
    }

    fn lcp_open(&self) -> bool {
        matches!(self.ppp.status().phase, Phase::Auth | Phase::Network | Phase::Open)
    }

    /// The link task's loop; returns only with the reason the link ended.
    async fn run<IO: Read + Write>(&mut self, io: &mut IO) -> core::result::Result<Infallible, PppEnd> {
        // ppproto leaves Dead in `open` but sends its first Configure-Request only from
        // `poll`: poll once before any byte is fed.
        let _ = self.ppp.open(); // a fresh PPPoS is Dead: cannot fail
        self.drive(io).await?;
        loop {
            self.unhold();
            self.send_queued(io).await?;
            self.timers(io).await?;
            if self.held.is_none() && self.in_pos < self.in_len {
                self.take_input(io).await?;
                continue;
            }
            if core::mem::take(&mut self.wrote) {
                let mut f = pin!(io.flush());
                poll_fn(|cx| {
                    if rt::cancel_requested(cx) {
                        return Poll::Ready(Err(PppEnd::Cancelled));
                    }
                    f.as_mut().poll(cx).map(|r| r.map_err(io_end))
                })
                .await?;
            }
            self.wait(io).await?;
        }
    }

    /// Decode input until one frame was handled or the input is used up.
    async fn take_input<IO: Read + Write>(&mut self, io: &mut IO) -> core::result::Result<(), PppEnd> {
        while let Some(&b) = self.input.get(self.in_pos).filter(|_| self.in_pos < self.in_len) {
            self.in_pos += 1;
            match self.deframer.push(b) {
                None => {}
                Some(Event::NoCarrier) => return Err(PppEnd::NoCarrier),
                Some(Event::Dropped) => self.inner.count(|s| s.frames_dropped += 1),
                Some(Event::Frame) => return self.on_frame(io).await,
            }
        }
        Ok(())
    }

    /// A frame with a good FCS arrived: check it, give it to ppproto, act on the result.
    async fn on_frame<IO: Read + Write>(&mut self, io: &mut IO) -> core::result::Result<(), PppEnd> {
        let f = self.deframer.frame();
        let Some(seen) = frame::check(f) else {
            self.inner.count(|s| s.frames_dropped += 1);
            return Ok(());
        };
        self.inner.count(|s| s.frames_in += 1);
        self.quiet_since = rt::now_us();
        // Any frame proves the peer alive, not only an Echo-Reply.
        self.echo_out = 0;
        self.terminate |= seen.terminate_request;
        self.feed.clear();
        frame::for_ppproto(f, &mut self.feed);
        self.feed_ppproto();
        self.drive(io).await
    }

    /// Hand `feed` (one whole frame) to ppproto.
    fn feed_ppproto(&mut self) {
        let mut data = &self.feed[..];
        while !data.is_empty() {
            let n = self.ppp.consume(data, &mut self.rx_buf);
            if n == 0 {
                break; // ppproto still holds a frame: cannot happen, we poll after each
            }
            data = data.get(n..).unwrap_or_default();
        }
    }

    /// Poll ppproto until it has nothing more to do, then follow its state.
    async fn drive<IO: Read + Write>(&mut self, io: &mut IO) -> core::result::Result<(), PppEnd> {
        loop {
            match self.ppp.poll(&mut self.tx_buf, &mut self.rx_buf) {
                PPPoSAction::None => break,
                PPPoSAction::Transmit(n) => {
                    let frame = self.tx_buf.get(..n).unwrap_or_default();
                    write_all(io, frame).await?;
                    self.wrote = true;
                }
                PPPoSAction::Received(range) => self.received(range),
            }
        }
        self.after_poll()
    }

    /// ppproto decoded an IPv4 packet in `rx_buf[range]`.
    fn received(&mut self, range: Range<usize>) {
        let Some(p) = self.rx_buf.get(range) else { return };
        if !self.inner.up.get() || self.held.is_some() {
            self.inner.count(|s| s.frames_dropped += 1);
            return;
        }
        let mut q = self.inner.q.borrow_mut();
        let mut b = q.buffer(p.len());
        b.copy_from_slice(p);
        if let Err(b) = q.deliver(b) {
            self.held = Some(b);
        }
    }

    /// Move a held packet to the stack if it has room now.
    fn unhold(&mut self) {
        if let Some(p) = self.held.take() {
            if let Err(p) = self.inner.q.borrow_mut().deliver(p) {
                self.held = Some(p);
            }
        }
    }

    /// Follow ppproto's phase: restart timer per layer, stack configuration, termination.
    fn after_poll(&mut self) -> core::result::Result<(), PppEnd> {
        if self.terminate {
            return Err(PppEnd::PeerTerminated); // ppproto's Terminate-Ack is written
        }
        let status = self.ppp.status();
        let layer = match status.phase {
            Phase::Dead => return Err(PppEnd::PeerTerminated),
            Phase::Establish => Some("LCP"),
            Phase::Auth => Some("PAP"),
            Phase::Network => Some("IPCP"),
            Phase::Open => None,
        };
        if layer != self.layer {
            self.layer = layer;
            self.sent = 1;
            self.restart_at = rt::now_us() + self.restart_us();
        }
        match (status.ipv4, self.inner.up.get()) {
            (Some(ip), false) => {
                let Some(addr) = ip.address else {
                    return Err(PppEnd::NegotiationTimeout {
                        phase: "IPCP: the peer assigned no address",
                    });
                };
                // ppproto takes any four bytes; smoltcp panics on an interface address that is
                // not unicast. A broadcast, multicast, unspecified or loopback address is no
                // address for us: the link ends as without one.
                if !is_host(&addr) {
                    return Err(PppEnd::NegotiationTimeout {
                        phase: "IPCP: the peer assigned a broadcast, multicast, unspecified or loopback address",
                    });
                }
                // Neither panics in smoltcp, but neither is of use: a gateway that is not a
                // host is replaced as a missing one is, and such DNS servers are left out.
                let gateway = ip.peer_address.filter(is_host).unwrap_or(PLACEHOLDER_GATEWAY);
                let dns: Vec<Ipv4Addr> = ip.dns_servers.iter().flatten().copied().filter(is_host).collect();
                self.inner.q.borrow_mut().reset(true);
                self.inner.up.set(true);
                self.inner.addr.set(Some(addr));
                self.inner.stack.core.link_up(addr, gateway, dns);
            }
            (None, true) => return Err(PppEnd::PeerTerminated),
            _ => {}
        }
        Ok(())
    }

    /// Frame and send what the stack queued.
    async fn send_queued<IO: Read + Write>(&mut self, io: &mut IO) -> core::result::Result<(), PppEnd> {
        if !self.inner.up.get() {
            return Ok(());
        }
        loop {
            let p = {
                let mut q = self.inner.q.borrow_mut();
                let p = q.tx.pop_front();
                q.tx_drained();
                match p {
                    Some(p) => p,
                    None => return Ok(()),
                }
            };
            let r = self.ppp.send(&p, &mut self.tx_buf);
            self.inner.q.borrow_mut().recycle(p);
            match r {
                Ok(n) => {
                    let frame = self.tx_buf.get(..n).unwrap_or_default();
                    write_all(io, frame).await?;
                    self.wrote = true;
                }
                Err(_) => self.inner.q.borrow_mut().tx_dropped += 1,
            }
        }
    }

    /// The earliest timer: restart of the layer in negotiation, or keepalive.
    fn next_deadline(&self) -> Option<u64> {
        let restart = self.layer.map(|_| self.restart_at);
        let echo = self
            .echo_us()
            .filter(|_| self.lcp_open())
            .map(|us| self.quiet_since + us);
        match (restart, echo) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Act on timers that are due.
    async fn timers<IO: Read + Write>(&mut self, io: &mut IO) -> core::result::Result<(), PppEnd> {
        let now = rt::now_us();
        if let Some(layer) = self.layer.filter(|_| now >= self.restart_at) {
            if self.sent >= self.inner.cfg.max_configure {
                return Err(PppEnd::NegotiationTimeout { phase: layer });
            }
            self.sent += 1;
            self.restart_at = now + self.restart_us();
            self.inner.count(|s| s.restarts += 1);
            let proto = match layer {
                "LCP" => frame::PROTO_LCP,
                "PAP" => frame::PROTO_PAP,
                _ => frame::PROTO_IPCP,
            };
            self.feed.clear();
            frame::for_ppproto(&frame::restart_nudge(proto), &mut self.feed);
            self.feed_ppproto();
            self.drive(io).await?;
        }
        if let Some(us) = self.echo_us() {
            if self.lcp_open() && now >= self.quiet_since + us {
                if self.echo_out >= self.inner.cfg.echo_failures {
                    return Err(PppEnd::EchoTimeout);
                }
                self.echo_out += 1;
                self.quiet_since = now;
                self.echo_id = self.echo_id.wrapping_add(1);
                self.inner.count(|s| s.echoes_sent += 1);
                self.out.clear();
                frame::for_wire(&frame::echo_request(self.echo_id), &mut self.out);
                write_all(io, &self.out).await?;
                self.wrote = true;
            }
        }
        Ok(())
    }

    /// Sleep until input arrives (unless a packet is held), the stack queued a packet (or
    /// made room for the held one), a timer is due, or the task is cancelled.
    async fn wait<IO: Read + Write>(&mut self, io: &mut IO) -> core::result::Result<(), PppEnd> {
        let deadline = self.next_deadline();
        let holding = self.held.is_some();
        let inner = self.inner;
        let mut pending = false;
        let wake = {
            let mut read = pin!((!holding).then(|| io.read(&mut self.input)));
            let mut sleep = pin!(deadline.map(rt::sleep_until));
            poll_fn(|cx| {
                if rt::cancel_requested(cx) {
                    return Poll::Ready(Wake::Cancel);
                }
                if let Some(r) = read.as_mut().as_pin_mut() {
                    if let Poll::Ready(r) = r.poll(cx) {
                        return Poll::Ready(Wake::Read(r));
                    }
                }
                {
                    let mut q = inner.q.borrow_mut();
                    if (inner.up.get() && !q.tx.is_empty()) || (holding && q.rx.len() < RX_QUEUE) {
                        return Poll::Ready(Wake::Queue);
                    }
                    q.link = Some(cx.waker().clone());
                }
                if let Some(s) = sleep.as_mut().as_pin_mut() {
                    if let Poll::Ready(r) = s.poll(cx) {
                        return Poll::Ready(if r.is_ok() { Wake::Timer } else { Wake::Cancel });
                    }
                }
                pending = true;
                Poll::Pending
            })
            .await
        };
        self.inner.count(|s| s.wakeups += 1);
        match wake {
            Wake::Cancel => return Err(PppEnd::Cancelled),
            Wake::Read(Ok(0)) => return Err(PppEnd::NoCarrier),
            Wake::Read(Ok(n)) => {
                self.in_pos = 0;
                self.in_len = n.min(self.input.len());
            }
            // Bytes were lost on the line (a UART overrun): the frame they belonged to fails
            // its FCS and is dropped like any damaged frame; the link goes on.
            Wake::Read(Err(e)) if embedded_io::Error::kind(&e) == ErrorKind::InvalidData => {
                self.inner.count(|s| s.input_losses += 1);
                let n = self.inner.stats.get().input_losses;
                // Said, not only counted: what the application sees is slow or timed-out TCP,
                // and the cause is the serial port's. The first time, then every 64th, so a
                // storm of overruns does not flood the log.
                if n % 64 == 1 {
                    log::warn!(
                        "ppp: input bytes lost on the serial line ({e:?}; {n} time(s) so far): the damaged frames are dropped and TCP resends, slowly - read the port more often or give its receive ring more room"
                    );
                }
            }
            Wake::Read(Err(e)) => return Err(io_end(e)),
            Wake::Queue | Wake::Timer => {}
        }
        if pending {
            self.busy = 0;
        } else {
            self.busy += 1;
            if self.busy >= BUSY_LIMIT {
                // Input that is always ready must not starve the stack and its users.
                self.busy = 0;
                yield_now().await;
            }
        }
        Ok(())
    }
}
