//! The link supervisor: keep a data link up over a modem, for as long as the firmware runs.
//!
//! [`Supervisor::run`] loops: [`Modem::bring_up`] → [`DataLink::run`] (PPP) until the link
//! ends (no carrier, negotiation timeout, echo timeout, the peer terminated, an I/O error)
//! → [`Modem::hang_up`] → back off → bring up again. The back-off doubles after each
//! consecutive failure, from `backoff_min_ms` to `backoff_max_ms`; a link that came up
//! resets it. With `max_consecutive_failures` set, the supervisor gives up after that many
//! failures in a row (a failed bring-up, or a data link that ended before it came up).
//!
//! [`LinkState`] is the clonable view for the rest of the firmware: `is_up()`,
//! `wait_up().await`, `wait_down().await`, the last failure with its [`Layer`] and
//! counters. It lives on the loop thread (`Rc` inside).
//!
//! The data link is a trait so the supervisor does not depend on one PPP implementation
//! (and so tests can use a scripted one). `uasyncio_net::ppp::PppLink` plugs in through a
//! small adapter that calls [`UpSignal::up`] when IPCP opens.

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use core::cell::{Cell, RefCell};
use core::fmt;

use embedded_io_async::{Read, Write};
use uasyncio::Event;

use crate::error::{CellularError, Layer, SimProblem};
use crate::modem::Modem;

/// Why a data link ended (mirrors `uasyncio_net::ppp::PppEnd`). The supervisor records it
/// as [`CellularError::Ppp`] with this `Display` text.
///
/// ```
/// use uasyncio_cellular::link::LinkEnd;
/// assert_eq!(LinkEnd::NoCarrier.to_string(), "the modem dropped the call (NO CARRIER)");
/// let end = LinkEnd::NegotiationTimeout { phase: "IPCP" };
/// assert_eq!(end.to_string(), "IPCP negotiation timed out");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinkEnd {
    /// `NO CARRIER` on the line, or the stream ended.
    NoCarrier,
    /// Negotiation never finished (`phase`: "LCP" or "IPCP").
    NegotiationTimeout {
        /// The phase that did not open.
        phase: &'static str,
    },
    /// The peer terminated the link.
    PeerTerminated,
    /// Keep-alive echoes went unanswered.
    EchoTimeout,
    /// The byte stream failed.
    Io(uasyncio::Error),
    /// The task running the link was cancelled.
    Cancelled,
}

impl fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkEnd::NoCarrier => f.write_str("the modem dropped the call (NO CARRIER)"),
            LinkEnd::NegotiationTimeout { phase } => write!(f, "{phase} negotiation timed out"),
            LinkEnd::PeerTerminated => f.write_str("the network terminated the link"),
            LinkEnd::EchoTimeout => f.write_str("the network stopped answering LCP echoes"),
            LinkEnd::Io(e) => write!(f, "serial I/O failed: {e}"),
            LinkEnd::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Given to [`DataLink::run`]: the link calls [`up`](Self::up) when the network layer opens
/// (IPCP up: the stack has an address), so [`LinkState`] says "up" only when streams work.
#[derive(Debug)]
pub struct UpSignal {
    state: LinkState,
}

impl UpSignal {
    /// The network layer is open.
    pub fn up(&self) {
        self.state.set_up();
    }
}

/// A data link that runs over a modem in data mode (PPP).
#[allow(async_fn_in_trait)] // the loop is single-threaded: no `Send` bound is wanted
pub trait DataLink {
    /// Runs the link over `io` (the modem right after `CONNECT`) until it ends; calls
    /// `up.up()` once the network layer is open.
    ///
    /// [`Supervisor::run`] calls it after each successful bring-up. When it returns, whatever
    /// the end, the supervisor marks the [`LinkState`] down and hangs up with
    /// [`Modem::hang_up`]: the link neither signals "down" nor leaves data mode itself.
    ///
    /// **Cancellation** (what implementors must do): a cancel of the supervisor's task reaches
    /// the link as `Err(Cancelled)` from the next runtime await it polls (a timer; a read or
    /// write of the runtime's streams, whose error kind is then `Interrupted`). That await
    /// consumes the cancel, so the link must end promptly and return [`LinkEnd::Cancelled`]:
    /// that value is how the supervisor learns of it, hangs up and returns
    /// [`CellularError::Cancelled`]. Any other end (say `LinkEnd::Io(Error::Cancelled)`) loses
    /// the cancel: the supervisor counts a failure, backs off and redials. Conversely, return
    /// `LinkEnd::Cancelled` only for a cancel: the supervisor then stops for good.
    ///
    /// **Dropping:** the supervisor's future, and with it this one, may be dropped at any
    /// await (in a `select`, or with the task running it by
    /// [`new_event_loop`](uasyncio::new_event_loop)), with no chance to run async code.
    /// Implementors must be drop-safe: release in `Drop` what the running link holds (`PppLink`
    /// takes its stack down there) and leave `self` so that the next `run` starts afresh. The
    /// supervisor then marks the state down and does not hang up: the stream may be left in
    /// data mode, mid-frame, and the next bring-up escapes it.
    ///
    /// ```
    /// use embedded_io::{Error as _, ErrorKind};
    /// use embedded_io_async::{Read, Write};
    /// use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    ///
    /// /// A stand-in for PPP: up after a 100 ms "negotiation", then reads until the line ends.
    /// struct Toy;
    ///
    /// impl DataLink for Toy {
    ///     async fn run<IO: Read + Write>(&mut self, io: &mut IO, up: &UpSignal) -> LinkEnd {
    ///         // Any runtime await may carry the supervisor's cancel: end with `Cancelled`.
    ///         if uasyncio::sleep_ms(100).await.is_err() {
    ///             return LinkEnd::Cancelled;
    ///         }
    ///         up.up();
    ///         let mut buf = [0u8; 64];
    ///         loop {
    ///             match io.read(&mut buf).await {
    ///                 Ok(0) => return LinkEnd::NoCarrier,
    ///                 Ok(_) => {} // frames would be handled here
    ///                 Err(e) if e.kind() == ErrorKind::Interrupted => return LinkEnd::Cancelled,
    ///                 Err(_) => return LinkEnd::Io(uasyncio::Error::runtime("serial read failed")),
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    async fn run<IO: Read + Write>(&mut self, io: &mut IO, up: &UpSignal) -> LinkEnd;
}

/// Counters of a [`LinkState`].
///
/// ```
/// use uasyncio_cellular::link::{LinkState, LinkStats};
/// let stats = LinkState::new().stats();
/// assert_eq!(stats, LinkStats::default()); // all 0
/// // e.g. log `stats.drops` and `stats.consecutive_failures` with the device's health report
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bring-up attempts (each ends with a dial, or fails before it).
    pub dials: u32,
    /// Times the link came up.
    pub ups: u32,
    /// Times a link that was up went down.
    pub drops: u32,
    /// Failures in a row (reset when the link comes up).
    pub consecutive_failures: u32,
}

struct Inner {
    up: Cell<bool>,
    up_event: Event,
    down_event: Event,
    last_error: RefCell<Option<CellularError>>,
    stats: Cell<LinkStats>,
}

/// The link's state, for any task on the loop thread (clonable; see the module docs).
///
/// A task that sends only while the link is up ([`Supervisor::run`] keeps the state; this
/// example drives it with a scripted modem and a stand-in for PPP, on virtual time):
/// ```
/// use uasyncio::create_task;
/// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
/// use uasyncio_cellular::modem::{Modem, ModemConfig};
/// # use std::collections::VecDeque;
/// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
/// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
/// # impl Default for FakeModem {
/// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
/// # }
/// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
/// # impl embedded_io_async::Write for FakeModem {
/// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
/// #         for &b in buf {
/// #             if b != b'\r' { self.cmd.push(b); continue; }
/// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
/// #             let answer = match &self.cmd[..] {
/// #                 b"AT+CPIN?" => &cpin[..],
/// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
/// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
/// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
/// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
/// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
/// #                 _ => "OK",
/// #             };
/// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
/// #             self.cmd.clear();
/// #         }
/// #         Ok(buf.len())
/// #     }
/// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # impl embedded_io_async::Read for FakeModem {
/// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
/// #         if self.out.is_empty() { core::future::pending::<()>().await }
/// #         let n = buf.len().min(self.out.len());
/// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
/// #         Ok(n)
/// #     }
/// # }
/// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
/// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
/// # struct Toy { hold_ms: u32 }
/// # impl DataLink for Toy {
/// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
/// #         up.up();
/// #         match uasyncio::sleep_ms(self.hold_ms).await {
/// #             Ok(()) => LinkEnd::NoCarrier,
/// #             Err(_) => LinkEnd::Cancelled,
/// #         }
/// #     }
/// # }
/// uasyncio::get_event_loop().use_virtual_time(true);
/// uasyncio::run(async {
///     let modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
///     let mut supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, SupervisorConfig::default());
///     let state = supervisor.state();
///     let sup = create_task(async move { Ok(supervisor.run().await) });
///     let reporter = create_task({
///         let state = state.clone();
///         async move {
///             for _ in 0..2 {
///                 state.wait_up().await?;
///                 // ... send a report over the link ...
///                 state.wait_down().await?; // the call dropped: wait for the redial
///             }
///             Ok(())
///         }
///     });
///     reporter.await?;
///     assert_eq!((state.stats().ups, state.stats().drops), (2, 2));
///     sup.cancel()?;
///     sup.await?;
///     Ok(())
/// })
/// .unwrap();
/// uasyncio::get_event_loop().use_virtual_time(false);
/// ```
#[derive(Clone)]
pub struct LinkState {
    inner: Rc<Inner>,
}

impl fmt::Debug for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkState")
            .field("up", &self.is_up())
            .field("stats", &self.stats())
            .field("last_error", &self.inner.last_error.borrow())
            .finish()
    }
}

impl Default for LinkState {
    fn default() -> Self {
        Self::new()
    }
}

impl LinkState {
    /// A state that is down, with no error yet.
    /// ```
    /// use uasyncio_cellular::link::LinkState;
    /// let state = LinkState::new();
    /// assert!(!state.is_up());
    /// assert_eq!(state.last_error(), None);
    /// ```
    pub fn new() -> Self {
        let inner = Inner {
            up: Cell::new(false),
            up_event: Event::new(),
            down_event: Event::new(),
            last_error: RefCell::new(None),
            stats: Cell::new(LinkStats::default()),
        };
        inner.down_event.set();
        LinkState { inner: Rc::new(inner) }
    }

    /// True while the data link is up (IPCP open).
    /// ```
    /// use uasyncio_cellular::link::LinkState;
    /// let state = LinkState::new(); // a supervisor's: `supervisor.state()`
    /// if !state.is_up() {
    ///     // queue the reading for later instead of sending it now
    /// }
    /// ```
    pub fn is_up(&self) -> bool {
        self.inner.up.get()
    }

    /// Waits until the link is up; returns at once if it is.
    ///
    /// **Cancellation:** `Err(Cancelled)`; nothing else changes. Dropping the future leaves
    /// the wait with no effect.
    /// Registration can take minutes, or never happen: bound the wait.
    /// ```
    /// use uasyncio_cellular::link::LinkState;
    /// uasyncio::get_event_loop().use_virtual_time(true);
    /// uasyncio::run(async {
    ///     let state = LinkState::new(); // no supervisor runs: never up
    ///     let r = uasyncio::wait_for_ms(async move { state.wait_up().await }, 180_000).await;
    ///     assert_eq!(r, Err(uasyncio::Error::Timeout));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub async fn wait_up(&self) -> uasyncio::Result<()> {
        while !self.is_up() {
            self.inner.up_event.wait().await?;
        }
        Ok(())
    }

    /// Waits until the link is down; returns at once if it is.
    ///
    /// **Cancellation:** as [`wait_up`](Self::wait_up): `Err(Cancelled)`, nothing else
    /// changes. **Dropping** the future leaves the wait with no effect.
    /// ```
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// use uasyncio_cellular::CellularError;
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// # uasyncio::get_event_loop().use_virtual_time(true);
    /// # uasyncio::run(async {
    /// let modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    /// let mut supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, SupervisorConfig::default());
    /// let state = supervisor.state();
    /// let sup = uasyncio::create_task(async move { Ok(supervisor.run().await) });
    /// state.wait_up().await?;
    /// state.wait_down().await?; // the call dropped after 60 s
    /// let why = CellularError::Ppp("the modem dropped the call (NO CARRIER)".into());
    /// assert_eq!(state.last_error(), Some(why));
    /// # sup.cancel()?;
    /// # sup.await?;
    /// # Ok(())
    /// # }).unwrap();
    /// # uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub async fn wait_down(&self) -> uasyncio::Result<()> {
        while self.is_up() {
            self.inner.down_event.wait().await?;
        }
        Ok(())
    }

    /// The last failure (with [`CellularError::layer`]), if any.
    /// ```
    ///
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// use uasyncio_cellular::{CellularError, Layer, SimProblem};
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// # uasyncio::get_event_loop().use_virtual_time(true);
    /// # uasyncio::run(async {
    /// // The SIM wants a PIN and none is configured.
    /// let modem = Modem::new(FakeModem { sim: "SIM PIN", ..Default::default() }, ModemConfig::new("internet"));
    /// let cfg = SupervisorConfig { max_consecutive_failures: Some(3), ..Default::default() };
    /// let mut supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, cfg);
    /// let state = supervisor.state();
    /// assert_eq!(supervisor.run().await, CellularError::GaveUp { failures: 3 });
    /// assert_eq!(state.last_error(), Some(CellularError::Sim(SimProblem::PinRequired)));
    /// # Ok(())
    /// # }).unwrap();
    /// # uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub fn last_error(&self) -> Option<CellularError> {
        self.inner.last_error.borrow().clone()
    }

    /// The layer of the last failure.
    /// ```
    ///
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// use uasyncio_cellular::{CellularError, Layer, SimProblem};
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// # uasyncio::get_event_loop().use_virtual_time(true);
    /// # uasyncio::run(async {
    /// // The SIM wants a PIN and none is configured.
    /// let modem = Modem::new(FakeModem { sim: "SIM PIN", ..Default::default() }, ModemConfig::new("internet"));
    /// let cfg = SupervisorConfig { max_consecutive_failures: Some(3), ..Default::default() };
    /// let mut supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, cfg);
    /// let state = supervisor.state();
    /// assert_eq!(supervisor.run().await, CellularError::GaveUp { failures: 3 });
    /// assert_eq!(state.last_error_layer(), Some(Layer::Sim)); // "check the SIM"
    /// # Ok(())
    /// # }).unwrap();
    /// # uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub fn last_error_layer(&self) -> Option<Layer> {
        self.inner.last_error.borrow().as_ref().and_then(CellularError::layer)
    }

    /// The counters.
    /// ```
    ///
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// use uasyncio_cellular::{CellularError, Layer, SimProblem};
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// # uasyncio::get_event_loop().use_virtual_time(true);
    /// # uasyncio::run(async {
    /// // The SIM wants a PIN and none is configured.
    /// let modem = Modem::new(FakeModem { sim: "SIM PIN", ..Default::default() }, ModemConfig::new("internet"));
    /// let cfg = SupervisorConfig { max_consecutive_failures: Some(3), ..Default::default() };
    /// let mut supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, cfg);
    /// let state = supervisor.state();
    /// assert_eq!(supervisor.run().await, CellularError::GaveUp { failures: 3 });
    /// let stats = state.stats();
    /// assert_eq!((stats.dials, stats.ups, stats.consecutive_failures), (3, 0, 3));
    /// # Ok(())
    /// # }).unwrap();
    /// # uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub fn stats(&self) -> LinkStats {
        self.inner.stats.get()
    }

    fn update(&self, f: impl FnOnce(&mut LinkStats)) {
        let mut s = self.inner.stats.get();
        f(&mut s);
        self.inner.stats.set(s);
    }

    fn set_up(&self) {
        if self.inner.up.replace(true) {
            return;
        }
        self.update(|s| {
            s.ups += 1;
            s.consecutive_failures = 0;
        });
        self.inner.down_event.clear();
        self.inner.up_event.set();
    }

    /// Marks the link down; true if it was up.
    fn set_down(&self) -> bool {
        if !self.inner.up.replace(false) {
            return false;
        }
        self.update(|s| s.drops += 1);
        self.inner.up_event.clear();
        self.inner.down_event.set();
        true
    }

    fn fail(&self, e: CellularError) -> u32 {
        log::warn!("cellular: {e}");
        *self.inner.last_error.borrow_mut() = Some(e);
        let mut n = 0;
        self.update(|s| {
            s.consecutive_failures += 1;
            n = s.consecutive_failures;
        });
        n
    }
}

/// Settings of a [`Supervisor`].
///
/// ```
/// use uasyncio_cellular::link::SupervisorConfig;
/// let cfg = SupervisorConfig {
///     backoff_max_ms: 600_000, // a battery device: at most one redial per 10 minutes
///     max_consecutive_failures: Some(20), // then `run` returns `GaveUp` (e.g. to power-cycle the modem)
///     ..SupervisorConfig::default()
/// };
/// assert_eq!(cfg.backoff_min_ms, 1_000);
/// ```
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// First back-off after a failure, ms. Default 1 000.
    pub backoff_min_ms: u32,
    /// Longest back-off, ms. Default 60 000.
    pub backoff_max_ms: u32,
    /// Give up after this many failures in a row (`None`: never). Default `None`.
    pub max_consecutive_failures: Option<u32>,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            backoff_min_ms: 1_000,
            backoff_max_ms: 60_000,
            max_consecutive_failures: None,
        }
    }
}

/// Marks the state down when the supervisor's future ends or is dropped.
struct DownOnDrop<'a>(&'a LinkState);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set_down();
    }
}

/// Keeps a data link up over a modem (see the module docs).
///
/// The whole cellular stack, wired up: a modem on a serial port, PPP into a smoltcp stack,
/// the supervisor in a task of its own, a TCP connection once the link is up. Run it inside
/// `uasyncio::run` (the stack's driver is a task on the running loop).
///
/// ```no_run
/// use embedded_io_async::{Read, Write};
/// use uasyncio::{create_task, wait_for_ms};
/// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
/// use uasyncio_cellular::modem::{Modem, ModemConfig};
/// use uasyncio_net::ppp::{ppp_stack, PppConfig};
/// use uasyncio_net::StackConfig;
///
/// /// `port`: the modem's byte stream, e.g. a `serial::SerialPort` on your UART.
/// async fn app<P: Read + Write + 'static>(port: P) -> uasyncio::Result<()> {
///     let modem = Modem::new(port, ModemConfig::new("internet"));
///     let mut stack_cfg = StackConfig::for_ip_link();
///     stack_cfg.random_seed = 0x5eed; // from your hardware RNG: TCP ports and sequence numbers differ per boot
///     let (stack, link) = ppp_stack(stack_cfg, PppConfig::default())?;
///     let mut supervisor = Supervisor::new(modem, link, SupervisorConfig::default());
///     let state = supervisor.state();
///     // `run` returns only when it gives up or is cancelled, with the reason.
///     let task = create_task(async move { Ok(supervisor.run().await) });
///     // Registration can take minutes; a deadline turns "never" into an error.
///     wait_for_ms(async move { state.wait_up().await }, 180_000).await?;
///     let (reader, writer) = stack.open_connection("example.com", 7000, None).await?;
///     writer.write(b"hello\n");
///     writer.drain().await?;
///     let _answer = reader.readline().await?;
///     writer.close();
///     task.cancel()?; // hangs up: +++ with guard times, then ATH
///     let _why = task.await?;
///     Ok(())
/// }
/// ```
pub struct Supervisor<IO, L> {
    modem: Modem<IO>,
    link: L,
    cfg: SupervisorConfig,
    state: LinkState,
}

impl<IO, L> fmt::Debug for Supervisor<IO, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("cfg", &self.cfg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<IO: Read + Write, L: DataLink> Supervisor<IO, L> {
    /// A supervisor for `modem` and `link`.
    /// ```
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// let modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    /// let supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, SupervisorConfig::default());
    /// assert!(!supervisor.state().is_up()); // nothing happens before `run`
    /// ```
    pub fn new(modem: Modem<IO>, link: L, cfg: SupervisorConfig) -> Self {
        Supervisor {
            modem,
            link,
            cfg,
            state: LinkState::new(),
        }
    }

    /// The state handle (clone it for other tasks).
    /// ```
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// # let modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    /// let supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, SupervisorConfig::default());
    /// let state = supervisor.state(); // before `run` takes the supervisor into its task
    /// let for_the_sensor_task = state.clone();
    /// ```
    pub fn state(&self) -> LinkState {
        self.state.clone()
    }

    /// The modem (between runs).
    /// ```
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// # let modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    /// let mut supervisor = Supervisor::new(modem, Toy { hold_ms: 60_000 }, SupervisorConfig::default());
    /// assert_eq!(supervisor.modem().config().apn, "internet");
    /// ```
    pub fn modem(&mut self) -> &mut Modem<IO> {
        &mut self.modem
    }

    /// Runs forever: bring up, run the link, hang up, back off, redial. Returns only when
    /// it gives up ([`CellularError::GaveUp`]; the cause is in
    /// [`LinkState::last_error`]), when cancelled, or on a failure redialling cannot fix: a
    /// PIN the SIM rejected (`CellularError::Sim(SimProblem::WrongPin)`, which a redial
    /// would send again, using up the SIM's attempts).
    ///
    /// **Cancellation:** a cancel while the link runs, the modem is being brought up or hung
    /// up, or the supervisor waits to redial makes it hang up (best effort: two guard times
    /// and `ATH`), mark the state down and return [`CellularError::Cancelled`].
    /// **Dropping** the future marks the state down at once,
    /// without a hang-up (the modem may be left in data mode: the next bring-up escapes it).
    /// ```
    /// use uasyncio_cellular::link::{Supervisor, SupervisorConfig};
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// use uasyncio_cellular::CellularError;
    /// # use std::collections::VecDeque;
    /// # /// The module docs' scripted modem, plus a SIM status (`sim`; PIN "1234") and `AT+CSQ`.
    /// # struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8>, sim: &'static str }
    /// # impl Default for FakeModem {
    /// #     fn default() -> Self { FakeModem { cmd: Vec::new(), out: VecDeque::new(), sim: "READY" } }
    /// # }
    /// # impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Write for FakeModem {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
    /// #         for &b in buf {
    /// #             if b != b'\r' { self.cmd.push(b); continue; }
    /// #             let cpin = format!("+CPIN: {}\r\nOK", self.sim);
    /// #             let answer = match &self.cmd[..] {
    /// #                 b"AT+CPIN?" => &cpin[..],
    /// #                 b"AT+CPIN=\"1234\"" => { self.sim = "READY"; "OK" }
    /// #                 c if c.starts_with(b"AT+CPIN=") => "+CME ERROR: 16",
    /// #                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
    /// #                 b"AT+CSQ" => "+CSQ: 20,99\r\nOK",
    /// #                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
    /// #                 _ => "OK",
    /// #             };
    /// #             self.out.extend(format!("\r\n{answer}\r\n").bytes());
    /// #             self.cmd.clear();
    /// #         }
    /// #         Ok(buf.len())
    /// #     }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # impl embedded_io_async::Read for FakeModem {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.out.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.out.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # use uasyncio_cellular::link::{DataLink, LinkEnd, UpSignal};
    /// # /// A stand-in for PPP: up at once; the call drops after `hold_ms` (or ends on a cancel).
    /// # struct Toy { hold_ms: u32 }
    /// # impl DataLink for Toy {
    /// #     async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(&mut self, _io: &mut IO, up: &UpSignal) -> LinkEnd {
    /// #         up.up();
    /// #         match uasyncio::sleep_ms(self.hold_ms).await {
    /// #             Ok(()) => LinkEnd::NoCarrier,
    /// #             Err(_) => LinkEnd::Cancelled,
    /// #         }
    /// #     }
    /// # }
    /// uasyncio::get_event_loop().use_virtual_time(true);
    /// uasyncio::run(async {
    ///     let modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    ///     let mut supervisor = Supervisor::new(modem, Toy { hold_ms: 3_600_000 }, SupervisorConfig::default());
    ///     let state = supervisor.state();
    ///     let task = uasyncio::create_task(async move { Ok(supervisor.run().await) });
    ///     state.wait_up().await?;
    ///     // ... the application uses the link ...
    ///     task.cancel()?; // stop: the supervisor hangs up and returns
    ///     assert_eq!(task.await?, CellularError::Cancelled);
    ///     assert!(!state.is_up());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub async fn run(&mut self) -> CellularError {
        let guard = DownOnDrop(&self.state);
        let state = guard.0.clone();
        let mut backoff = self.cfg.backoff_min_ms.max(1);
        loop {
            state.update(|s| s.dials += 1);
            let failure = match self.modem.bring_up().await {
                Ok(c) => {
                    match &c.rate {
                        Some(rate) => log::info!("cellular: data call up (CONNECT {rate})"),
                        None => log::info!("cellular: data call up"),
                    }
                    let up = UpSignal { state: state.clone() };
                    let end = self.link.run(self.modem.io_mut(), &up).await;
                    let was_up = state.set_down();
                    log::info!("cellular: data link ended: {end}");
                    let mut cancelled = end == LinkEnd::Cancelled;
                    let e = CellularError::Ppp(end.to_string());
                    if !cancelled {
                        // Recorded before the hang-up, which takes guard times (seconds, more
                        // with a silent modem): an application that sees its stream fail with
                        // ENETDOWN and looks, or cancels the supervisor meanwhile, finds the
                        // cause (NO CARRIER, LCP echoes unanswered) rather than nothing.
                        *state.inner.last_error.borrow_mut() = Some(e.clone());
                    }
                    let mut hung = self.modem.hang_up().await;
                    if hung == Err(CellularError::Cancelled) {
                        // A cancel that came during the hang-up (the link had ended on its
                        // own, e.g. NO CARRIER, and the application cancels as it sees its
                        // stream fail): it is this run's end, not a failed hang-up to redial
                        // after. The cancel is taken, so a second hang-up runs to its end.
                        cancelled = true;
                        hung = self.modem.hang_up().await;
                    }
                    if let Err(why) = &hung {
                        log::warn!("cellular: hang-up failed ({why}); the next bring-up escapes data mode");
                    }
                    if cancelled {
                        return CellularError::Cancelled;
                    }
                    if was_up {
                        backoff = self.cfg.backoff_min_ms.max(1);
                        None
                    } else {
                        Some(e)
                    }
                }
                Err(CellularError::Cancelled) => {
                    let _ = self.modem.hang_up().await;
                    return CellularError::Cancelled;
                }
                // Redialling would send the rejected PIN again (or fail the same way): stop.
                Err(e @ CellularError::Sim(SimProblem::WrongPin)) => {
                    state.fail(e.clone());
                    return e;
                }
                Err(e) => Some(e),
            };
            let wait = match failure {
                Some(e) => {
                    let n = state.fail(e);
                    if self.cfg.max_consecutive_failures.is_some_and(|max| n >= max) {
                        return CellularError::GaveUp { failures: n };
                    }
                    let w = backoff;
                    backoff = backoff.saturating_mul(2).min(self.cfg.backoff_max_ms.max(1));
                    w
                }
                None => backoff,
            };
            log::info!("cellular: redial in {wait} ms");
            if uasyncio::sleep_ms(wait).await.is_err() {
                return CellularError::Cancelled;
            }
        }
    }
}

/// A failure message with its layer, for logs: `"[Sim] SIM: ..."`.
///
/// ```
/// use uasyncio_cellular::link::describe;
/// use uasyncio_cellular::{CellularError, SimProblem};
/// let e = CellularError::Sim(SimProblem::PinRequired);
/// assert!(describe(&e).starts_with("[Sim] SIM: the SIM asks for a PIN"));
/// assert_eq!(describe(&CellularError::Cancelled), "cancelled");
/// ```
pub fn describe(e: &CellularError) -> String {
    match e.layer() {
        Some(l) => alloc::format!("[{l:?}] {e}"),
        None => e.to_string(),
    }
}

/// The adapter for `uasyncio_net::ppp::PppLink`: runs it and signals "up" when IPCP opens.
///
/// `PppLink` is a cheap `Rc` handle, so the adapter keeps a clone to read
/// [`PppLink::is_up`](uasyncio_net::ppp::PppLink::is_up) after every poll of the running
/// link: IPCP opens inside such a poll, so the signal comes in the same pass of the loop
/// and costs no extra wake-up.
///
/// **Cancellation:** as `PppLink::run` (it ends the link and returns
/// [`LinkEnd::Cancelled`]). Dropping the future drops the running link (the stack goes down).
impl DataLink for uasyncio_net::ppp::PppLink {
    async fn run<IO: Read + Write>(&mut self, io: &mut IO, up: &UpSignal) -> LinkEnd {
        use core::future::{poll_fn, Future};
        use uasyncio_net::ppp::PppEnd;

        let watch = self.clone();
        let mut signalled = false;
        let mut running = core::pin::pin!(uasyncio_net::ppp::PppLink::run(self, io));
        let end = poll_fn(|cx| {
            let r = running.as_mut().poll(cx);
            if !signalled && watch.is_up() {
                signalled = true;
                up.up();
            }
            r
        })
        .await;
        match end {
            PppEnd::NoCarrier => LinkEnd::NoCarrier,
            PppEnd::NegotiationTimeout { phase } => LinkEnd::NegotiationTimeout { phase },
            PppEnd::PeerTerminated => LinkEnd::PeerTerminated,
            PppEnd::EchoTimeout => LinkEnd::EchoTimeout,
            PppEnd::Io(e) => LinkEnd::Io(e),
            PppEnd::Cancelled => LinkEnd::Cancelled,
            other => LinkEnd::Io(uasyncio::Error::runtime(other.to_string())),
        }
    }
}
