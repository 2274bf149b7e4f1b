//! One TCP connection on a smoltcp socket: connect, and the poll functions streams use.
//!
//! [`Conn`] owns one socket handle of a [`Core`]. Its poll functions borrow the stack for
//! the duration of one call, register smoltcp's per-socket waker when they must wait
//! (the receive waker for reads, the send waker for writes and closing), and kick the
//! driver when they changed something smoltcp must transmit. Each direction has its own
//! waker, which is what lets one task read while another writes.
//!
//! Layer 3 of the crate (see the crate docs): it uses only the stack and the runtime seam;
//! `tls` and `stream` are built on it.
//!
//! Errors: a reset from the peer is `OSError(ECONNRESET)` (smoltcp drops to CLOSED without
//! having seen a FIN); an operation after our own abort is `OSError(EBADF)`; a write after
//! `close()` is `OSError(EBADF)`; an operation on a connection that the link took down
//! (PPP lost its carrier: `Core::link_down`) or that `Stack::shutdown` stopped is
//! `OSError(ENETDOWN)`.
//!
//! # Liveness
//! Every established connection gets smoltcp's keep-alive and timeout
//! ([`DEFAULT_KEEPALIVE_MS`], [`DEFAULT_PEER_TIMEOUT_MS`], re-exported by `stream`),
//! **armed only while the transmit buffer holds data** (queued or in flight, which
//! includes a zero window with data waiting): an idle connection sends nothing and sets no
//! timer, because a cellular link pays for every packet and every radio wake-up. The
//! keep-alive makes a silent peer answer with its current window, which is what un-sticks
//! smoltcp 0.14's zero-window stall (it stops probing after a late window-0 ACK, and that
//! can only bite while we have data to send); the timeout aborts a connection whose peer
//! answered nothing for that long while we wait to send. `set_idle_probe(true)` arms both
//! on an idle connection too (to notice a vanished peer while only reading).
//!
//! smoltcp has no "arm while sending" mode, so the arming is switched where we touch the
//! socket: armed when bytes enter the transmit buffer, disarmed by the next receive or send
//! call that finds the buffer empty. A reader parked on an armed connection also takes
//! smoltcp's send waker (unless a sender holds it), so the ACK that empties the buffer
//! wakes it to disarm. Limits, both from smoltcp's API: a connection that sends, and is
//! then neither read nor written, stays armed (a probe per keep-alive interval) until it
//! is; and disarming cannot cancel a keep-alive smoltcp already scheduled, so the first
//! probe after a burst may still go out unless a packet arrives first.
//!
//! smoltcp does not say why a socket closed, so a close that comes at least a
//! timeout after the last byte we saw move is reported as `OSError(ETIMEDOUT)`, any other
//! as `OSError(ECONNRESET)`.

use alloc::rc::Rc;
use core::cell::Cell;
use core::future::poll_fn;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::task::{Context, Poll};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::rt::{self, errno, Error, Result};
use crate::select::{select, Either};
use crate::stack::Core;

/// Keep-alive interval of new connections, ms: an idle connection sends a probe this often.
pub const DEFAULT_KEEPALIVE_MS: u32 = 30_000;
/// Peer timeout of new connections, ms: a peer silent this long ends the connection
/// (`OSError(ETIMEDOUT)`); with the keep-alive above that is four unanswered probes.
pub const DEFAULT_PEER_TIMEOUT_MS: u32 = 120_000;

/// An owned TCP connection.
pub(crate) struct Conn {
    pub(crate) core: Rc<Core>,
    pub(crate) handle: SocketHandle,
    pub(crate) peer: SocketAddrV4,
    pub(crate) local: SocketAddrV4,
    shut_wr: Cell<bool>,
    aborted: Cell<bool>,
    /// When data last moved either way (loop time, µs), for telling a timeout from a reset.
    last_progress_us: Cell<u64>,
    /// smoltcp's timeout on this socket, µs (0: none).
    peer_timeout_us: Cell<u64>,
    /// The configured keep-alive interval and peer timeout (ms, `None`: off).
    keepalive_ms: Cell<Option<u32>>,
    timeout_ms: Cell<Option<u32>>,
    /// Arm them on an idle connection too.
    idle_probe: Cell<bool>,
    /// Whether they are currently set on the smoltcp socket.
    armed: Cell<bool>,
    /// A send or close future is waiting on smoltcp's (single) send waker: a parked reader
    /// must not take that slot over.
    send_waiting: Cell<bool>,
}

fn v4(ep: IpEndpoint) -> SocketAddrV4 {
    match ep.addr {
        IpAddress::Ipv4(a) => SocketAddrV4::new(a, ep.port),
    }
}

impl Conn {
    /// Adopt an accepted socket (ESTABLISHED or later).
    pub(crate) fn adopt(core: Rc<Core>, handle: SocketHandle) -> Option<Conn> {
        let (peer, local) = {
            let mut st = core.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(handle);
            (s.remote_endpoint()?, s.local_endpoint()?)
        };
        let now = core.now_us();
        let conn = Conn {
            core,
            handle,
            peer: v4(peer),
            local: v4(local),
            shut_wr: Cell::new(false),
            aborted: Cell::new(false),
            last_progress_us: Cell::new(now),
            peer_timeout_us: Cell::new(0),
            keepalive_ms: Cell::new(None),
            timeout_ms: Cell::new(None),
            idle_probe: Cell::new(false),
            armed: Cell::new(false),
            send_waiting: Cell::new(false),
        };
        conn.set_liveness(Some(DEFAULT_KEEPALIVE_MS), Some(DEFAULT_PEER_TIMEOUT_MS));
        Some(conn)
    }

    /// Open a connection to `addr:port`, waiting at most the stack's connect timeout.
    ///
    /// Cancellation: returns `Err(Cancelled)`; the half-open socket is freed at once, as after
    /// a timeout or when the future is dropped (see `Core::release_socket`: no RST is owed
    /// in SYN-SENT). A handshake that completed just before the cancel is reset instead (RST),
    /// and its socket freed once the RST is out.
    pub(crate) async fn connect(core: &Rc<Core>, addr: Ipv4Addr, port: u16) -> Result<Conn> {
        if port == 0 {
            return Err(Error::Value("port 0 is not a valid destination".into()));
        }
        core.check_running()?;
        let handle = {
            let mut st = core.st.borrow_mut();
            let st = &mut *st;
            if !st.is_one_host(addr) {
                return Err(Error::Value(
                    "TCP needs one host: the address is a broadcast, multicast or 0.0.0.0".into(),
                ));
            }
            st.route_to(addr)?;
            let h = match core.new_tcp_socket(st) {
                Err(Error::Os(errno::ENOMEM)) => return Err(core.pool_full(st)),
                r => r?,
            };
            let local_port = match core.alloc_port(st) {
                Ok(p) => p,
                Err(e) => {
                    Core::remove_tcp_socket(st, h);
                    return Err(e);
                }
            };
            let cx = st.iface.context();
            let r = st
                .sockets
                .get_mut::<tcp::Socket>(h)
                .connect(cx, (IpAddress::Ipv4(addr), port), local_port);
            if r.is_err() {
                Core::remove_tcp_socket(st, h);
                return Err(Error::Os(errno::EHOSTUNREACH));
            }
            h
        };
        core.kick();
        // From here the socket is owned by `conn`: any early return releases it.
        let conn = Conn {
            core: core.clone(),
            handle,
            peer: SocketAddrV4::new(addr, port),
            local: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            shut_wr: Cell::new(false),
            aborted: Cell::new(false),
            last_progress_us: Cell::new(0),
            peer_timeout_us: Cell::new(0),
            keepalive_ms: Cell::new(None),
            timeout_ms: Cell::new(None),
            idle_probe: Cell::new(false),
            armed: Cell::new(false),
            send_waiting: Cell::new(false),
        };
        let deadline = core.now_us() + u64::from(core.cfg.connect_timeout_ms) * 1000;
        let wait = poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            conn.core.check_driver()?;
            let mut st = conn.core.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(conn.handle);
            match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                // RST (or RST|ACK) in answer to our SYN.
                tcp::State::Closed => Poll::Ready(Err(Error::Os(errno::ECONNREFUSED))),
                _ => Poll::Ready(Ok(s.local_endpoint())),
            }
        });
        let r = match select(wait, rt::sleep_until(deadline)).await {
            Either::Left(r) => r,
            Either::Right(Ok(())) => Err(Error::Os(errno::ETIMEDOUT)),
            Either::Right(Err(e)) => Err(e),
        };
        match r {
            Ok(local) => {
                let mut conn = conn;
                if let Some(l) = local {
                    conn.local = v4(l);
                }
                conn.last_progress_us.set(conn.core.now_us());
                conn.set_liveness(Some(DEFAULT_KEEPALIVE_MS), Some(DEFAULT_PEER_TIMEOUT_MS));
                Ok(conn)
            }
            Err(e) => {
                // Still in SYN-SENT, the drop of `conn` frees the socket at once
                // (`Core::release_socket`); a handshake that completed between the wake and
                // the cancel is reset.
                if conn.state() != tcp::State::SynSent {
                    conn.abort();
                }
                Err(e)
            }
        }
    }

    fn state(&self) -> tcp::State {
        self.core.st.borrow().sockets.get::<tcp::Socket>(self.handle).state()
    }

    /// Set the keep-alive interval and peer timeout of this connection (`None`: off); they
    /// are armed as the module doc says.
    pub(crate) fn set_liveness(&self, keepalive_ms: Option<u32>, timeout_ms: Option<u32>) {
        self.keepalive_ms.set(keepalive_ms);
        self.timeout_ms.set(timeout_ms);
        self.peer_timeout_us.set(timeout_ms.map_or(0, |m| u64::from(m) * 1000));
        self.rearm(true);
    }

    /// Arm the keep-alive and peer timeout on an idle connection too (`false`, the default:
    /// only while the transmit buffer holds data).
    pub(crate) fn set_idle_probe(&self, on: bool) {
        self.idle_probe.set(on);
        self.rearm(true);
    }

    /// Arm or disarm smoltcp's keep-alive and timeout for the current transmit buffer.
    fn rearm(&self, force: bool) {
        let changed = {
            let mut st = self.core.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
            self.rearm_socket(s, force)
        };
        if changed {
            self.core.kick();
        }
    }

    /// As [`Conn::rearm`] on a borrowed socket; true if it changed the socket.
    fn rearm_socket(&self, s: &mut tcp::Socket<'_>, force: bool) -> bool {
        let want = self.idle_probe.get() || s.send_queue() > 0;
        if want == self.armed.get() && !force {
            return false;
        }
        self.armed.set(want);
        let ms = |v: Option<u32>| v.filter(|_| want).map(|m| Duration::from_millis(u64::from(m)));
        s.set_keep_alive(ms(self.keepalive_ms.get()));
        s.set_timeout(ms(self.timeout_ms.get()));
        true
    }

    fn progress(&self) {
        self.last_progress_us.set(self.core.now_us());
    }

    /// The error for an operation that found the socket in no state to do it.
    fn read_error(&self, st: &crate::stack::State) -> Error {
        let s = st.sockets.get::<tcp::Socket>(self.handle);
        if self.aborted.get() {
            Error::Os(errno::EBADF)
        } else if st.aborted_by_link_down(self.handle) {
            // The link (PPP) went down under the connection: say so, not "reset".
            Error::Os(errno::ENETDOWN)
        } else if s.state() == tcp::State::Closed {
            let t = self.peer_timeout_us.get();
            if t > 0 && self.core.now_us() >= self.last_progress_us.get() + t {
                Error::Os(errno::ETIMEDOUT)
            } else {
                Error::Os(errno::ECONNRESET)
            }
        } else {
            Error::Os(errno::ENOTCONN)
        }
    }

    /// Receive into whatever `f` accepts: `f` gets the contiguous bytes available and returns
    /// how many it took. `Ready(Ok(0))` means end of stream.
    pub(crate) fn poll_recv_with(
        &self,
        cx: &mut Context<'_>,
        f: &mut dyn FnMut(&[u8]) -> usize,
    ) -> Poll<Result<usize>> {
        self.core.check_driver()?;
        let mut st = self.core.st.borrow_mut();
        if let Some(n) = st.read_left_by_link_down(self.handle, f) {
            // Received before the link went down: delivered first, then ENETDOWN.
            return Poll::Ready(Ok(n));
        }
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        let r = s.recv(|data| {
            let n = if data.is_empty() { 0 } else { f(data) };
            (n, n)
        });
        // Data we sent may have been acknowledged since: disarm an idle connection.
        if self.rearm_socket(s, false) {
            self.core.kick();
        }
        match r {
            Ok(0) => {
                s.register_recv_waker(cx.waker());
                // Armed with data in flight: also wake on the ACK that empties the transmit
                // buffer, to disarm (unless a sender owns the send waker; it disarms then).
                if self.armed.get() && !self.idle_probe.get() && !self.send_waiting.get() {
                    s.register_send_waker(cx.waker());
                }
                Poll::Pending
            }
            Ok(n) => {
                drop(st);
                self.progress();
                // The window opened: let smoltcp advertise it.
                self.core.kick();
                Poll::Ready(Ok(n))
            }
            Err(tcp::RecvError::Finished) => Poll::Ready(Ok(0)),
            Err(tcp::RecvError::InvalidState) => Poll::Ready(Err(self.read_error(&st))),
        }
    }

    /// Send some of `buf`; `Ready(Ok(n))` with `n > 0` once any of it fit.
    pub(crate) fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        if self.shut_wr.get() || self.aborted.get() {
            return Poll::Ready(Err(Error::Os(errno::EBADF)));
        }
        self.core.check_driver()?;
        let mut st = self.core.st.borrow_mut();
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        let sent = s.send_slice(buf);
        self.rearm_socket(s, false);
        match sent {
            Ok(0) if !buf.is_empty() => {
                s.register_send_waker(cx.waker());
                self.send_waiting.set(true);
                Poll::Pending
            }
            Ok(n) => {
                self.send_waiting.set(false);
                drop(st);
                if n > 0 {
                    self.progress();
                }
                self.core.kick();
                Poll::Ready(Ok(n))
            }
            Err(tcp::SendError::InvalidState) => Poll::Ready(Err(self.read_error(&st))),
        }
    }

    /// Put as much of `buf` as fits into the transmit buffer without waiting.
    pub(crate) fn try_send(&self, buf: &[u8]) -> usize {
        if self.shut_wr.get() || self.aborted.get() {
            return 0;
        }
        let (n, changed) = {
            let mut st = self.core.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
            let n = s.send_slice(buf).unwrap_or(0);
            (n, self.rearm_socket(s, false))
        };
        if n > 0 || changed {
            self.core.kick();
        }
        n
    }

    /// Send FIN after the queued data (half close); reads go on until the peer's FIN.
    pub(crate) fn shutdown_write(&self) {
        if self.shut_wr.replace(true) {
            return;
        }
        self.core
            .st
            .borrow_mut()
            .sockets
            .get_mut::<tcp::Socket>(self.handle)
            .close();
        self.core.kick();
    }

    /// Ready once our FIN was acknowledged (or the connection is gone).
    pub(crate) fn poll_fin_acked(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.core.st.borrow_mut();
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        match s.state() {
            tcp::State::FinWait2 | tcp::State::TimeWait | tcp::State::Closed => {
                self.send_waiting.set(false);
                Poll::Ready(())
            }
            _ => {
                s.register_send_waker(cx.waker());
                self.send_waiting.set(true);
                Poll::Pending
            }
        }
    }

    /// Whether the network went down under this connection (the link, or `Stack::shutdown`):
    /// what the TLS pump asks when `embedded-tls` reports an I/O error only by its kind.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn net_down(&self) -> bool {
        self.core.st.borrow().aborted_by_link_down(self.handle)
    }

    /// Reset the connection (RST) now.
    pub(crate) fn abort(&self) {
        if self.aborted.replace(true) {
            return;
        }
        self.core
            .st
            .borrow_mut()
            .sockets
            .get_mut::<tcp::Socket>(self.handle)
            .abort();
        self.core.kick();
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.core.release_socket(self.handle);
    }
}
