//! One TCP connection on a smoltcp socket: connect, and the poll functions streams use.
//!
//! [`Conn`] owns one socket handle of a [`Core`]. Its poll functions borrow the stack for
//! the duration of one call, register smoltcp's per-socket waker when they must wait
//! (the receive waker for reads, the send waker for writes and closing), and kick the
//! driver when they changed something smoltcp must transmit. Each direction has its own
//! waker, which is what lets one task read while another writes.
//!
//! Errors: a reset from the peer is `OSError(ECONNRESET)` (smoltcp drops to CLOSED without
//! having seen a FIN); an operation after our own abort is `OSError(EBADF)`; a write after
//! `close()` is `OSError(EBADF)`.

use alloc::rc::Rc;
use core::cell::Cell;
use core::future::poll_fn;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::task::{Context, Poll};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::rt::{self, errno, Error, Result};
use crate::select::{select, Either};
use crate::stack::Core;

/// An owned TCP connection.
pub(crate) struct Conn {
    pub(crate) core: Rc<Core>,
    pub(crate) handle: SocketHandle,
    pub(crate) peer: SocketAddrV4,
    pub(crate) local: SocketAddrV4,
    shut_wr: Cell<bool>,
    aborted: Cell<bool>,
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
        Some(Conn {
            core,
            handle,
            peer: v4(peer),
            local: v4(local),
            shut_wr: Cell::new(false),
            aborted: Cell::new(false),
        })
    }

    /// Open a connection to `addr:port`, waiting at most the stack's connect timeout.
    ///
    /// Cancellation: returns `Err(Cancelled)`; the half-open socket is aborted and freed.
    pub(crate) async fn connect(core: &Rc<Core>, addr: Ipv4Addr, port: u16) -> Result<Conn> {
        if port == 0 {
            return Err(Error::Value("port 0 is not a valid destination".into()));
        }
        let handle = {
            let mut st = core.st.borrow_mut();
            let st = &mut *st;
            if st.iface.ipv4_addr().is_none() {
                return Err(Error::Os(errno::ENETUNREACH));
            }
            let h = core.new_tcp_socket(st)?;
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
        };
        let deadline = core.now_us() + u64::from(core.cfg.connect_timeout_ms) * 1000;
        let wait = poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
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
                Ok(conn)
            }
            Err(e) => {
                conn.abort();
                Err(e)
            }
        }
    }

    fn read_error(&self, s: &tcp::Socket<'_>) -> Error {
        if self.aborted.get() {
            Error::Os(errno::EBADF)
        } else if s.state() == tcp::State::Closed {
            Error::Os(errno::ECONNRESET)
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
        let mut st = self.core.st.borrow_mut();
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        let r = s.recv(|data| {
            let n = if data.is_empty() { 0 } else { f(data) };
            (n, n)
        });
        match r {
            Ok(0) => {
                s.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                drop(st);
                // The window opened: let smoltcp advertise it.
                self.core.kick();
                Poll::Ready(Ok(n))
            }
            Err(tcp::RecvError::Finished) => Poll::Ready(Ok(0)),
            Err(tcp::RecvError::InvalidState) => Poll::Ready(Err(self.read_error(s))),
        }
    }

    /// Send some of `buf`; `Ready(Ok(n))` with `n > 0` once any of it fit.
    pub(crate) fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        if self.shut_wr.get() || self.aborted.get() {
            return Poll::Ready(Err(Error::Os(errno::EBADF)));
        }
        let mut st = self.core.st.borrow_mut();
        let s = st.sockets.get_mut::<tcp::Socket>(self.handle);
        match s.send_slice(buf) {
            Ok(0) if !buf.is_empty() => {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                drop(st);
                self.core.kick();
                Poll::Ready(Ok(n))
            }
            Err(tcp::SendError::InvalidState) => Poll::Ready(Err(self.read_error(s))),
        }
    }

    /// Put as much of `buf` as fits into the transmit buffer without waiting.
    pub(crate) fn try_send(&self, buf: &[u8]) -> usize {
        if self.shut_wr.get() || self.aborted.get() {
            return 0;
        }
        let n = {
            let mut st = self.core.st.borrow_mut();
            st.sockets
                .get_mut::<tcp::Socket>(self.handle)
                .send_slice(buf)
                .unwrap_or(0)
        };
        if n > 0 {
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
            tcp::State::FinWait2 | tcp::State::TimeWait | tcp::State::Closed => Poll::Ready(()),
            _ => {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
        }
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
