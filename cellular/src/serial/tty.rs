//! A tty or pty as a [`SerialPort`] on a host (feature `std`).
//!
//! The receive side copies what an interrupt-driven UART does: a reader thread blocks in
//! `read(2)` and pushes every chunk into an [`RxRing`] with [`RxRing::push_from_isr`], whose
//! flag wakes the loop. So the host tests run the same ring, flag and overrun path as a
//! board. The transmit side writes with `write(2)` on a second, non-blocking descriptor of
//! the same device ([`UartTx::try_write`] must not block); a full kernel buffer (`EAGAIN`)
//! makes the port poll every [`TX_POLL_MS`](super::TX_POLL_MS) ms.
//!
//! The device is put in raw mode (`cfmakeraw`: no echo, no line editing, no CR/LF mapping,
//! 8N1), with no flow control (neither RTS/CTS nor XON/XOFF, which would eat 0x11/0x13 of a
//! PPP stream), `VMIN = 1, VTIME = 0` (a read blocks until a byte arrives), and the given
//! baud rate (meaningless on a pty, but set all the same).
//!
//! Unlike a UART's FIFO, a tty has a kernel buffer: the reader thread reads only as much as
//! the ring has room for and leaves the rest in the kernel (a pty's writer then blocks), so
//! a loop that falls behind slows the line instead of losing bytes. The ring's overrun path
//! is still what a board's interrupt handler uses.
//!
//! The reader thread waits in `poll(2)` with a 50 ms timeout so that dropping the port
//! (which drops [`TtyTx`]) can stop it: the drop sets a stop bit and joins the thread, so it
//! takes up to 50 ms. EOF or an error on the device closes the ring (the port's reads then
//! return 0 or `SerialError::Os`).

use alloc::ffi::CString;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::{RxRing, SerialError, SerialPort, UartTx};
use uasyncio::ThreadSafeFlag;

/// Receive ring size of a tty port.
pub const TTY_RING: usize = 4096;

/// A tty or pty opened by [`open`]: a [`SerialPort`] whose transmitter is the device.
pub type TtyPort = SerialPort<TtyTx, TTY_RING>;

/// The transmit half of a tty (and the owner of its reader thread).
#[derive(Debug)]
pub struct TtyTx {
    fd: libc::c_int,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn baud_constant(baud: u32) -> Option<libc::speed_t> {
    Some(match baud {
        1200 => libc::B1200,
        2400 => libc::B2400,
        4800 => libc::B4800,
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115200 => libc::B115200,
        230400 => libc::B230400,
        460800 => libc::B460800,
        921600 => libc::B921600,
        _ => return None,
    })
}

fn open_fd(path: &CString, flags: libc::c_int) -> Result<libc::c_int, SerialError> {
    // SAFETY: `path` is a valid NUL-terminated string; `open` has no other preconditions.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(SerialError::Os(errno()))
    } else {
        Ok(fd)
    }
}

fn close_fd(fd: libc::c_int) {
    // SAFETY: `fd` is a descriptor this module opened and closes exactly once.
    unsafe { libc::close(fd) };
}

fn make_raw(fd: libc::c_int, speed: libc::speed_t) -> Result<(), SerialError> {
    // SAFETY: `termios` is plain old data; zeroed is a valid value to be overwritten.
    let mut t: libc::termios = unsafe { core::mem::zeroed() };
    // SAFETY: `fd` is open and `t` is a valid out-pointer.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(SerialError::Os(errno()));
    }
    // SAFETY: `t` is a valid termios.
    unsafe { libc::cfmakeraw(&mut t) };
    t.c_cflag &= !libc::CRTSCTS;
    t.c_cflag |= libc::CLOCAL | libc::CREAD;
    t.c_iflag &= !(libc::IXON | libc::IXOFF | libc::IXANY);
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // SAFETY: `t` is a valid termios; `speed` a valid speed constant.
    if unsafe { libc::cfsetspeed(&mut t, speed) } != 0 {
        return Err(SerialError::Os(errno()));
    }
    // SAFETY: `fd` is open and `t` a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(SerialError::Os(errno()));
    }
    Ok(())
}

/// Opens the tty or pty at `path` in raw mode at `baud` and starts its reader thread.
///
/// Errors: `SerialError::Invalid` for an unsupported baud rate (use 1200 … 921600, one of
/// the standard rates) or a path with a NUL byte; `SerialError::Os(errno)` if the device
/// cannot be opened or configured (ENOENT: no such device; EACCES: permissions).
///
/// ```no_run
/// # // no_run: needs a serial device.
/// let port = uasyncio_cellular::serial::tty::open("/dev/ttyUSB2", 115_200).unwrap();
/// ```
pub fn open(path: &str, baud: u32) -> Result<TtyPort, SerialError> {
    let speed = baud_constant(baud).ok_or(SerialError::Invalid(
        "unsupported baud rate: use a standard rate (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)",
    ))?;
    let cpath = CString::new(path).map_err(|_| SerialError::Invalid("the tty path contains a NUL byte"))?;
    let rfd = open_fd(&cpath, libc::O_RDWR)?;
    if let Err(e) = make_raw(rfd, speed) {
        close_fd(rfd);
        return Err(e);
    }
    let wfd = match open_fd(&cpath, libc::O_RDWR | libc::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) => {
            close_fd(rfd);
            return Err(e);
        }
    };
    let ring: Arc<RxRing<TTY_RING>> = Arc::new(RxRing::new());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let ring = ring.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("tty-rx".into())
            .spawn(move || reader_thread(rfd, &ring, &stop))
            .map_err(|e| {
                close_fd(rfd);
                close_fd(wfd);
                SerialError::Os(e.raw_os_error().unwrap_or(libc::EAGAIN))
            })?
    };
    let tx = TtyTx {
        fd: wfd,
        stop,
        reader: Some(reader),
    };
    SerialPort::with_shared_ring(ring, tx)
}

/// The "interrupt handler" of a tty: blocks in poll/read and pushes into the ring.
fn reader_thread(fd: libc::c_int, ring: &RxRing<TTY_RING>, stop: &AtomicBool) {
    let mut buf = [0u8; 512];
    let end = loop {
        if stop.load(Ordering::Acquire) {
            break None;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 50) };
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            break Some(e);
        }
        if r == 0 {
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // A pty whose other end is not open (yet) reports POLLHUP: wait, do not spin.
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        }
        // Backpressure: read only what the ring can take. The rest stays in the kernel's
        // tty buffer (and a pty's writer blocks), as a host serial driver buffers for its
        // application; dropping bytes here would fake a hardware overrun.
        let room = ring.capacity() - ring.len();
        if room == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        let want = room.min(buf.len());
        // SAFETY: `buf` is valid for `buf.len()` bytes and `want <= buf.len()`; `fd` is open.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), want) };
        match n {
            0 => break Some(0),
            n if n > 0 => {
                let n = usize::try_from(n).unwrap_or(0).min(buf.len());
                ring.push_from_isr(&buf[..n]);
            }
            _ => {
                let e = errno();
                if e == libc::EINTR || e == libc::EAGAIN {
                    continue;
                }
                if e == libc::EIO {
                    // Linux: the pty's other end closed (or is not open yet).
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                break Some(e);
            }
        }
    };
    if let Some(e) = end {
        ring.close(e);
    }
    close_fd(fd);
}

impl UartTx for TtyTx {
    fn try_write(&mut self, bytes: &[u8]) -> usize {
        // SAFETY: `bytes` is valid for `bytes.len()` bytes; `fd` is open (non-blocking).
        let n = unsafe { libc::write(self.fd, bytes.as_ptr().cast(), bytes.len()) };
        usize::try_from(n).unwrap_or(0)
    }

    fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> {
        None
    }

    fn tx_idle(&mut self) -> bool {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one int.
        let r = unsafe { libc::ioctl(self.fd, libc::TIOCOUTQ, &mut queued) };
        r != 0 || queued == 0
    }
}

impl Drop for TtyTx {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        close_fd(self.fd);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::vec::Vec;

    use embedded_io_async::{Read, Write};

    use super::*;

    /// A pty pair: we open the slave path as the "modem port"; the test plays the modem
    /// on the master fd.
    fn pty() -> (libc::c_int, std::string::String) {
        let mut master = 0;
        let mut slave = 0;
        // SAFETY: valid out-pointers; null name/termios/winsize are allowed.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                core::ptr::null_mut(),
                core::ptr::null(),
                core::ptr::null(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: `termios` is plain old data; zeroed is a valid value to be overwritten.
        let mut t: libc::termios = unsafe { core::mem::zeroed() };
        // SAFETY: valid fd and termios; raw mode on the master side too (both ends raw).
        unsafe {
            libc::tcgetattr(master, &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(master, libc::TCSANOW, &t);
        }
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: `name` is valid for its length.
        assert_eq!(unsafe { libc::ttyname_r(slave, name.as_mut_ptr(), name.len()) }, 0);
        // SAFETY: ttyname_r wrote a NUL-terminated string.
        let path = unsafe { core::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_str()
            .unwrap()
            .into();
        // Keep the slave fd open (leaked) so the master never reads EIO in the test.
        (master, path)
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no ptys")]
    fn pty_roundtrip_all_byte_values() {
        let (master, path) = pty();
        assert!(matches!(open(&path, 12345), Err(SerialError::Invalid(_))));
        let mut port = open(&path, 115_200).unwrap();
        // The "modem": echo every byte back, from its own thread.
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut total = 0;
            while total < 256 * 40 {
                // SAFETY: valid buffer.
                let n = unsafe { libc::read(master, buf.as_mut_ptr().cast(), buf.len()) };
                assert!(n > 0);
                let n = n as usize;
                let mut off = 0;
                while off < n {
                    // SAFETY: valid buffer.
                    let w = unsafe { libc::write(master, buf[off..n].as_ptr().cast(), n - off) };
                    assert!(w > 0);
                    off += w as usize;
                }
                total += n;
            }
        });
        let data: Vec<u8> = (0..256 * 40).map(|i| (i % 256) as u8).collect();
        let got = uasyncio::run(async move {
            let sender = data.clone();
            let mut got = Vec::new();
            let mut buf = [0u8; 300];
            let mut sent = 0;
            while got.len() < sender.len() {
                if sent == got.len() {
                    let end = (sent + 1000).min(sender.len());
                    port.write_all(&sender[sent..end]).await.unwrap();
                    sent = end;
                }
                let n = port.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(port.overruns(), 0);
            Ok(got)
        })
        .unwrap();
        echo.join().unwrap();
        assert_eq!(got.len(), 256 * 40);
        assert!(
            got.iter().enumerate().all(|(i, &b)| b == (i % 256) as u8),
            "raw mode keeps every byte"
        );
    }
}
