//! TLS 1.3 client streams through `embedded-tls` (cargo feature `tls`, on by default).
//!
//! `embedded-tls` borrows its record buffers and owns the socket for the life of the
//! connection, and its futures are not safe to drop half way through a record. A stream,
//! though, must survive a cancelled `read` with no byte lost, and must let one task read
//! while another writes. So the TLS connection does not live in the stream: it lives in a
//! **pump task** that owns the buffers, performs the handshake, and then moves plaintext
//! between the TLS session and a `TlsPipe` — two bounded byte queues shared with the
//! stream. The stream's reads and writes only touch those queues, exactly as plain TCP
//! streams touch smoltcp's socket buffers, so every guarantee of `stream` holds for TLS
//! too. A cancel of the user's task never reaches the pump.
//!
//! Layer 4 of the crate (see the crate docs): the pump uses a `tcp` connection, the
//! stack, the shared byte queue and [`IoError`](crate::nal::IoError) (both in the bottom
//! layer); `stream` is built on it and it uses no `stream` or `nal` item.
//!
//! Supported: TLS 1.3, AES-128-GCM-SHA256, P-256 key exchange, ECDSA P-256 server
//! certificates (what `embedded-tls` 0.19 offers without an allocator-heavy RSA backend).
//! Server certificates are verified against [`TlsClientConfig::ca_der`] when it is set,
//! including the host name when [`TlsClientConfig::server_name`] is set; certificate
//! validity dates are not checked (no wall clock). Without a CA nothing is verified, which
//! is MicroPython's default (`ssl=True` there means `CERT_NONE`).
//!
//! # The record guard: what a hostile server may send
//! `embedded-tls` 0.19.0 panics on some server input (a panic aborts a host process and
//! halts a firmware), and it completes a handshake that has no certificate at all even
//! when a CA is set. Every byte from the socket therefore passes a `RecordGuard` before
//! `embedded-tls` sees it, and every byte `embedded-tls` sends passes it too. The guard
//! parses the 5-byte record headers and the ServerHello and refuses, with a `RuntimeError`
//! naming the violation and a reset connection, what the protocol forbids anyway:
//! - an encrypted record of at most 16 bytes: it cannot hold the AEAD tag plus the inner
//!   content type (RFC 8446 §5.2); `embedded-tls` panics on exactly 16 bytes (T1);
//! - a plaintext handshake record after the ServerHello: TLS 1.3 encrypts the rest of the
//!   handshake (§5); `embedded-tls` accepts them, and a plaintext CertificateVerify before
//!   any Certificate panics its verifier when a CA is set (T2);
//! - a first handshake message other than ServerHello, a record type other than the four
//!   of TLS 1.3, a record longer than 2^14 + 256 bytes (§5.2), an empty handshake or alert
//!   record (§5.1).
//!
//! Inside the encryption, its shadow decryptor (`tls/shadow.rs`) replays the RNG we hand
//! `embedded-tls`, checks the result against the ClientHello actually sent (refusing the
//! connection if they differ), derives the same keys and decrypts every record on the
//! side, so it also refuses handshake messages out of order or missing (no Certificate and
//! CertificateVerify), post-handshake handshake messages other than NewSessionTicket
//! (`embedded-tls` reaches an `unimplemented!()` on them: T3), and records whose tag does
//! not verify. `net/ROBUSTNESS.md` lists the cases, the cost (one more AES-GCM pass over
//! received bytes) and what upstream needs to make the shadow unnecessary.
//!
//! Server-side TLS is not supported: no maintained `no_std` TLS 1.3 server exists to build
//! it on (rustls' `no_std` mode needs a crypto provider that is still experimental).

use alloc::string::String;
use alloc::vec::Vec;

#[cfg(feature = "tls")]
mod client;
#[cfg(feature = "tls")]
mod guard;
#[cfg(feature = "tls")]
mod shadow;

#[cfg(feature = "tls")]
pub(crate) use client::{connect, TlsHandle};
#[cfg(not(feature = "tls"))]
pub(crate) use disabled::{connect, TlsHandle};

/// The longest server name `embedded-tls` 0.19 can check against a certificate: it copies
/// the name into a 64-byte string when a CA is set (`pki.rs`, `CertVerifier::host`) and fails
/// the handshake with `InsufficientSpace` for a longer one.
pub const VERIFIED_SERVER_NAME_MAX: usize = 64;

/// `ValueError` before any connection for a TLS server name the handshake could not use: an
/// explicit [`TlsClientConfig::server_name`] that is not a host name (SNI carries host names
/// only, RFC 6066 §3), or, with a CA, a name (explicit, or `host` when that is a name) longer
/// than [`VERIFIED_SERVER_NAME_MAX`]. `host` itself was checked by the caller.
#[cfg(feature = "tls")]
pub(crate) fn check_server_name(cfg: &TlsClientConfig, host: &str) -> crate::rt::Result<()> {
    use crate::rt::Error;
    let name = match &cfg.server_name {
        Some(n) => match crate::dns::check_host_name(n) {
            Ok(()) => n.as_str(),
            Err(Error::Value(m)) => return Err(Error::Value(["TlsClientConfig::server_name: ", &m].concat().into())),
            Err(e) => return Err(e),
        },
        None if host.parse::<core::net::Ipv4Addr>().is_err() => host,
        None => return Ok(()),
    };
    // As given: embedded-tls copies the name whole, a final dot included.
    if cfg.ca_der.is_some() && name.len() > VERIFIED_SERVER_NAME_MAX {
        return Err(Error::Value(
            "the TLS server name is longer than 64 bytes, the longest embedded-tls can check against \
             a certificate: connect by a shorter name of the server, or give one as \
             TlsClientConfig::server_name"
                .into(),
        ));
    }
    Ok(())
}

/// How to set up a TLS client connection (the `ssl` argument of `open_connection`).
///
/// Without the cargo feature `tls` the type still exists, and `open_connection` with
/// `ssl = Some(..)` fails with a `ValueError` that names the feature.
#[derive(Clone, Default)]
pub struct TlsClientConfig {
    /// Name sent as SNI and, with a CA, checked against the certificate. When `None`,
    /// `open_connection` uses its `host` argument if that is a name (not an address). A host
    /// name (no address: SNI carries names only); with a CA at most
    /// [`VERIFIED_SERVER_NAME_MAX`] bytes.
    pub server_name: Option<String>,
    /// DER of the CA (or self-signed server) certificate to verify against; `None` skips
    /// verification.
    pub ca_der: Option<Vec<u8>>,
    /// Entropy for the handshake's random numbers (client random, key share). Must come from
    /// a real entropy source on a target; each connection mixes in a counter.
    pub seed: [u8; 32],
}

#[cfg(not(feature = "tls"))]
mod disabled {
    //! Stand-ins when the `tls` feature is off: `connect` always fails, so a `TlsHandle`
    //! never exists (it is uninhabited).
    use core::net::SocketAddrV4;
    use core::task::{Context, Poll};

    use super::TlsClientConfig;
    use crate::rt::{Error, Result};
    use crate::tcp::Conn;

    /// Uninhabited: no TLS stream can be made without the feature.
    pub(crate) enum TlsHandle {}

    #[allow(clippy::unused_async)]
    pub(crate) async fn connect(conn: Conn, _cfg: &TlsClientConfig, _host: &str) -> Result<TlsHandle> {
        conn.abort();
        Err(Error::Value(
            "TLS support is not compiled in: enable the cargo feature `tls` of uasyncio-net".into(),
        ))
    }

    impl TlsHandle {
        pub(crate) fn poll_recv_with(
            &self,
            _: &mut Context<'_>,
            _: &mut dyn FnMut(&[u8]) -> usize,
        ) -> Poll<Result<usize>> {
            match *self {}
        }
        pub(crate) fn poll_send(&self, _: &mut Context<'_>, _: &[u8]) -> Poll<Result<usize>> {
            match *self {}
        }
        pub(crate) fn try_send(&self, _: &[u8]) -> usize {
            match *self {}
        }
        pub(crate) fn shutdown_write(&self) {
            match *self {}
        }
        pub(crate) fn poll_closed(&self, _: &mut Context<'_>) -> Poll<()> {
            match *self {}
        }
        pub(crate) fn abort(&self) {
            match *self {}
        }
        pub(crate) fn addrs(&self) -> (SocketAddrV4, SocketAddrV4) {
            match *self {}
        }
        pub(crate) fn linger_us(&self) -> u64 {
            match *self {}
        }
        pub(crate) fn now_us(&self) -> u64 {
            match *self {}
        }
        pub(crate) fn set_liveness(&self, _: Option<u32>, _: Option<u32>) {
            match *self {}
        }
        pub(crate) fn set_idle_probe(&self, _: bool) {
            match *self {}
        }
    }
}
