//! Ecosystem traits: `embedded-io-async` on [`Stream`], `embedded-nal-async` on [`Stack`].
//!
//! With these, drivers and clients written against the embedded traits (HTTP clients such
//! as `reqwless`, MQTT clients, `embedded-tls` itself) run on a uasyncio stack unchanged.
//! The trait methods keep the stream's guarantees: `read` and `fill_buf` lose no data when
//! cancelled, `write` sends what it can and returns how much, `flush` moves the stream's
//! buffered bytes into the socket. Errors are wrapped in [`IoError`] (the trait requires an
//! `embedded_io::Error` impl, which the runtime's error type cannot carry from this crate).

use core::net::{IpAddr, SocketAddr};

use embedded_io::ErrorKind;
use embedded_nal_async::{AddrType, Dns, TcpConnect};

use crate::rt::{errno, Error};
use crate::stack::Stack;
use crate::stream::Stream;

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
            Error::Os(errno::ENOMEM) => ErrorKind::OutOfMemory,
            Error::Os(errno::EINVAL) | Error::Value(_) => ErrorKind::InvalidInput,
            Error::Os(errno::EBADF) => ErrorKind::BrokenPipe,
            Error::Cancelled => ErrorKind::Interrupted,
            _ => ErrorKind::Other,
        }
    }
}

impl embedded_io::ErrorType for Stream {
    type Error = IoError;
}

impl embedded_io_async::Read for Stream {
    /// Cancellation: cooperative cancel gives `Err(Cancelled)` and consumes nothing;
    /// dropping the future also loses nothing.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        Ok(self.io_read(buf).await?)
    }
}

impl embedded_io_async::BufRead for Stream {
    /// Cancellation: as `read`; buffered bytes stay for the next call.
    async fn fill_buf(&mut self) -> Result<&[u8], IoError> {
        Ok(self.io_fill_buf().await?)
    }

    fn consume(&mut self, amt: usize) {
        self.io_consume(amt);
    }
}

impl embedded_io_async::Write for Stream {
    /// Cancellation: `Err(Cancelled)`; nothing of `buf` was taken.
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        Ok(self.io_write(buf).await?)
    }

    /// Cancellation: `Err(Cancelled)`; unsent bytes stay buffered.
    async fn flush(&mut self) -> Result<(), IoError> {
        Ok(self.io_flush().await?)
    }
}

impl TcpConnect for Stack {
    type Error = IoError;
    type Connection<'a> = Stream;

    /// Cancellation: as [`Stack::open_connection`].
    async fn connect(&self, remote: SocketAddr) -> Result<Stream, IoError> {
        match remote {
            SocketAddr::V4(a) => Ok(self.connect_addr(*a.ip(), a.port()).await?),
            SocketAddr::V6(_) => Err(IoError(Error::Os(errno::EHOSTUNREACH))),
        }
    }
}

impl Dns for Stack {
    type Error = IoError;

    /// Cancellation: as [`Stack::resolve`].
    async fn get_host_by_name(&self, host: &str, addr_type: AddrType) -> Result<IpAddr, IoError> {
        if addr_type == AddrType::IPv6 {
            return Err(IoError(Error::Os(errno::EAI_NONAME)));
        }
        Ok(IpAddr::V4(self.resolve(host).await?))
    }

    async fn get_host_by_address(&self, _addr: IpAddr, _result: &mut [u8]) -> Result<usize, IoError> {
        Err(IoError(Error::Runtime("reverse DNS lookups are not supported".into())))
    }
}
