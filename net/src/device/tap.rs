//! A Linux TAP interface as a [`NetDevice`] (feature `std`).
//!
//! The file descriptor is non-blocking; the stack reads and writes it from the loop thread.
//! To learn when frames arrive without polling, a helper thread waits in `poll(2)` on the
//! descriptor while the loop has asked to be told ("armed"); when the descriptor becomes
//! readable it sets a flag, wakes the driver task's waker and disarms itself until the loop
//! has drained the descriptor again (a `read` returned `EAGAIN`). So each burst of frames
//! costs one cross-thread wake, and an idle interface costs nothing: the helper's `poll`
//! wakes every 200 ms only to notice a dropped device.
//!
//! Gotchas: open the TAP inside the network namespace that holds it and bring it up first
//! (a name that does not exist there makes the kernel create a new, down device; `open`
//! refuses a down one with what to run), and only one process may open it.

extern crate std;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use std::io;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::NetDevice;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
/// How long the helper thread waits in one `poll(2)` before it checks for shutdown.
const HELPER_POLL_MS: libc::c_int = 200;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    /// A request for interface `name` (shorter than `IFNAMSIZ`, checked by `open`).
    fn new(name: &str, flags: libc::c_short) -> IfReq {
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        req
    }
}

struct Shared {
    readable: AtomicBool,
    stop: AtomicBool,
    waker: Mutex<Option<Waker>>,
    armed: Mutex<bool>,
    cv: Condvar,
}

impl Shared {
    fn arm(&self) {
        if let Ok(mut a) = self.armed.lock() {
            *a = true;
        }
        self.cv.notify_one();
    }
}

/// An open TAP interface.
pub struct TapDevice {
    fd: libc::c_int,
    mtu: usize,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
    name: String,
}

impl TapDevice {
    /// Open the TAP interface `name` (it must exist and be up, e.g. made with
    /// `ip tuntap add dev tap0 mode tap`) with the given IP MTU (1500 for a default TAP).
    ///
    /// # Errors
    /// `InvalidInput` for an empty or too long name, or an `ip_mtu` outside 68 (RFC 791's
    /// smallest) ..= 65,535 (the largest IPv4 datagram); the OS error of `open`,
    /// `ioctl(TUNSETIFF)` (`EBUSY` when another process has it) or
    /// of starting the helper thread; `NotConnected`, with what to run, when the interface
    /// is down, which is also what a name that does not exist in this network namespace
    /// gives (the kernel creates a new TAP for it, down; it is removed again on return).
    pub fn open(name: &str, ip_mtu: usize) -> io::Result<TapDevice> {
        if name.len() >= libc::IFNAMSIZ || name.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if !(68..=65_535).contains(&ip_mtu) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TapDevice::open: ip_mtu must be 68..=65535 (1500 for a default TAP)",
            ));
        }
        // SAFETY: the path is a NUL-terminated literal; `open` has no other preconditions.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req = IfReq::new(name, IFF_TAP | IFF_NO_PI);
        // SAFETY: `fd` is open; `req` is a properly laid out `struct ifreq` (name, then the
        // flags member of the union, padded to the union's 24 bytes) that outlives the call.
        let r = unsafe { libc::ioctl(fd, TUNSETIFF as _, &mut req as *mut IfReq) };
        if r < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: `fd` is open and owned by this function.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        if let Err(e) = check_up(name) {
            // SAFETY: `fd` is open and owned by this function.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let shared = Arc::new(Shared {
            readable: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            waker: Mutex::new(None),
            armed: Mutex::new(false),
            cv: Condvar::new(),
        });
        let s2 = shared.clone();
        let helper = std::thread::Builder::new()
            .name(alloc::format!("tap-{name}"))
            .spawn(move || helper(fd, &s2));
        let helper = match helper {
            Ok(h) => h,
            Err(e) => {
                // SAFETY: `fd` is open and owned by this function.
                unsafe { libc::close(fd) };
                return Err(e);
            }
        };
        let frame = ip_mtu + 14;
        Ok(TapDevice {
            fd,
            mtu: frame,
            rx_buf: vec![0; frame],
            tx_buf: vec![0; frame],
            shared,
            helper: Some(helper),
            name: String::from(name),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `Ok` if interface `name` is administratively up in this thread's network namespace.
///
/// `TUNSETIFF` on a name that does not exist (or exists in another namespace) creates a new
/// TAP, which is down: every frame written to it is dropped and every connect times out with
/// nothing to say why. Looking at the flags turns that into an error that says what to do.
fn check_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket(2) call; the descriptor is checked and closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut req = IfReq::new(name, 0);
    // The kernel writes `req`'s flags member.
    // SAFETY: `sock` is open; `req` is a `struct ifreq` laid out as in `open` and outlives the call.
    let r = unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req as *mut IfReq) };
    let err = io::Error::last_os_error();
    // SAFETY: `sock` is ours and no longer needed.
    unsafe { libc::close(sock) };
    if r < 0 {
        return Err(err);
    }
    if libc::c_int::from(req.flags) & libc::IFF_UP == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            alloc::format!(
                "TAP interface {name} is down in this network namespace (if it did not exist here, \
                 opening it just created it): make it with `ip tuntap add dev {name} mode tap` and \
                 `ip link set {name} up` in the namespace this program runs in"
            ),
        ));
    }
    Ok(())
}

fn helper(fd: libc::c_int, s: &Shared) {
    while !s.stop.load(Ordering::Acquire) {
        {
            let Ok(mut armed) = s.armed.lock() else { return };
            while !*armed && !s.stop.load(Ordering::Acquire) {
                match s
                    .cv
                    .wait_timeout(armed, std::time::Duration::from_millis(HELPER_POLL_MS as u64))
                {
                    Ok((g, _)) => armed = g,
                    Err(_) => return,
                }
            }
        }
        if s.stop.load(Ordering::Acquire) {
            return;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd array of length 1 for the duration of the call;
        // `fd` stays open until this thread has been joined (see `Drop for TapDevice`).
        let n = unsafe { libc::poll(&mut pfd, 1, HELPER_POLL_MS) };
        if n > 0 && (pfd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP)) != 0 {
            if let Ok(mut a) = s.armed.lock() {
                *a = false;
            }
            s.readable.store(true, Ordering::Release);
            let w = s.waker.lock().ok().and_then(|mut w| w.take());
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

impl Drop for TapDevice {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.cv.notify_one();
        if let Some(h) = self.helper.take() {
            let _ = h.join();
        }
        // SAFETY: the helper thread that also used `fd` has been joined; nobody else has it.
        unsafe { libc::close(self.fd) };
    }
}

/// A received frame, borrowed from the device's receive buffer.
pub struct TapRx<'a>(&'a [u8]);
/// Permission to write one frame.
pub struct TapTx<'a> {
    fd: libc::c_int,
    buf: &'a mut Vec<u8>,
}

impl phy::RxToken for TapRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TapTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let frame = &mut self.buf[..len];
        let r = f(frame);
        // SAFETY: `frame` is a valid readable buffer of `len` bytes; `fd` is open.
        let n = unsafe { libc::write(self.fd, frame.as_ptr().cast(), len) };
        if n < 0 {
            // A full or down TAP drops the frame, as a wire would; TCP retransmits.
            crate::fmt::trace_frame_drop(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        r
    }
}

impl phy::Device for TapDevice {
    type RxToken<'a> = TapRx<'a>;
    type TxToken<'a> = TapTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(TapRx<'_>, TapTx<'_>)> {
        // SAFETY: `rx_buf` is a valid writable buffer of its length; `fd` is open.
        let n = unsafe { libc::read(self.fd, self.rx_buf.as_mut_ptr().cast(), self.rx_buf.len()) };
        if n <= 0 {
            // EAGAIN (drained) or an error: ask the helper to tell us about the next frame.
            self.shared.readable.store(false, Ordering::Release);
            self.shared.arm();
            return None;
        }
        let n = n as usize;
        Some((
            TapRx(&self.rx_buf[..n]),
            TapTx {
                fd: self.fd,
                buf: &mut self.tx_buf,
            },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TapTx<'_>> {
        Some(TapTx {
            fd: self.fd,
            buf: &mut self.tx_buf,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

impl NetDevice for TapDevice {
    fn poll_rx_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared.readable.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if let Ok(mut w) = self.shared.waker.lock() {
            *w = Some(cx.waker().clone());
        }
        // Re-check after publishing the waker: the helper may have fired in between.
        if self.shared.readable.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.shared.arm();
        Poll::Pending
    }
}
