//! [`IoError`]: the runtime's error type as an `embedded_io::Error`, shared by the TLS pump
//! (which drives `embedded-tls` over a TCP connection) and the ecosystem trait impls of
//! `nal`, which re-exports it as `nal::IoError`. Bottom layer: it depends only on `rt`
//! (see the layer list in the crate docs).

use embedded_io::ErrorKind;

use crate::rt::{errno, Error};

/// The runtime's [`Error`] as an `embedded_io::Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct IoError(pub Error);

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

impl core::error::Error for IoError {}

impl From<Error> for IoError {
    fn from(e: Error) -> Self {
        IoError(e)
    }
}

impl From<IoError> for Error {
    fn from(e: IoError) -> Self {
        e.0
    }
}

impl embedded_io::Error for IoError {
    fn kind(&self) -> ErrorKind {
        match self.0 {
            Error::Os(errno::ECONNRESET) => ErrorKind::ConnectionReset,
            Error::Os(errno::ECONNREFUSED) => ErrorKind::ConnectionRefused,
            Error::Os(errno::ENOTCONN) => ErrorKind::NotConnected,
            Error::Os(errno::EADDRINUSE) => ErrorKind::AddrInUse,
            Error::Os(errno::EADDRNOTAVAIL) => ErrorKind::AddrNotAvailable,
            Error::Os(errno::ETIMEDOUT) | Error::Timeout => ErrorKind::TimedOut,
            Error::Os(errno::ENOMEM | errno::ENOBUFS) => ErrorKind::OutOfMemory,
            Error::Os(errno::EINVAL | errno::EMSGSIZE) | Error::Value(_) => ErrorKind::InvalidInput,
            Error::Os(errno::EBADF) => ErrorKind::BrokenPipe,
            Error::Cancelled => ErrorKind::Interrupted,
            _ => ErrorKind::Other,
        }
    }
}
