//! `CellularError`: a failure of the cellular stack, named by the layer it happened in.
//!
//! Each variant's `Display` says what failed and what the user should check, in the order a
//! person would debug a modem: configuration, wiring and power (AT), the SIM, the network
//! (registration), the data link (PPP), then the connections on top (TCP, TLS).

use alloc::string::String;
use core::fmt;

use crate::at::{AtError, AtErrorKind, RegStatus};

/// The layer of the stack a failure happened in.
///
/// ```
/// use uasyncio_cellular::{CellularError, Layer};
/// let e = CellularError::Ppp("LCP negotiation timed out".into());
/// assert_eq!(e.layer(), Some(Layer::Ppp));
/// // For logs: `link::describe` puts the layer first.
/// assert!(uasyncio_cellular::link::describe(&e).starts_with("[Ppp] PPP: LCP negotiation timed out - check the APN"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// A setting of [`ModemConfig`](crate::modem::ModemConfig).
    Config,
    /// The serial line and the AT dialogue.
    At,
    /// The SIM card.
    Sim,
    /// Network registration.
    Registration,
    /// The data link (PPP).
    Ppp,
    /// A TCP connection over the link.
    Tcp,
    /// TLS over a TCP connection.
    Tls,
}

/// Why the SIM is not usable.
///
/// ```
/// use uasyncio_cellular::{CellularError, SimProblem};
/// let e = CellularError::Sim(SimProblem::Locked("SIM PUK".into()));
/// assert_eq!(e.to_string(), "SIM: locked (SIM PUK) - unlock it in a phone (PUK or network lock) and retry");
/// let e = CellularError::Sim(SimProblem::PinRequired);
/// assert!(e.to_string().ends_with("set ModemConfig::pin or remove the PIN lock"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimProblem {
    /// The modem answered `AT+CPIN?` (or the PIN) with an error (e.g. `+CME ERROR: 10`).
    Error(AtError),
    /// The SIM wants a PIN and [`ModemConfig::pin`](crate::modem::ModemConfig::pin) is `None`.
    PinRequired,
    /// The SIM wants something this driver does not enter (`SIM PUK`, `PH-SIM PIN`, ...).
    /// Empty: the modem's answers to `AT+CPIN?` (asked twice) had no `+CPIN:` line.
    Locked(String),
    /// The PIN was accepted but the SIM did not become `READY` in time.
    NotReady(String),
    /// The SIM rejected [`ModemConfig::pin`](crate::modem::ModemConfig::pin) (`+CME ERROR:
    /// 16`, incorrect password). Final: the modem does not send that PIN again (a SIM locks
    /// itself after three wrong PINs and then wants the PUK), and the supervisor stops
    /// instead of redialling.
    WrongPin,
}

/// Why registration failed.
///
/// ```
/// use uasyncio_cellular::at::RegStatus;
/// use uasyncio_cellular::{CellularError, RegistrationProblem};
/// let e = CellularError::Registration(RegistrationProblem::Timeout {
///     last: RegStatus::Searching,
///     waited_ms: 120_000,
/// });
/// assert_eq!(
///     e.to_string(),
///     "registration: not registered after 120000 ms (last status 2 (searching)) - check the antenna, coverage and the SIM's network"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationProblem {
    /// The network denied registration (`<stat>` 3).
    Denied,
    /// Not registered before the deadline; the last status seen.
    Timeout {
        /// The last `<stat>` reported.
        last: RegStatus,
        /// How long it waited, in ms.
        waited_ms: u32,
    },
    /// A registration command failed.
    Error(AtError),
}

/// A failure of the cellular stack: its `Display` says what failed and what to check, and
/// [`layer`](Self::layer) names the layer of the stack it happened in.
///
/// ```
/// use uasyncio_cellular::{CellularError, Layer, SimProblem};
/// let e = CellularError::Sim(SimProblem::PinRequired);
/// assert_eq!(e.layer(), Some(Layer::Sim));
/// assert_eq!(
///     e.to_string(),
///     "SIM: the SIM asks for a PIN and none is configured - set ModemConfig::pin or remove the PIN lock"
/// );
/// // It converts into the runtime's error, so `?` works in a task.
/// let task_result: uasyncio::Result<()> = Err(e.into());
/// assert!(task_result.is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CellularError {
    /// A configuration value is unusable; says which and why.
    Config(String),
    /// The modem does not answer, or a command failed.
    At(AtError),
    /// The SIM is missing, locked or failed.
    Sim(SimProblem),
    /// The modem did not register on the network.
    Registration(RegistrationProblem),
    /// The data link (PPP) failed or ended; the reason as text.
    Ppp(String),
    /// A TCP connection failed.
    Tcp(uasyncio::Error),
    /// TLS failed; the reason as text.
    Tls(String),
    /// The task running the operation was cancelled.
    Cancelled,
    /// The supervisor gave up after this many consecutive failures (the last one is
    /// in [`LinkState::last_error`](crate::link::LinkState::last_error)).
    GaveUp {
        /// Consecutive failures.
        failures: u32,
    },
}

impl CellularError {
    /// The layer the failure happened in (`None` for `Cancelled` and `GaveUp`).
    ///
    /// ```
    /// use uasyncio_cellular::{CellularError, Layer, RegistrationProblem};
    /// fn hint(e: &CellularError) -> &'static str {
    ///     match e.layer() {
    ///         Some(Layer::At) => "modem power or wiring",
    ///         Some(Layer::Sim) => "SIM card",
    ///         Some(Layer::Registration) => "antenna or coverage",
    ///         Some(_) => "see the log",
    ///         None => "stopped",
    ///     }
    /// }
    /// assert_eq!(hint(&CellularError::Registration(RegistrationProblem::Denied)), "antenna or coverage");
    /// assert_eq!(CellularError::GaveUp { failures: 5 }.layer(), None);
    /// ```
    pub fn layer(&self) -> Option<Layer> {
        Some(match self {
            CellularError::Config(_) => Layer::Config,
            CellularError::At(_) => Layer::At,
            CellularError::Sim(_) => Layer::Sim,
            CellularError::Registration(_) => Layer::Registration,
            CellularError::Ppp(_) => Layer::Ppp,
            CellularError::Tcp(_) => Layer::Tcp,
            CellularError::Tls(_) => Layer::Tls,
            CellularError::Cancelled | CellularError::GaveUp { .. } => return None,
        })
    }

    /// An AT failure, or `Cancelled` if the AT command was cancelled.
    pub(crate) fn at(e: AtError) -> Self {
        if e.is_cancelled() {
            CellularError::Cancelled
        } else {
            CellularError::At(e)
        }
    }

    /// True if this is a cancellation.
    ///
    /// ```
    /// use uasyncio_cellular::CellularError;
    /// assert!(CellularError::Cancelled.is_cancelled());
    /// assert!(!CellularError::GaveUp { failures: 3 }.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, CellularError::Cancelled)
    }
}

impl fmt::Display for CellularError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellularError::Config(what) => write!(f, "configuration: {what}"),
            CellularError::At(e) => {
                write!(f, "AT: {e}")?;
                match e.kind {
                    AtErrorKind::Unanswered { .. } => f.write_str(
                        " - the modem sent lines that are no result code: check the baud rate, and that nothing else writes to this port",
                    ),
                    AtErrorKind::Timeout { .. } | AtErrorKind::Closed | AtErrorKind::Io { .. } => f.write_str(
                        " - check the modem's power, the UART wiring (TX/RX crossed, ground) and the baud rate",
                    ),
                    AtErrorKind::NoCarrier | AtErrorKind::Busy | AtErrorKind::NoAnswer | AtErrorKind::NoDialtone => {
                        f.write_str(" - the data call failed: check the APN and the data plan of the SIM")
                    }
                    // An error to the dial itself (e.g. +CME ERROR: 30, no network service)
                    // is the network's or the subscription's, not a command the modem lacks.
                    AtErrorKind::Cme(_) | AtErrorKind::Error
                        if e.command.starts_with("ATD") || e.command.starts_with("AT+CGDATA") =>
                    {
                        f.write_str(" - the data call was refused: check coverage, registration, the APN and the SIM's data plan")
                    }
                    _ => f.write_str(" - the modem refused the command: check the modem's manual for it"),
                }
            }
            CellularError::Sim(p) => match p {
                SimProblem::Error(e) => write!(f, "SIM: {} - check the SIM card (inserted, contacts, not blocked)", e.kind),
                SimProblem::PinRequired => {
                    f.write_str("SIM: the SIM asks for a PIN and none is configured - set ModemConfig::pin or remove the PIN lock")
                }
                SimProblem::Locked(s) if s.is_empty() => f.write_str(
                    "SIM: the modem answered AT+CPIN? without a +CPIN: status line - check that nothing else talks to the modem on this port",
                ),
                SimProblem::Locked(s) => write!(
                    f,
                    "SIM: locked ({s}) - unlock it in a phone (PUK or network lock) and retry"
                ),
                SimProblem::NotReady(s) => write!(f, "SIM: not ready after the PIN ({s}) - check the SIM card"),
                SimProblem::WrongPin => f.write_str(
                    "SIM: the SIM rejected the PIN (+CME ERROR: 16, incorrect password) - fix ModemConfig::pin; it is not sent again, since a SIM locks itself (PUK) after three wrong PINs",
                ),
            },
            CellularError::Registration(p) => match p {
                RegistrationProblem::Denied => f.write_str(
                    "registration: denied by the network - check that the SIM is active and allowed on this network",
                ),
                RegistrationProblem::Timeout { last, waited_ms } => write!(
                    f,
                    "registration: not registered after {waited_ms} ms (last status {last}) - check the antenna, coverage and the SIM's network"
                ),
                RegistrationProblem::Error(e) => write!(f, "registration: {e} - check the modem's radio settings"),
            },
            CellularError::Ppp(why) => write!(
                f,
                "PPP: {why} - check the APN, the data plan, and the PPP username/password if the operator needs them"
            ),
            CellularError::Tcp(e) => write!(f, "TCP: {e} - check the server address and that the link is up"),
            CellularError::Tls(why) => write!(f, "TLS: {why} - check the server certificate and the host name"),
            CellularError::Cancelled => f.write_str("cancelled"),
            CellularError::GaveUp { failures } => {
                write!(f, "gave up after {failures} consecutive failures (see the last error)")
            }
        }
    }
}

impl core::error::Error for CellularError {}

impl From<CellularError> for uasyncio::Error {
    fn from(e: CellularError) -> Self {
        match e {
            CellularError::Cancelled => uasyncio::Error::Cancelled,
            CellularError::Tcp(e) => e,
            other => uasyncio::Error::user(other),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use alloc::string::ToString;

    use super::*;
    use crate::at::EquipmentError;

    #[test]
    fn messages_name_the_layer_and_what_to_check() {
        let e = CellularError::Sim(SimProblem::Error(AtError {
            command: "AT+CPIN?".into(),
            kind: AtErrorKind::Cme(EquipmentError {
                code: Some(10),
                text: None,
            }),
        }));
        assert_eq!(
            e.to_string(),
            "SIM: +CME ERROR: 10 (SIM not inserted) - check the SIM card (inserted, contacts, not blocked)"
        );
        assert_eq!(e.layer(), Some(Layer::Sim));
        let e = CellularError::At(AtError {
            command: "AT".into(),
            kind: AtErrorKind::Timeout { ms: 500 },
        });
        assert!(e
            .to_string()
            .starts_with("AT: no answer to AT within 500 ms - check the modem's power"));
        // An error to the dial is the network's or the plan's, not a command to look up.
        let e = CellularError::At(AtError {
            command: "ATD*99***1#".into(),
            kind: AtErrorKind::Cme(EquipmentError {
                code: Some(30),
                text: None,
            }),
        });
        assert_eq!(
            e.to_string(),
            "AT: ATD*99***1#: +CME ERROR: 30 (no network service) - the data call was refused: check coverage, registration, the APN and the SIM's data plan"
        );
    }
}
