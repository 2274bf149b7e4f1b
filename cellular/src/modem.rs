//! Modem bring-up and hang-up: from a powered modem to a data call, and back.
//!
//! [`Modem::bring_up`] runs the steps every 3GPP modem needs, each with its own bounded
//! wait, and fails with a [`CellularError`] naming the step:
//!
//! 1. **sync**: drops what is on the line for `sync_timeout_ms` (a late answer from an earlier
//!    session), then `AT` until `OK` (`sync_attempts` tries of `sync_timeout_ms`). Halfway, in case
//!    the modem is still in data mode from an earlier session, it sends the escape sequence
//!    (`+++` between guard times) once.
//! 2. `ATE0` (echo off; the client skips the echo of this one) and `AT+CMEE=1` (numeric
//!    `+CME ERROR` codes; a modem that refuses it is tolerated).
//! 3. **SIM**: `AT+CPIN?`; `SIM PIN` sends the configured PIN (none configured:
//!    `Sim(PinRequired)`), then waits for `READY`; an error (`+CME ERROR: 10`: no SIM) is
//!    `Sim(Error)`; `SIM PUK` and other locks are `Sim(Locked)`.
//! 4. **registration**: enables `+CREG`/`+CGREG`/`+CEREG` URCs (a modem without LTE refuses
//!    `+CEREG`: tolerated), then until `registration_timeout_ms` passes: queries the status,
//!    and between queries waits for a registration URC (at most `registration_poll_ms`).
//!    Home or roaming (any of the three) ends the wait; roaming is logged. Denied is
//!    `Registration(Denied)`; searching is logged.
//! 5. **PDP context**: `AT+CGDCONT=1,"IP","<apn>"`, built with `at_commands`' builder.
//! 6. **dial**: `ATD*99***1#` or `AT+CGDATA="PPP",1` ([`DialMethod`]) until `CONNECT`.
//!
//! [`Modem::hang_up`] leaves data mode the V.250 way: `guard_ms` of silence, `+++` with no
//! CR, `guard_ms` of silence (reading and dropping what the modem says meanwhile, such as
//! the `OK` for the escape), then `ATH`. A modem that was already in command mode sees
//! `+++ATH` as one line and answers `ERROR`; the `ATH` is then sent once more.
//!
//! ## Example
//! A bring-up and a hang-up against a scripted modem on an in-memory stream (on a board,
//! the stream is a [`serial::SerialPort`](crate::serial::SerialPort)). The loop runs on
//! virtual time, so the guard times and sync waits pass at once.
//! ```
//! use std::collections::VecDeque;
//! use uasyncio_cellular::at::RegStatus;
//! use uasyncio_cellular::modem::{Modem, ModemConfig};
//!
//! /// Answers each command line: SIM ready, registered at home, `CONNECT` to a dial.
//! #[derive(Default)]
//! struct FakeModem { cmd: Vec<u8>, out: VecDeque<u8> }
//! impl embedded_io::ErrorType for FakeModem { type Error = core::convert::Infallible; }
//! impl embedded_io_async::Write for FakeModem {
//!     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
//!         for &b in buf {
//!             if b != b'\r' { self.cmd.push(b); continue; }
//!             let answer = match &self.cmd[..] {
//!                 b"AT+CPIN?" => "+CPIN: READY\r\nOK",
//!                 b"AT+CREG?" => "+CREG: 0,1\r\nOK",
//!                 c if c.starts_with(b"ATD") => "CONNECT 150000000",
//!                 _ => "OK",
//!             };
//!             self.out.extend(format!("\r\n{answer}\r\n").bytes());
//!             self.cmd.clear();
//!         }
//!         Ok(buf.len())
//!     }
//!     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! }
//! impl embedded_io_async::Read for FakeModem {
//!     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
//!         if self.out.is_empty() {
//!             core::future::pending::<()>().await; // silent: the client's timeout ends the wait
//!         }
//!         let n = buf.len().min(self.out.len());
//!         for (d, s) in buf.iter_mut().zip(self.out.drain(..n)) { *d = s; }
//!         Ok(n)
//!     }
//! }
//!
//! uasyncio::get_event_loop().use_virtual_time(true);
//! uasyncio::run(async {
//!     let mut modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
//!     let call = modem.bring_up().await?;
//!     assert_eq!(call.rate.as_deref(), Some("150000000"));
//!     assert_eq!(call.registration, RegStatus::Home);
//!     // Data mode: PPP would now run over `modem.io_mut()`.
//!     modem.hang_up().await?; // guard time, +++, guard time, ATH
//!     Ok(())
//! })
//! .unwrap();
//! uasyncio::get_event_loop().use_virtual_time(false);
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use at_commands::builder::CommandBuilder;
use embedded_io_async::{Read, Write};

use crate::at::{parse_reg_query, AtClient, AtConfig, AtErrorKind, Final, RegKind, RegStatus, Urc};
use crate::error::{CellularError, RegistrationProblem, SimProblem};

/// How the data call is started.
///
/// ```
/// use uasyncio_cellular::modem::{DialMethod, ModemConfig};
/// let mut cfg = ModemConfig::new("internet");
/// assert_eq!(cfg.dial, DialMethod::Atd99); // the default
/// cfg.dial = DialMethod::Cgdata; // for a modem that wants AT+CGDATA="PPP",1
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialMethod {
    /// `ATD*99***1#` (the GPRS service code with context 1): what almost every modem takes.
    Atd99,
    /// `AT+CGDATA="PPP",1`.
    Cgdata,
}

/// Settings of a [`Modem`]. `ModemConfig::new("internet")` gives the defaults.
///
/// The fields a user usually sets; [`Modem::bring_up`] checks them before it sends a byte.
/// ```
/// use uasyncio_cellular::modem::{DialMethod, Modem, ModemConfig};
/// use uasyncio_cellular::{CellularError, Layer};
///
/// let mut cfg = ModemConfig::new("internet.example"); // the operator's APN
/// cfg.pin = Some("1234".into()); // only if the SIM has its PIN lock on
/// cfg.registration_timeout_ms = 300_000; // weak coverage: give the network 5 minutes
/// cfg.command_timeout_ms = 10_000; // a slow modem
/// cfg.dial = DialMethod::Cgdata; // a modem that wants AT+CGDATA
/// cfg.guard_ms = 2_100; // the modem's S12 (escape guard time) was set to 2 s
/// cfg.at.urc_prefixes.push("+UUPSDA".into()); // a vendor URC (u-blox)
///
/// // A bad value fails the bring-up at once, as a `Config` error that says what to fix.
/// cfg.pin = Some("12".into());
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
/// # uasyncio::run(async move {
/// let err = Modem::new(FakeModem::default(), cfg).bring_up().await.unwrap_err();
/// assert_eq!(err.layer(), Some(Layer::Config));
/// assert_eq!(err, CellularError::Config("ModemConfig::pin must be 4 to 8 digits".into()));
/// # Ok(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// The access point name of the operator (printable ASCII, no `"`).
    pub apn: String,
    /// The SIM PIN, if the SIM has the PIN lock on (4 to 8 digits).
    pub pin: Option<String>,
    /// `AT` tries before the modem counts as not answering. Default 10.
    pub sync_attempts: u32,
    /// Wait for each sync `AT`, ms. Default 500.
    pub sync_timeout_ms: u32,
    /// Wait for an ordinary command, ms. Default 5 000.
    pub command_timeout_ms: u32,
    /// How long the SIM may take to become ready after the PIN, ms. Default 10 000.
    pub sim_ready_timeout_ms: u32,
    /// How long registration may take, ms. Default 120 000.
    pub registration_timeout_ms: u32,
    /// Longest pause between two registration queries, ms (URCs end it early). Default 2 000.
    pub registration_poll_ms: u32,
    /// The dial command.
    pub dial: DialMethod,
    /// Wait for `CONNECT`, ms. Default 30 000.
    pub dial_timeout_ms: u32,
    /// Silence before and after `+++`, ms (V.250's S12 is 1 s by default). Default 1 100.
    pub guard_ms: u32,
    /// Settings of the AT client (URC prefixes, queue size).
    pub at: AtConfig,
}

impl ModemConfig {
    /// The defaults, with `apn`.
    ///
    /// ```
    /// use uasyncio_cellular::modem::{DialMethod, ModemConfig};
    /// let cfg = ModemConfig::new("internet");
    /// assert_eq!((cfg.apn.as_str(), cfg.pin), ("internet", None));
    /// assert_eq!((cfg.sync_attempts, cfg.sync_timeout_ms, cfg.command_timeout_ms), (10, 500, 5_000));
    /// assert_eq!((cfg.registration_timeout_ms, cfg.dial_timeout_ms, cfg.guard_ms), (120_000, 30_000, 1_100));
    /// assert_eq!(cfg.dial, DialMethod::Atd99);
    /// ```
    pub fn new(apn: &str) -> Self {
        ModemConfig {
            apn: apn.into(),
            pin: None,
            sync_attempts: 10,
            sync_timeout_ms: 500,
            command_timeout_ms: 5_000,
            sim_ready_timeout_ms: 10_000,
            registration_timeout_ms: 120_000,
            registration_poll_ms: 2_000,
            dial: DialMethod::Atd99,
            dial_timeout_ms: 30_000,
            guard_ms: 1_100,
            at: AtConfig::default(),
        }
    }

    fn validate(&self) -> Result<(), CellularError> {
        if self.apn.is_empty() || self.apn.len() > 100 || !self.apn.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
            return Err(CellularError::Config(
                "ModemConfig::apn must be 1 to 100 printable ASCII characters without '\"' (the operator's APN, e.g. \"internet\")"
                    .into(),
            ));
        }
        if let Some(pin) = &self.pin {
            if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CellularError::Config("ModemConfig::pin must be 4 to 8 digits".into()));
            }
        }
        if self.sync_attempts == 0 {
            return Err(CellularError::Config(
                "ModemConfig::sync_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What a successful dial reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The rate after `CONNECT`, if the modem gave one.
    pub rate: Option<String>,
    /// The registration the modem reported when it registered.
    pub registration: RegStatus,
}

/// A modem on a byte stream: bring-up and hang-up (see the module docs).
pub struct Modem<IO> {
    at: AtClient<IO>,
    cfg: ModemConfig,
    /// A PIN the SIM rejected: never sent again (each wrong try uses up one of the SIM's
    /// three attempts).
    rejected_pin: Option<String>,
}

impl<IO> core::fmt::Debug for Modem<IO> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Modem")
            .field("at", &self.at)
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// Builds a command with `at_commands`' builder into a `Vec`.
fn build(f: impl FnOnce(&mut [u8]) -> Result<&[u8], usize>) -> Result<Vec<u8>, CellularError> {
    let mut buf = [0u8; 160];
    f(&mut buf)
        .map(<[u8]>::to_vec)
        .map_err(|_| CellularError::Config("a command built from the configuration is longer than 160 bytes".into()))
}

impl<IO: Read + Write> Modem<IO> {
    /// A modem on `io` with `cfg`.
    ///
    /// ```
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
    /// let port = FakeModem::default(); // on a board: a `serial::SerialPort`
    /// let mut cfg = ModemConfig::new("internet");
    /// cfg.pin = Some("1234".into());
    /// let modem = Modem::new(port, cfg);
    /// assert_eq!(modem.config().apn, "internet");
    /// ```
    pub fn new(io: IO, cfg: ModemConfig) -> Self {
        let at = AtClient::with_config(io, cfg.at.clone());
        Modem {
            at,
            cfg,
            rejected_pin: None,
        }
    }

    /// The AT client (to send other commands while in command mode).
    ///
    /// ```
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
    /// # uasyncio::run(async {
    /// let mut modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    /// let r = modem.at().command(b"AT+CSQ", 1_000).await.unwrap(); // signal quality
    /// assert_eq!(r.value("+CSQ:"), Some("20,99"));
    /// # Ok(())
    /// # }).unwrap();
    /// ```
    pub fn at(&mut self) -> &mut AtClient<IO> {
        &mut self.at
    }

    /// The byte stream, for the data link after [`bring_up`](Self::bring_up).
    ///
    /// ```
    /// use embedded_io_async::Write;
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
    /// # uasyncio::get_event_loop().use_virtual_time(true);
    /// # uasyncio::run(async {
    /// let mut modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    /// modem.bring_up().await?;
    /// // Data mode: the stream carries PPP now (a `DataLink` is given exactly this).
    /// modem.io_mut().write_all(&[0x7e, 0xff, 0x03]).await.unwrap();
    /// # Ok(())
    /// # }).unwrap();
    /// # uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub fn io_mut(&mut self) -> &mut IO {
        self.at.io_mut()
    }

    /// The configuration.
    ///
    /// ```
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
    /// let modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    /// assert_eq!(modem.config().guard_ms, 1_100);
    /// ```
    pub fn config(&self) -> &ModemConfig {
        &self.cfg
    }

    async fn cmd(&mut self, cmd: &[u8]) -> Result<crate::at::AtResponse, crate::at::AtError> {
        let t = self.cfg.command_timeout_ms;
        self.at.command(cmd, t).await
    }

    /// Brings the modem from power-on (or command mode) to a data call (see the module
    /// docs). On success the stream is in data mode, positioned at the first byte after
    /// `CONNECT`.
    ///
    /// **Cancellation:** `Err(CellularError::Cancelled)` at the step it was in; the modem may
    /// be in any state up to data mode (a dial answered after the cancel): call
    /// [`hang_up`](Self::hang_up) before the next bring-up. Dropping the future is the same.
    ///
    /// ```
    /// use uasyncio_cellular::modem::{Modem, ModemConfig};
    /// use uasyncio_cellular::{CellularError, SimProblem};
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
    /// uasyncio::get_event_loop().use_virtual_time(true); // sync waits and guard times pass at once
    /// uasyncio::run(async {
    ///     // A SIM with its PIN lock on, and no PIN configured: the SIM step says so.
    ///     let locked = FakeModem { sim: "SIM PIN", ..Default::default() };
    ///     let mut modem = Modem::new(locked, ModemConfig::new("internet"));
    ///     assert_eq!(modem.bring_up().await, Err(CellularError::Sim(SimProblem::PinRequired)));
    ///     // With the PIN it goes on to registration and the dial.
    ///     let mut cfg = ModemConfig::new("internet");
    ///     cfg.pin = Some("1234".into());
    ///     let locked = FakeModem { sim: "SIM PIN", ..Default::default() };
    ///     let call = Modem::new(locked, cfg).bring_up().await?;
    ///     assert_eq!(call.rate.as_deref(), Some("150000000"));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub async fn bring_up(&mut self) -> Result<Connected, CellularError> {
        self.cfg.validate()?;
        self.sync().await?;
        self.at
            .command(b"ATE0", self.cfg.command_timeout_ms)
            .await
            .map_err(CellularError::at)?;
        match self.cmd(b"AT+CMEE=1").await {
            Ok(_) => {}
            Err(e) if e.is_cancelled() => return Err(CellularError::Cancelled),
            Err(e) => log::warn!("modem refused AT+CMEE=1 ({e}); errors will be plain ERROR"),
        }
        self.sim().await?;
        let registration = self.register().await?;
        let cgdcont = build(|b| {
            CommandBuilder::create_set(b, true)
                .named("+CGDCONT")
                .with_int_parameter(1)
                .with_string_parameter("IP")
                .with_string_parameter(self.cfg.apn.as_bytes())
                .finish_with(b"")
        })?;
        self.cmd(&cgdcont).await.map_err(CellularError::at)?;
        let dial: &[u8] = match self.cfg.dial {
            DialMethod::Atd99 => b"ATD*99***1#",
            DialMethod::Cgdata => b"AT+CGDATA=\"PPP\",1",
        };
        let r = self
            .at
            .command(dial, self.cfg.dial_timeout_ms)
            .await
            .map_err(CellularError::at)?;
        match r.final_code {
            Final::Connect { rate } => {
                match rate.as_deref() {
                    Some(r) => log::info!("modem: CONNECT {r}"),
                    None => log::info!("modem: CONNECT"),
                }
                Ok(Connected { rate, registration })
            }
            Final::Ok => Err(CellularError::At(crate::at::AtError {
                command: String::from_utf8_lossy(dial).into_owned(),
                kind: AtErrorKind::Invalid("the modem answered OK instead of CONNECT: it did not enter data mode"),
            })),
        }
    }

    async fn sync(&mut self) -> Result<(), CellularError> {
        // Drop what an earlier session left on the line first: an answer that came after its
        // command gave up (the `OK` of a `+++` slower than our guard time makes the `ATH` take
        // it, and the `ATH`'s own `OK` waits here). Taken as the answer to our `AT`, it would
        // shift every later answer by one command (`AT+CPIN?` answered by a bare `OK`).
        match self.at.drain(self.cfg.sync_timeout_ms).await {
            Err(e) if e.is_cancelled() => return Err(CellularError::Cancelled),
            Err(e) if matches!(e.kind, AtErrorKind::Closed | AtErrorKind::Io { .. }) => {
                return Err(CellularError::At(e))
            }
            _ => {}
        }
        let attempts = self.cfg.sync_attempts;
        let mut last = None;
        for i in 0..attempts {
            if i > 0 && i == attempts / 2 {
                log::info!("modem: no answer to AT; trying to leave data mode (+++)");
                self.escape().await?;
            }
            match self.at.command(b"AT", self.cfg.sync_timeout_ms).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_cancelled() => return Err(CellularError::Cancelled),
                Err(e) if matches!(e.kind, AtErrorKind::Closed | AtErrorKind::Io { .. }) => {
                    return Err(CellularError::At(e))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(CellularError::Cancelled, CellularError::At))
    }

    async fn sim(&mut self) -> Result<(), CellularError> {
        let sim_err = |e: crate::at::AtError| {
            if e.is_cancelled() {
                CellularError::Cancelled
            } else if modem_silent(&e) {
                CellularError::At(e)
            } else {
                CellularError::Sim(SimProblem::Error(e))
            }
        };
        let mut status = self.cpin().await.map_err(sim_err)?;
        if status.is_empty() {
            // A bare `OK`: an answer that belonged to an earlier command (27.007 answers
            // `AT+CPIN?` with a `+CPIN:` line). Let the line settle and ask once more.
            log::warn!("modem: AT+CPIN? answered without +CPIN: (a late answer?); asking again");
            let _ = self.at.drain(self.cfg.sync_timeout_ms).await;
            status = self.cpin().await.map_err(sim_err)?;
        }
        match status.as_str() {
            "READY" => return Ok(()),
            "SIM PIN" => {}
            other => return Err(CellularError::Sim(SimProblem::Locked(other.into()))),
        }
        let Some(pin) = self.cfg.pin.clone() else {
            return Err(CellularError::Sim(SimProblem::PinRequired));
        };
        if self.rejected_pin.as_ref() == Some(&pin) {
            return Err(CellularError::Sim(SimProblem::WrongPin));
        }
        let cmd = build(|b| {
            CommandBuilder::create_set(b, true)
                .named("+CPIN")
                .with_string_parameter(pin.as_bytes())
                .finish_with(b"")
        })?;
        match self.cmd(&cmd).await {
            Ok(_) => {}
            Err(e) if matches!(&e.kind, AtErrorKind::Cme(c) if c.code == Some(16)) => {
                self.rejected_pin = Some(pin);
                return Err(CellularError::Sim(SimProblem::WrongPin));
            }
            Err(e) => return Err(sim_err(e)),
        }
        log::info!("modem: SIM PIN accepted");
        let start = uasyncio::ticks_ms();
        loop {
            let status = self.cpin().await.map_err(sim_err)?;
            if status == "READY" {
                return Ok(());
            }
            if uasyncio::ticks_ms().saturating_sub(start) >= u64::from(self.cfg.sim_ready_timeout_ms) {
                return Err(CellularError::Sim(SimProblem::NotReady(status)));
            }
            uasyncio::sleep_ms(500).await.map_err(|_| CellularError::Cancelled)?;
        }
    }

    async fn cpin(&mut self) -> Result<String, crate::at::AtError> {
        let r = self.cmd(b"AT+CPIN?").await?;
        Ok(r.value("+CPIN:").unwrap_or("").trim().into())
    }

    async fn register(&mut self) -> Result<RegStatus, CellularError> {
        let reg_err = |e: crate::at::AtError| {
            if e.is_cancelled() {
                CellularError::Cancelled
            } else if modem_silent(&e) {
                CellularError::At(e)
            } else {
                CellularError::Registration(RegistrationProblem::Error(e))
            }
        };
        self.cmd(b"AT+CREG=1").await.map_err(reg_err)?;
        for cmd in [&b"AT+CGREG=1"[..], b"AT+CEREG=1"] {
            match self.cmd(cmd).await {
                Ok(_) => {}
                Err(e) if e.is_cancelled() => return Err(CellularError::Cancelled),
                Err(e) => log::debug!("modem: {e} (tolerated: not every modem has every radio)"),
            }
        }
        let start = uasyncio::ticks_ms();
        let deadline = start + u64::from(self.cfg.registration_timeout_ms);
        let mut last = RegStatus::Unknown;
        loop {
            // URCs queued during commands are older than the queries below: drop them.
            while self.at.take_urc().is_some() {}
            let mut seen: Vec<RegStatus> = Vec::new();
            for kind in [RegKind::Creg, RegKind::Cgreg, RegKind::Cereg] {
                let mut q = Vec::from(&b"AT"[..]);
                q.extend_from_slice(kind.name().as_bytes());
                q.push(b'?');
                match self.cmd(&q).await {
                    Ok(r) => seen.extend(r.lines.iter().find_map(|l| parse_reg_query(l, kind))),
                    Err(e) if e.is_cancelled() => return Err(CellularError::Cancelled),
                    Err(e) if kind == RegKind::Creg => return Err(reg_err(e)),
                    Err(_) => {}
                }
            }
            if let Some(stat) = Self::decide(&seen)? {
                return Ok(stat);
            }
            if let Some(&s) = seen.last() {
                last = s;
            }
            log::info!("modem: not registered yet ({last})");
            let now = uasyncio::ticks_ms();
            if now >= deadline {
                return Err(CellularError::Registration(RegistrationProblem::Timeout {
                    last,
                    waited_ms: u32::try_from(now - start).unwrap_or(u32::MAX),
                }));
            }
            let wait = u32::try_from(deadline - now)
                .unwrap_or(u32::MAX)
                .min(self.cfg.registration_poll_ms);
            // A registration URC ends the pause early; it is fresher than the queries.
            match self.at.next_urc(wait).await {
                Ok(Some(Urc::Registration { stat, .. })) => {
                    if let Some(stat) = Self::decide(&[stat])? {
                        return Ok(stat);
                    }
                    last = stat;
                }
                Ok(_) => {}
                Err(e) if e.is_cancelled() => return Err(CellularError::Cancelled),
                Err(e) => return Err(reg_err(e)),
            }
        }
    }

    /// Registered (home or roaming, from any of the registrations) wins; else denied fails.
    fn decide(seen: &[RegStatus]) -> Result<Option<RegStatus>, CellularError> {
        if let Some(&stat) = seen.iter().find(|s| s.is_registered()) {
            if stat == RegStatus::Roaming {
                log::info!("modem: registered, roaming");
            } else {
                log::info!("modem: registered on the home network");
            }
            return Ok(Some(stat));
        }
        if seen.contains(&RegStatus::Denied) {
            return Err(CellularError::Registration(RegistrationProblem::Denied));
        }
        Ok(None)
    }

    /// `guard_ms` silence, `+++`, `guard_ms` silence (reading what the modem says).
    ///
    /// The first guard time reads and drops what still arrives: a call's last data-mode bytes
    /// (a download the application gave up on, the peer's retransmissions) would fill the
    /// receive ring during it (115,200 baud brings about 12 KB in a 1.1 s guard) and overrun
    /// it. Lost bytes (an overrun) do not end the hang-up: the AT client drops the damaged
    /// line and reads on, so `ATH` is still sent.
    async fn escape(&mut self) -> Result<(), CellularError> {
        let guard = self.cfg.guard_ms;
        let dead = |e: crate::at::AtError| match e.kind {
            AtErrorKind::Cancelled => Err(CellularError::Cancelled),
            // Data-mode bytes may end the stream view oddly; only a dead stream matters.
            AtErrorKind::Closed | AtErrorKind::Io { .. } => Err(CellularError::At(e)),
            _ => Ok(()),
        };
        self.at.discard(guard).await.or_else(dead)?;
        self.at.send_raw(b"+++").await.map_err(CellularError::at)?;
        self.at.reset_line();
        self.at.drain(guard).await.or_else(dead)
    }

    /// Leaves data mode and ends the call: guard time, `+++`, guard time, `ATH` (see the
    /// module docs). Works on a modem already in command mode too.
    ///
    /// **Cancellation:** `Err(CellularError::Cancelled)`; the modem may still be in data mode.
    /// Dropping the future is the same.
    ///
    /// ```
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
    /// uasyncio::get_event_loop().use_virtual_time(true);
    /// uasyncio::run(async {
    ///     let mut modem = Modem::new(FakeModem::default(), ModemConfig::new("internet"));
    ///     modem.bring_up().await?;
    ///     let t0 = uasyncio::ticks_ms();
    ///     modem.hang_up().await?;
    ///     assert!(uasyncio::ticks_ms() - t0 >= 2 * 1_100); // two guard times around the +++
    ///     Ok(())
    /// })
    /// .unwrap();
    /// uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub async fn hang_up(&mut self) -> Result<(), CellularError> {
        self.escape().await?;
        let mut last = None;
        for _ in 0..2 {
            match self.cmd(b"ATH").await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_cancelled() => return Err(CellularError::Cancelled),
                // `NO CARRIER` as the answer to ATH: the call is down, which is the goal.
                Err(e) if e.kind == AtErrorKind::NoCarrier => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(CellularError::Cancelled, CellularError::At))
    }
}

/// A command that got no answer (or a line that failed) says the modem or the wiring is at
/// fault, not the SIM or the network, whatever step it happened in: report it as AT.
fn modem_silent(e: &crate::at::AtError) -> bool {
    matches!(
        e.kind,
        AtErrorKind::Timeout { .. } | AtErrorKind::Unanswered { .. } | AtErrorKind::Closed | AtErrorKind::Io { .. }
    )
}
