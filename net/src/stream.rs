//! `Stream` (alias `StreamReader`, `StreamWriter`): the seed's TCP stream object.
//!
//! A [`Stream`] is a handle (`Rc`) to one connection, plain TCP or TLS. `open_connection`
//! and the server callback hand out two handles of the same stream, the "reader" and the
//! "writer", as MicroPython does; any handle can do anything.
//!
//! Layer 5 of the crate (see the crate docs): a stream sits on a `tcp` connection or on a
//! `tls` pump; `nal`, `client` and `server` sit on it, and nothing below it uses it.
//!
//! # Buffers and the two directions
//! Each stream has a read buffer and a write buffer, both owned by the stream, not by the
//! futures that use them:
//! - reads take bytes from the read buffer first, then from the socket; `readline` and
//!   `readexactly` park what they have gathered in the read buffer while they wait, so a
//!   cancelled read loses nothing — the next read sees every byte;
//! - `write` appends to the write buffer and never blocks; `drain` moves it into the
//!   socket, and what it did not move yet stays buffered if `drain` is cancelled.
//!
//! Reading and writing are independent: one task may wait in `read` while another waits in
//! `drain` (each direction has its own smoltcp waker). Two tasks reading the same stream at
//! the same time is a bug that would make one of them hang; the second gets
//! `RuntimeError` instead (likewise two concurrent `drain`s).
//!
//! # Liveness: no wait lasts forever
//! A peer can stall a connection that still looks alive: stop reading (a zero window
//! answered to every probe), or trip smoltcp 0.14 into not probing a zero window at all.
//! So every stream has three guards, each settable per stream:
//! - keep-alive ([`DEFAULT_KEEPALIVE_MS`]): while we have bytes to send and nothing
//!   moves, the connection probes its peer, whose answer carries its current window (this
//!   ends smoltcp's zero-window stall);
//! - peer timeout ([`DEFAULT_PEER_TIMEOUT_MS`]): a peer that answers nothing for that long
//!   while we have bytes to send (vanished, unplugged, its reset lost) ends the
//!   connection: waiting reads and drains get `OSError(ETIMEDOUT)`;
//! - send timeout ([`DEFAULT_SEND_TIMEOUT_MS`]): a `drain` that moves no byte for that long
//!   resets the connection and fails with `OSError(ETIMEDOUT)` (a peer that never reads).
//!
//! An idle connection (nothing to send) sends nothing and arms no timer: a cellular link
//! pays for every packet. So a read on an idle connection waits as long as the peer stays
//! silent, alive or not, as it must for a healthy peer (a server may legitimately say
//! nothing for hours); [`Stream::set_idle_probe`] probes idle connections too, and
//! `wait_for` bounds a single read. A truncated stream that
//! ends with a FIN reads as a clean end of stream: TCP cannot tell the receiver that
//! bytes are missing when the sender's stack itself sent the FIN too early (smoltcp 0.14
//! can, under loss: see `net/ROBUSTNESS.md`); protocols that need to know frame their data
//! (TLS's close_notify, HTTP's Content-Length).
//!
//! # Closing
//! `close()` sends the buffered bytes that fit, then FIN (a half close: reads continue until
//! the peer's FIN). `wait_closed()` waits until the peer acknowledged our FIN, at most the
//! stack's linger time (then the connection is reset). Dropping every handle closes the same
//! way in the background: the written bytes not yet drained that fit into the transmit
//! buffer go out, then FIN, and the socket lingers until the peer acknowledged it (at most
//! the linger time). Bytes that do not fit are discarded, as by `close()`: `drain()` first
//! to send them all, and `wait_closed()` to know they arrived.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell, UnsafeCell};
use core::future::poll_fn;
use core::net::{SocketAddr, SocketAddrV4};
use core::task::{ready, Context, Poll};

use crate::buf::Buf;
use crate::rt::{self, Error, Result};
use crate::select::{select, Either};
use crate::tcp::Conn;
use crate::tls::TlsHandle;

/// The largest single allocation a `read(n)` makes, whatever `n` is.
const READ_CHUNK: usize = 16 * 1024;

pub use crate::tcp::{DEFAULT_KEEPALIVE_MS, DEFAULT_PEER_TIMEOUT_MS};

/// Send timeout of new streams, ms: a `drain` that moves no byte this long fails with
/// `OSError(ETIMEDOUT)` and resets the connection.
pub const DEFAULT_SEND_TIMEOUT_MS: u32 = 120_000;

/// The longest line [`Stream::readline`] returns on a new stream, bytes: CPython's stream
/// limit (64 KiB). MicroPython's `readline` has none, so a peer that never sends `\n` would
/// grow the read buffer until the heap ran out; change it with [`Stream::set_line_limit`].
pub const DEFAULT_LINE_LIMIT: usize = 64 * 1024;

/// What carries the bytes.
pub(crate) enum Transport {
    /// Plain TCP on a smoltcp socket.
    Tcp(Conn),
    /// TLS: a pump task between this stream and the TCP connection (see `tls`).
    Tls(TlsHandle),
}

impl Transport {
    fn poll_recv_with(&self, cx: &mut Context<'_>, f: &mut dyn FnMut(&[u8]) -> usize) -> Poll<Result<usize>> {
        match self {
            Transport::Tcp(c) => c.poll_recv_with(cx, f),
            Transport::Tls(p) => p.poll_recv_with(cx, f),
        }
    }
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        match self {
            Transport::Tcp(c) => c.poll_send(cx, buf),
            Transport::Tls(p) => p.poll_send(cx, buf),
        }
    }
    fn try_send(&self, buf: &[u8]) -> usize {
        match self {
            Transport::Tcp(c) => c.try_send(buf),
            Transport::Tls(p) => p.try_send(buf),
        }
    }
    fn shutdown_write(&self) {
        match self {
            Transport::Tcp(c) => c.shutdown_write(),
            Transport::Tls(p) => p.shutdown_write(),
        }
    }
    fn poll_fin_acked(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Transport::Tcp(c) => c.poll_fin_acked(cx),
            Transport::Tls(p) => p.poll_closed(cx),
        }
    }
    fn abort(&self) {
        match self {
            Transport::Tcp(c) => c.abort(),
            Transport::Tls(p) => p.abort(),
        }
    }
    fn addrs(&self) -> (SocketAddrV4, SocketAddrV4) {
        match self {
            Transport::Tcp(c) => (c.peer, c.local),
            Transport::Tls(p) => p.addrs(),
        }
    }
    fn linger_us(&self) -> u64 {
        match self {
            Transport::Tcp(c) => u64::from(c.core.cfg.linger_ms) * 1000,
            Transport::Tls(p) => p.linger_us(),
        }
    }
    fn now_us(&self) -> u64 {
        match self {
            Transport::Tcp(c) => c.core.now_us(),
            Transport::Tls(p) => p.now_us(),
        }
    }
    fn set_liveness(&self, keepalive_ms: Option<u32>, timeout_ms: Option<u32>) {
        match self {
            Transport::Tcp(c) => c.set_liveness(keepalive_ms, timeout_ms),
            Transport::Tls(p) => p.set_liveness(keepalive_ms, timeout_ms),
        }
    }
    fn set_idle_probe(&self, on: bool) {
        match self {
            Transport::Tcp(c) => c.set_idle_probe(on),
            Transport::Tls(p) => p.set_idle_probe(on),
        }
    }
}

struct Inner {
    io: Transport,
    /// Read buffer. Only touched by the holder of `reading` (see `ReadLock`).
    rbuf: UnsafeCell<Buf>,
    wbuf: RefCell<Buf>,
    reading: Cell<bool>,
    draining: Cell<bool>,
    closed: Cell<bool>,
    send_timeout_ms: Cell<Option<u32>>,
    line_limit: Cell<usize>,
}

/// What `close()` does: the bytes of `wb` that fit go into `io`, then FIN.
fn send_buffered_and_fin(io: &Transport, wb: &mut Buf) {
    let n = io.try_send(wb.as_slice());
    wb.consume(n);
    wb.clear();
    io.shutdown_write();
}

impl Drop for Inner {
    /// The last handle of the stream is gone: close as `close()` does (unless it was
    /// closed or aborted already), so bytes written but not drained are not lost as long as
    /// they fit into the transmit buffer. Then the transport's own drop hands the socket to
    /// the driver, which lingers until the FIN is acknowledged (see `Core::release_socket`).
    fn drop(&mut self) {
        if !self.closed.replace(true) {
            send_buffered_and_fin(&self.io, self.wbuf.get_mut());
        }
    }
}

/// A TCP (or TLS) stream; `StreamReader` and `StreamWriter` are the same type.
pub struct Stream {
    inner: Rc<Inner>,
    /// This handle holds the read lock on behalf of `BufRead::fill_buf`.
    holds_buf_lock: bool,
}

/// The seed's `StreamReader` (the same type as [`Stream`]).
pub type StreamReader = Stream;
/// The seed's `StreamWriter` (the same type as [`Stream`]).
pub type StreamWriter = Stream;

impl Clone for Stream {
    fn clone(&self) -> Self {
        Stream {
            inner: self.inner.clone(),
            holds_buf_lock: false,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if self.holds_buf_lock {
            self.inner.reading.set(false);
        }
    }
}

/// Exclusive access to the read side for the lifetime of one read operation.
struct ReadLock<'a>(&'a Inner);

impl Drop for ReadLock<'_> {
    fn drop(&mut self) {
        self.0.reading.set(false);
    }
}

impl ReadLock<'_> {
    fn rbuf(&mut self) -> &mut Buf {
        // SAFETY: `rbuf` is only accessed through a `ReadLock` (or by the handle that holds
        // the lock for `BufRead`), and `reading` guarantees there is at most one at a time
        // on the loop thread; `&mut self` makes this borrow unique within the lock.
        unsafe { &mut *self.0.rbuf.get() }
    }

    /// Move bytes from the transport into the read buffer; `Ok(0)` is end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize>> {
        let inner = self.0;
        let rb = self.rbuf();
        inner.io.poll_recv_with(cx, &mut |d| {
            let n = d.len().min(READ_CHUNK);
            rb.extend(&d[..n]);
            n
        })
    }
}

struct WriteLock<'a>(&'a Inner);

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        self.0.draining.set(false);
    }
}

impl Stream {
    pub(crate) fn new(io: Transport) -> Stream {
        Stream {
            inner: Rc::new(Inner {
                io,
                rbuf: UnsafeCell::new(Buf::default()),
                wbuf: RefCell::new(Buf::default()),
                reading: Cell::new(false),
                draining: Cell::new(false),
                closed: Cell::new(false),
                send_timeout_ms: Cell::new(Some(DEFAULT_SEND_TIMEOUT_MS)),
                line_limit: Cell::new(DEFAULT_LINE_LIMIT),
            }),
            holds_buf_lock: false,
        }
    }

    fn read_lock(&mut self) -> Result<ReadLock<'_>> {
        if self.holds_buf_lock {
            // A `fill_buf` borrow ended without `consume`: this handle still has the lock.
            self.holds_buf_lock = false;
            self.inner.reading.set(false);
        }
        if self.inner.reading.replace(true) {
            return Err(Error::Runtime("another task is already reading this stream".into()));
        }
        Ok(ReadLock(&self.inner))
    }

    fn read_lock_shared(&self) -> Result<ReadLock<'_>> {
        if self.inner.reading.replace(true) {
            return Err(Error::Runtime("another task is already reading this stream".into()));
        }
        Ok(ReadLock(&self.inner))
    }

    fn write_lock(&self) -> Result<WriteLock<'_>> {
        if self.inner.draining.replace(true) {
            return Err(Error::Runtime("another task is already draining this stream".into()));
        }
        Ok(WriteLock(&self.inner))
    }

    /// The seed's `get_extra_info(v)`: `"peername"` (the remote address) or `"sockname"`
    /// (the local one).
    ///
    /// # Errors
    /// `ValueError` for any other key.
    pub fn get_extra_info(&self, key: &str) -> Result<SocketAddr> {
        match key {
            "peername" => Ok(self.peername()),
            "sockname" => Ok(self.sockname()),
            _ => Err(Error::Value(
                "unknown extra info key (valid: peername, sockname)".into(),
            )),
        }
    }

    /// The remote address of the connection.
    pub fn peername(&self) -> SocketAddr {
        SocketAddr::V4(self.inner.io.addrs().0)
    }

    /// The local address of the connection.
    pub fn sockname(&self) -> SocketAddr {
        SocketAddr::V4(self.inner.io.addrs().1)
    }

    /// Whether this stream is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner.io, Transport::Tls(_))
    }

    /// Read up to `n` bytes; an empty vector at end of stream. `n < 0` reads until end of
    /// stream.
    ///
    /// Cancellation: returns `Err(Cancelled)`; no byte is lost (for `n < 0`, what was read
    /// so far stays buffered for the next read).
    ///
    /// Dropping the future (a `select` branch that lost, a task dropped): the same, no byte
    /// is lost. Bytes leave the stream only in the poll that returns them; for `n < 0` what
    /// was gathered stays in the read buffer. The read lock is released, so the next read
    /// may start at once.
    ///
    /// # Errors
    /// `OSError(ECONNRESET)` if the peer reset the connection, `OSError(EBADF)` after
    /// [`Stream::abort`], `RuntimeError` if another task is reading this stream.
    pub async fn read(&self, n: isize) -> Result<Vec<u8>> {
        let mut lock = self.read_lock_shared()?;
        if n == 0 {
            return Ok(Vec::new());
        }
        poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            if n < 0 {
                loop {
                    match lock.poll_fill(cx) {
                        Poll::Ready(Ok(0)) => {
                            let rb = lock.rbuf();
                            let all = rb.take(rb.len());
                            return Poll::Ready(Ok(all));
                        }
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
            let want = n.unsigned_abs();
            if lock.rbuf().is_empty() {
                let cap = want.min(READ_CHUNK);
                let mut out = Vec::new();
                return match self.inner.io.poll_recv_with(cx, &mut |d| {
                    let k = d.len().min(cap - out.len());
                    out.extend_from_slice(&d[..k]);
                    k
                }) {
                    Poll::Ready(Ok(_)) => Poll::Ready(Ok(out)),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                };
            }
            Poll::Ready(Ok(lock.rbuf().take(want)))
        })
        .await
    }

    /// Read up to `buf.len()` bytes into `buf`; 0 at end of stream (MicroPython extension).
    ///
    /// Cancellation: returns `Err(Cancelled)`; nothing was consumed.
    ///
    /// Dropping the future: nothing was consumed either (`buf` is written and bytes taken
    /// only in the poll that returns them), and the read lock is released.
    ///
    /// # Errors
    /// As [`Stream::read`].
    pub async fn readinto(&self, buf: &mut [u8]) -> Result<usize> {
        let mut lock = self.read_lock_shared()?;
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            let rb = lock.rbuf();
            if !rb.is_empty() {
                let n = rb.len().min(buf.len());
                buf[..n].copy_from_slice(&rb.as_slice()[..n]);
                rb.consume(n);
                return Poll::Ready(Ok(n));
            }
            let mut filled = 0;
            self.inner.io.poll_recv_with(cx, &mut |d| {
                let k = d.len().min(buf.len() - filled);
                buf[filled..filled + k].copy_from_slice(&d[..k]);
                filled += k;
                k
            })
        })
        .await
    }

    /// Read exactly `n` bytes.
    ///
    /// Cancellation: returns `Err(Cancelled)`; the bytes gathered so far stay buffered.
    ///
    /// Dropping the future: the same; the gathered bytes stay in the read buffer for the
    /// next read, and the read lock is released.
    ///
    /// # Errors
    /// `EOFError` if the stream ends first (the partial bytes stay readable with `read`);
    /// otherwise as [`Stream::read`].
    pub async fn readexactly(&self, n: usize) -> Result<Vec<u8>> {
        let mut lock = self.read_lock_shared()?;
        poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            while lock.rbuf().len() < n {
                match lock.poll_fill(cx) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(Error::Eof)),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(Ok(lock.rbuf().take(n)))
        })
        .await
    }

    /// Read one line, up to and including `\n`; at end of stream the partial last line
    /// (empty if nothing is left).
    ///
    /// A line is at most the stream's line limit ([`DEFAULT_LINE_LIMIT`], 64 KiB as in
    /// CPython; [`Stream::set_line_limit`]): a peer that sends more without a `\n` gets
    /// `ValueError` instead of filling the heap. MicroPython has no limit.
    ///
    /// Cancellation: returns `Err(Cancelled)`; the partial line stays buffered.
    ///
    /// Dropping the future: the same; the partial line stays in the read buffer for the next
    /// read, and the read lock is released.
    ///
    /// # Errors
    /// As [`Stream::read`]; `ValueError` when no `\n` comes within the line limit. The
    /// bytes stay buffered (nothing is lost): `read(n)` takes them, and a `readline` after
    /// that goes on from there.
    pub async fn readline(&self) -> Result<Vec<u8>> {
        let mut lock = self.read_lock_shared()?;
        let limit = self.inner.line_limit.get();
        let mut scanned = 0;
        poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            loop {
                let rb = lock.rbuf();
                let s = rb.as_slice();
                let found = s[scanned.min(s.len())..].iter().position(|&b| b == b'\n');
                if let Some(end) = found.map(|i| scanned + i + 1).filter(|&end| end <= limit) {
                    return Poll::Ready(Ok(rb.take(end)));
                }
                if found.is_some() || s.len() >= limit {
                    return Poll::Ready(Err(Error::Value(
                        "readline: line over the limit (Stream::set_line_limit); bytes kept for read()".into(),
                    )));
                }
                scanned = s.len();
                match lock.poll_fill(cx) {
                    Poll::Ready(Ok(0)) => {
                        let rb = lock.rbuf();
                        return Poll::Ready(Ok(rb.take(rb.len())));
                    }
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }

    /// Append `buf` to the output buffer; never blocks. Call [`Stream::drain`] to send it.
    pub fn write(&self, buf: &[u8]) {
        self.inner.wbuf.borrow_mut().extend(buf);
    }

    /// Bytes written but not yet handed to the network.
    pub fn buffered(&self) -> usize {
        self.inner.wbuf.borrow().len()
    }

    /// Send everything in the output buffer to the network (into the socket's transmit
    /// buffer); always yields at least once. Fails after the send timeout without progress
    /// (see the module doc).
    ///
    /// Cancellation: returns `Err(Cancelled)`; bytes not yet sent stay buffered, in order,
    /// for the next `drain`.
    ///
    /// Dropping the future: the same. Bytes already moved into the socket go out; the rest
    /// stays in the write buffer, in order, for the next `drain` (or `close`, or the drop of
    /// the last handle). The write lock is released, and the send timeout of this call ends
    /// with it (it resets nothing).
    ///
    /// # Errors
    /// `OSError(EBADF)` if there is data to send after `close()`, `OSError(ECONNRESET)` if
    /// the peer reset the connection, `OSError(ETIMEDOUT)` after the send timeout without
    /// progress or the peer timeout, `RuntimeError` if another task is draining.
    pub async fn drain(&self) -> Result<()> {
        let _lock = self.write_lock()?;
        let mut yielded = false;
        self.with_send_deadline(|cx, progressed| {
            ready!(self.poll_flush(cx, progressed))?;
            if yielded {
                Poll::Ready(Ok(()))
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    /// Set the keep-alive interval and the peer timeout of this connection (`None`: off);
    /// see the module doc and [`DEFAULT_KEEPALIVE_MS`], [`DEFAULT_PEER_TIMEOUT_MS`]. They
    /// are armed only while this connection has bytes to send (see
    /// [`Stream::set_idle_probe`]). Not in the seed.
    ///
    /// # Errors
    /// `ValueError` for `Some(0)` in either argument (an interval of 0 ms would probe
    /// without pause, a timeout of 0 ms end the connection at once); `None` turns it off.
    /// Nothing is changed then.
    pub fn set_keepalive(&self, keepalive_ms: Option<u32>, peer_timeout_ms: Option<u32>) -> Result<()> {
        if keepalive_ms == Some(0) || peer_timeout_ms == Some(0) {
            return Err(Error::Value(
                "set_keepalive: 0 ms is not a keep-alive interval or peer timeout; give None to turn it off".into(),
            ));
        }
        self.inner.io.set_liveness(keepalive_ms, peer_timeout_ms);
        Ok(())
    }

    /// Also probe while the connection is idle (default `false`). With `true` a read on a
    /// connection whose peer vanished ends with `OSError(ETIMEDOUT)` after the peer timeout,
    /// at the cost of one small packet each keep-alive interval for as long as the
    /// connection lives; with `false` an idle connection sends nothing, and a read that
    /// must not wait forever on a silent peer needs its own `wait_for`. Not in the seed.
    ///
    /// ```no_run
    /// # // no_run: needs a network stack and a peer.
    /// # async fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let (r, w) = stack.open_connection("10.0.0.2", 1883, None).await?;
    /// r.set_keepalive(Some(60_000), Some(240_000))?;
    /// r.set_idle_probe(true); // a long-lived subscriber that only reads
    /// # drop(w); Ok(()) }
    /// ```
    pub fn set_idle_probe(&self, on: bool) {
        self.inner.io.set_idle_probe(on);
    }

    /// Set the longest line [`Stream::readline`] returns, in bytes (`\n` included; at least
    /// 1); default [`DEFAULT_LINE_LIMIT`]. Not in the seed (CPython's `limit` argument of
    /// `open_connection`, per stream here).
    ///
    /// ```no_run
    /// # async fn f(stack: &uasyncio_net::Stack) -> uasyncio::Result<()> {
    /// let (r, w) = stack.open_connection("10.0.0.2", 5000, None).await?;
    /// r.set_line_limit(512); // an AT-style protocol: short lines only
    /// let line = r.readline().await?;
    /// # drop((w, line)); Ok(()) }
    /// ```
    pub fn set_line_limit(&self, bytes: usize) {
        self.inner.line_limit.set(bytes.max(1));
    }

    /// Set how long a `drain` may go without moving a byte before it resets the connection
    /// and fails with `OSError(ETIMEDOUT)` (`None`: wait as long as the connection lives);
    /// default [`DEFAULT_SEND_TIMEOUT_MS`]. Not in the seed.
    ///
    /// # Errors
    /// `ValueError` for `Some(0)`: a drain that waits for the peer's ACK even once would
    /// reset the connection at once. Nothing is changed then.
    pub fn set_send_timeout_ms(&self, ms: Option<u32>) -> Result<()> {
        if ms == Some(0) {
            return Err(Error::Value(
                "set_send_timeout_ms: 0 ms would reset the connection at the first wait for the peer; \
                 give None to wait without limit"
                    .into(),
            ));
        }
        self.inner.send_timeout_ms.set(ms);
        Ok(())
    }

    /// Poll `f` until it is ready, failing with `ETIMEDOUT` (and resetting the connection)
    /// if it goes the send timeout without setting its progress flag. Cancellation checks
    /// are done here.
    async fn with_send_deadline<T>(
        &self,
        mut f: impl FnMut(&mut Context<'_>, &mut bool) -> Poll<Result<T>>,
    ) -> Result<T> {
        loop {
            let mut progressed = false;
            let step = poll_fn(|cx| {
                if rt::cancel_requested(cx) {
                    return Poll::Ready(Some(Err(Error::Cancelled)));
                }
                match f(cx, &mut progressed) {
                    Poll::Ready(r) => Poll::Ready(Some(r)),
                    // Bytes moved: start a new deadline.
                    Poll::Pending if progressed => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            });
            let r = match self.inner.send_timeout_ms.get() {
                None => step.await,
                Some(ms) => {
                    let deadline = self.inner.io.now_us() + u64::from(ms) * 1000;
                    match select(step, rt::sleep_until(deadline)).await {
                        Either::Left(r) => r,
                        Either::Right(Ok(())) => {
                            self.abort();
                            return Err(Error::Os(crate::rt::errno::ETIMEDOUT));
                        }
                        Either::Right(Err(e)) => return Err(e),
                    }
                }
            };
            if let Some(r) = r {
                return r;
            }
        }
    }

    /// Close the sending side: the buffered bytes that fit go out, then FIN. Reading goes
    /// on until the peer closes its side. Idempotent.
    ///
    /// "Fit" means: into the connection's transmit buffer (`StackConfig::tcp_tx_buffer`,
    /// less what it still holds; for TLS, the pump's plaintext queue); bytes beyond that are
    /// discarded. `drain()` before `close()` sends them all.
    pub fn close(&self) {
        if self.inner.closed.replace(true) {
            return;
        }
        send_buffered_and_fin(&self.inner.io, &mut self.inner.wbuf.borrow_mut());
    }

    /// Whether `close()` was called.
    pub fn is_closing(&self) -> bool {
        self.inner.closed.get()
    }

    /// Close (if not yet) and wait until the peer acknowledged our FIN, at most the stack's
    /// linger time; after that the connection is reset.
    ///
    /// Cancellation: returns `Err(Cancelled)`; the close goes on in the background.
    ///
    /// Dropping the future: once polled, `close()` has been done and goes on in the
    /// background, as after a cancel; only the wait ends, so this call no longer resets the
    /// connection at the linger deadline (the driver still does, `linger_ms` after the last
    /// handle is dropped, if the peer never acknowledges). Dropped before its first poll it
    /// has done nothing, not even the close.
    pub async fn wait_closed(&self) -> Result<()> {
        self.close();
        let deadline = self.inner.io.now_us() + self.inner.io.linger_us();
        let acked = poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            self.inner.io.poll_fin_acked(cx).map(Ok)
        });
        match select(acked, rt::sleep_until(deadline)).await {
            Either::Left(r) => r,
            Either::Right(Ok(())) => {
                self.inner.io.abort();
                Ok(())
            }
            Either::Right(Err(e)) => Err(e),
        }
    }

    /// Reset the connection now (RST); buffered data is dropped. Not in the seed.
    pub fn abort(&self) {
        self.inner.closed.set(true);
        self.inner.wbuf.borrow_mut().clear();
        self.inner.io.abort();
    }

    // ---- support for the embedded-io-async impls (module `nal`) ----

    pub(crate) async fn io_read(&mut self, buf: &mut [u8]) -> Result<usize> {
        drop(self.read_lock()?);
        self.readinto(buf).await
    }

    pub(crate) async fn io_fill_buf(&mut self) -> Result<&[u8]> {
        let mut lock = self.read_lock()?;
        let r = poll_fn(|cx| {
            if rt::cancel_requested(cx) {
                return Poll::Ready(Err(Error::Cancelled));
            }
            if !lock.rbuf().is_empty() {
                return Poll::Ready(Ok(()));
            }
            lock.poll_fill(cx).map(|r| r.map(drop))
        })
        .await;
        core::mem::forget(lock);
        // The read lock stays held by this handle until `consume` (or its next read, or its
        // drop), so no other handle can touch the buffer while the slice is borrowed.
        self.holds_buf_lock = true;
        match r {
            // SAFETY: this handle holds the read lock (`reading` is set and
            // `holds_buf_lock` records that it is ours), so no other code mutates `rbuf`
            // until `io_consume`, `read_lock` or `drop` of this handle, each of which needs
            // `&mut self`, which the returned borrow of `self` excludes.
            Ok(()) => Ok(unsafe { (*self.inner.rbuf.get()).as_slice() }),
            Err(e) => {
                self.holds_buf_lock = false;
                self.inner.reading.set(false);
                Err(e)
            }
        }
    }

    pub(crate) fn io_consume(&mut self, amt: usize) {
        if self.holds_buf_lock {
            // SAFETY: as in `io_fill_buf`: this handle holds the read lock, and `&mut self`
            // shows no slice from `io_fill_buf` is alive any more.
            unsafe { (*self.inner.rbuf.get()).consume(amt) };
            self.holds_buf_lock = false;
            self.inner.reading.set(false);
        }
    }

    pub(crate) async fn io_write(&mut self, buf: &[u8]) -> Result<usize> {
        let _lock = self.write_lock()?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.with_send_deadline(|cx, progressed| {
            // Keep byte order: whatever `write()` buffered goes first.
            ready!(self.poll_flush(cx, progressed))?;
            self.inner.io.poll_send(cx, buf)
        })
        .await
    }

    pub(crate) async fn io_flush(&mut self) -> Result<()> {
        let _lock = self.write_lock()?;
        self.with_send_deadline(|cx, progressed| self.poll_flush(cx, progressed))
            .await
    }

    /// Sends the write buffer until it is empty (`Ready(Ok)`), the socket is full
    /// (`Pending`, waker registered) or the connection failed.
    /// Sets `progressed` when it moved any byte.
    fn poll_flush(&self, cx: &mut Context<'_>, progressed: &mut bool) -> Poll<Result<()>> {
        let mut wb = self.inner.wbuf.borrow_mut();
        while !wb.is_empty() {
            let n = ready!(self.inner.io.poll_send(cx, wb.as_slice()))?;
            if n > 0 {
                *progressed = true;
            }
            wb.consume(n);
        }
        Poll::Ready(Ok(()))
    }
}
