//! `start_server` and `Server`: accept connections and run a callback task for each.
//!
//! A server owns up to `backlog` sockets that are either listening or have finished their
//! handshake but have not been handed over yet — Linux's SYN queue and accept queue
//! together. The stack's driver re-arms listeners after every received frame, so a burst of
//! connection attempts is accepted as long as the backlog has room; an attempt beyond it is
//! refused with RST (Linux would drop the SYN and let the client retry). The server's accept
//! task hands each connection to `callback(reader, writer)` in a new task and frees its slot
//! at once, so `backlog` bounds connections waiting to be accepted, not connections being
//! served; those are bounded by the stack's socket limit.
//!
//! `Server::close()` stops accepting: listeners close, connections not yet handed over are
//! reset, and connections already handed to callbacks stay open (as in MicroPython).

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::{poll_fn, Future};
use core::net::{Ipv4Addr, SocketAddrV4};
use core::task::{Poll, Waker};

use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use crate::rt::{self, errno, Error, Result};
use crate::stack::{Core, ServerEntry, Stack};
use crate::stream::{Stream, Transport};
use crate::tcp::Conn;
use crate::tls::TlsClientConfig;

struct Shared {
    core: Rc<Core>,
    id: usize,
    local: SocketAddrV4,
    closed: Cell<bool>,
    done: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

/// A running TCP server (the seed's `asyncio.Server`).
#[derive(Clone)]
pub struct Server {
    shared: Rc<Shared>,
}

/// Closes its server when dropped: the `async with server:` form.
pub struct ServerGuard(pub Server);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl core::ops::Deref for ServerGuard {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl Server {
    /// The address the server listens on (`0.0.0.0` for every address of the stack).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.shared.local
    }

    /// Stop accepting connections. Connections already handed to callbacks stay open.
    /// Idempotent.
    pub fn close(&self) {
        let s = &self.shared;
        if s.closed.replace(true) {
            return;
        }
        s.core.drop_server(s.id);
    }

    /// Wait until the server has stopped accepting (after [`Server::close`]).
    ///
    /// Cancellation: returns `Err(Cancelled)`; the server is unaffected.
    ///
    /// Dropping the future: the server is unaffected too; the waker it left with the server
    /// is woken (to no effect) and forgotten when the server stops accepting.
    pub async fn wait_closed(&self) -> Result<()> {
        poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            if self.shared.done.get() {
                return Poll::Ready(Ok(()));
            }
            // The accept task went with the driver (its loop dropped both).
            self.shared.core.check_driver()?;
            self.shared.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// A guard that closes the server when dropped (`async with server:`).
    pub fn guard(self) -> ServerGuard {
        ServerGuard(self)
    }
}

impl Core {
    /// Remove server `id`: close its listeners, reset connections not yet accepted.
    pub(crate) fn drop_server(&self, id: usize) {
        let entry = {
            let mut st = self.st.borrow_mut();
            st.servers.get_mut(id).and_then(Option::take)
        };
        let Some(mut entry) = entry else { return };
        for h in entry.listening.drain(..).chain(entry.pending.drain(..)) {
            self.discard_socket(h);
        }
        if let Some(w) = entry.waker.take() {
            w.wake();
        }
        self.kick();
    }

    /// Get rid of a socket nobody owns: remove it if it has no peer, else reset it.
    pub(crate) fn discard_socket(&self, h: smoltcp::iface::SocketHandle) {
        {
            let mut st = self.st.borrow_mut();
            let s = st.sockets.get_mut::<tcp::Socket>(h);
            if matches!(s.state(), tcp::State::Listen | tcp::State::Closed) && s.remote_endpoint().is_none() {
                Core::remove_tcp_socket(&mut st, h);
                drop(st);
                // A server may be waiting for a free socket (see `State::freed`).
                self.kick();
                return;
            }
            s.abort();
        }
        // An aborted socket lingers until its RST is out.
        self.release_socket(h);
    }
}

impl Stack {
    /// The seed's `start_server(callback, host, port, backlog, ssl)`: listen on
    /// `host:port` (`""` or `"0.0.0.0"` for every address; port 0 picks a free port) and run
    /// `callback(reader, writer)` in a new task for every connection.
    ///
    /// Cancellation: the call itself does not wait, so there is nothing to cancel; the
    /// accept task it starts ends only through [`Server::close`].
    ///
    /// Dropping the future: before its first poll nothing was started (no listener, no
    /// accept task); its first poll runs it to the end, so there is no half-done state to
    /// drop. Dropping the returned [`Server`] does not close it (use [`Server::close`] or
    /// [`Server::guard`]).
    ///
    /// # Errors
    /// `OSError(ENETDOWN)` after [`Stack::shutdown`], `OSError(EADDRINUSE)` if a server of
    /// this stack has the port, `OSError(EADDRNOTAVAIL)`
    /// if `host` is not an address of the stack, `OSError(ENOMEM)` if no socket is free,
    /// `RuntimeError` for `ssl` (server-side TLS is unsupported), `ValueError` for a `host`
    /// that is not an IPv4 address or a `backlog` larger than `StackConfig::max_sockets`
    /// (every socket would be a listener).
    pub async fn start_server<F, Fut, T>(
        &self,
        callback: F,
        host: &str,
        port: u16,
        backlog: usize,
        ssl: Option<&TlsClientConfig>,
    ) -> Result<Server>
    where
        F: FnMut(Stream, Stream) -> Fut + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        if ssl.is_some() {
            return Err(Error::Runtime(
                "server-side TLS is unsupported: no sound no_std TLS 1.3 server implementation".into(),
            ));
        }
        self.core.check_running()?;
        if backlog > self.core.cfg.max_sockets {
            return Err(Error::Value(
                "backlog exceeds StackConfig::max_sockets: lower backlog or raise max_sockets".into(),
            ));
        }
        let core = self.core.clone();
        let addr = match host {
            "" | "0.0.0.0" => None,
            h => Some(
                h.parse::<Ipv4Addr>()
                    .map_err(|_| Error::Value("host must be an IPv4 address".into()))?,
            ),
        };
        let (id, local) = {
            let mut st = core.st.borrow_mut();
            let st = &mut *st;
            if let Some(a) = addr {
                if !st.iface.has_ip_addr(IpAddress::Ipv4(a)) {
                    return Err(Error::Os(errno::EADDRNOTAVAIL));
                }
            }
            let port = if port == 0 { core.alloc_port(st)? } else { port };
            if st.servers.iter().flatten().any(|s| s.endpoint.port == port) {
                return Err(Error::Os(errno::EADDRINUSE));
            }
            let entry = ServerEntry {
                endpoint: IpListenEndpoint {
                    addr: addr.map(IpAddress::Ipv4),
                    port,
                },
                backlog: backlog.max(1),
                listening: Vec::new(),
                pending: Default::default(),
                waker: None,
            };
            let id = match st.servers.iter().position(Option::is_none) {
                Some(i) => {
                    st.servers[i] = Some(entry);
                    i
                }
                None => {
                    st.servers.push(Some(entry));
                    st.servers.len() - 1
                }
            };
            core.rearm_server(st, id);
            let armed = st.servers[id].as_ref().map_or(0, |s| s.listening.len());
            if armed == 0 {
                st.servers[id] = None;
                return Err(core.pool_full(st));
            }
            (id, SocketAddrV4::new(addr.unwrap_or(Ipv4Addr::UNSPECIFIED), port))
        };
        let shared = Rc::new(Shared {
            core: core.clone(),
            id,
            local,
            closed: Cell::new(false),
            done: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
        });
        rt::spawn_detached(accept_loop(shared.clone(), callback));
        core.kick();
        Ok(Server { shared })
    }
}

/// The seed's `asyncio.start_server(callback, host, port, backlog, ssl)` on `stack`; see
/// [`Stack::start_server`].
///
/// Cancellation and dropping the future: as [`Stack::start_server`].
pub async fn start_server<F, Fut, T>(
    stack: &Stack,
    callback: F,
    host: &str,
    port: u16,
    backlog: usize,
    ssl: Option<&TlsClientConfig>,
) -> Result<Server>
where
    F: FnMut(Stream, Stream) -> Fut + 'static,
    Fut: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    stack.start_server(callback, host, port, backlog, ssl).await
}

/// Hand accepted connections to callback tasks until the server closes.
///
/// Cancellation: not observed (a system task); `Server::close` ends it.
async fn accept_loop<F, Fut, T>(shared: Rc<Shared>, mut callback: F)
where
    F: FnMut(Stream, Stream) -> Fut + 'static,
    Fut: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    let core = shared.core.clone();
    loop {
        let next = poll_fn(|cx| {
            if shared.closed.get() {
                return Poll::Ready(None);
            }
            let mut st = core.st.borrow_mut();
            let Some(Some(entry)) = st.servers.get_mut(shared.id) else {
                return Poll::Ready(None);
            };
            match entry.pending.pop_front() {
                Some(h) => Poll::Ready(Some(h)),
                None => {
                    entry.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        let Some(h) = next else { break };
        {
            let mut st = core.st.borrow_mut();
            core.rearm_server(&mut st, shared.id);
        }
        match Conn::adopt(core.clone(), h) {
            Some(conn) => {
                let s = Stream::new(Transport::Tcp(conn));
                rt::spawn_user(callback(s.clone(), s));
            }
            None => core.discard_socket(h),
        }
        core.kick();
    }
    shared.done.set(true);
    for w in shared.waiters.borrow_mut().drain(..) {
        w.wake();
    }
}
