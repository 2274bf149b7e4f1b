//! UDP: a datagram socket on the stack ([`UdpSocket`]).
//!
//! MicroPython's `socket.socket(AF_INET, SOCK_DGRAM)` as futures that never block the loop:
//! [`UdpSocket::bind`], [`UdpSocket::send_to`], [`UdpSocket::recv_from`], and after
//! [`UdpSocket::connect`] (which resolves a name through the stack's DNS) `send` and `recv`.
//! The same socket implements `embedded-nal-async`'s `ConnectedUdp` and `UnconnectedUdp`,
//! and [`Stack`] its `UdpStack` (see [`crate::nal`]), so CoAP, NTP and DNS clients written
//! against those traits run on it.
//!
//! # Buffers and sizes
//! Each socket has a receive and a transmit buffer of [`StackConfig::udp_rx_buffer`](crate::StackConfig::udp_rx_buffer) and
//! [`StackConfig::udp_tx_buffer`](crate::StackConfig::udp_tx_buffer) payload bytes, each holding at most
//! [`StackConfig::udp_packets`](crate::StackConfig::udp_packets) datagrams. The stack does not fragment IP packets, so a
//! datagram must also fit one packet of the link (1472 bytes on Ethernet with a 1500-byte
//! MTU). A larger datagram is refused with `OSError(EMSGSIZE)`, nothing sent.
//!
//! Sending queues the datagram in the transmit buffer and returns; the driver sends it. When
//! the buffer has no room (a burst faster than the link, or a next hop that does not answer
//! ARP), `send_to` waits for room, at most the socket's send timeout
//! ([`DEFAULT_UDP_SEND_TIMEOUT_MS`]), then fails with `OSError(ENOBUFS)`;
//! [`UdpSocket::try_send_to`] never waits and fails with `OSError(EAGAIN)` instead.
//!
//! Receiving is POSIX `recvfrom`: one call takes one whole datagram. A datagram longer than
//! the caller's buffer is **truncated**: the buffer is filled, the rest of that datagram is
//! discarded, and the call returns the number of bytes copied (the buffer's length).
//! [`UdpSocket::recv_meta`] also returns the datagram's full length, so truncation can be
//! detected (POSIX's `MSG_TRUNC`). Datagrams that arrive while the receive buffer is full are
//! dropped, as UDP does.
//!
//! # Connected sockets
//! `connect` fixes the peer: `send` goes there, and `recv`/`recv_from` only return datagrams
//! from it (others are discarded as they are met, as POSIX does). `send_to` to any address
//! still works on a connected socket.
//!
//! # Closing, dropping, the pool
//! [`UdpSocket::close`] (or dropping the socket) closes it at once for its owner: every
//! operation after it fails with `OSError(EBADF)`, a task waiting in `recv` is woken with that
//! error, and datagrams not received yet are dropped. Datagrams already queued for sending
//! still go out: the socket stays in the stack (and in the pool of
//! [`StackConfig::max_udp_sockets`](crate::StackConfig::max_udp_sockets), with its port) until they are sent, at most the stack's
//! [`StackConfig::linger_ms`](crate::StackConfig::linger_ms). A `bind` while every slot is taken fails with
//! `OSError(ENOMEM)`.
//!
//! # Cancellation
//! Every future checks for a cooperative cancel before it touches the socket, and returns
//! `Err(Cancelled)`: a cancelled `recv` leaves the datagram it would have taken in place for
//! the next call, and a cancelled `send` has queued nothing. Dropping a future has the same
//! effect: a datagram is taken or queued only in the poll that completes the future.
//!
//! Two tasks receiving on one socket at the same time is a bug that would leave one of them
//! waiting forever (smoltcp keeps one waker per direction); the second gets `RuntimeError`
//! instead. Likewise two tasks waiting to send. One task receiving while another sends is
//! fine.
//!
//! IPv4 only: an IPv6 destination is `OSError(EHOSTUNREACH)`.

use alloc::rc::Rc;
use alloc::vec;
use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use core::task::{Context, Poll, Waker};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use crate::rt::{self, errno, Error, Result};
use crate::select::{select, Either};
use crate::stack::{Core, Stack, State, EPHEMERAL_FIRST};

/// Send timeout of new UDP sockets, ms: a `send_to` that finds no room in the transmit
/// buffer for this long fails with `OSError(ENOBUFS)`.
pub const DEFAULT_UDP_SEND_TIMEOUT_MS: u32 = 10_000;

/// What [`UdpSocket::recv_meta`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes copied into the caller's buffer.
    pub len: usize,
    /// The datagram's full length: more than `len` when it was truncated.
    pub datagram_len: usize,
    /// Who sent it.
    pub remote: SocketAddr,
    /// The address and port it was sent to (ours; a broadcast address for a broadcast).
    pub local: SocketAddr,
}

impl RecvMeta {
    /// Whether the datagram was longer than the buffer (the rest was discarded).
    ///
    /// ```
    /// use core::net::SocketAddr;
    /// use uasyncio_net::udp::RecvMeta;
    /// let a: SocketAddr = "10.0.0.2:7".parse().unwrap();
    /// let m = RecvMeta { len: 4, datagram_len: 9, remote: a, local: a };
    /// assert!(m.truncated());
    /// ```
    pub fn truncated(&self) -> bool {
        self.datagram_len > self.len
    }
}

/// A UDP socket on a [`Stack`]; see the [module docs](self) for sizes, truncation, closing
/// and cancellation.
///
/// Its methods take `&self`, so one task can wait in `recv_from` while another sends (share
/// it with an `Rc`).
///
/// ```
/// # async fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
/// use uasyncio_net::UdpSocket;
/// let sock = UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
/// sock.send_to(b"ping", "10.0.0.2:7".parse().unwrap()).await?;
/// let mut buf = [0u8; 512];
/// let (n, from) = sock.recv_from(&mut buf).await?;
/// # let _ = (n, from);
/// # Ok(())
/// # }
/// ```
pub struct UdpSocket {
    core: Rc<Core>,
    /// `None` once closed.
    handle: Cell<Option<SocketHandle>>,
    local: SocketAddrV4,
    peer: Cell<Option<SocketAddrV4>>,
    receiving: Cell<bool>,
    sending: Cell<bool>,
    send_timeout_ms: Cell<Option<u32>>,
    /// The wakers of a waiting receiver and sender, to wake them on `close`.
    rx_waiter: RefCell<Option<Waker>>,
    tx_waiter: RefCell<Option<Waker>>,
}

impl core::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local)
            .field("peer", &self.peer.get())
            .field("closed", &self.handle.get().is_none())
            .finish()
    }
}

fn v4(ep: IpEndpoint) -> SocketAddrV4 {
    match ep.addr {
        IpAddress::Ipv4(a) => SocketAddrV4::new(a, ep.port),
    }
}

/// The IPv4 destination of `addr`, checked as `send_to` needs it.
fn dest(addr: SocketAddr) -> Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) if a.port() == 0 => Err(Error::Value("port 0 is not a valid destination".into())),
        SocketAddr::V4(a) if a.ip().is_unspecified() => Err(Error::Value("0.0.0.0 is not a valid destination".into())),
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(Error::Os(errno::EHOSTUNREACH)),
    }
}

/// Whether `port` is the local port of a UDP socket.
fn udp_port_in_use(st: &State, port: u16) -> bool {
    st.sockets.iter().any(|(_, s)| match s {
        smoltcp::socket::Socket::Udp(u) => u.endpoint().port == port,
        _ => false,
    })
}

/// A free ephemeral UDP port.
fn alloc_udp_port(st: &mut State) -> Result<u16> {
    let span = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
    for _ in 0..span {
        let p = st.next_port;
        st.next_port = if p == u16::MAX { EPHEMERAL_FIRST } else { p + 1 };
        if !udp_port_in_use(st, p) {
            return Ok(p);
        }
    }
    Err(Error::Os(errno::EADDRINUSE))
}

impl UdpSocket {
    /// Create a socket bound to `local`: address `0.0.0.0` for any (the usual case) or the
    /// stack's own address, port 0 for an ephemeral port. An unspecified IPv6 address
    /// (`[::]`) is taken as `0.0.0.0`, for clients written for dual-stack hosts.
    ///
    /// Binding to `0.0.0.0` works before the interface has an address (DHCP, PPP); sends
    /// then fail with `OSError(ENETUNREACH)` until it has one.
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// use uasyncio_net::UdpSocket;
    /// let ntp = UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?; // ephemeral port
    /// let coap = UdpSocket::bind(stack, "0.0.0.0:5683".parse().unwrap())?;
    /// assert_eq!(coap.local_addr().port(), 5683);
    /// # let _ = ntp;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `OSError(ENOMEM)` when the stack already holds [`StackConfig::max_udp_sockets`](crate::StackConfig::max_udp_sockets) UDP
    /// sockets, `OSError(EADDRINUSE)` when another UDP socket has that port,
    /// `OSError(EADDRNOTAVAIL)` for an address that is not the stack's (any IPv6 address but
    /// `[::]`), `OSError(ENETDOWN)` after [`Stack::shutdown`].
    pub fn bind(stack: &Stack, local: SocketAddr) -> Result<UdpSocket> {
        let core = &stack.core;
        core.check_running()?;
        let ip = match local {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(a) if a.ip().is_unspecified() => Ipv4Addr::UNSPECIFIED,
            SocketAddr::V6(_) => return Err(Error::Os(errno::EADDRNOTAVAIL)),
        };
        let mut guard = core.st.borrow_mut();
        let st = &mut *guard;
        if !ip.is_unspecified() && st.iface.ipv4_addr() != Some(ip) {
            return Err(Error::Os(errno::EADDRNOTAVAIL));
        }
        if st.udp_count() >= core.cfg.max_udp_sockets {
            return Err(Error::Os(errno::ENOMEM));
        }
        let port = match local.port() {
            0 => alloc_udp_port(st)?,
            p if udp_port_in_use(st, p) => return Err(Error::Os(errno::EADDRINUSE)),
            p => p,
        };
        let slots = core.cfg.udp_packets.max(1);
        let rx = udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; slots],
            vec![0u8; core.cfg.udp_rx_buffer],
        );
        let tx = udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; slots],
            vec![0u8; core.cfg.udp_tx_buffer],
        );
        let mut s = udp::Socket::new(rx, tx);
        let endpoint = IpListenEndpoint {
            addr: (!ip.is_unspecified()).then_some(IpAddress::Ipv4(ip)),
            port,
        };
        if s.bind(endpoint).is_err() {
            return Err(Error::Os(errno::EINVAL));
        }
        let handle = st.sockets.add(s);
        drop(guard);
        Ok(UdpSocket {
            core: core.clone(),
            handle: Cell::new(Some(handle)),
            local: SocketAddrV4::new(ip, port),
            peer: Cell::new(None),
            receiving: Cell::new(false),
            sending: Cell::new(false),
            send_timeout_ms: Cell::new(Some(DEFAULT_UDP_SEND_TIMEOUT_MS)),
            rx_waiter: RefCell::new(None),
            tx_waiter: RefCell::new(None),
        })
    }

    /// The address the socket is bound to (`0.0.0.0` when bound to any).
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// assert!(s.local_addr().port() >= 49152);
    /// # Ok(())
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.local)
    }

    /// The peer set by [`UdpSocket::connect`], if any.
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// assert_eq!(s.peer_addr(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.get().map(SocketAddr::V4)
    }

    /// Whether [`UdpSocket::close`] was called.
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// s.close();
    /// assert!(s.is_closed());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.handle.get().is_none()
    }

    /// How long `send_to`/`send` may wait for room in the transmit buffer, ms (`None`: no
    /// limit). The default is [`DEFAULT_UDP_SEND_TIMEOUT_MS`]. `Some(0)` means do not wait:
    /// a datagram that fits is queued as usual, one that does not fails with
    /// `OSError(ENOBUFS)` within the same loop round (what [`UdpSocket::try_send_to`] reports
    /// as `EAGAIN`).
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// s.set_send_timeout(Some(500));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_send_timeout(&self, ms: Option<u32>) {
        self.send_timeout_ms.set(ms);
    }

    /// Fix the peer to `host:port`: `host` is a dotted IPv4 address or a name, resolved
    /// through the stack's DNS ([`Stack::resolve`]). Afterwards [`UdpSocket::send`] goes
    /// there and receives only return its datagrams. Connecting again replaces the peer.
    ///
    /// Cancellation: returns `Err(Cancelled)` (from the lookup); the peer is unchanged.
    /// Dropping the future: the same.
    ///
    /// ```
    /// # async fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// s.connect("pool.ntp.org", 123).await?;
    /// s.send(&[0x23; 48]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Stack::resolve`]; `OSError(EBADF)` after `close`; `ValueError` for port 0.
    pub async fn connect(&self, host: &str, port: u16) -> Result<()> {
        self.handle()?;
        let addr = Stack {
            core: self.core.clone(),
        }
        .resolve(host)
        .await?;
        self.connect_addr(SocketAddr::V4(SocketAddrV4::new(addr, port)))
    }

    /// [`UdpSocket::connect`] to an address (no DNS, no waiting).
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// s.connect_addr("10.0.0.2:123".parse().unwrap())?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `OSError(EBADF)` after `close`, `ValueError` for port 0 or `0.0.0.0`,
    /// `OSError(EHOSTUNREACH)` for an IPv6 address.
    pub fn connect_addr(&self, addr: SocketAddr) -> Result<()> {
        self.handle()?;
        self.peer.set(Some(dest(addr)?));
        Ok(())
    }

    fn handle(&self) -> Result<SocketHandle> {
        self.handle.get().ok_or(Error::Os(errno::EBADF))
    }

    /// Queue `buf` for `to` if it fits now; `Ok(false)` when the buffer has no room.
    fn try_queue(&self, cx: Option<&mut Context<'_>>, buf: &[u8], to: SocketAddrV4) -> Result<bool> {
        let h = self.handle()?;
        // After `Stack::shutdown` no driver would send it: not a silent success.
        self.core.check_running()?;
        let max = self.core.max_udp_payload.min(self.core.cfg.udp_tx_buffer);
        if buf.len() > max {
            return Err(Error::Os(errno::EMSGSIZE));
        }
        let mut st = self.core.st.borrow_mut();
        if st.iface.ipv4_addr().is_none() {
            return Err(Error::Os(errno::ENETUNREACH));
        }
        // A broadcast or multicast datagram goes out on the link; a unicast one needs a
        // route, or smoltcp would drop it without a word.
        if st.is_one_host(*to.ip()) {
            st.route_to(*to.ip())?;
        }
        let s = st.sockets.get_mut::<udp::Socket>(h);
        match s.send_slice(buf, IpEndpoint::new(IpAddress::Ipv4(*to.ip()), to.port())) {
            Ok(()) => {
                drop(st);
                self.core.kick();
                Ok(true)
            }
            Err(udp::SendError::BufferFull) => {
                if let Some(cx) = cx {
                    s.register_send_waker(cx.waker());
                    *self.tx_waiter.borrow_mut() = Some(cx.waker().clone());
                }
                Ok(false)
            }
            // Checked above (bound port, destination): cannot happen, but say what it means.
            Err(udp::SendError::Unaddressable) => Err(Error::Os(errno::EHOSTUNREACH)),
        }
    }

    /// Send one datagram to `to`; returns `buf.len()` once it is queued (the driver sends it
    /// right after). Waits while the transmit buffer is full, at most the send timeout.
    ///
    /// Cancellation: returns `Err(Cancelled)`; nothing was queued. Dropping the future: the
    /// same (a datagram is queued only by the poll that returns `Ok`).
    ///
    /// ```
    /// # async fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// let to = stack.resolve("time.lan").await?; // names: the stack's DNS
    /// s.send_to(&[0x23; 48], (to, 123).into()).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `OSError(EMSGSIZE)` for a datagram larger than the transmit buffer or one IP packet;
    /// `OSError(ENOBUFS)` when no room appeared within the send timeout;
    /// `OSError(ENETUNREACH)` while the interface has no address, and for a unicast
    /// destination off the interface's network when no gateway is set (`StackConfig`'s
    /// `prefix_len` / `gateway`); `OSError(EBADF)` after `close` (also when closed while
    /// waiting); `OSError(EHOSTUNREACH)` for an IPv6 destination; `ValueError` for port 0,
    /// `0.0.0.0`, or the stack's own or a loopback address (there is no loopback); `RuntimeError` if another task is
    /// already waiting to send on this socket; `OSError(ENETDOWN)` after [`Stack::shutdown`]
    /// (nothing is queued: no driver would send it).
    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> Result<usize> {
        let to = dest(to)?;
        self.send_v4(buf, to).await
    }

    async fn send_v4(&self, buf: &[u8], to: SocketAddrV4) -> Result<usize> {
        if self.sending.replace(true) {
            return Err(Error::Runtime("another task is already sending on this socket".into()));
        }
        struct Unlock<'a>(&'a Cell<bool>);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _unlock = Unlock(&self.sending);
        let wait = poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            match self.try_queue(Some(cx), buf, to) {
                Ok(true) => Poll::Ready(Ok(buf.len())),
                Ok(false) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            }
        });
        match self.send_timeout_ms.get() {
            None => wait.await,
            Some(ms) => {
                let deadline = self.core.now_us() + u64::from(ms) * 1000;
                match select(wait, rt::sleep_until(deadline)).await {
                    Either::Left(r) => r,
                    Either::Right(Ok(())) => Err(Error::Os(errno::ENOBUFS)),
                    Either::Right(Err(e)) => Err(e),
                }
            }
        }
    }

    /// Queue one datagram for `to` without waiting.
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// use uasyncio::Error;
    /// use uasyncio_net::errno::EAGAIN;
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// match s.try_send_to(b"reading=21.5", "10.0.0.2:9000".parse().unwrap()) {
    ///     Ok(_) => {}
    ///     Err(Error::Os(EAGAIN)) => { /* buffer full: drop this sample */ }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `OSError(EAGAIN)` when the transmit buffer has no room now; otherwise as
    /// [`UdpSocket::send_to`].
    pub fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> Result<usize> {
        let to = dest(to)?;
        match self.try_queue(None, buf, to)? {
            true => Ok(buf.len()),
            false => Err(Error::Os(errno::EAGAIN)),
        }
    }

    /// Send one datagram to the connected peer (see [`UdpSocket::connect`]).
    ///
    /// Cancellation and dropping the future: as [`UdpSocket::send_to`].
    ///
    /// ```
    /// # async fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// s.connect("10.0.0.2", 7).await?;
    /// s.send(b"hello").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `OSError(ENOTCONN)` on a socket that is not connected; otherwise as `send_to`.
    pub async fn send(&self, buf: &[u8]) -> Result<usize> {
        self.handle()?;
        let to = self.peer.get().ok_or(Error::Os(errno::ENOTCONN))?;
        self.send_v4(buf, to).await
    }

    /// Receive one datagram into `buf`, with its lengths and both addresses: the primitive
    /// under `recv_from` and `recv`. A datagram longer than `buf` is truncated (the rest is
    /// discarded); `datagram_len` says how long it was.
    ///
    /// Cancellation: returns `Err(Cancelled)`; no datagram was taken. Dropping the future:
    /// the same.
    ///
    /// ```
    /// # async fn f(sock: &uasyncio_net::UdpSocket) -> uasyncio::Result<()> {
    /// let mut buf = [0u8; 64];
    /// let m = sock.recv_meta(&mut buf).await?;
    /// if m.truncated() {
    ///     // `m.datagram_len - m.len` bytes were lost
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// `OSError(EBADF)` after `close` (also when closed while waiting), `RuntimeError` if
    /// another task is already receiving on this socket, `OSError(ENETDOWN)` after
    /// [`Stack::shutdown`] (also when it happens while waiting).
    pub async fn recv_meta(&self, buf: &mut [u8]) -> Result<RecvMeta> {
        if self.receiving.replace(true) {
            return Err(Error::Runtime(
                "another task is already receiving on this socket".into(),
            ));
        }
        struct Unlock<'a>(&'a Cell<bool>);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _unlock = Unlock(&self.receiving);
        poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            self.poll_recv(cx, buf)
        })
        .await
    }

    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<RecvMeta>> {
        let h = match self.handle() {
            Ok(h) => h,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let peer = self.peer.get();
        let mut st = self.core.st.borrow_mut();
        let s = st.sockets.get_mut::<udp::Socket>(h);
        loop {
            match s.recv() {
                Ok((data, meta)) => {
                    let remote = v4(meta.endpoint);
                    if peer.is_some_and(|p| p != remote) {
                        continue; // not from the connected peer: discard
                    }
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    let local_ip = match meta.local_address {
                        Some(IpAddress::Ipv4(a)) => a,
                        None => *self.local.ip(),
                    };
                    return Poll::Ready(Ok(RecvMeta {
                        len: n,
                        datagram_len: data.len(),
                        remote: SocketAddr::V4(remote),
                        local: SocketAddr::V4(SocketAddrV4::new(local_ip, self.local.port())),
                    }));
                }
                Err(udp::RecvError::Exhausted | udp::RecvError::Truncated) => {
                    // Stopped (`Stack::shutdown`): nothing will ever arrive.
                    if let Err(e) = self.core.check_running() {
                        return Poll::Ready(Err(e));
                    }
                    s.register_recv_waker(cx.waker());
                    *self.rx_waiter.borrow_mut() = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }

    /// Receive one datagram into `buf`: `(bytes copied, sender)`. A datagram longer than
    /// `buf` is truncated as POSIX `recvfrom` does: `buf` is filled, the rest of that datagram
    /// is discarded and the count is `buf.len()` (use [`UdpSocket::recv_meta`] to tell).
    /// On a connected socket only the peer's datagrams are returned.
    ///
    /// Cancellation: returns `Err(Cancelled)`; no datagram was taken, the next call gets
    /// it. Dropping the future: the same.
    ///
    /// ```
    /// # async fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:7".parse().unwrap())?;
    /// let mut buf = [0u8; 1472];
    /// loop {
    ///     let (n, from) = s.recv_from(&mut buf).await?;
    ///     s.send_to(&buf[..n], from).await?; // echo
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`UdpSocket::recv_meta`].
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
        let m = self.recv_meta(buf).await?;
        Ok((m.len, m.remote))
    }

    /// Receive one datagram into `buf` and return the bytes copied (truncation as
    /// [`UdpSocket::recv_from`]); on a connected socket, from the peer only.
    ///
    /// Cancellation and dropping the future: as [`UdpSocket::recv_from`].
    ///
    /// ```
    /// # async fn f(s: &uasyncio_net::UdpSocket) -> uasyncio::Result<()> {
    /// let mut buf = [0u8; 48];
    /// let n = s.recv(&mut buf).await?;
    /// # let _ = n;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`UdpSocket::recv_meta`].
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        Ok(self.recv_meta(buf).await?.len)
    }

    /// Close the socket (idempotent): see the [module docs](self#closing-dropping-the-pool).
    /// Pending and later operations fail with `OSError(EBADF)`; datagrams already queued
    /// still go out.
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = uasyncio_net::UdpSocket::bind(stack, "0.0.0.0:0".parse().unwrap())?;
    /// s.close();
    /// assert_eq!(s.try_send_to(b"x", "10.0.0.2:7".parse().unwrap()).err(),
    ///            Some(uasyncio::Error::Os(uasyncio_net::errno::EBADF)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&self) {
        let Some(h) = self.handle.take() else { return };
        for w in [self.rx_waiter.take(), self.tx_waiter.take()].into_iter().flatten() {
            w.wake();
        }
        release(self.core.clone(), h);
    }
}

/// Remove a closed socket from the stack once its queued datagrams are sent (at most the
/// stack's linger time); at once if none are queued.
fn release(core: Rc<Core>, h: SocketHandle) {
    let queued = {
        let mut st = core.st.borrow_mut();
        let s = st.sockets.get_mut::<udp::Socket>(h);
        if s.send_queue() == 0 {
            st.sockets.remove(h);
            false
        } else {
            true
        }
    };
    if !queued {
        return;
    }
    let deadline = core.now_us() + u64::from(core.cfg.linger_ms) * 1000;
    rt::spawn_detached(async move {
        let flushed = poll_fn(|cx| {
            let mut st = core.st.borrow_mut();
            let s = st.sockets.get_mut::<udp::Socket>(h);
            if s.send_queue() == 0 {
                Poll::Ready(())
            } else {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
        });
        // A cancel of this internal task is ignored: the socket is removed either way.
        let _ = select(flushed, rt::sleep_until(deadline)).await;
        core.st.borrow_mut().sockets.remove(h);
    });
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.close();
    }
}

impl Stack {
    /// [`UdpSocket::bind`] on this stack.
    ///
    /// ```
    /// # fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let s = stack.udp_bind("0.0.0.0:0".parse().unwrap())?;
    /// # let _ = s;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`UdpSocket::bind`].
    pub fn udp_bind(&self, local: SocketAddr) -> Result<UdpSocket> {
        UdpSocket::bind(self, local)
    }
}

/// The unspecified-or-ours check of `UnconnectedUdp::send`'s `local` argument.
pub(crate) fn local_matches(sock: &UdpSocket, local: SocketAddr) -> bool {
    let port_ok = local.port() == 0 || local.port() == sock.local.port();
    let ip_ok = match local.ip() {
        IpAddr::V4(a) => a.is_unspecified() || IpAddr::V4(a) == effective_local(sock).ip(),
        IpAddr::V6(a) => a.is_unspecified(),
    };
    port_ok && ip_ok
}

/// The stack's address and the socket's port: the address a socket bound to any sends from.
pub(crate) fn effective_local(sock: &UdpSocket) -> SocketAddr {
    let ip = match sock.local.ip() {
        ip if ip.is_unspecified() => sock.core.st.borrow().iface.ipv4_addr().unwrap_or(*ip),
        ip => *ip,
    };
    SocketAddr::V4(SocketAddrV4::new(ip, sock.local.port()))
}
