//! `bench-rx`: Cortex-M3 instructions from the UART0 receive interrupt to the application's
//! `read()` returning the byte, under QEMU `-icount shift=S` (one instruction = 2^S ns of
//! virtual time; timer1 counts 40 ns ticks, so `ticks * 40 >> S` instructions passed).
//!
//! The modem simulator answers `AT\r` with its echo and `\r\nOK\r\n`. For every `read()`
//! that returns, the C RX handler has stamped the entry of the first interrupt whose bytes
//! it returns; the difference to the clock after `read()` is the latency of that byte,
//! interrupt entry to application, through `uasyncio_serial_rx_isr` → `RxRing` →
//! `ThreadSafeFlag` → FreeRTOS task notification → loop → `SerialPort::read`. The handler
//! also sums its own time, which gives the cost per interrupt (one byte each on this
//! UART). Both are figures, not verdicts; the program fails only if the modem does not
//! answer.

use alloc::vec::Vec;
use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use embedded_io_async::{Read, Write};

use crate::{board, println};

fn median(v: &mut [u32]) -> u32 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs `n` AT commands and prints the figures.
pub fn rx(shift: u32, n: u32) -> i32 {
    let stats = board::rx_stats();
    let mut port = board::modem_port();
    let r = uasyncio::run(async move {
        let mut lat = Vec::new();
        let mut per_read = Vec::new();
        let mut buf = [0u8; 64];
        for round in 0..n + 1 {
            if round == 1 {
                // The first round (sync, anything the modem said at boot) warms up.
                // SAFETY: word writes of fields the ISR reads; the ISR only stamps while `on`.
                unsafe {
                    write_volatile(addr_of_mut!((*stats).irqs), 0);
                    write_volatile(addr_of_mut!((*stats).bytes), 0);
                    write_volatile(addr_of_mut!((*stats).isr_ticks), 0);
                    write_volatile(addr_of_mut!((*stats).first_valid), 0);
                    write_volatile(addr_of_mut!((*stats).on), 1);
                }
            }
            port.write_all(b"AT\r").await?;
            let mut seen: Vec<u8> = Vec::new();
            while !seen.ends_with(b"OK\r\n") {
                let got = port.read(&mut buf).await?;
                let now = board::clock();
                // SAFETY: word reads/writes of fields shared with the ISR (single core;
                // a torn pair only costs one sample).
                unsafe {
                    if read_volatile(addr_of_mut!((*stats).first_valid)) != 0 {
                        let t = read_volatile(addr_of_mut!((*stats).first_stamp));
                        write_volatile(addr_of_mut!((*stats).first_valid), 0);
                        // A stamp newer than `now` belongs to an interrupt that came after
                        // the clock was read: no sample.
                        let ticks = t.wrapping_sub(now);
                        if round > 0 && i32::try_from(ticks).is_ok() {
                            lat.push(ticks);
                            per_read.push(got as u32);
                        }
                    }
                }
                seen.extend_from_slice(buf.get(..got).unwrap_or(&[]));
                if seen.len() > 4096 {
                    return Err(uasyncio::Error::Value("no OK from the modem".into()));
                }
            }
        }
        Ok((lat, per_read))
    });
    // SAFETY: the ISR only reads `on`.
    let (irqs, bytes, isr_ticks) = unsafe {
        write_volatile(addr_of_mut!((*stats).on), 0);
        (
            read_volatile(addr_of_mut!((*stats).irqs)),
            read_volatile(addr_of_mut!((*stats).bytes)),
            read_volatile(addr_of_mut!((*stats).isr_ticks)),
        )
    };
    match r {
        Ok((mut lat, mut per_read)) => {
            let ins = |t: u32| (u64::from(t) * 40) >> shift;
            let reads = lat.len();
            let min = lat.iter().copied().min().unwrap_or(0);
            let med = median(&mut lat);
            let max = lat.iter().copied().max().unwrap_or(0);
            let med_bytes = median(&mut per_read);
            println!(
                "report: UART0 RX interrupt: {irqs} interrupts, {bytes} bytes; in the handler (incl. uasyncio_serial_rx_isr) {} instructions per interrupt, {} per byte",
                ins(isr_ticks) / u64::from(irqs.max(1)),
                ins(isr_ticks) / u64::from(bytes.max(1))
            );
            println!(
                "report: RX interrupt entry -> application's read() returned: n={reads} reads, instructions min {} median {} max {}; bytes per read median {med_bytes}; icount shift {shift}",
                ins(min),
                ins(med),
                ins(max),
            );
            0
        }
        Err(e) => {
            println!("bench-rx: {e}");
            1
        }
    }
}
