//! Serial ports: a UART as an async byte stream for the loop thread.
//!
//! The receive side is an [`RxRing`] that the UART's receive interrupt fills
//! ([`RxRing::push_from_isr`]) and whose [`ThreadSafeFlag`] wakes the reader; the transmit
//! side is the board's [`UartTx`]. [`SerialPort`] joins the two as an
//! `embedded_io_async::{Read, BufRead, Write}` stream, which the AT client and PPP use.
//!
//! On a host, [`tty`] (feature `std`) opens a tty or pty and runs a reader thread that
//! pushes into the same kind of ring, so tests exercise the interrupt path; `ffi` (feature
//! `ffi`) gives a C UART driver's interrupt handler a ring to feed.
//!
//! **Overruns** are never silent. The ring counts every dropped byte; the port compares the
//! count at each read, and when it grew, that read returns [`SerialError::Overrun`] once
//! (with the number lost) before the stream goes on. The lost bytes were dropped while the
//! ring was full, so the gap lies after the bytes that were waiting then: a framed protocol
//! (an AT line, a PPP frame with its FCS) must resynchronise. A reader that prefers to rely
//! on its framing alone turns the error off with [`SerialPort::set_overrun_errors`].
//!
//! **Transmit** goes through [`UartTx::try_write`]. When the hardware takes nothing, the
//! port waits for the driver's TX-ready flag, or, if the driver has none, polls every
//! [`TX_POLL_MS`] milliseconds (a bound on the added latency, and on the wake-ups while the
//! UART is busy).

mod ring;

#[cfg(feature = "ffi")]
pub mod ffi;
#[cfg(feature = "std")]
pub mod tty;

use alloc::sync::Arc;
use core::fmt;

pub use ring::{RxReader, RxRing};
use uasyncio::ThreadSafeFlag;

/// How often a port whose [`UartTx`] has no TX-ready flag retries a full transmitter, in ms.
/// ```
/// use uasyncio_cellular::serial::TX_POLL_MS;
/// // A full transmitter without a TX-ready flag adds at most this much latency per retry.
/// assert_eq!(TX_POLL_MS, 1);
/// ```
pub const TX_POLL_MS: u32 = 1;

/// The transmit half of a UART driver (the board's code implements it).
///
/// **The driver's contract with its TX-ready flag** (when [`tx_ready`](Self::tx_ready) gives
/// one): the port waits on it after `try_write` took nothing, and after `tx_idle` said
/// false. So the driver's transmit interrupt must set it (e.g. through
/// `uasyncio_serial_tx_ready_isr`) both when room appears in its queue and when the last
/// byte has left the wire; setting it more often only costs a spurious wake-up. A driver
/// that sets it only on room makes `flush` wait forever once the queue is empty.
///
/// ```
/// use uasyncio::ThreadSafeFlag;
/// use uasyncio_cellular::serial::UartTx;
///
/// static TX_READY: ThreadSafeFlag = ThreadSafeFlag::new();
/// /// A driver whose hardware FIFO takes 16 bytes (stands in for register writes).
/// struct Uart { fifo: usize }
/// impl UartTx for Uart {
///     fn try_write(&mut self, bytes: &[u8]) -> usize {
///         let n = bytes.len().min(16 - self.fifo);
///         self.fifo += n; // write n bytes to the data register
///         n
///     }
///     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> {
///         Some(&TX_READY) // set by the TX interrupt on room and when the line goes idle
///     }
///     fn tx_idle(&mut self) -> bool {
///         self.fifo == 0 // the hardware's "transmitter empty" bit
///     }
/// }
/// # let mut u = Uart { fifo: 0 };
/// # assert_eq!(u.try_write(&[0; 20]), 16);
/// ```
pub trait UartTx {
    /// Queue as many of `bytes` as the hardware takes now, without blocking; 0 if it takes none.
    /// The simplest driver: one that always takes everything (a test sink; a UART with a
    /// deep FIFO). With no TX-ready flag, the port would poll every [`TX_POLL_MS`] if it ever
    /// took nothing.
    /// ```
    /// use uasyncio::ThreadSafeFlag;
    /// use uasyncio_cellular::serial::UartTx;
    ///
    /// #[derive(Default)]
    /// struct Sink(Vec<u8>);
    /// impl UartTx for Sink {
    ///     fn try_write(&mut self, bytes: &[u8]) -> usize {
    ///         self.0.extend_from_slice(bytes);
    ///         bytes.len()
    ///     }
    ///     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> {
    ///         None
    ///     }
    /// }
    /// let mut tx = Sink::default();
    /// assert_eq!(tx.try_write(b"AT\r"), 3);
    /// assert!(tx.tx_idle()); // the default
    /// ```
    fn try_write(&mut self, bytes: &[u8]) -> usize;
    /// The flag the TX-ready interrupt sets (or `None`: the port polls every [`TX_POLL_MS`]).
    /// See the trait docs for when the driver must set it.
    fn tx_ready(&self) -> Option<&'static ThreadSafeFlag>;
    /// True once every queued byte has left the wire (used by `flush`). The default says
    /// true at once: right for a driver without a way to tell. A driver that says false
    /// must set its TX-ready flag when the line goes idle.
    fn tx_idle(&mut self) -> bool {
        true
    }
}

/// Why a serial read or write failed. `Display` says what to do about it:
///
/// ```
/// use uasyncio_cellular::serial::SerialError;
/// let e = SerialError::Overrun { lost: 12 };
/// assert!(e.to_string().starts_with("serial overrun: 12 received bytes dropped"));
/// let e = SerialError::Os(13);
/// assert_eq!(
///     e.to_string(),
///     "serial I/O error: errno 13 (EACCES: permission denied - run as root or join the port's group, e.g. dialout)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SerialError {
    /// Bytes were dropped because the receive ring was full: `lost` since the last report.
    Overrun {
        /// Bytes dropped since the previous report.
        lost: u32,
    },
    /// The task was cancelled while waiting (the stream is intact; the call may be retried).
    Cancelled,
    /// The receive side ended (the tty's reader thread saw EOF: the other end closed).
    Closed,
    /// An operating-system error (errno), from the tty.
    Os(i32),
    /// A bad argument, with what to change.
    Invalid(&'static str),
    /// The runtime refused a wait (e.g. a second task reading the same port).
    Runtime(uasyncio::Error),
}

impl fmt::Display for SerialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerialError::Overrun { lost } => write!(
                f,
                "serial overrun: {lost} received bytes dropped (the receive ring was full) - \
                 read more often or give the RxRing more room"
            ),
            SerialError::Cancelled => f.write_str("serial I/O cancelled"),
            SerialError::Closed => f.write_str("serial port closed by the other end"),
            SerialError::Os(e) => {
                write!(f, "serial I/O error: errno {e}")?;
                // The host tty's common ones (Linux errno values; only the tty gives `Os`).
                f.write_str(match e {
                    2 => " (ENOENT: no such device - check the port's path)",
                    5 => " (EIO: the device failed or was unplugged)",
                    13 => " (EACCES: permission denied - run as root or join the port's group, e.g. dialout)",
                    16 => " (EBUSY: another program has the port open)",
                    25 => " (ENOTTY: not a serial port)",
                    _ => "",
                })
            }
            SerialError::Invalid(what) => write!(f, "serial: {what}"),
            SerialError::Runtime(e) => write!(f, "serial: {e}"),
        }
    }
}

impl core::error::Error for SerialError {}

impl embedded_io::Error for SerialError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            // Bytes are missing from the stream, which goes on: a PPP link drops the damaged
            // frame and keeps running (see `uasyncio_net::ppp`), anything else may retry.
            SerialError::Overrun { .. } => ErrorKind::InvalidData,
            SerialError::Cancelled => ErrorKind::Interrupted,
            SerialError::Closed => ErrorKind::BrokenPipe,
            SerialError::Os(_) => ErrorKind::Other,
            SerialError::Invalid(_) => ErrorKind::InvalidInput,
            SerialError::Runtime(_) => ErrorKind::Other,
        }
    }
}

impl From<SerialError> for uasyncio::Error {
    fn from(e: SerialError) -> Self {
        match e {
            SerialError::Cancelled => uasyncio::Error::Cancelled,
            SerialError::Runtime(e) => e,
            SerialError::Os(n) => uasyncio::Error::Os(n),
            SerialError::Closed => uasyncio::Error::Eof,
            other => uasyncio::Error::user(other),
        }
    }
}

fn from_wait(e: uasyncio::Error) -> SerialError {
    if e.is_cancelled() {
        SerialError::Cancelled
    } else {
        SerialError::Runtime(e)
    }
}

/// How the port holds its ring: a `static` (firmware) or shared with a reader thread (tty).
enum Ring<const N: usize> {
    Static(RxReader<'static, N>),
    Shared {
        // Field order: the reader borrows the ring the Arc keeps alive, so it drops first.
        reader: RxReader<'static, N>,
        _keep: Arc<RxRing<N>>,
    },
}

impl<const N: usize> Ring<N> {
    fn reader(&mut self) -> &mut RxReader<'static, N> {
        match self {
            Ring::Static(r) => r,
            Ring::Shared { reader, .. } => reader,
        }
    }
}

/// An async serial port: `embedded_io_async::{Read, Write, BufRead}` over an [`RxRing`] and
/// a [`UartTx`]. Lives on the loop thread; one task reads at a time (the ring's flag has
/// one waiter).
///
/// ```no_run
/// # // no_run: needs a UART; shows the wiring.
/// use uasyncio_cellular::serial::{RxRing, SerialPort, UartTx};
/// use uasyncio::ThreadSafeFlag;
///
/// static RX: RxRing<1024> = RxRing::new();       // the RX interrupt calls RX.push_from_isr(..)
/// static TX_READY: ThreadSafeFlag = ThreadSafeFlag::new(); // the TX interrupt sets it
///
/// struct Uart1;
/// impl UartTx for Uart1 {
///     fn try_write(&mut self, bytes: &[u8]) -> usize { /* fill the FIFO */ bytes.len() }
///     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> { Some(&TX_READY) }
/// }
///
/// uasyncio::run(async {
///     use embedded_io_async::{Read, Write};
///     let mut port = SerialPort::new(&RX, Uart1);
///     port.write_all(b"AT\r").await.ok();
///     let mut buf = [0u8; 16];
///     let n = port.read(&mut buf).await.unwrap_or(0);
///     Ok(())
/// }).unwrap();
/// ```
pub struct SerialPort<T: UartTx, const N: usize> {
    rx: Ring<N>,
    tx: T,
    /// The ring's overrun count already reported.
    seen_overruns: u32,
    overrun_errors: bool,
}

impl<T: UartTx, const N: usize> fmt::Debug for SerialPort<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialPort")
            .field("overruns", &self.overruns())
            .finish_non_exhaustive()
    }
}

impl<T: UartTx, const N: usize> SerialPort<T, N> {
    /// A port reading `rx` and writing through `tx`.
    ///
    /// # Panics
    /// If another `SerialPort` (or [`RxReader`]) already reads `rx`: a ring has one reader.
    /// [`try_new`](Self::try_new) returns an error instead.
    /// ```
    /// use embedded_io_async::{Read, Write};
    /// use uasyncio_cellular::serial::{RxRing, SerialPort, UartTx};
    /// # use uasyncio::ThreadSafeFlag;
    /// # /// Takes every byte at once (see `UartTx::try_write`).
    /// # #[derive(Default)]
    /// # struct Sink(Vec<u8>);
    /// # impl UartTx for Sink {
    /// #     fn try_write(&mut self, bytes: &[u8]) -> usize { self.0.extend_from_slice(bytes); bytes.len() }
    /// #     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> { None }
    /// # }
    /// static RX: RxRing<256> = RxRing::new();
    /// uasyncio::run(async {
    ///     let mut port = SerialPort::new(&RX, Sink::default());
    ///     port.write_all(b"AT\r").await?;
    ///     assert_eq!(port.tx().0, b"AT\r");
    ///     RX.push_from_isr(b"\r\nOK\r\n"); // the RX interrupt
    ///     let mut buf = [0u8; 16];
    ///     let n = port.read(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"\r\nOK\r\n");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn new(rx: &'static RxRing<N>, tx: T) -> Self {
        match Self::try_new(rx, tx) {
            Ok(p) => p,
            Err(_) => panic!("SerialPort::new: this RxRing already has a reader (one SerialPort per ring)"),
        }
    }

    /// As [`new`](Self::new), but `Err(SerialError::Invalid)` if `rx` already has a reader.
    /// ```
    /// use uasyncio_cellular::serial::{RxRing, SerialError, SerialPort, UartTx};
    /// # use uasyncio::ThreadSafeFlag;
    /// # /// Takes every byte at once (see `UartTx::try_write`).
    /// # #[derive(Default)]
    /// # struct Sink(Vec<u8>);
    /// # impl UartTx for Sink {
    /// #     fn try_write(&mut self, bytes: &[u8]) -> usize { self.0.extend_from_slice(bytes); bytes.len() }
    /// #     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> { None }
    /// # }
    /// static RX: RxRing<256> = RxRing::new();
    /// let first = SerialPort::try_new(&RX, Sink::default()).unwrap();
    /// let second = SerialPort::try_new(&RX, Sink::default());
    /// assert!(matches!(second, Err(SerialError::Invalid(_)))); // one port per ring
    /// drop(first);
    /// assert!(SerialPort::try_new(&RX, Sink::default()).is_ok());
    /// ```
    pub fn try_new(rx: &'static RxRing<N>, tx: T) -> Result<Self, SerialError> {
        let reader = rx.reader().ok_or(SerialError::Invalid(
            "this RxRing already has a reader (one SerialPort per ring)",
        ))?;
        Ok(Self::from_ring(Ring::Static(reader), tx))
    }

    /// A port over a ring shared with its producer through an `Arc` (a host reader thread).
    pub fn with_shared_ring(rx: Arc<RxRing<N>>, tx: T) -> Result<Self, SerialError> {
        let ptr: *const RxRing<N> = Arc::as_ptr(&rx);
        // Soundness: the `Arc` is stored next to the reader in `Ring::Shared` and dropped after
        // it (field order), so the ring outlives every use of this reference; the reference
        // never leaves the port with the `'static` lifetime (`Ring::reader` reborrows it).
        // SAFETY: as argued in the comment just above.
        let ring: &'static RxRing<N> = unsafe { &*ptr };
        let reader = ring.reader().ok_or(SerialError::Invalid(
            "this RxRing already has a reader (one SerialPort per ring)",
        ))?;
        Ok(Self::from_ring(Ring::Shared { reader, _keep: rx }, tx))
    }

    fn from_ring(mut rx: Ring<N>, tx: T) -> Self {
        let seen_overruns = rx.reader().ring().overruns();
        SerialPort {
            rx,
            tx,
            seen_overruns,
            overrun_errors: true,
        }
    }

    /// Bytes the receive ring has dropped since it was made.
    /// ```
    /// use embedded_io_async::Read;
    /// use uasyncio_cellular::serial::{RxRing, SerialError, SerialPort, UartTx};
    /// # use uasyncio::ThreadSafeFlag;
    /// # /// Takes every byte at once (see `UartTx::try_write`).
    /// # #[derive(Default)]
    /// # struct Sink(Vec<u8>);
    /// # impl UartTx for Sink {
    /// #     fn try_write(&mut self, bytes: &[u8]) -> usize { self.0.extend_from_slice(bytes); bytes.len() }
    /// #     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> { None }
    /// # }
    /// static RX: RxRing<4> = RxRing::new();
    /// uasyncio::run(async {
    ///     let mut port = SerialPort::new(&RX, Sink::default());
    ///     RX.push_from_isr(b"123456"); // 2 bytes do not fit
    ///     assert_eq!(port.overruns(), 2);
    ///     let mut buf = [0u8; 8];
    ///     // The next read reports the loss once, then the stream goes on.
    ///     assert_eq!(port.read(&mut buf).await, Err(SerialError::Overrun { lost: 2 }));
    ///     assert_eq!(port.read(&mut buf).await, Ok(4));
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn overruns(&self) -> u32 {
        match &self.rx {
            Ring::Static(r) => r.ring().overruns(),
            Ring::Shared { reader, .. } => reader.ring().overruns(),
        }
    }

    /// Whether a read reports new overruns as [`SerialError::Overrun`] (default true). With
    /// false the count is still kept ([`overruns`](Self::overruns)) but reads go on silently.
    /// ```
    /// use embedded_io_async::Read;
    /// use uasyncio_cellular::serial::{RxRing, SerialPort, UartTx};
    /// # use uasyncio::ThreadSafeFlag;
    /// # /// Takes every byte at once (see `UartTx::try_write`).
    /// # #[derive(Default)]
    /// # struct Sink(Vec<u8>);
    /// # impl UartTx for Sink {
    /// #     fn try_write(&mut self, bytes: &[u8]) -> usize { self.0.extend_from_slice(bytes); bytes.len() }
    /// #     fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> { None }
    /// # }
    /// static RX: RxRing<4> = RxRing::new();
    /// uasyncio::run(async {
    ///     let mut port = SerialPort::new(&RX, Sink::default());
    ///     port.set_overrun_errors(false); // e.g. PPP: its frame check finds the damage
    ///     RX.push_from_isr(b"123456");
    ///     let mut buf = [0u8; 8];
    ///     assert_eq!(port.read(&mut buf).await, Ok(4)); // no error
    ///     assert_eq!(port.overruns(), 2); // but counted
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_overrun_errors(&mut self, on: bool) {
        self.overrun_errors = on;
    }

    /// The transmit driver.
    pub fn tx(&mut self) -> &mut T {
        &mut self.tx
    }

    /// Reports an overrun not reported yet.
    fn check_overrun(&mut self) -> Result<(), SerialError> {
        let now = self.overruns();
        if now != self.seen_overruns {
            let lost = now.wrapping_sub(self.seen_overruns);
            self.seen_overruns = now;
            if self.overrun_errors {
                return Err(SerialError::Overrun { lost });
            }
        }
        Ok(())
    }

    /// Waits until the ring holds a byte (Ok(true)), or is closed and empty (Ok(false)).
    async fn wait_readable(&mut self) -> Result<bool, SerialError> {
        loop {
            self.check_overrun()?;
            let reader = self.rx.reader();
            if !reader.ring().is_empty() {
                return Ok(true);
            }
            if let Some(errno) = reader.ring().closed() {
                // Bytes pushed before the close are visible (the close is a Release after
                // the last head store): re-check emptiness once more.
                if reader.ring().is_empty() {
                    return match errno {
                        0 => Ok(false),
                        e => Err(SerialError::Os(e)),
                    };
                }
                continue;
            }
            let ring = reader.ring();
            ring.flag().wait().await.map_err(from_wait)?;
        }
    }

    async fn wait_tx(&mut self) -> Result<(), SerialError> {
        match self.tx.tx_ready() {
            Some(flag) => flag.wait().await.map_err(from_wait),
            None => uasyncio::sleep_ms(TX_POLL_MS).await.map_err(from_wait),
        }
    }
}

impl<T: UartTx, const N: usize> embedded_io::ErrorType for SerialPort<T, N> {
    type Error = SerialError;
}

/// **Cancellation:** a read waiting for bytes returns `Err(SerialError::Cancelled)`; no byte
/// is lost (bytes are only taken from the ring by a read that returns them). Dropping the
/// future is the same.
impl<T: UartTx, const N: usize> embedded_io_async::Read for SerialPort<T, N> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.wait_readable().await? {
            return Ok(0);
        }
        Ok(self.rx.reader().pop(buf))
    }
}

/// **Cancellation:** as `read`: nothing is consumed until `consume` is called.
#[cfg(not(loom))]
impl<T: UartTx, const N: usize> embedded_io_async::BufRead for SerialPort<T, N> {
    async fn fill_buf(&mut self) -> Result<&[u8], SerialError> {
        if !self.wait_readable().await? {
            return Ok(&[]);
        }
        Ok(self.rx.reader().peek())
    }

    fn consume(&mut self, amt: usize) {
        self.rx.reader().consume(amt);
    }
}

/// **Cancellation:** a write waiting for room returns `Err(SerialError::Cancelled)` having
/// queued nothing (a write that queued bytes returns their count at once). `flush` cancelled
/// returns `Err(Cancelled)`; the bytes are still sent by the hardware. Dropping either future
/// is the same.
impl<T: UartTx, const N: usize> embedded_io_async::Write for SerialPort<T, N> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, SerialError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.tx.try_write(buf).min(buf.len());
            if n > 0 {
                return Ok(n);
            }
            self.wait_tx().await?;
        }
    }

    async fn flush(&mut self) -> Result<(), SerialError> {
        while !self.tx.tx_idle() {
            self.wait_tx().await?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use alloc::string::ToString;
    use core::cell::RefCell;
    use std::rc::Rc;
    use std::vec::Vec;

    use embedded_io_async::{BufRead, Read, Write};

    use super::*;

    /// A transmitter that takes at most 3 bytes per call and every other call none.
    struct SlowTx {
        sent: Rc<RefCell<Vec<u8>>>,
        calls: u32,
    }
    impl UartTx for SlowTx {
        fn try_write(&mut self, bytes: &[u8]) -> usize {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return 0;
            }
            let n = bytes.len().min(3);
            self.sent.borrow_mut().extend_from_slice(&bytes[..n]);
            n
        }
        fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> {
            None
        }
    }

    #[test]
    fn an_os_error_names_the_common_errnos() {
        assert_eq!(
            SerialError::Os(2).to_string(),
            "serial I/O error: errno 2 (ENOENT: no such device - check the port's path)"
        );
        assert_eq!(SerialError::Os(99).to_string(), "serial I/O error: errno 99");
    }

    #[test]
    fn read_write_overrun_and_close() {
        static RX: RxRing<8> = RxRing::new();
        let sent = Rc::new(RefCell::new(Vec::new()));
        let tx = SlowTx {
            sent: sent.clone(),
            calls: 0,
        };
        let loop_ = uasyncio::new_event_loop().unwrap();
        loop_.use_virtual_time(true);
        uasyncio::run(async move {
            let mut port = SerialPort::new(&RX, tx);
            assert!(SerialPort::try_new(
                &RX,
                SlowTx {
                    sent: Rc::default(),
                    calls: 0
                }
            )
            .is_err());
            port.write_all(b"AT+CGDCONT\r").await.unwrap();
            port.flush().await.unwrap();
            assert_eq!(RX.push_from_isr(b"0123456789"), 8);
            let mut buf = [0u8; 4];
            assert_eq!(port.read(&mut buf).await, Err(SerialError::Overrun { lost: 2 }));
            assert_eq!(port.read(&mut buf).await, Ok(4));
            assert_eq!(&buf, b"0123");
            let got = port.fill_buf().await.unwrap().to_vec();
            assert_eq!(got, b"4567");
            port.consume(2);
            port.set_overrun_errors(false);
            assert_eq!(RX.push_from_isr(b"abcdefgh"), 6); // 2 waiting, 6 free
            assert_eq!(port.read(&mut buf).await, Ok(4), "no error: overrun errors are off");
            assert_eq!(&buf, b"67ab");
            assert_eq!(port.overruns(), 4);
            let mut rest = [0u8; 8];
            assert_eq!(port.read(&mut rest).await, Ok(4));
            assert_eq!(&rest[..4], b"cdef");
            // A reader thread sets the flag later: the read waits for it.
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(5));
                RX.push_from_isr(b"Z");
                RX.close(0);
            });
            assert_eq!(port.read(&mut buf).await, Ok(1));
            assert_eq!(buf[0], b'Z');
            assert_eq!(port.read(&mut buf).await, Ok(0), "EOF after close");
            Ok(())
        })
        .unwrap();
        assert_eq!(&*sent.borrow(), b"AT+CGDCONT\r");
    }

    #[test]
    fn errors_have_clear_messages() {
        let e = SerialError::Overrun { lost: 3 };
        assert!(e.to_string().contains("3 received bytes dropped"));
        assert_eq!(
            embedded_io::Error::kind(&SerialError::Cancelled),
            embedded_io::ErrorKind::Interrupted
        );
        assert_eq!(
            uasyncio::Error::from(SerialError::Cancelled),
            uasyncio::Error::Cancelled
        );
    }
}
