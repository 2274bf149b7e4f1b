//! Ecosystem traits: `embedded-io-async` on [`Stream`], `embedded-nal-async` on [`Stack`]
//! (TCP, DNS, UDP) and [`UdpSocket`].
//!
//! Layer 6, the top of the crate (see the crate docs): adapters on `stream`, `udp` and
//! `stack`; no module below uses this one. [`IoError`] lives in the bottom layer and is
//! re-exported here, so the TLS pump can use it without depending on the adapters.
//!
//! With these, drivers and clients written against the embedded traits (HTTP clients such
//! as `reqwless`, MQTT clients, `embedded-tls` itself; CoAP, NTP and DNS clients over UDP)
//! run on a uasyncio stack unchanged.
//! The trait methods keep the stream's guarantees: `read` and `fill_buf` lose no data when
//! cancelled, `write` sends what it can and returns how much, `flush` moves the stream's
//! buffered bytes into the socket. The UDP traits are [`UdpSocket`]'s own operations: a
//! datagram is queued or taken only by the poll that completes, so a cancelled or dropped
//! `send`/`receive_into` sends or loses nothing; `receive_into` truncates a long datagram and
//! returns its full length, as the trait asks. An unspecified local address (`0.0.0.0` or
//! `[::]`, port 0) means "the socket's own" everywhere the traits take one. Errors are wrapped in [`IoError`] (the trait requires an
//! `embedded_io::Error` impl, which the runtime's error type cannot carry from this crate).

use core::net::{IpAddr, SocketAddr};

use embedded_nal_async::{AddrType, ConnectedUdp, Dns, TcpConnect, UdpStack, UnconnectedUdp};

pub use crate::io_error::IoError;
use crate::rt::{errno, Error};
use crate::stack::Stack;
use crate::stream::Stream;
use crate::udp::{effective_local, local_matches, UdpSocket};

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

impl UdpStack for Stack {
    type Error = IoError;
    type Connected = UdpSocket;
    type UniquelyBound = UdpSocket;
    type MultiplyBound = UdpSocket;

    /// A socket bound to `local` (see [`UdpSocket::bind`]; `[::]` counts as `0.0.0.0`) and
    /// connected to `remote`; returns the address it sends from. No waiting, so cancellation
    /// does not apply; dropping the future before its first poll creates nothing.
    async fn connect_from(&self, local: SocketAddr, remote: SocketAddr) -> Result<(SocketAddr, UdpSocket), IoError> {
        let sock = UdpSocket::bind(self, local)?;
        sock.connect_addr(remote)?;
        Ok((effective_local(&sock), sock))
    }

    /// A socket bound to `local`; returns its full address (the stack's address when `local`
    /// is unspecified). Cancellation: as `connect_from`.
    async fn bind_single(&self, local: SocketAddr) -> Result<(SocketAddr, UdpSocket), IoError> {
        let sock = UdpSocket::bind(self, local)?;
        Ok((effective_local(&sock), sock))
    }

    /// A socket bound to `local` (an unspecified address: every address of the stack).
    /// Cancellation: as `connect_from`.
    async fn bind_multiple(&self, local: SocketAddr) -> Result<UdpSocket, IoError> {
        Ok(UdpSocket::bind(self, local)?)
    }
}

impl ConnectedUdp for UdpSocket {
    type Error = IoError;

    /// Cancellation: as [`UdpSocket::send`] (nothing queued).
    async fn send(&mut self, data: &[u8]) -> Result<(), IoError> {
        UdpSocket::send(self, data).await?;
        Ok(())
    }

    /// Returns the datagram's full length (more than `buffer.len()` when truncated).
    /// Cancellation: as [`UdpSocket::recv_meta`] (no datagram taken).
    async fn receive_into(&mut self, buffer: &mut [u8]) -> Result<usize, IoError> {
        Ok(self.recv_meta(buffer).await?.datagram_len)
    }
}

impl UnconnectedUdp for UdpSocket {
    type Error = IoError;

    /// `local` must be unspecified or the socket's own address (else
    /// `OSError(EADDRNOTAVAIL)`). Cancellation: as [`UdpSocket::send_to`].
    async fn send(&mut self, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> Result<(), IoError> {
        if !local_matches(self, local) {
            return Err(IoError(Error::Os(errno::EADDRNOTAVAIL)));
        }
        self.send_to(data, remote).await?;
        Ok(())
    }

    /// Returns `(full datagram length, local, remote)`. Cancellation: as
    /// [`UdpSocket::recv_meta`].
    async fn receive_into(&mut self, buffer: &mut [u8]) -> Result<(usize, SocketAddr, SocketAddr), IoError> {
        let m = self.recv_meta(buffer).await?;
        Ok((m.datagram_len, m.local, m.remote))
    }
}
