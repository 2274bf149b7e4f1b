//! `open_connection` (the seed's client entry point) and name resolution on a [`Stack`].

use core::net::Ipv4Addr;
use core::str::FromStr;

use crate::dns;
use crate::rt::{errno, Error, Result};
use crate::stack::Stack;
use crate::stream::{Stream, Transport};
use crate::tcp::Conn;
use crate::tls::{self, TlsClientConfig};

impl Stack {
    /// The seed's `open_connection(host, port, ssl)`: resolve `host` (a dotted IPv4 address
    /// skips DNS), connect, run the TLS handshake if `ssl` is given, and return the stream
    /// twice, as (reader, writer).
    ///
    /// Cancellation: returns `Err(Cancelled)` at whichever step it was (lookup, handshake,
    /// TLS); everything allocated so far (DNS slot, socket, TLS task) is released: the DNS
    /// query is cancelled, a socket still in SYN-SENT is freed at once, and a connection
    /// already in its TLS handshake is reset (RST) and its socket freed once the RST is out.
    ///
    /// Dropping the future releases the same way as a cancel, step by step: the lookup's
    /// query slot is freed, the SYN-SENT socket is freed at once, and during TLS the pump
    /// task sees the stream gone, stops the handshake and resets the connection. Dropped
    /// before its first poll, it has done nothing.
    ///
    /// # Errors
    /// `ValueError` for a malformed name (before anything else, as [`Stack::resolve`]
    /// says), `OSError(ENETDOWN)` after [`Stack::shutdown`], `OSError(EAI_NONAME)` for an
    /// unknown name, `OSError(EAI_AGAIN)` when the DNS server does not answer in time,
    /// `RuntimeError` when the stack has no DNS server, `OSError(ECONNREFUSED)` when the peer
    /// answers with RST, `OSError(ETIMEDOUT)` when nothing answers within the connect timeout
    /// (also an unanswered ARP), `OSError(ENOMEM)` when every socket slot is in use
    /// (`StackConfig::max_sockets`; a warning in the log says how many are listening and
    /// how many still closing),
    /// `OSError(ENETUNREACH)` at once while the interface has no address (before DHCP or
    /// PPP brought it up, or after a PPP link went down; checked before any name lookup) and
    /// for a host off the interface's network when no gateway is set (`StackConfig`'s
    /// `prefix_len` / `gateway`), `ValueError` for an address that is not one host's
    /// (broadcast, multicast, `0.0.0.0`) and for the stack's own or a loopback address (the
    /// stack has no loopback), `ValueError` (before anything but the host's check) for a
    /// TLS `server_name` that is not a host name, or, with a CA, a server name longer than
    /// [`VERIFIED_SERVER_NAME_MAX`](crate::tls::VERIFIED_SERVER_NAME_MAX) bytes,
    /// `RuntimeError` when the TLS handshake fails (the message names the TLS error).
    pub async fn open_connection(
        &self,
        host: &str,
        port: u16,
        ssl: Option<&TlsClientConfig>,
    ) -> Result<(Stream, Stream)> {
        if Ipv4Addr::from_str(host).is_err() {
            dns::check_host_name(host)?;
        }
        #[cfg(feature = "tls")]
        if let Some(cfg) = ssl {
            tls::check_server_name(cfg, host)?;
        }
        self.check_addressed()?;
        let addr = self.resolve(host).await?;
        let conn = Conn::connect(&self.core, addr, port).await?;
        let stream = match ssl {
            None => Stream::new(Transport::Tcp(conn)),
            Some(cfg) => Stream::new(Transport::Tls(tls::connect(conn, cfg, host).await?)),
        };
        Ok((stream.clone(), stream))
    }

    /// Resolve `host` to an IPv4 address without blocking the loop (smoltcp's DNS socket);
    /// a dotted address is returned as is.
    ///
    /// Cancellation: returns `Err(Cancelled)`; the query is abandoned and its slot freed.
    ///
    /// Dropping the future: the same (the query is cancelled and its slot freed at once; an
    /// answer that still comes is ignored). A dotted address or a malformed name never
    /// starts a query, so there is nothing to release.
    ///
    /// # Errors
    /// `ValueError` for a malformed name (checked first: an empty name, spaces, a label
    /// starting or ending with `-`, an IPv6 address, a dotted address out of range such as
    /// `10.0.0.300`), `OSError(ENETUNREACH)` for a name (not a dotted address) while the
    /// interface has no address, `OSError(ENETDOWN)` after [`Stack::shutdown`],
    /// `RuntimeError` when the stack has no DNS server (the message says where to set one),
    /// `OSError(EAI_NONAME)` if the name does not resolve, `OSError(EAI_AGAIN)` after the
    /// stack's DNS timeout (`StackConfig::dns_timeout_ms`), `OSError(ENOMEM)` when all
    /// query slots are busy.
    pub async fn resolve(&self, host: &str) -> Result<Ipv4Addr> {
        if Ipv4Addr::from_str(host).is_err() {
            dns::check_host_name(host)?;
            self.check_addressed()?;
        }
        dns::resolve(&self.core, host).await
    }

    /// `OSError(ENETUNREACH)` unless the interface has an IPv4 address.
    fn check_addressed(&self) -> Result<()> {
        match self.ipv4_address() {
            Some(_) => Ok(()),
            None => Err(Error::Os(errno::ENETUNREACH)),
        }
    }

    /// Connect to an address (no DNS, no TLS); one handle of the stream.
    ///
    /// Cancellation: as [`Stack::open_connection`]. Dropping the future: its socket, if the
    /// handshake was under way (SYN-SENT), is freed at once; nothing else was allocated.
    /// Errors: as [`Stack::open_connection`] (`OSError(ENETUNREACH)` at once without an
    /// interface address).
    pub async fn connect_addr(&self, addr: Ipv4Addr, port: u16) -> Result<Stream> {
        Ok(Stream::new(Transport::Tcp(
            Conn::connect(&self.core, addr, port).await?,
        )))
    }
}

/// The seed's `asyncio.open_connection(host, port, ssl)` on `stack`; see
/// [`Stack::open_connection`].
///
/// Cancellation and dropping the future: as [`Stack::open_connection`].
pub async fn open_connection(
    stack: &Stack,
    host: &str,
    port: u16,
    ssl: Option<&TlsClientConfig>,
) -> Result<(Stream, Stream)> {
    stack.open_connection(host, port, ssl).await
}
