use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::net::SocketAddrV4;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embedded_tls::{
    Aes128GcmSha256, CryptoProvider, NoClock, TlsConfig, TlsConnection, TlsContext, TlsError, TlsVerifier,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::guard::RecordGuard;
use super::TlsClientConfig;
use crate::buf::Buf;
use crate::io_error::IoError;
use crate::rt::{self, errno, Error, Result};
use crate::stack::Core;
use crate::tcp::Conn;

/// Plaintext bytes queued per direction between a stream and its pump task.
const PIPE_CAP: usize = 16 * 1024;
/// Largest TLS record (RFC 8446 ciphertext limit); the read record buffer's size.
const RECORD_READ_BUF: usize = 16_640;
/// Write record buffer: one record of plaintext plus overhead.
const RECORD_WRITE_BUF: usize = 4096 + 256;
/// Largest server certificate the verifier keeps a copy of.
const CERT_SIZE: usize = 4096;

type Suite = Aes128GcmSha256;

struct Provider<'a> {
    rng: ChaCha20Rng,
    verifier: Option<embedded_tls::pki::CertVerifier<'a, Suite, NoClock, CERT_SIZE>>,
}

impl CryptoProvider for Provider<'_> {
    type CipherSuite = Suite;
    type Signature = [u8; 0];

    fn rng(&mut self) -> impl embedded_tls::CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> core::result::Result<&mut impl TlsVerifier<Suite>, TlsError> {
        self.verifier.as_mut().ok_or(TlsError::Unimplemented)
    }
}

/// The TCP connection as `embedded-io-async` Read + Write for `embedded-tls` (no
/// cancellation checks: it only runs inside the pump task). Every received byte passes the
/// [`RecordGuard`] first; a violation is kept in `rejected` (the error `embedded-tls` passes
/// on only has a kind) and fails the read.
#[derive(Clone)]
struct TcpIo {
    conn: Rc<Conn>,
    guard: Rc<RefCell<RecordGuard>>,
    rejected: Rc<Cell<Option<&'static str>>>,
}

impl embedded_io::ErrorType for TcpIo {
    type Error = IoError;
}

impl embedded_io_async::Read for TcpIo {
    async fn read(&mut self, buf: &mut [u8]) -> core::result::Result<usize, IoError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.rejected.get().is_some() {
            return Err(IoError(Error::Os(errno::ECONNRESET)));
        }
        let mut filled = 0;
        let n = poll_fn(|cx| {
            self.conn.poll_recv_with(cx, &mut |d| {
                let k = d.len().min(buf.len() - filled);
                buf[filled..filled + k].copy_from_slice(&d[..k]);
                filled += k;
                k
            })
        })
        .await
        .map_err(IoError)?;
        if let Err(why) = self.guard.borrow_mut().feed(&buf[..n]) {
            self.rejected.set(Some(why));
            self.conn.abort();
            return Err(IoError(Error::Os(errno::ECONNRESET)));
        }
        Ok(n)
    }
}

impl embedded_io_async::Write for TcpIo {
    async fn write(&mut self, buf: &[u8]) -> core::result::Result<usize, IoError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.rejected.get().is_some() {
            return Err(IoError(Error::Os(errno::ECONNRESET)));
        }
        let n = poll_fn(|cx| self.conn.poll_send(cx, buf)).await.map_err(IoError)?;
        if let Err(why) = self.guard.borrow_mut().sent(&buf[..n]) {
            self.rejected.set(Some(why));
            self.conn.abort();
            return Err(IoError(Error::Os(errno::ECONNRESET)));
        }
        Ok(n)
    }

    async fn flush(&mut self) -> core::result::Result<(), IoError> {
        // Bytes in smoltcp's transmit buffer are on their way; nothing more to push.
        Ok(())
    }
}

/// The queues between a TLS stream and its pump task.
pub(crate) struct TlsPipe {
    pub(crate) core: Rc<Core>,
    pub(crate) peer: SocketAddrV4,
    pub(crate) local: SocketAddrV4,
    rx: RefCell<Buf>,
    rx_end: RefCell<Option<Result<()>>>,
    tx: RefCell<Buf>,
    shut: Cell<bool>,
    user_gone: Cell<bool>,
    closed: Cell<bool>,
    handshake: RefCell<Option<Result<()>>>,
    /// The stream side waiting (reader, writer, closer, opener): one waker per role.
    user_rx: RefCell<Option<Waker>>,
    user_tx: RefCell<Option<Waker>>,
    /// The pump waiting for room in `rx`, for data in `tx`.
    pump_rx: RefCell<Option<Waker>>,
    pump_tx: RefCell<Option<Waker>>,
    conn: Rc<Conn>,
}

fn wake(slot: &RefCell<Option<Waker>>) {
    let w = slot.borrow_mut().take();
    if let Some(w) = w {
        w.wake();
    }
}

fn park(slot: &RefCell<Option<Waker>>, cx: &Context<'_>) {
    *slot.borrow_mut() = Some(cx.waker().clone());
}

impl TlsPipe {
    pub(crate) fn poll_recv_with(
        &self,
        cx: &mut Context<'_>,
        f: &mut dyn FnMut(&[u8]) -> usize,
    ) -> Poll<Result<usize>> {
        // The pump task went with the driver (its loop dropped both): nothing would move.
        self.core.check_driver()?;
        let n = {
            let mut rx = self.rx.borrow_mut();
            if rx.is_empty() {
                0
            } else {
                let n = f(rx.as_slice());
                rx.consume(n);
                n
            }
        };
        if n > 0 {
            wake(&self.pump_rx);
            return Poll::Ready(Ok(n));
        }
        match &*self.rx_end.borrow() {
            Some(Ok(())) => return Poll::Ready(Ok(0)),
            Some(Err(e)) => return Poll::Ready(Err(e.clone())),
            None => {}
        }
        park(&self.user_rx, cx);
        Poll::Pending
    }

    pub(crate) fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        if self.shut.get() {
            return Poll::Ready(Err(Error::Os(errno::EBADF)));
        }
        self.core.check_driver()?;
        if let Some(Err(e)) = &*self.rx_end.borrow() {
            if *e != Error::Os(errno::EBADF) {
                return Poll::Ready(Err(e.clone()));
            }
        }
        let n = self.try_send(buf);
        if n == 0 && !buf.is_empty() {
            park(&self.user_tx, cx);
            return Poll::Pending;
        }
        Poll::Ready(Ok(n))
    }

    pub(crate) fn try_send(&self, buf: &[u8]) -> usize {
        if self.shut.get() {
            return 0;
        }
        let n = {
            let mut tx = self.tx.borrow_mut();
            let n = buf.len().min(PIPE_CAP.saturating_sub(tx.len()));
            tx.extend(&buf[..n]);
            n
        };
        if n > 0 {
            wake(&self.pump_tx);
        }
        n
    }

    pub(crate) fn shutdown_write(&self) {
        self.shut.set(true);
        wake(&self.pump_tx);
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.closed.get() {
            return Poll::Ready(());
        }
        park(&self.user_tx, cx);
        Poll::Pending
    }

    pub(crate) fn abort(&self) {
        self.shut.set(true);
        self.user_gone.set(true);
        self.conn.abort();
        self.finish_rx(Err(Error::Os(errno::EBADF)));
        wake(&self.pump_tx);
        wake(&self.pump_rx);
    }

    fn finish_rx(&self, end: Result<()>) {
        let mut e = self.rx_end.borrow_mut();
        if e.is_none() {
            *e = Some(end);
        }
        drop(e);
        wake(&self.user_rx);
    }
}

/// The stream side's handle: dropping the last stream handle closes the TLS session.
pub(crate) struct TlsHandle(pub(crate) Rc<TlsPipe>);

impl TlsHandle {
    pub(crate) fn addrs(&self) -> (SocketAddrV4, SocketAddrV4) {
        (self.0.peer, self.0.local)
    }
    pub(crate) fn linger_us(&self) -> u64 {
        u64::from(self.0.core.cfg.linger_ms) * 1000
    }
    pub(crate) fn now_us(&self) -> u64 {
        self.0.core.now_us()
    }
    pub(crate) fn set_liveness(&self, keepalive_ms: Option<u32>, timeout_ms: Option<u32>) {
        self.0.conn.set_liveness(keepalive_ms, timeout_ms);
    }
    pub(crate) fn set_idle_probe(&self, on: bool) {
        self.0.conn.set_idle_probe(on);
    }
}

impl core::ops::Deref for TlsHandle {
    type Target = TlsPipe;
    fn deref(&self) -> &TlsPipe {
        &self.0
    }
}

impl Drop for TlsHandle {
    fn drop(&mut self) {
        self.0.shut.set(true);
        self.0.user_gone.set(true);
        wake(&self.0.pump_tx);
        wake(&self.0.pump_rx);
    }
}

/// The error for a failed handshake or read: the guard's verdict if it refused the input.
fn tls_error(e: TlsError, rejected: Option<&'static str>, during: &str) -> Error {
    if let Some(why) = rejected {
        return Error::Runtime(format!("TLS {during} failed: {why}; the connection was reset").into());
    }
    match e {
        TlsError::Io(embedded_io::ErrorKind::ConnectionReset) => Error::Os(errno::ECONNRESET),
        TlsError::Io(embedded_io::ErrorKind::TimedOut) => Error::Os(errno::ETIMEDOUT),
        e => Error::Runtime(format!("TLS {during} failed: {e:?}").into()),
    }
}

static CONN_COUNTER: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Run the TLS handshake over `conn` and return the pipe of the established session; the
/// pump task keeps running after this returns. The handshake may take at most the stack's
/// connect timeout (`OSError(ETIMEDOUT)`).
///
/// Cancellation: returns `Err(Cancelled)`; the pump task stops and the connection is reset.
pub(crate) async fn connect(conn: Conn, cfg: &TlsClientConfig, host: &str) -> Result<TlsHandle> {
    let conn = Rc::new(conn);
    let pipe = Rc::new(TlsPipe {
        core: conn.core.clone(),
        peer: conn.peer,
        local: conn.local,
        rx: RefCell::new(Buf::default()),
        rx_end: RefCell::new(None),
        tx: RefCell::new(Buf::default()),
        shut: Cell::new(false),
        user_gone: Cell::new(false),
        closed: Cell::new(false),
        handshake: RefCell::new(None),
        user_rx: RefCell::new(None),
        user_tx: RefCell::new(None),
        pump_rx: RefCell::new(None),
        pump_tx: RefCell::new(None),
        conn: conn.clone(),
    });
    let handle = TlsHandle(pipe.clone());
    let server_name = match &cfg.server_name {
        Some(n) => Some(n.clone()),
        None if host.parse::<core::net::Ipv4Addr>().is_err() => Some(String::from(host)),
        None => None,
    };
    let mut seed = cfg.seed;
    let n = CONN_COUNTER.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    for (i, b) in n.to_le_bytes().iter().enumerate() {
        seed[i] ^= *b;
    }
    let ca = cfg.ca_der.clone();
    let deadline = pipe.core.now_us() + u64::from(pipe.core.cfg.connect_timeout_ms) * 1000;
    rt::spawn_detached(pump(pipe.clone(), conn, server_name, ca, seed));
    let done = poll_fn(|cx| {
        if rt::cancel_requested(cx) {
            return Poll::Ready(Err(Error::Cancelled));
        }
        pipe.core.check_driver()?;
        match pipe.handshake.borrow_mut().take() {
            Some(r) => Poll::Ready(r),
            None => {
                park(&pipe.user_rx, cx);
                Poll::Pending
            }
        }
    });
    // A server that accepts TCP and then says nothing (or dribbles) must not hold us.
    let r = match crate::select::select(done, rt::sleep_until(deadline)).await {
        crate::select::Either::Left(r) => r,
        crate::select::Either::Right(Ok(())) => Err(Error::Os(errno::ETIMEDOUT)),
        crate::select::Either::Right(Err(e)) => Err(e),
    };
    match r {
        Ok(()) => Ok(handle),
        Err(e) => {
            pipe.abort();
            Err(e)
        }
    }
}

/// The pump task: handshake, then plaintext both ways until both directions are done.
///
/// Cancellation: not observed (it is an internal task); it ends when the stream side is
/// dropped or aborted, or the connection ends.
async fn pump(pipe: Rc<TlsPipe>, conn: Rc<Conn>, server_name: Option<String>, ca: Option<Vec<u8>>, seed: [u8; 32]) {
    let mut rbuf = vec![0u8; RECORD_READ_BUF];
    let mut wbuf = vec![0u8; RECORD_WRITE_BUF];
    let rejected = Rc::new(Cell::new(None));
    let io = TcpIo {
        conn: conn.clone(),
        guard: Rc::new(RefCell::new(RecordGuard::new(ChaCha20Rng::from_seed(seed)))),
        rejected: rejected.clone(),
    };
    let mut tls: TlsConnection<'_, TcpIo, Suite> = TlsConnection::new(io, &mut rbuf, &mut wbuf);
    let mut config = TlsConfig::new();
    if let Some(n) = server_name.as_deref() {
        config = config.with_server_name(n);
    }
    let verifier = ca
        .as_deref()
        .map(|der| embedded_tls::pki::CertVerifier::new(embedded_tls::Certificate::X509(der)));
    let provider = Provider {
        rng: ChaCha20Rng::from_seed(seed),
        verifier,
    };
    let opened = {
        let open = pin!(tls.open(TlsContext::new(&config, provider)));
        let gone = poll_fn(|cx| {
            if pipe.user_gone.get() {
                Poll::Ready(())
            } else {
                park(&pipe.pump_rx, cx);
                Poll::Pending
            }
        });
        crate::select::select(open, gone).await
    };
    let r = match opened {
        crate::select::Either::Left(Ok(())) => Ok(()),
        // The network went down (`embedded-tls` passes on only the kind, `Other`): say so.
        crate::select::Either::Left(Err(TlsError::Io(_))) if conn.net_down() => Err(Error::Os(errno::ENETDOWN)),
        crate::select::Either::Left(Err(e)) => Err(tls_error(e, rejected.get(), "handshake")),
        crate::select::Either::Right(()) => Err(Error::Cancelled),
    };
    let failed = r.is_err();
    *pipe.handshake.borrow_mut() = Some(r);
    wake(&pipe.user_rx);
    if failed {
        conn.abort();
        pipe.closed.set(true);
        return;
    }
    let (mut reader, mut writer) = tls.split();
    let read_side = async {
        let mut tmp = [0u8; 1024];
        loop {
            // Wait for room in the plaintext queue (back-pressure towards the peer).
            let go = poll_fn(|cx| {
                if pipe.user_gone.get() {
                    return Poll::Ready(false);
                }
                if pipe.rx.borrow().len() < PIPE_CAP {
                    return Poll::Ready(true);
                }
                park(&pipe.pump_rx, cx);
                Poll::Pending
            })
            .await;
            if !go {
                return;
            }
            let room = PIPE_CAP - pipe.rx.borrow().len();
            let want = room.min(tmp.len());
            let gone = poll_fn(|cx| {
                if pipe.user_gone.get() {
                    Poll::Ready(())
                } else {
                    park(&pipe.pump_rx, cx);
                    Poll::Pending
                }
            });
            let r =
                match crate::select::select(embedded_io_async::Read::read(&mut reader, &mut tmp[..want]), gone).await {
                    crate::select::Either::Left(r) => r,
                    crate::select::Either::Right(()) => return,
                };
            if let (Err(e), Some(_)) = (&r, rejected.get()) {
                pipe.finish_rx(Err(tls_error(*e, rejected.get(), "read")));
                return;
            }
            match r {
                Ok(0) | Err(TlsError::ConnectionClosed) => {
                    pipe.finish_rx(Ok(()));
                    return;
                }
                Ok(n) => {
                    pipe.rx.borrow_mut().extend(&tmp[..n]);
                    wake(&pipe.user_rx);
                }
                // The network went down (link down, `Stack::shutdown`): not an end of stream.
                // Bytes received before are in `rx` already and are read first.
                Err(TlsError::Io(_)) if conn.net_down() => {
                    pipe.finish_rx(Err(Error::Os(errno::ENETDOWN)));
                    return;
                }
                // The peer closed TCP without close_notify: treat as end of stream.
                Err(TlsError::Io(embedded_io::ErrorKind::Other | embedded_io::ErrorKind::BrokenPipe)) => {
                    pipe.finish_rx(Ok(()));
                    return;
                }
                Err(TlsError::Io(embedded_io::ErrorKind::ConnectionReset)) => {
                    pipe.finish_rx(Err(Error::Os(errno::ECONNRESET)));
                    return;
                }
                Err(e) => {
                    pipe.finish_rx(Err(Error::Runtime(format!("TLS error: {e:?}").into())));
                    return;
                }
            }
        }
    };
    let write_side = async {
        let mut chunk = Vec::new();
        loop {
            let more = poll_fn(|cx| {
                if !pipe.tx.borrow().is_empty() {
                    return Poll::Ready(true);
                }
                if pipe.shut.get() {
                    return Poll::Ready(false);
                }
                park(&pipe.pump_tx, cx);
                Poll::Pending
            })
            .await;
            if !more {
                break;
            }
            chunk.clear();
            {
                let mut tx = pipe.tx.borrow_mut();
                let n = tx.len().min(4096);
                chunk.extend_from_slice(&tx.as_slice()[..n]);
                tx.consume(n);
            }
            wake(&pipe.user_tx);
            let mut ok = true;
            let mut off = 0;
            while off < chunk.len() {
                match embedded_io_async::Write::write(&mut writer, &chunk[off..]).await {
                    Ok(n) => off += n,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok || embedded_io_async::Write::flush(&mut writer).await.is_err() {
                let e = if conn.net_down() {
                    errno::ENETDOWN
                } else {
                    errno::ECONNRESET
                };
                pipe.finish_rx(Err(Error::Os(e)));
                break;
            }
        }
        // Everything queued is sent: FIN, then wait for its ACK.
        conn.shutdown_write();
        poll_fn(|cx| conn.poll_fin_acked(cx)).await;
        pipe.closed.set(true);
        wake(&pipe.user_tx);
    };
    join(read_side, write_side).await;
}

/// Run two futures to completion, polling both on each wake.
async fn join<A: core::future::Future<Output = ()>, B: core::future::Future<Output = ()>>(a: A, b: B) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut da, mut db) = (false, false);
    poll_fn(|cx| {
        if !da {
            da = a.as_mut().poll(cx).is_ready();
        }
        if !db {
            db = b.as_mut().poll(cx).is_ready();
        }
        if da && db {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
