//! A hostile modem on the serial line of the AT client: arbitrary bytes, arriving in
//! arbitrary chunks at arbitrary (virtual) times through the real receive path (an
//! `RxRing` fed as a UART interrupt would, read by a `SerialPort`), while commands, drains
//! and URC waits are in flight, or while `Modem::bring_up` and `Modem::hang_up` run.
//!
//! Input: byte 0 flags (bit 0: a 64-byte ring, else 4096; bit 1: overruns not reported;
//! bit 2: the ring closes after the last chunk; bit 3: a URC queue of 2; bit 4: lines of at
//! most 32 bytes; bit 5: bring-up and hang-up instead of single operations; bit 6: a SIM
//! PIN is configured; bit 7: dial with `AT+CGDATA`). Operations mode: byte 1 is the number
//! of operations (mod 16), two bytes each: `[kind | selector << 2][timeout]` with kind 0–1
//! a command from `COMMANDS`, 2 `drain`, 3 `next_urc`, and a timeout of
//! `(timeout + 1) * 20` ms. The rest are the modem's chunks, `[delay / 5 ms][len][bytes]`.
//!
//! Invariants (fuzz/README.md): no panic; every command, drain and URC wait ends (final
//! result, error or timeout) within its timeout, a whole bring-up plus hang-up within the
//! sum of its configured waits; every intermediate line and URC delivered is a complete
//! line of what the modem sent (checked when no byte was lost to an overrun; after the
//! `+++` of an escape, which forgets a partly read line, a suffix of one), with no control
//! characters and no longer than the line limit.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use uasyncio::{get_event_loop, new_event_loop, sleep_ms, ticks_ms, wait_for_ms, ThreadSafeFlag};
use uasyncio_cellular::at::{AtClient, AtConfig, AtResponse, Urc};
use uasyncio_cellular::modem::{DialMethod, Modem, ModemConfig};
use uasyncio_cellular::serial::{RxRing, SerialPort, UartTx};

/// Commands the operations mode sends (what bring-up and a user send).
const COMMANDS: &[&[u8]] = &[
    b"AT",
    b"ATE0",
    b"AT+CPIN?",
    b"AT+CREG?",
    b"AT+CEREG?",
    b"AT+CSQ",
    b"AT+CGDCONT=1,\"IP\",\"internet\"",
    b"ATD*99***1#",
    b"AT+CMEE=1",
    b"ATI",
    b"AT+CGSN",
    b"ATH",
];

/// Virtual seconds any input may take in all before it counts as a hang.
const HANG_LIMIT_S: u32 = 3600;

/// A transmitter that takes every byte at once (what the host sends is not checked here).
struct Tx;

impl UartTx for Tx {
    fn try_write(&mut self, bytes: &[u8]) -> usize {
        bytes.len()
    }
    fn tx_ready(&self) -> Option<&'static ThreadSafeFlag> {
        None
    }
}

/// `FUZZ_DEBUG=1` prints what each operation returned (for seeds and crash triage).
fn debug() -> bool {
    std::env::var_os("FUZZ_DEBUG").is_some()
}

struct Input<'a> {
    flags: u8,
    ops: Vec<(u8, u32)>,
    chunks: Vec<(u32, &'a [u8])>,
}

fn parse(data: &[u8]) -> Option<Input<'_>> {
    let (&flags, mut rest) = data.split_first()?;
    let mut ops = Vec::new();
    if flags & 0x20 == 0 {
        let (&n, r) = rest.split_first()?;
        rest = r;
        for _ in 0..n % 16 {
            let [k, t, r @ ..] = rest else { break };
            ops.push((*k, (u32::from(*t) + 1) * 20));
            rest = r;
        }
    }
    let mut chunks = Vec::new();
    while let [d, l, r @ ..] = rest {
        let n = usize::from(*l).min(r.len());
        chunks.push((u32::from(*d) * 5, &r[..n]));
        rest = &r[n..];
    }
    Some(Input { flags, ops, chunks })
}

/// The complete lines of `stream`: the non-empty runs between CR/LF that a CR or LF ends.
fn complete_lines(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in stream.iter().enumerate() {
        if b == b'\r' || b == b'\n' {
            if i > start {
                out.push(stream[start..i].to_vec());
            }
            start = i + 1;
        }
    }
    out
}

struct Checker {
    lines: Vec<Vec<u8>>,
    max_line: usize,
    /// An escape may have cut a line: accept a suffix of a complete line.
    suffix_ok: bool,
}

impl Checker {
    fn line(&self, what: &str, l: &[u8], lossless: bool) {
        assert!(l.len() <= self.max_line, "{what} longer than max_line: {l:?}");
        assert!(
            !std::str::from_utf8(l)
                .expect("lines are UTF-8")
                .chars()
                .any(char::is_control),
            "{what} with a control character: {l:?}"
        );
        if lossless {
            let found = self.lines.iter().any(|c| c == l || (self.suffix_ok && c.ends_with(l)));
            assert!(
                found,
                "{what} {:?} is not a complete line the modem sent",
                String::from_utf8_lossy(l)
            );
        }
    }

    fn urc(&self, u: &Urc, lossless: bool) {
        match u {
            Urc::Other(s) => self.line("URC", s.as_bytes(), lossless),
            Urc::Ring => self.line("URC", b"RING", lossless),
            Urc::NoCarrier => self.line("URC", b"NO CARRIER", lossless),
            Urc::Registration { kind, .. } => {
                if lossless {
                    let p = kind.prefix().as_bytes();
                    assert!(
                        self.lines
                            .iter()
                            .any(|c| c.starts_with(p) || (self.suffix_ok && c.windows(p.len()).any(|w| w == p))),
                        "a registration URC without a {} line",
                        kind.prefix()
                    );
                }
            }
        }
    }

    fn response(&self, r: &AtResponse, lossless: bool) {
        for l in &r.lines {
            self.line("intermediate line", l.as_bytes(), lossless);
        }
    }
}

fn run_with<const N: usize>(input: &Input<'_>) {
    let flags = input.flags;
    let ring: Arc<RxRing<N>> = Arc::new(RxRing::new());
    let mut port = SerialPort::with_shared_ring(ring.clone(), Tx).expect("a fresh ring has no reader");
    port.set_overrun_errors(flags & 2 == 0);
    let mut at_cfg = AtConfig::default();
    if flags & 8 != 0 {
        at_cfg.urc_capacity = 2;
    }
    if flags & 16 != 0 {
        at_cfg.max_line = 32;
    }
    let stream: Vec<u8> = input.chunks.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let checker = Checker {
        lines: complete_lines(&stream),
        max_line: at_cfg.max_line,
        suffix_ok: flags & 0x20 != 0,
    };
    let chunks: Vec<(u32, Vec<u8>)> = input.chunks.iter().map(|(d, c)| (*d, c.to_vec())).collect();
    let ops = input.ops.clone();
    let feeder_ring = ring.clone();
    let close = flags & 4 != 0;

    new_event_loop().expect("no loop runs here");
    get_event_loop().use_virtual_time(true);
    let r = uasyncio::run(async move {
        let feeder = uasyncio::create_task(async move {
            for (delay, bytes) in chunks {
                sleep_ms(delay).await?;
                feeder_ring.push_from_isr(&bytes);
            }
            if close {
                feeder_ring.close(0);
            }
            Ok(())
        });
        let lossless = move || ring.overruns() == 0;
        let body = async move {
            if flags & 0x20 == 0 {
                let mut at = AtClient::with_config(port, at_cfg);
                for (op, timeout) in ops {
                    let t0 = ticks_ms();
                    match op & 3 {
                        0 | 1 => {
                            let cmd = COMMANDS[usize::from(op >> 2) % COMMANDS.len()];
                            let r = at.command(cmd, timeout).await;
                            if debug() {
                                eprintln!("{}: {r:?}", String::from_utf8_lossy(cmd));
                            }
                            if let Ok(r) = r {
                                checker.response(&r, lossless());
                            }
                        }
                        2 => {
                            let r = at.drain(timeout).await;
                            if debug() {
                                eprintln!("drain: {r:?}");
                            }
                        }
                        _ => {
                            let r = at.next_urc(timeout).await;
                            if debug() {
                                eprintln!("next_urc: {r:?}");
                            }
                            if let Ok(Some(u)) = r {
                                checker.urc(&u, lossless());
                            }
                        }
                    }
                    let took = ticks_ms() - t0;
                    assert!(
                        took <= u64::from(timeout),
                        "operation {op:#x} took {took} ms, timeout {timeout} ms"
                    );
                }
                while let Some(u) = at.take_urc() {
                    if debug() {
                        eprintln!("queued URC: {u:?}");
                    }
                    checker.urc(&u, lossless());
                }
            } else {
                let mut cfg = ModemConfig::new("internet");
                cfg.sync_attempts = 4;
                cfg.sync_timeout_ms = 300;
                cfg.command_timeout_ms = 1000;
                cfg.sim_ready_timeout_ms = 3000;
                cfg.registration_timeout_ms = 10_000;
                cfg.registration_poll_ms = 2000;
                cfg.dial_timeout_ms = 5000;
                cfg.guard_ms = 1000;
                if flags & 0x40 != 0 {
                    cfg.pin = Some("1234".into());
                }
                if flags & 0x80 != 0 {
                    cfg.dial = DialMethod::Cgdata;
                }
                cfg.at = at_cfg;
                // Every wait bring-up and hang-up may make, added up (module docs of
                // `modem`): sync with one escape; ATE0, CMEE; CPIN?, the PIN, the wait for
                // READY (a CPIN? and 500 ms per round, past the deadline by one round);
                // three enables, then registration rounds (three queries and a URC wait)
                // past the deadline by one round; CGDCONT; the dial; hang-up's escape and
                // two ATH.
                let c = u64::from(cfg.command_timeout_ms);
                let g = u64::from(cfg.guard_ms);
                let bound = u64::from(cfg.sync_attempts) * u64::from(cfg.sync_timeout_ms)
                    + 2 * g
                    + 2 * c
                    + 2 * c
                    + u64::from(cfg.sim_ready_timeout_ms)
                    + c
                    + 500
                    + 3 * c
                    + u64::from(cfg.registration_timeout_ms)
                    + 3 * c
                    + u64::from(cfg.registration_poll_ms)
                    + c
                    + u64::from(cfg.dial_timeout_ms)
                    + 2 * g
                    + 2 * c;
                let t0 = ticks_ms();
                let mut modem = Modem::new(port, cfg);
                let up = modem.bring_up().await;
                let down = modem.hang_up().await;
                if debug() {
                    eprintln!("bring_up: {up:?}\nhang_up: {down:?}");
                }
                let took = ticks_ms() - t0;
                assert!(
                    took <= bound,
                    "bring-up ({up:?}) and hang-up took {took} ms, bound {bound} ms"
                );
                while let Some(u) = modem.at().take_urc() {
                    checker.urc(&u, lossless());
                }
            }
        };
        wait_for_ms(
            async {
                body.await;
                Ok(())
            },
            HANG_LIMIT_S * 1000,
        )
        .await
        .expect("no end within the hang limit");
        let _ = feeder.cancel();
        Ok(())
    });
    get_event_loop().use_virtual_time(false);
    r.expect("the run ends");
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = parse(data) else { return };
    if input.flags & 1 != 0 {
        run_with::<64>(&input);
    } else {
        run_with::<4096>(&input);
    }
});
