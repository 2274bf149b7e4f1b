//! The seam between the network stack and the uasyncio runtime.
//!
//! Everything this crate needs from the event loop goes through this one module: the error
//! type, starting a task, the clock, sleeping until a deadline, and the
//! cooperative-cancellation probe. The rest of the crate never names the runtime.
//!
//! Time is the loop's clock (`uasyncio::ticks_ms`), so a loop running on virtual time
//! (`Loop::use_virtual_time`) drives smoltcp's timers virtually too: with the in-memory
//! device pair, a retransmission timeout then costs no wall time at all. That is how the
//! loss tests move 1 MiB through 10 % loss in well under a second.

use core::future::Future;
use core::task::Context;

pub use uasyncio::{Error, Result};

/// errno values used in [`Error::Os`], with their Linux numbers (MicroPython reports the
/// same numbers in `OSError.errno`).
pub mod errno {
    /// I/O error: the byte stream under a link (a serial port) failed.
    pub const EIO: i32 = 5;
    /// Bad file descriptor: the stream or server was closed by this side.
    pub const EBADF: i32 = 9;
    /// Try again: a UDP socket's transmit buffer has no room for the datagram now
    /// (`UdpSocket::try_send_to`).
    pub const EAGAIN: i32 = 11;
    /// Out of memory: every socket slot (or DNS query slot) of the stack is in use. For TCP
    /// the pool is `StackConfig::max_sockets` (connections, listeners and closing sockets
    /// together), and the stack logs a warning (`log::warn!`) with how many slots are
    /// listening and how many still closing; for UDP `StackConfig::max_udp_sockets`.
    pub const ENOMEM: i32 = 12;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Broken pipe: the byte stream under a link refused further writes.
    pub const EPIPE: i32 = 32;
    /// Message too long: a datagram larger than the socket's buffer or than one IP packet of
    /// the link carries (the stack does not fragment).
    pub const EMSGSIZE: i32 = 90;
    /// Address already in use: a server already listens on that port (TCP), or another UDP
    /// socket is bound to it.
    pub const EADDRINUSE: i32 = 98;
    /// The requested local address is not one of the stack's addresses.
    pub const EADDRNOTAVAIL: i32 = 99;
    /// The network went down under an open connection (the PPP link ended, or the stack
    /// was stopped with `Stack::shutdown`): what the connection's reads and writes report
    /// once the link is gone; after `Stack::shutdown` also what new connections, servers,
    /// name lookups and the stack's UDP sockets get.
    pub const ENETDOWN: i32 = 100;
    /// The network is unreachable: the interface has no IPv4 address (yet, or any more),
    /// so a new connection cannot even start.
    pub const ENETUNREACH: i32 = 101;
    /// Connection reset by the peer.
    pub const ECONNRESET: i32 = 104;
    /// No buffer space available: a UDP socket's transmit buffer stayed full for its whole
    /// send timeout (the next hop does not answer ARP, or the link is stalled).
    pub const ENOBUFS: i32 = 105;
    /// The socket is not connected.
    pub const ENOTCONN: i32 = 107;
    /// The connection attempt timed out.
    pub const ETIMEDOUT: i32 = 110;
    /// The peer refused the connection (it answered the SYN with RST).
    pub const ECONNREFUSED: i32 = 111;
    /// No route to host.
    pub const EHOSTUNREACH: i32 = 113;
    /// Name resolution failed (the name does not exist or no server answered): the value
    /// that MicroPython's unix port reports from `getaddrinfo` (`EAI_NONAME`).
    pub const EAI_NONAME: i32 = -2;
    /// A name lookup got no answer in time (`getaddrinfo`'s `EAI_AGAIN`, "temporary failure
    /// in name resolution"): apart from a connect's `ETIMEDOUT`, so the two can be told apart.
    pub const EAI_AGAIN: i32 = -3;
}

/// The loop's monotonic clock in microseconds (millisecond resolution).
#[inline]
pub fn now_us() -> u64 {
    uasyncio::ticks_ms() * 1000
}

/// Sleep until the loop clock reaches `deadline_us` (rounded up to the next millisecond).
///
/// Cancellation: `Err(Cancelled)`, as `uasyncio::sleep_ms`. Dropping the future disarms
/// its timer (as dropping `uasyncio::sleep_ms`'s does): nothing is left behind.
pub async fn sleep_until(deadline_us: u64) -> Result<()> {
    let ms = deadline_us.saturating_sub(now_us()).div_ceil(1000);
    uasyncio::sleep_ms(u32::try_from(ms).unwrap_or(u32::MAX)).await
}

/// Whether the task being polled has a pending cancel; consumes it.
///
/// Every future of this crate calls this at the start of each poll and returns
/// `Err(Error::Cancelled)` when it says true, before touching any data, so a cancelled read
/// leaves all received bytes in place for the next read.
#[inline]
pub fn cancel_requested(cx: &mut Context<'_>) -> bool {
    uasyncio::cancel::poll_cancelled_waiting(cx, uasyncio::task::WaitingOn::Io)
}

/// Start one of this crate's internal tasks (driver, accept loop, TLS pump), detached.
pub fn spawn_detached<F: Future<Output = ()> + 'static>(fut: F) {
    drop(uasyncio::create_task(async move {
        fut.await;
        Ok(())
    }));
}

/// Start a user task (a server callback), detached: an error it ends with goes to the
/// loop's exception handler, as an unretrieved task error does in MicroPython.
pub fn spawn_user<F, T>(fut: F)
where
    F: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    drop(uasyncio::create_task(fut));
}
