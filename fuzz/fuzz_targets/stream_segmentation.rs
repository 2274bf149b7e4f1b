//! A sender and a reader on the in-memory pair, with input-chosen loss, reordering, write
//! and read sizes, and how the sender ends (close or abort). Invariants (fuzz/README.md):
//! what the reader gets is a prefix of what was sent, in order, without duplicates; a
//! graceful close with no loss delivers everything before EOF; every run ends in bounded
//! virtual time.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use uasyncio::create_task;
use uasyncio_net::device::pair::LinkFaults;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let loss = u16::from(data[0] % 32) * 10; // 0..31 %
    let reorder = u16::from(data[1] % 32) * 10;
    let len = (usize::from(u16::from_le_bytes([data[2], data[3]])) % 20_000) + 1;
    let abort_end = data[4] & 1 == 1;
    let sizes: Vec<usize> = data[5..].iter().map(|&b| usize::from(b) * 37 + 1).collect();
    let sizes = if sizes.is_empty() { vec![1000] } else { sizes };
    let sent: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let faults = LinkFaults {
        loss_per_mille: loss,
        reorder_per_mille: reorder,
        seed: u64::from(data[0]) << 8 | u64::from(data[1]) | 1,
    };
    let expect = sent.clone();
    let (got, ended_ok) = common::run_virtual(async move {
        let (a, b, ctl) = common::stacks(LinkFaults::default());
        let accepted = std::rc::Rc::new(std::cell::RefCell::new(None));
        let slot = accepted.clone();
        let srv = b
            .start_server(
                move |r, _w| {
                    let slot = slot.clone();
                    async move {
                        *slot.borrow_mut() = Some(r);
                        Ok(())
                    }
                },
                "0.0.0.0",
                7,
                2,
                None,
            )
            .await
            .unwrap();
        let (_r, w) = a.open_connection(&common::B.to_string(), 7, None).await.unwrap();
        ctl.set_faults(faults);
        let sizes2 = sizes.clone();
        let writer = create_task(async move {
            let mut off = 0;
            let mut i = 0;
            while off < sent.len() {
                let n = sizes2[i % sizes2.len()].min(sent.len() - off);
                w.write(&sent[off..off + n]);
                if w.drain().await.is_err() {
                    return Ok(false);
                }
                off += n;
                i += 1;
            }
            if abort_end {
                w.abort();
                Ok(false)
            } else {
                w.close();
                Ok(w.wait_closed().await.is_ok())
            }
        });
        // Wait for the server side's stream.
        let r = loop {
            if let Some(r) = accepted.borrow_mut().take() {
                break r;
            }
            uasyncio::sleep_ms(1).await.unwrap();
        };
        // The reader only reads: by default its idle connection would send nothing, and a
        // lost FIN or reset would leave it waiting as long as the application lets it. Idle
        // probing is what bounds that, so it is part of what this target checks.
        r.set_idle_probe(true);
        let mut got = Vec::new();
        let mut i = 0;
        let clean = loop {
            let want = sizes[(i * 3 + 1) % sizes.len()];
            match r.read(want as isize).await {
                Ok(d) if d.is_empty() => break true,
                Ok(d) => got.extend_from_slice(&d),
                Err(_) => break false,
            }
            i += 1;
        };
        let _ = writer.await;
        srv.close();
        (got, clean && !abort_end && loss == 0 && reorder == 0)
    });
    assert!(got.len() <= expect.len(), "more bytes arrived than were sent");
    assert!(
        got == expect[..got.len()],
        "received bytes are not a prefix of the sent bytes"
    );
    if ended_ok {
        assert_eq!(got.len(), expect.len(), "EOF before the end on a clean link");
    }
});
