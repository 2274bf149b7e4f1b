//! An AT command client (ITU-T V.250 / 3GPP TS 27.007) over any async byte stream.
//!
//! ## What a command looks like on the wire
//! The client writes the command and a CR, then reads lines (CR and/or LF terminated; empty
//! lines are skipped) until a **final result code**:
//!
//! | line | result |
//! |---|---|
//! | `OK` | `Ok(AtResponse { final_code: Final::Ok, .. })` |
//! | `CONNECT` / `CONNECT <rate>` | `Ok(.. Final::Connect { rate })`: the success of a dial |
//! | `ERROR` | [`AtErrorKind::Error`] |
//! | `+CME ERROR: <n>` / `+CME ERROR: <text>` | [`AtErrorKind::Cme`] with the code and a description |
//! | `+CMS ERROR: <n>` / text | [`AtErrorKind::Cms`] |
//! | `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE` | the matching [`AtErrorKind`] |
//!
//! On the way it skips the **echo** of the command (a modem echoes until `ATE0`), collects
//! **intermediate lines** (`+CPIN: READY`, an IMEI, `+CREG: 0,1` for `AT+CREG?`), and routes
//! **unsolicited result codes** (URCs) to a bounded queue: `+CREG:`, `+CGREG:`, `+CEREG:`,
//! `RING`, `NO CARRIER` while no command waits, and any line starting with one of the
//! configured vendor prefixes (default `+Q`, `+CUSD`, `^`). A `+NAME:` line whose name is
//! the command's own (`+CREG:` during `AT+CREG?`) is the command's answer, not a URC.
//! Registration URCs are parsed (their `<stat>`); the rest are kept as text.
//!
//! Every command has a timeout; when it passes the command fails with
//! [`AtErrorKind::Timeout`] naming the command. A final result code that arrives after its
//! command timed out is dropped when seen while no command waits, but one that arrives
//! while the next command waits is taken as that command's: V.250 gives no way to tell
//! them apart, so a modem that is slow to answer needs a longer timeout, not a retry.
//!
//! ## Robustness
//! Lines that are not UTF-8 or carry control characters, and lines longer than
//! [`AtConfig::max_line`], are dropped and counted ([`AtClient::garbage_lines`]); they never
//! end a command. Parsing uses `at_commands::parser`; since its integer parser overflows
//! (a debug-build panic) on ten or more digits, a line is only handed to it after a check
//! that no run of digits is longer than nine.
//!
//! ## Reading byte by byte
//! The client reads one byte per `read` call. AT traffic is a few hundred bytes per
//! command, and this way it never consumes a byte past a final result code: after
//! `CONNECT` the stream is positioned exactly at the first byte of the data (PPP) that the
//! modem sends next.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use at_commands::parser::CommandParser;
use embedded_io::Error as _;
use embedded_io_async::{Read, Write};

use crate::select::{select, Either};

/// Settings of an [`AtClient`].
///
/// ```
/// use uasyncio_cellular::at::{AtClient, AtConfig, Urc};
/// # use std::collections::VecDeque;
/// # /// A stream holding what the modem sent; then silent. Writes are dropped.
/// # struct Said(VecDeque<u8>);
/// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
/// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
/// # impl embedded_io_async::Read for Said {
/// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
/// #         if self.0.is_empty() { core::future::pending::<()>().await }
/// #         let n = buf.len().min(self.0.len());
/// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
/// #         Ok(n)
/// #     }
/// # }
/// # impl embedded_io_async::Write for Said {
/// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
/// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let mut cfg = AtConfig::default();
/// cfg.urc_prefixes.push("+UUSORD:".into()); // u-blox: data arrived on a socket
/// cfg.urc_capacity = 4;
/// # uasyncio::run(async move {
/// let mut at = AtClient::with_config(modem(b"\r\n+UUSORD: 0,12\r\n"), cfg);
/// let urc = at.next_urc(1_000).await.unwrap();
/// assert_eq!(urc, Some(Urc::Other("+UUSORD: 0,12".into())));
/// # Ok(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct AtConfig {
    /// Line prefixes that mark a vendor URC (besides the standard ones). Default: `+Q`
    /// (Quectel), `+CUSD`, `^` (Huawei).
    pub urc_prefixes: Vec<String>,
    /// URCs kept until someone takes them; when full the oldest is dropped and counted.
    /// Default 16.
    pub urc_capacity: usize,
    /// Longest line kept, in bytes; longer lines are dropped as garbage. Default 512.
    pub max_line: usize,
}

impl Default for AtConfig {
    fn default() -> Self {
        AtConfig {
            urc_prefixes: ["+Q", "+CUSD", "^"].iter().map(|s| s.to_string()).collect(),
            urc_capacity: 16,
            max_line: 512,
        }
    }
}

/// How a successful command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// `OK`.
    Ok,
    /// `CONNECT` (with the rate the modem reported, if any): the modem is in data mode.
    Connect {
        /// The text after `CONNECT`, e.g. `"150000000"`.
        rate: Option<String>,
    },
}

/// A successful command's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtResponse {
    /// Intermediate lines, in order (without the echo and the final result code).
    pub lines: Vec<String>,
    /// The final result code.
    pub final_code: Final,
}

impl AtResponse {
    /// The first intermediate line starting with `prefix`, with the prefix and the spaces
    /// after it removed: `response.value("+CPIN:")` gives `"READY"` for `+CPIN: READY`.
    /// ```
    /// use uasyncio_cellular::at::{AtResponse, Final};
    /// let r = AtResponse { lines: vec!["+CPIN: READY".into()], final_code: Final::Ok };
    /// assert_eq!(r.value("+CPIN:"), Some("READY"));
    /// assert_eq!(r.value("+CSQ:"), None);
    /// ```
    pub fn value(&self, prefix: &str) -> Option<&str> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim_start())
    }
}

/// Which registration a status is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegKind {
    /// `+CREG`: circuit-switched (GSM) registration.
    Creg,
    /// `+CGREG`: packet-switched (GPRS) registration.
    Cgreg,
    /// `+CEREG`: EPS (LTE) registration.
    Cereg,
}

impl RegKind {
    /// The result-code prefix, e.g. `"+CREG:"`.
    pub fn prefix(self) -> &'static str {
        match self {
            RegKind::Creg => "+CREG:",
            RegKind::Cgreg => "+CGREG:",
            RegKind::Cereg => "+CEREG:",
        }
    }

    /// The command name, e.g. `"+CREG"`.
    pub fn name(self) -> &'static str {
        match self {
            RegKind::Creg => "+CREG",
            RegKind::Cgreg => "+CGREG",
            RegKind::Cereg => "+CEREG",
        }
    }
}

/// A registration `<stat>` (3GPP TS 27.007 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegStatus {
    /// 0: not registered, not searching.
    NotSearching,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown (e.g. out of coverage).
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// Any other value (6..10: SMS-only, emergency-only, ...): not registered for data.
    Other(i32),
}

impl RegStatus {
    /// The status for a `<stat>` number.
    pub fn from_code(n: i32) -> Self {
        match n {
            0 => RegStatus::NotSearching,
            1 => RegStatus::Home,
            2 => RegStatus::Searching,
            3 => RegStatus::Denied,
            4 => RegStatus::Unknown,
            5 => RegStatus::Roaming,
            n => RegStatus::Other(n),
        }
    }

    /// The `<stat>` number.
    pub fn code(self) -> i32 {
        match self {
            RegStatus::NotSearching => 0,
            RegStatus::Home => 1,
            RegStatus::Searching => 2,
            RegStatus::Denied => 3,
            RegStatus::Unknown => 4,
            RegStatus::Roaming => 5,
            RegStatus::Other(n) => n,
        }
    }

    /// True for home or roaming.
    pub fn is_registered(self) -> bool {
        matches!(self, RegStatus::Home | RegStatus::Roaming)
    }
}

impl fmt::Display for RegStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            RegStatus::NotSearching => "not registered, not searching",
            RegStatus::Home => "registered (home network)",
            RegStatus::Searching => "searching",
            RegStatus::Denied => "registration denied",
            RegStatus::Unknown => "unknown",
            RegStatus::Roaming => "registered (roaming)",
            RegStatus::Other(_) => "not registered for data",
        };
        write!(f, "{} ({what})", self.code())
    }
}

/// An unsolicited result code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    /// `+CREG: <stat>…`, `+CGREG: …`, `+CEREG: …`.
    Registration {
        /// Which registration.
        kind: RegKind,
        /// The `<stat>`.
        stat: RegStatus,
    },
    /// `RING`.
    Ring,
    /// `NO CARRIER` while no command waited (the data call ended).
    NoCarrier,
    /// Any other URC, as text (a vendor URC, or an unparsable registration line).
    Other(String),
}

/// `+CME ERROR` / `+CMS ERROR` details: the numeric code (with `AT+CMEE=1`) or the
/// verbose text (with `AT+CMEE=2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquipmentError {
    /// The numeric code, if the modem sent one.
    pub code: Option<i32>,
    /// The verbose text, if the modem sent one.
    pub text: Option<String>,
}

impl EquipmentError {
    fn fmt_with(&self, f: &mut fmt::Formatter<'_>, table: fn(i32) -> Option<&'static str>) -> fmt::Result {
        match (self.code, &self.text) {
            (Some(c), _) => match table(c) {
                Some(d) => write!(f, "{c} ({d})"),
                None => write!(f, "{c}"),
            },
            (None, Some(t)) => f.write_str(t),
            (None, None) => f.write_str("(no detail)"),
        }
    }
}

/// Descriptions of common `+CME ERROR` codes (3GPP TS 27.007 §9.2).
pub fn cme_description(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "phone failure",
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        15 => "SIM wrong",
        16 => "incorrect password",
        17 => "SIM PIN2 required",
        18 => "SIM PUK2 required",
        20 => "memory full",
        30 => "no network service",
        31 => "network timeout",
        32 => "network not allowed - emergency calls only",
        100 => "unknown",
        103 => "illegal MS",
        106 => "illegal ME",
        107 => "GPRS services not allowed",
        111 => "PLMN not allowed",
        112 => "location area not allowed",
        132 => "service option not supported",
        133 => "requested service option not subscribed",
        148 => "unspecified GPRS error",
        149 => "PDP authentication failure",
        _ => return None,
    })
}

/// Descriptions of common `+CMS ERROR` codes (3GPP TS 27.005 §3.2.5).
pub fn cms_description(code: i32) -> Option<&'static str> {
    Some(match code {
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        313 => "SIM failure",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        500 => "unknown error",
        _ => return None,
    })
}

/// What went wrong with a command. Its `Display` is the modem's words, or what happened:
///
/// ```
/// use uasyncio_cellular::at::{AtErrorKind, EquipmentError};
/// assert_eq!(AtErrorKind::NoCarrier.to_string(), "NO CARRIER");
/// let no_sim = AtErrorKind::Cme(EquipmentError { code: Some(10), text: None });
/// assert_eq!(no_sim.to_string(), "+CME ERROR: 10 (SIM not inserted)");
/// assert_eq!(AtErrorKind::Timeout { ms: 500 }.to_string(), "no answer within 500 ms");
/// assert_eq!(AtErrorKind::Closed.to_string(), "the serial stream ended");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AtErrorKind {
    /// `ERROR`.
    Error,
    /// `+CME ERROR: …`.
    Cme(EquipmentError),
    /// `+CMS ERROR: …`.
    Cms(EquipmentError),
    /// `NO CARRIER` (a dial failed, or the call ended).
    NoCarrier,
    /// `BUSY`.
    Busy,
    /// `NO ANSWER`.
    NoAnswer,
    /// `NO DIALTONE`.
    NoDialtone,
    /// No final result code within the command's timeout.
    Timeout {
        /// The timeout that passed, in ms.
        ms: u32,
    },
    /// No final result code within the command's timeout, but other lines came (garbage at a
    /// wrong baud rate, or an answer this driver does not know): the last of them. Otherwise
    /// the same as `Timeout` ([`AtError::is_timeout`] is true).
    Unanswered {
        /// The timeout that passed, in ms.
        ms: u32,
        /// The last line the modem sent meanwhile (cut to 40 characters), or
        /// `"(unreadable: not text)"` when all it sent was garbage.
        last_line: String,
    },
    /// The byte stream failed.
    Io {
        /// The stream's error kind.
        kind: embedded_io::ErrorKind,
        /// The stream's error, as text.
        detail: String,
    },
    /// The byte stream ended (EOF).
    Closed,
    /// The task was cancelled while the command waited.
    Cancelled,
    /// The command cannot be sent; says what to change.
    Invalid(&'static str),
}

/// A failed command: which command, and why. `Display` names the command:
///
/// ```
/// use uasyncio_cellular::at::{AtError, AtErrorKind, EquipmentError};
/// let e = AtError {
///     command: "AT+CPIN?".into(),
///     kind: AtErrorKind::Cme(EquipmentError { code: Some(10), text: None }),
/// };
/// assert_eq!(e.to_string(), "AT+CPIN?: +CME ERROR: 10 (SIM not inserted)");
/// let t = AtError { command: "AT".into(), kind: AtErrorKind::Timeout { ms: 500 } };
/// assert_eq!(t.to_string(), "no answer to AT within 500 ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtError {
    /// The command as sent, without its CR (empty for a failure while no command waited).
    pub command: String,
    /// What went wrong.
    pub kind: AtErrorKind,
}

impl AtError {
    fn new(command: &[u8], kind: AtErrorKind) -> Self {
        AtError {
            command: String::from_utf8_lossy(command).into_owned(),
            kind,
        }
    }

    /// The `+CME ERROR` code, if that is what the modem answered.
    /// ```
    /// use uasyncio_cellular::at::AtClient;
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # uasyncio::run(async {
    /// let mut at = AtClient::new(modem(b"\r\n+CME ERROR: 10\r\n"));
    /// let e = at.command(b"AT+CPIN?", 1_000).await.unwrap_err();
    /// assert_eq!(e.cme_code(), Some(10)); // SIM not inserted
    /// # Ok(())
    /// # }).unwrap();
    /// ```
    pub fn cme_code(&self) -> Option<i32> {
        match &self.kind {
            AtErrorKind::Cme(e) => e.code,
            _ => None,
        }
    }

    /// True if the command timed out (with or without other lines meanwhile).
    /// ```
    /// use uasyncio_cellular::at::AtClient;
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// uasyncio::get_event_loop().use_virtual_time(true);
    /// uasyncio::run(async {
    ///     let mut at = AtClient::new(modem(b"")); // a modem that says nothing
    ///     let e = at.command(b"AT", 500).await.unwrap_err();
    ///     assert!(e.is_timeout());
    ///     assert_eq!(e.to_string(), "no answer to AT within 500 ms");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, AtErrorKind::Timeout { .. } | AtErrorKind::Unanswered { .. })
    }

    /// True if the task was cancelled.
    /// ```
    /// use uasyncio_cellular::at::AtClient;
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// uasyncio::run(async {
    ///     let task = uasyncio::create_task(async {
    ///         let mut at = AtClient::new(modem(b""));
    ///         Ok(at.command(b"AT+COPS=?", 180_000).await) // a network scan: minutes
    ///     });
    ///     uasyncio::sleep_ms(10).await?;
    ///     task.cancel()?;
    ///     let e = task.await?.unwrap_err();
    ///     assert!(e.is_cancelled());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.kind, AtErrorKind::Cancelled)
    }
}

impl fmt::Display for AtErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtErrorKind::Error => f.write_str("ERROR"),
            AtErrorKind::Cme(e) => {
                f.write_str("+CME ERROR: ")?;
                e.fmt_with(f, cme_description)
            }
            AtErrorKind::Cms(e) => {
                f.write_str("+CMS ERROR: ")?;
                e.fmt_with(f, cms_description)
            }
            AtErrorKind::NoCarrier => f.write_str("NO CARRIER"),
            AtErrorKind::Busy => f.write_str("BUSY"),
            AtErrorKind::NoAnswer => f.write_str("NO ANSWER"),
            AtErrorKind::NoDialtone => f.write_str("NO DIALTONE"),
            AtErrorKind::Timeout { ms } => write!(f, "no answer within {ms} ms"),
            AtErrorKind::Unanswered { ms, last_line } => {
                write!(
                    f,
                    "no result code within {ms} ms, only other lines (last: {last_line:?})"
                )
            }
            AtErrorKind::Io { kind, detail } => write!(f, "serial I/O failed ({kind:?}): {detail}"),
            AtErrorKind::Closed => f.write_str("the serial stream ended"),
            AtErrorKind::Cancelled => f.write_str("cancelled"),
            AtErrorKind::Invalid(what) => write!(f, "invalid command: {what}"),
        }
    }
}

impl fmt::Display for AtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.command.is_empty()) {
            // "no answer to AT within 500 ms", not "AT: no answer ..." (which, after the
            // layer's own "AT: ", read "AT: AT: no answer").
            (AtErrorKind::Timeout { ms }, false) => write!(f, "no answer to {} within {ms} ms", self.command),
            (AtErrorKind::Unanswered { ms, last_line }, false) => write!(
                f,
                "no result code to {} within {ms} ms, only other lines (last: {last_line:?})",
                self.command
            ),
            (_, true) => write!(f, "{}", self.kind),
            (_, false) => write!(f, "{}: {}", self.command, self.kind),
        }
    }
}

impl core::error::Error for AtError {}

/// One line, classified.
enum Class {
    Final(Result<Final, AtErrorKind>),
    Urc(Urc),
    Intermediate(String),
}

/// True if no run of ASCII digits is longer than nine, so `at_commands`' integer parser
/// cannot overflow on the line.
fn ints_fit(line: &[u8]) -> bool {
    line.split(|b| !b.is_ascii_digit()).all(|run| run.len() <= 9)
}

/// Parses `<prefix> <int>` or `<prefix> <text>` (a CME/CMS error).
fn parse_equipment_error(line: &[u8], prefix: &[u8]) -> EquipmentError {
    if ints_fit(line) {
        if let Ok((code,)) = CommandParser::parse(line)
            .expect_identifier(prefix)
            .expect_int_parameter()
            .finish()
        {
            return EquipmentError {
                code: Some(code),
                text: None,
            };
        }
    }
    let text = CommandParser::parse(line)
        .expect_identifier(prefix)
        .expect_raw_string()
        .finish()
        .ok()
        .map(|(t,)| t.trim().to_string())
        .filter(|t| !t.is_empty());
    EquipmentError { code: None, text }
}

/// Parses the `<stat>` of a registration URC (`+CREG: <stat>[,…]`).
fn parse_reg_urc(line: &[u8], kind: RegKind) -> Option<RegStatus> {
    if !ints_fit(line) {
        return None;
    }
    CommandParser::parse(line)
        .expect_identifier(kind.prefix().as_bytes())
        .expect_int_parameter()
        .finish()
        .ok()
        .map(|(stat,)| RegStatus::from_code(stat))
}

/// Parses the answer to `AT+CREG?` (`+CREG: <n>,<stat>[,…]`): the `<stat>`.
pub fn parse_reg_query(line: &str, kind: RegKind) -> Option<RegStatus> {
    let line = line.as_bytes();
    if !ints_fit(line) {
        return None;
    }
    CommandParser::parse(line)
        .expect_identifier(kind.prefix().as_bytes())
        .expect_int_parameter()
        .expect_int_parameter()
        .finish()
        .ok()
        .map(|(_n, stat)| RegStatus::from_code(stat))
}

fn final_code(line: &[u8]) -> Option<Result<Final, AtErrorKind>> {
    Some(match line {
        b"OK" => Ok(Final::Ok),
        b"ERROR" => Err(AtErrorKind::Error),
        b"NO CARRIER" => Err(AtErrorKind::NoCarrier),
        b"BUSY" => Err(AtErrorKind::Busy),
        b"NO ANSWER" => Err(AtErrorKind::NoAnswer),
        b"NO DIALTONE" => Err(AtErrorKind::NoDialtone),
        b"CONNECT" => Ok(Final::Connect { rate: None }),
        l if l.starts_with(b"CONNECT ") => {
            let rate = String::from_utf8_lossy(&l[8..]).trim().to_string();
            Ok(Final::Connect {
                rate: (!rate.is_empty()).then_some(rate),
            })
        }
        l if l.starts_with(b"+CME ERROR:") => Err(AtErrorKind::Cme(parse_equipment_error(l, b"+CME ERROR:"))),
        l if l.starts_with(b"+CMS ERROR:") => Err(AtErrorKind::Cms(parse_equipment_error(l, b"+CMS ERROR:"))),
        _ => return None,
    })
}

/// The name of a command, for telling its answer from a URC: `AT+CREG?` -> `+CREG`.
fn command_name(cmd: &[u8]) -> &[u8] {
    let rest = cmd.get(2..).unwrap_or(&[]);
    let end = rest.iter().position(|&b| b == b'=' || b == b'?').unwrap_or(rest.len());
    &rest[..end]
}

/// An AT command client over a byte stream (see the module docs).
///
/// ```
/// # // A scripted "modem" on an in-memory stream stands in for a serial port here.
/// use uasyncio_cellular::at::{AtClient, Final};
/// struct Script(&'static [u8], usize);
/// impl embedded_io::ErrorType for Script { type Error = core::convert::Infallible; }
/// impl embedded_io_async::Read for Script {
///     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
///         let n = buf.len().min(self.0.len() - self.1);
///         buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
///         self.1 += n;
///         Ok(n)
///     }
/// }
/// impl embedded_io_async::Write for Script {
///     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
///     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// }
/// uasyncio::run(async {
///     let mut at = AtClient::new(Script(b"AT+CGSN\r\r\n861234567890123\r\n\r\nOK\r\n", 0));
///     let r = at.command(b"AT+CGSN", 1000).await.unwrap();
///     assert_eq!(r.lines, ["861234567890123"]);
///     assert_eq!(r.final_code, Final::Ok);
///     Ok(())
/// }).unwrap();
/// ```
///
/// The other examples in this module build such a stream with `modem(bytes)` (hidden): it
/// holds the bytes the modem sent, then stays silent (a read waits forever; the command's
/// timeout ends it), and drops what is written.
pub struct AtClient<IO> {
    io: IO,
    cfg: AtConfig,
    /// The line being read (survives a cancelled or timed-out read).
    line: Vec<u8>,
    /// The current line grew past `max_line`: drop it at its end.
    line_too_long: bool,
    urcs: VecDeque<Urc>,
    urc_overflows: u32,
    garbage: u32,
    /// Reads that reported lost input bytes (`ErrorKind::InvalidData`: a serial overrun).
    input_losses: u32,
}

impl<IO> fmt::Debug for AtClient<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtClient")
            .field("queued_urcs", &self.urcs.len())
            .field("urc_overflows", &self.urc_overflows)
            .field("garbage_lines", &self.garbage)
            .field("input_losses", &self.input_losses)
            .finish_non_exhaustive()
    }
}

impl<IO: Read + Write> AtClient<IO> {
    /// A client with the default [`AtConfig`].
    /// ```
    /// use uasyncio_cellular::at::AtClient;
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let at = AtClient::new(modem(b"")); // on a board: a `serial::SerialPort`
    /// assert_eq!((at.garbage_lines(), at.urc_overflows(), at.input_losses()), (0, 0, 0));
    /// ```
    pub fn new(io: IO) -> Self {
        Self::with_config(io, AtConfig::default())
    }

    /// A client with `cfg`.
    /// ```
    /// use uasyncio_cellular::at::{AtClient, AtConfig};
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let cfg = AtConfig { urc_capacity: 64, ..AtConfig::default() }; // a chatty modem
    /// let at = AtClient::with_config(modem(b""), cfg);
    /// ```
    pub fn with_config(io: IO, cfg: AtConfig) -> Self {
        AtClient {
            io,
            cfg,
            line: Vec::new(),
            line_too_long: false,
            urcs: VecDeque::new(),
            urc_overflows: 0,
            garbage: 0,
            input_losses: 0,
        }
    }

    /// The byte stream (for the data phase after `CONNECT`).
    pub fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// Gives the byte stream back.
    pub fn into_inner(self) -> IO {
        self.io
    }

    /// URCs dropped because the queue was full (the oldest go first).
    /// ```
    /// use uasyncio_cellular::at::{AtClient, AtConfig, RegKind, RegStatus, Urc};
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # uasyncio::get_event_loop().use_virtual_time(true);
    /// # uasyncio::run(async {
    /// let cfg = AtConfig { urc_capacity: 1, ..AtConfig::default() };
    /// let mut at = AtClient::with_config(modem(b"\r\nRING\r\n\r\n+CREG: 2\r\n"), cfg);
    /// at.drain(100).await.unwrap();
    /// assert_eq!(at.urc_overflows(), 1); // RING made way for the newer URC
    /// let searching = Urc::Registration { kind: RegKind::Creg, stat: RegStatus::Searching };
    /// assert_eq!(at.take_urc(), Some(searching));
    /// # Ok(())
    /// # }).unwrap();
    /// # uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub fn urc_overflows(&self) -> u32 {
        self.urc_overflows
    }

    /// Lines dropped as garbage (not UTF-8, control characters, too long).
    /// ```
    /// use uasyncio_cellular::at::AtClient;
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # uasyncio::run(async {
    /// // Noise on the line (e.g. the modem booting at another baud rate), then the answer.
    /// let mut at = AtClient::new(modem(b"\xff\xfe\x01\r\nOK\r\n"));
    /// at.command(b"AT", 1_000).await.unwrap();
    /// assert_eq!(at.garbage_lines(), 1);
    /// # Ok(())
    /// # }).unwrap();
    /// ```
    pub fn garbage_lines(&self) -> u32 {
        self.garbage
    }

    /// Reads that reported lost input bytes (a serial overrun: the stream's `read` failed with
    /// `ErrorKind::InvalidData`). Each drops the line being read, as garbage is dropped; the
    /// client goes on with the next line. (A command whose answer was lost that way times
    /// out, and its error says so.)
    /// ```
    /// use embedded_io::ErrorKind;
    /// use uasyncio_cellular::at::AtClient;
    ///
    /// /// A port whose first read reports an overrun, as `serial::SerialPort` does.
    /// struct Overran { lost: bool, said: &'static [u8] }
    /// impl embedded_io::ErrorType for Overran { type Error = ErrorKind; }
    /// impl embedded_io_async::Read for Overran {
    ///     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
    ///         if !std::mem::replace(&mut self.lost, true) { return Err(ErrorKind::InvalidData); }
    ///         let n = buf.len().min(self.said.len());
    ///         buf[..n].copy_from_slice(&self.said[..n]);
    ///         self.said = &self.said[n..];
    ///         Ok(n)
    ///     }
    /// }
    /// # impl embedded_io_async::Write for Overran {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), ErrorKind> { Ok(()) }
    /// # }
    /// # uasyncio::run(async {
    /// let mut at = AtClient::new(Overran { lost: false, said: b"\r\nOK\r\n" });
    /// at.command(b"AT", 1_000).await.unwrap(); // the loss is counted, the answer still read
    /// assert_eq!(at.input_losses(), 1);
    /// # Ok(())
    /// # }).unwrap();
    /// ```
    pub fn input_losses(&self) -> u32 {
        self.input_losses
    }

    /// Takes the oldest queued URC, if any (never waits).
    /// ```
    /// use uasyncio_cellular::at::{AtClient, Urc};
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # uasyncio::run(async {
    /// // A call comes in while a command waits: the RING is queued, the command still answered.
    /// let mut at = AtClient::new(modem(b"\r\nRING\r\n\r\nOK\r\n"));
    /// at.command(b"AT", 1_000).await.unwrap();
    /// assert_eq!(at.take_urc(), Some(Urc::Ring));
    /// assert_eq!(at.take_urc(), None);
    /// # Ok(())
    /// # }).unwrap();
    /// ```
    pub fn take_urc(&mut self) -> Option<Urc> {
        self.urcs.pop_front()
    }

    /// Forgets a partly read line (after the stream changed mode, e.g. after a hang-up).
    pub fn reset_line(&mut self) {
        self.line.clear();
        self.line_too_long = false;
    }

    fn queue_urc(&mut self, urc: Urc) {
        log::debug!("AT URC: {urc:?}");
        if self.cfg.urc_capacity == 0 {
            self.urc_overflows = self.urc_overflows.wrapping_add(1);
            return;
        }
        if self.urcs.len() >= self.cfg.urc_capacity {
            self.urcs.pop_front();
            self.urc_overflows = self.urc_overflows.wrapping_add(1);
        }
        self.urcs.push_back(urc);
    }

    fn io_error(e: IO::Error) -> AtErrorKind {
        match e.kind() {
            embedded_io::ErrorKind::Interrupted => AtErrorKind::Cancelled,
            kind => AtErrorKind::Io {
                kind,
                detail: alloc::format!("{e:?}"),
            },
        }
    }

    /// Writes `bytes` as they are (no CR added), e.g. `+++`.
    ///
    /// **Cancellation:** `Err(Cancelled)`; part of `bytes` may have been written. Dropping the
    /// future is the same.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), AtError> {
        self.io
            .write_all(bytes)
            .await
            .map_err(|e| AtError::new(bytes, Self::io_error(e)))?;
        self.io
            .flush()
            .await
            .map_err(|e| AtError::new(bytes, Self::io_error(e)))
    }

    /// Reads one byte; lost input (a serial overrun) is counted, the line being read dropped
    /// (its bytes have a gap), and the read goes on.
    async fn read_byte(&mut self) -> Result<Option<u8>, AtErrorKind> {
        let mut b = [0u8; 1];
        loop {
            match self.io.read(&mut b).await {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == embedded_io::ErrorKind::InvalidData => {
                    self.input_losses = self.input_losses.wrapping_add(1);
                    if !self.line.is_empty() || self.line_too_long {
                        self.garbage = self.garbage.wrapping_add(1);
                    }
                    self.reset_line();
                    // Once, then every 64th: a storm of overruns must not flood the log.
                    if self.input_losses % 64 == 1 {
                        log::warn!(
                            "AT: input bytes lost on the line ({e:?}; {} time(s) so far), the line being read is dropped - read the port more often or give its receive ring more room",
                            self.input_losses
                        );
                    }
                }
                Err(e) => return Err(Self::io_error(e)),
            }
        }
    }

    /// Reads and drops whatever arrives for `ms` (a hang-up's first guard time: the call's
    /// last data-mode bytes, which would otherwise fill the receive ring and overrun it).
    ///
    /// **Cancellation:** `Err(Cancelled)`; bytes read so far are gone. Dropping the future is
    /// the same.
    pub async fn discard(&mut self, ms: u32) -> Result<(), AtError> {
        let sink = async {
            loop {
                if self.read_byte().await?.is_none() {
                    return Err(AtErrorKind::Closed);
                }
            }
        };
        let out = match select(sink, uasyncio::sleep_ms(ms)).await {
            Either::Left(Err(e)) => Err(AtError::new(b"", e)),
            Either::Left(Ok(())) | Either::Right(Ok(())) => Ok(()),
            Either::Right(Err(_)) => Err(AtError::new(b"", AtErrorKind::Cancelled)),
        };
        self.reset_line();
        out
    }

    /// Reads the next non-empty, well-formed line (garbage lines are counted and skipped).
    async fn read_line(&mut self) -> Result<Vec<u8>, AtErrorKind> {
        loop {
            let Some(byte) = self.read_byte().await? else {
                return Err(AtErrorKind::Closed);
            };
            match byte {
                b'\r' | b'\n' => {
                    if self.line_too_long {
                        self.line_too_long = false;
                        self.line.clear();
                        self.garbage = self.garbage.wrapping_add(1);
                        log::debug!("AT: dropped a line longer than {} bytes", self.cfg.max_line);
                        continue;
                    }
                    if self.line.is_empty() {
                        continue;
                    }
                    let line = core::mem::take(&mut self.line);
                    let well_formed = core::str::from_utf8(&line).is_ok_and(|s| !s.chars().any(char::is_control));
                    if !well_formed {
                        self.garbage = self.garbage.wrapping_add(1);
                        log::debug!("AT: dropped a garbage line of {} bytes", line.len());
                        continue;
                    }
                    return Ok(line);
                }
                byte => {
                    if self.line.len() >= self.cfg.max_line {
                        self.line_too_long = true;
                        self.line.clear();
                    }
                    if !self.line_too_long {
                        self.line.push(byte);
                    }
                }
            }
        }
    }

    fn as_urc(&self, line: &[u8]) -> Option<Urc> {
        for kind in [RegKind::Creg, RegKind::Cgreg, RegKind::Cereg] {
            if line.starts_with(kind.prefix().as_bytes()) {
                return Some(match parse_reg_urc(line, kind) {
                    Some(stat) => Urc::Registration { kind, stat },
                    None => Urc::Other(String::from_utf8_lossy(line).into_owned()),
                });
            }
        }
        if line == b"RING" {
            return Some(Urc::Ring);
        }
        if self
            .cfg
            .urc_prefixes
            .iter()
            .any(|p| !p.is_empty() && line.starts_with(p.as_bytes()))
        {
            return Some(Urc::Other(String::from_utf8_lossy(line).into_owned()));
        }
        None
    }

    fn classify(&self, line: &[u8], cmd: &[u8]) -> Class {
        if let Some(f) = final_code(line) {
            return Class::Final(f);
        }
        let name = command_name(cmd);
        let own_answer = name.len() > 1 && line.starts_with(name) && line.get(name.len()) == Some(&b':');
        if !own_answer {
            if let Some(urc) = self.as_urc(line) {
                return Class::Urc(urc);
            }
        }
        Class::Intermediate(String::from_utf8_lossy(line).into_owned())
    }

    /// Reads `cmd`'s answer; its intermediate lines go to `lines`, which the caller keeps
    /// (after a timeout they tell "silent" from "answered something else").
    async fn read_response(&mut self, cmd: &[u8], lines: &mut Vec<String>) -> Result<Final, AtErrorKind> {
        let mut echo_seen = false;
        loop {
            let line = self.read_line().await?;
            if !echo_seen && line.eq_ignore_ascii_case(cmd) {
                echo_seen = true;
                continue;
            }
            match self.classify(&line, cmd) {
                Class::Final(Ok(final_code)) => return Ok(final_code),
                Class::Final(Err(e)) => return Err(e),
                Class::Urc(u) => self.queue_urc(u),
                Class::Intermediate(s) => lines.push(s),
            }
        }
    }

    /// Sends `cmd` (e.g. `b"AT+CPIN?"`, built by hand or with
    /// `at_commands::builder::CommandBuilder`; a trailing CR or CR LF is allowed and
    /// replaced by one CR) and waits up to `timeout_ms` for its final result code.
    ///
    /// Errors: the final result code as an [`AtErrorKind`]; `Timeout` naming the command;
    /// `Invalid` for an empty command, one with a CR or LF inside, or one longer than
    /// `max_line`.
    ///
    /// **Cancellation:** `Err(Cancelled)`. The modem may still answer; that answer is then
    /// handled as described in the module docs (a late final result code). Dropping the
    /// future is the same; a partly read line is kept and completed by the next read.
    /// ```
    /// use uasyncio_cellular::at::{AtClient, Final};
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// # uasyncio::run(async {
    /// let mut at = AtClient::new(modem(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"));
    /// let r = at.command(b"AT+CSQ", 1_000).await.unwrap();
    /// assert_eq!(r.value("+CSQ:"), Some("20,99")); // signal quality
    /// assert_eq!(r.final_code, Final::Ok);
    /// // A command a modem rejects fails with what it answered.
    /// let mut at = AtClient::new(modem(b"\r\nERROR\r\n"));
    /// let e = at.command(b"AT+QFOO", 1_000).await.unwrap_err();
    /// assert_eq!(e.to_string(), "AT+QFOO: ERROR");
    /// # Ok(())
    /// # }).unwrap();
    /// ```
    pub async fn command(&mut self, cmd: &[u8], timeout_ms: u32) -> Result<AtResponse, AtError> {
        let cmd = cmd
            .strip_suffix(b"\r\n")
            .or_else(|| cmd.strip_suffix(b"\r"))
            .unwrap_or(cmd);
        if cmd.is_empty() {
            return Err(AtError::new(cmd, AtErrorKind::Invalid("empty command")));
        }
        if cmd.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(AtError::new(cmd, AtErrorKind::Invalid("CR or LF inside the command")));
        }
        if cmd.len() > self.cfg.max_line {
            return Err(AtError::new(
                cmd,
                AtErrorKind::Invalid("longer than AtConfig::max_line"),
            ));
        }
        log::debug!("AT> {}", String::from_utf8_lossy(cmd));
        let mut out = Vec::with_capacity(cmd.len() + 1);
        out.extend_from_slice(cmd);
        out.push(b'\r');
        self.io
            .write_all(&out)
            .await
            .map_err(|e| AtError::new(cmd, Self::io_error(e)))?;
        self.io
            .flush()
            .await
            .map_err(|e| AtError::new(cmd, Self::io_error(e)))?;
        let mut lines = Vec::new();
        let garbage_before = self.garbage;
        let result = match select(self.read_response(cmd, &mut lines), uasyncio::sleep_ms(timeout_ms)).await {
            Either::Left(r) => r.map(|final_code| AtResponse {
                lines: core::mem::take(&mut lines),
                final_code,
            }),
            Either::Right(Ok(())) => Err(match lines.pop() {
                Some(last) => AtErrorKind::Unanswered {
                    ms: timeout_ms,
                    last_line: last.chars().take(40).collect(),
                },
                None if self.garbage != garbage_before => AtErrorKind::Unanswered {
                    ms: timeout_ms,
                    last_line: String::from("(unreadable: not text)"),
                },
                None => AtErrorKind::Timeout { ms: timeout_ms },
            }),
            Either::Right(Err(_)) => Err(AtErrorKind::Cancelled),
        };
        match &result {
            Ok(r) => log::debug!("AT< {:?} {:?}", r.lines, r.final_code),
            Err(e) => log::debug!("AT< {}: {e}", String::from_utf8_lossy(cmd)),
        }
        result.map_err(|kind| AtError::new(cmd, kind))
    }

    /// Reads lines while no command waits, for up to `ms`, routing URCs to the queue and
    /// dropping stray final result codes (a late `OK`). Used to let a modem settle (after
    /// `+++`).
    ///
    /// **Cancellation:** `Err(Cancelled)`; lines read so far are handled. Dropping the future
    /// is the same.
    /// ```
    /// use uasyncio_cellular::at::{AtClient, Urc};
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// uasyncio::get_event_loop().use_virtual_time(true);
    /// uasyncio::run(async {
    ///     // A late OK (of a command that timed out) and a vendor URC wait on the line.
    ///     let mut at = AtClient::new(modem(b"\r\nOK\r\n\r\n+QIND: SMS DONE\r\n"));
    ///     at.drain(1_000).await.unwrap(); // takes 1 s (on virtual time: at once)
    ///     assert_eq!(at.take_urc(), Some(Urc::Other("+QIND: SMS DONE".into())));
    ///     assert_eq!(at.take_urc(), None); // the OK was dropped
    ///     Ok(())
    /// })
    /// .unwrap();
    /// uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub async fn drain(&mut self, ms: u32) -> Result<(), AtError> {
        let idle = async {
            loop {
                let line = self.read_line().await?;
                self.idle_line(&line);
            }
        };
        match select(idle, uasyncio::sleep_ms(ms)).await {
            Either::Left(Err(e)) => Err(AtError::new(b"", e)),
            Either::Left(Ok(())) => Ok(()),
            Either::Right(Ok(())) => Ok(()),
            Either::Right(Err(_)) => Err(AtError::new(b"", AtErrorKind::Cancelled)),
        }
    }

    /// Handles a line that arrived while no command waited; true if it queued a URC.
    fn idle_line(&mut self, line: &[u8]) -> bool {
        if line == b"NO CARRIER" {
            self.queue_urc(Urc::NoCarrier);
            return true;
        }
        if final_code(line).is_some() {
            log::debug!(
                "AT: stray final result code {:?} dropped",
                String::from_utf8_lossy(line)
            );
            return false;
        }
        let urc = self
            .as_urc(line)
            .unwrap_or_else(|| Urc::Other(String::from_utf8_lossy(line).into_owned()));
        self.queue_urc(urc);
        true
    }

    /// The next URC: a queued one at once, else reads lines until one arrives or `timeout_ms`
    /// passes (`Ok(None)`). Lines read while waiting are handled as by [`drain`](Self::drain).
    ///
    /// **Cancellation:** `Err(Cancelled)`; URCs read meanwhile stay queued. Dropping the
    /// future is the same.
    /// ```
    /// use uasyncio_cellular::at::{AtClient, RegKind, RegStatus, Urc};
    /// # use std::collections::VecDeque;
    /// # /// A stream holding what the modem sent; then silent. Writes are dropped.
    /// # struct Said(VecDeque<u8>);
    /// # fn modem(said: &[u8]) -> Said { Said(said.iter().copied().collect()) }
    /// # impl embedded_io::ErrorType for Said { type Error = core::convert::Infallible; }
    /// # impl embedded_io_async::Read for Said {
    /// #     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
    /// #         if self.0.is_empty() { core::future::pending::<()>().await }
    /// #         let n = buf.len().min(self.0.len());
    /// #         for (d, s) in buf.iter_mut().zip(self.0.drain(..n)) { *d = s; }
    /// #         Ok(n)
    /// #     }
    /// # }
    /// # impl embedded_io_async::Write for Said {
    /// #     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> { Ok(buf.len()) }
    /// #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// uasyncio::get_event_loop().use_virtual_time(true);
    /// uasyncio::run(async {
    ///     let mut at = AtClient::new(modem(b"\r\n+CEREG: 5\r\n"));
    ///     let roaming = Urc::Registration { kind: RegKind::Cereg, stat: RegStatus::Roaming };
    ///     assert_eq!(at.next_urc(10_000).await.unwrap(), Some(roaming));
    ///     assert_eq!(at.next_urc(10_000).await.unwrap(), None); // nothing within 10 s
    ///     Ok(())
    /// })
    /// .unwrap();
    /// uasyncio::get_event_loop().use_virtual_time(false);
    /// ```
    pub async fn next_urc(&mut self, timeout_ms: u32) -> Result<Option<Urc>, AtError> {
        if let Some(u) = self.take_urc() {
            return Ok(Some(u));
        }
        let wait = async {
            loop {
                let line = self.read_line().await?;
                if self.idle_line(&line) {
                    return Ok::<(), AtErrorKind>(());
                }
            }
        };
        match select(wait, uasyncio::sleep_ms(timeout_ms)).await {
            Either::Left(Err(e)) => Err(AtError::new(b"", e)),
            Either::Left(Ok(())) => Ok(self.take_urc()),
            Either::Right(Ok(())) => Ok(None),
            Either::Right(Err(_)) => Err(AtError::new(b"", AtErrorKind::Cancelled)),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classifies_final_codes() {
        assert_eq!(final_code(b"OK"), Some(Ok(Final::Ok)));
        assert_eq!(
            final_code(b"CONNECT 150000000"),
            Some(Ok(Final::Connect {
                rate: Some("150000000".into())
            }))
        );
        let e = final_code(b"+CME ERROR: 10").unwrap().unwrap_err();
        assert_eq!(e.to_string(), "+CME ERROR: 10 (SIM not inserted)");
        let e = final_code(b"+CME ERROR: SIM not inserted").unwrap().unwrap_err();
        assert_eq!(
            e,
            AtErrorKind::Cme(EquipmentError {
                code: None,
                text: Some("SIM not inserted".into())
            })
        );
        let e = final_code(b"+CMS ERROR: 500").unwrap().unwrap_err();
        assert_eq!(e.to_string(), "+CMS ERROR: 500 (unknown error)");
        let e = final_code(b"+CME ERROR: 99999999999999").unwrap().unwrap_err();
        assert!(matches!(e, AtErrorKind::Cme(EquipmentError { code: None, .. })));
        assert_eq!(final_code(b"+CPIN: READY"), None);
    }

    #[test]
    fn parses_registration() {
        assert_eq!(parse_reg_query("+CREG: 0,5", RegKind::Creg), Some(RegStatus::Roaming));
        assert_eq!(
            parse_reg_query("+CEREG: 2,1,\"1A2B\",\"01C3\",7", RegKind::Cereg),
            Some(RegStatus::Home)
        );
        assert_eq!(parse_reg_urc(b"+CREG: 2", RegKind::Creg), Some(RegStatus::Searching));
        assert_eq!(
            parse_reg_urc(b"+CREG: 1,\"1A2B\",\"01C3\"", RegKind::Creg),
            Some(RegStatus::Home)
        );
        assert_eq!(parse_reg_urc(b"+CREG: x", RegKind::Creg), None);
        assert_eq!(parse_reg_urc(b"+CREG: 12345678901", RegKind::Creg), None);
        assert_eq!(command_name(b"AT+CREG?"), b"+CREG");
        assert_eq!(command_name(b"AT"), b"");
    }

    /// Arbitrary bytes through every parser: no panic.
    #[test]
    fn parsers_survive_garbage() {
        let mut seed = 0x1234_5678u32;
        let alphabet = b"+CMEREGS: ,\"0123456789-OKNTA\x00\xff";
        // Safe parsing code: under Miri (0.2 s per line there) twenty lines are enough.
        for _ in 0..if cfg!(miri) { 20 } else { 20_000 } {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let len = (seed % 24) as usize;
            let mut line = Vec::new();
            let mut s = seed;
            for _ in 0..len {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                line.push(alphabet[(s >> 16) as usize % alphabet.len()]);
            }
            for prefix in [&b"+CME ERROR:"[..], b"+CMS ERROR:"] {
                let mut l = prefix.to_vec();
                l.extend_from_slice(&line);
                let _ = final_code(&l);
            }
            for kind in [RegKind::Creg, RegKind::Cgreg, RegKind::Cereg] {
                let mut l = kind.prefix().as_bytes().to_vec();
                l.extend_from_slice(&line);
                let _ = parse_reg_urc(&l, kind);
                let _ = parse_reg_query(&String::from_utf8_lossy(&l), kind);
            }
            let _ = final_code(&line);
        }
    }
}
