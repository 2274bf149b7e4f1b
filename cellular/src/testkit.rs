//! Test kit: an in-memory duplex pipe and a scripted fake modem on it (tests only).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Poll, Waker};

use embedded_io_async::{Read, Write};

/// One direction of the pipe.
#[derive(Default)]
pub struct Half {
    buf: VecDeque<u8>,
    waker: Option<Waker>,
    closed: bool,
    /// Every byte written, with the loop time it was written at.
    pub log: Vec<(u64, u8)>,
}

/// One end of the pipe.
pub struct End {
    rx: Rc<RefCell<Half>>,
    tx: Rc<RefCell<Half>>,
}

/// A pipe error (only cancellation).
#[derive(Debug)]
pub struct PipeError;

impl core::fmt::Display for PipeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("cancelled")
    }
}

impl core::error::Error for PipeError {}

impl embedded_io::Error for PipeError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Interrupted
    }
}

impl embedded_io::ErrorType for End {
    type Error = PipeError;
}

impl Read for End {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        poll_fn(|cx| {
            if uasyncio::cancel::poll_cancelled(cx) {
                return Poll::Ready(Err(PipeError));
            }
            let mut h = self.rx.borrow_mut();
            if !h.buf.is_empty() {
                let mut n = 0;
                while n < buf.len() {
                    match h.buf.pop_front() {
                        Some(b) => {
                            buf[n] = b;
                            n += 1;
                        }
                        None => break,
                    }
                }
                return Poll::Ready(Ok(n));
            }
            if h.closed {
                return Poll::Ready(Ok(0));
            }
            h.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Write for End {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        let mut h = self.tx.borrow_mut();
        let now = uasyncio::ticks_ms();
        h.buf.extend(buf.iter().copied());
        h.log.extend(buf.iter().map(|&b| (now, b)));
        if let Some(w) = h.waker.take() {
            w.wake();
        }
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), PipeError> {
        Ok(())
    }
}

impl Drop for End {
    fn drop(&mut self) {
        let mut h = self.tx.borrow_mut();
        h.closed = true;
        if let Some(w) = h.waker.take() {
            w.wake();
        }
    }
}

/// An [`End`] whose next reads fail with `ErrorKind::InvalidData`, as a serial port's do
/// after an overrun (bytes lost), while `lose` is above 0 (each such read takes one).
pub struct Lossy {
    end: End,
    lose: Rc<core::cell::Cell<u32>>,
}

impl Lossy {
    /// Wraps `end`; set `lose` to the number of reads to fail.
    pub fn new(end: End, lose: Rc<core::cell::Cell<u32>>) -> Self {
        Lossy { end, lose }
    }
}

/// [`Lossy`]'s error: the pipe's, or lost input.
#[derive(Debug)]
pub enum LossyError {
    /// The pipe's (cancellation).
    Pipe(PipeError),
    /// Input bytes were lost.
    Lost,
}

impl core::fmt::Display for LossyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LossyError::Pipe(e) => e.fmt(f),
            LossyError::Lost => f.write_str("input bytes lost"),
        }
    }
}

impl core::error::Error for LossyError {}

impl embedded_io::Error for LossyError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            LossyError::Pipe(e) => embedded_io::Error::kind(e),
            LossyError::Lost => embedded_io::ErrorKind::InvalidData,
        }
    }
}

impl embedded_io::ErrorType for Lossy {
    type Error = LossyError;
}

impl Read for Lossy {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, LossyError> {
        if self.lose.get() > 0 {
            self.lose.set(self.lose.get() - 1);
            return Err(LossyError::Lost);
        }
        self.end.read(buf).await.map_err(LossyError::Pipe)
    }
}

impl Write for Lossy {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, LossyError> {
        self.end.write(buf).await.map_err(LossyError::Pipe)
    }

    async fn flush(&mut self) -> Result<(), LossyError> {
        self.end.flush().await.map_err(LossyError::Pipe)
    }
}

/// A duplex pipe: (host end, modem end), plus the host -> modem half (its byte log).
pub fn pipe() -> (End, End, Rc<RefCell<Half>>) {
    let a = Rc::new(RefCell::new(Half::default()));
    let b = Rc::new(RefCell::new(Half::default()));
    (
        End {
            rx: a.clone(),
            tx: b.clone(),
        },
        End { rx: b.clone(), tx: a },
        b,
    )
}

/// What the fake modem does.
#[derive(Clone)]
pub struct Script {
    /// Answer nothing at all.
    pub silent: bool,
    /// `READY`, `SIM PIN`, `SIM PUK`, or `NOSIM` (answers `+CME ERROR: 10`).
    pub sim: &'static str,
    /// The PIN it accepts.
    pub pin: &'static str,
    /// Registration timeline: (from this loop time in ms, stat).
    pub reg: Vec<(u64, u8)>,
    /// No LTE: `AT+CEREG…` answers ERROR.
    pub no_lte: bool,
    /// Interleave URCs into the answer of `AT+CPIN?`.
    pub urcs_mid_command: bool,
    /// A garbage line before every answer.
    pub garbage: bool,
    /// The answer to the dial ("" = none).
    pub dial: &'static str,
    /// Starts in data mode (a previous session was not hung up).
    pub start_in_data_mode: bool,
    /// Verbose CME errors (`+CME ERROR: SIM not inserted`).
    pub verbose_errors: bool,
    /// How long after a `+++` it says `OK`, ms (a modem's trailing guard time; one slower
    /// than the client's guard answers after the client has moved on).
    pub escape_answer_ms: u32,
    /// Answers the first `AT+CPIN?` with a bare `OK` and its real answer 200 ms later (what
    /// a client sees when it took an earlier command's `OK` for this one).
    pub first_cpin_late: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            silent: false,
            sim: "READY",
            pin: "1234",
            reg: Vec::from([(0, 1)]),
            no_lte: false,
            urcs_mid_command: false,
            garbage: false,
            dial: "CONNECT 150000000",
            start_in_data_mode: false,
            verbose_errors: false,
            escape_answer_ms: 1000,
            first_cpin_late: false,
        }
    }
}

/// Shared record of what the fake modem saw.
#[derive(Default)]
pub struct Record {
    /// Command lines received (without CR).
    pub commands: Vec<String>,
    /// Loop times at which `+++` completed in data mode.
    pub escapes: Vec<u64>,
    /// Dials answered with CONNECT.
    pub connects: u32,
}

async fn say(io: &mut End, garbage: bool, lines: &[&str]) {
    if garbage {
        let _ = io.write_all(b"\xff\xfe\x80ga\x01rbage\r\n").await;
    }
    for l in lines {
        let _ = io.write_all(b"\r\n").await;
        let _ = io.write_all(l.as_bytes()).await;
        let _ = io.write_all(b"\r\n").await;
    }
}

/// Runs the fake modem on `io` until the other end closes.
pub async fn fake_modem(mut io: End, script: Script, rec: Rc<RefCell<Record>>) -> uasyncio::Result<()> {
    let mut echo = true;
    let mut data_mode = script.start_in_data_mode;
    let mut pluses = 0;
    let mut pin_ok = false;
    let mut cpin_late = script.first_cpin_late;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = io.read(&mut b).await.map_err(|_| uasyncio::Error::Cancelled)?;
        if n == 0 {
            return Ok(());
        }
        if script.silent {
            continue;
        }
        if data_mode {
            if b[0] == b'+' {
                pluses += 1;
                if pluses == 3 {
                    pluses = 0;
                    data_mode = false;
                    rec.borrow_mut().escapes.push(uasyncio::ticks_ms());
                    // A real modem answers after the trailing guard time.
                    uasyncio::sleep_ms(script.escape_answer_ms).await?;
                    say(&mut io, false, &["OK"]).await;
                }
            } else {
                pluses = 0;
            }
            continue;
        }
        if b[0] == b'\n' {
            continue;
        }
        if b[0] != b'\r' {
            line.push(b[0]);
            continue;
        }
        let cmd = String::from_utf8_lossy(&core::mem::take(&mut line)).to_string();
        if echo {
            let _ = io.write_all(cmd.as_bytes()).await;
            let _ = io.write_all(b"\r").await;
        }
        rec.borrow_mut().commands.push(cmd.clone());
        let g = script.garbage;
        let now = uasyncio::ticks_ms();
        let stat = script.reg.iter().rev().find(|(t, _)| *t <= now).map_or(0, |&(_, s)| s);
        let reg_line = |name: &str| alloc::format!("{name}: 1,{stat}");
        match cmd.as_str() {
            "AT" | "AT+CMEE=1" | "AT+CREG=1" | "AT+CGREG=1" | "ATH" => say(&mut io, g, &["OK"]).await,
            "ATE0" => {
                echo = false;
                say(&mut io, g, &["OK"]).await
            }
            "AT+CEREG=1" | "AT+CEREG?" if script.no_lte => say(&mut io, g, &["ERROR"]).await,
            "AT+CEREG=1" => say(&mut io, g, &["OK"]).await,
            "AT+CPIN?" if cpin_late => {
                cpin_late = false;
                say(&mut io, g, &["OK"]).await;
                uasyncio::sleep_ms(200).await?;
                let l = alloc::format!("+CPIN: {}", script.sim);
                say(&mut io, g, &[&l, "OK"]).await
            }
            "AT+CPIN?" => {
                if script.urcs_mid_command {
                    say(&mut io, false, &["+CREG: 2", "+QIND: \"csq\",20", "RING"]).await;
                }
                match script.sim {
                    "NOSIM" if script.verbose_errors => say(&mut io, g, &["+CME ERROR: SIM not inserted"]).await,
                    "NOSIM" => say(&mut io, g, &["+CME ERROR: 10"]).await,
                    "SIM PIN" if pin_ok => say(&mut io, g, &["+CPIN: READY", "OK"]).await,
                    s => {
                        let l = alloc::format!("+CPIN: {s}");
                        say(&mut io, g, &[&l, "OK"]).await
                    }
                }
            }
            c if c.starts_with("AT+CPIN=") => {
                if c == alloc::format!("AT+CPIN=\"{}\"", script.pin) {
                    pin_ok = true;
                    say(&mut io, g, &["OK"]).await
                } else {
                    say(&mut io, g, &["+CME ERROR: 16"]).await
                }
            }
            "AT+CREG?" => say(&mut io, g, &[&reg_line("+CREG"), "OK"]).await,
            "AT+CGREG?" => say(&mut io, g, &[&reg_line("+CGREG"), "OK"]).await,
            "AT+CEREG?" => say(&mut io, g, &[&reg_line("+CEREG"), "OK"]).await,
            c if c.starts_with("AT+CGDCONT=1,\"IP\",") => say(&mut io, g, &["OK"]).await,
            "ATD*99***1#" | "AT+CGDATA=\"PPP\",1" => {
                if script.dial.is_empty() {
                    continue;
                }
                say(&mut io, g, &[script.dial]).await;
                if script.dial.starts_with("CONNECT") {
                    data_mode = true;
                    rec.borrow_mut().connects += 1;
                }
            }
            _ => say(&mut io, g, &["ERROR"]).await,
        }
    }
}
