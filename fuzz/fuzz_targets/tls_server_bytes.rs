//! A TLS server that answers the ClientHello with the input's bytes (raw records), after an
//! optional valid-looking ServerHello (input byte 0 odd) whose key share is the P-256
//! generator. Invariants (fuzz/README.md): no panic, and `open_connection` plus a read to
//! the end finish in bounded virtual time with a value or an error.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use uasyncio_net::device::pair::LinkFaults;
use uasyncio_net::{Stream, TlsClientConfig};

/// A ServerHello record (TLS 1.3, AES-128-GCM-SHA256, key share = P-256 generator, empty
/// session id).
fn server_hello() -> Vec<u8> {
    const GX: [u8; 32] = [
        0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03,
        0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
    ];
    const GY: [u8; 32] = [
        0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce,
        0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
    ];
    let mut ext = vec![0, 0x2b, 0, 2, 3, 4, 0, 0x33, 0, 69, 0, 0x17, 0, 65, 4];
    ext.extend_from_slice(&GX);
    ext.extend_from_slice(&GY);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x42; 32]);
    body.extend_from_slice(&[0, 0x13, 0x01, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![2];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 3];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let mut reply = if data[0] & 1 == 1 { server_hello() } else { Vec::new() };
    reply.extend_from_slice(&data[1..]);
    let with_ca = data[0] & 2 == 2;
    common::run_virtual(async move {
        let (a, b, _) = common::stacks(LinkFaults::default());
        let srv = b
            .start_server(
                move |r: Stream, w: Stream| {
                    let reply = reply.clone();
                    async move {
                        let _hello = r.read(4096).await?;
                        w.write(&reply);
                        w.drain().await?;
                        w.close();
                        while !r.read(4096).await?.is_empty() {}
                        Ok(())
                    }
                },
                "0.0.0.0",
                443,
                2,
                None,
            )
            .await
            .unwrap();
        let cfg = TlsClientConfig {
            server_name: None,
            ca_der: with_ca.then(|| vec![0x30, 0]),
            seed: [3; 32],
        };
        if let Ok((r, _w)) = a.open_connection(&common::B.to_string(), 443, Some(&cfg)).await {
            let _ = r.read(-1).await;
        }
        srv.close();
    });
});
