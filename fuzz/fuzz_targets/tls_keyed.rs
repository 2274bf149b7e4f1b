//! A keyed hostile TLS 1.3 server: real P-256 ECDHE and key schedule (the server of
//! `net/tests/hostile.rs`), so the records the input describes decrypt correctly and reach
//! the shadow decryptor's and embedded-tls' parsers. Input: byte 0 bit 0 = with a CA; then
//! chunks `[len][kind][len bytes]`: kind 0xFF sends a valid EncryptedExtensions,
//! Certificate, CertificateVerify and Finished and switches to the application keys; 0xFE
//! seals the bytes as the whole inner plaintext (no content type appended); any other kind
//! seals `bytes || kind`. Invariants (fuzz/README.md): no panic; `open_connection` plus a
//! read to the end finish in bounded virtual time.
#![no_main]

#[path = "common.rs"]
mod common;

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{EncodedPoint, PublicKey, SecretKey};
use sha2::Sha256;
use uasyncio_net::device::pair::LinkFaults;
use uasyncio_net::{Stream, TlsClientConfig};

#[path = "../../net/tests/common/tls13.rs"]
mod tls13;
use tls13::*;

/// A server that has sent its ServerHello: the handshake keys and transcript so far.
struct Server {
    r: Stream,
    w: Stream,
    hs_secret: Vec<u8>,
    s_hs: Vec<u8>,
    transcript: Vec<u8>,
    keys: Keys,
}

impl Server {
    async fn hello(r: Stream, w: Stream) -> uasyncio::Result<Server> {
        let (kind, ch) = read_record(&r).await?;
        assert_eq!(kind, 22, "expected a ClientHello");
        let (sid, client_pub) = parse_client_hello(&ch);
        let secret = SecretKey::from_slice(&[7u8; 32]).unwrap();
        let client_pub = PublicKey::from_encoded_point(&EncodedPoint::from_bytes(&client_pub).unwrap()).unwrap();
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), client_pub.as_affine());
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x42; 32]);
        body.push(sid.len() as u8);
        body.extend_from_slice(&sid);
        body.extend_from_slice(&[0x13, 0x01, 0]);
        let point = secret.public_key().to_encoded_point(false);
        let mut ext = vec![0, 0x2b, 0, 2, 3, 4, 0, 0x33];
        ext.extend_from_slice(&((4 + point.len()) as u16).to_be_bytes());
        ext.extend_from_slice(&[0, 0x17]);
        ext.extend_from_slice(&(point.len() as u16).to_be_bytes());
        ext.extend_from_slice(point.as_bytes());
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let sh = hs_msg(2, &body);
        let mut rec = vec![22, 3, 3];
        rec.extend_from_slice(&(sh.len() as u16).to_be_bytes());
        rec.extend_from_slice(&sh);
        w.write(&rec);
        w.drain().await?;
        let mut transcript = ch.clone();
        transcript.extend_from_slice(&sh);
        let early = extract(&[0; 32], &[0; 32]);
        let derived = expand_label(&early, "derived", &sha(&[]), 32);
        let hs_secret = extract(&derived, shared.raw_secret_bytes());
        let s_hs = expand_label(&hs_secret, "s hs traffic", &sha(&[&transcript]), 32);
        let keys = Keys::new(&s_hs);
        Ok(Server {
            r,
            w,
            hs_secret,
            s_hs,
            transcript,
            keys,
        })
    }

    async fn send(&self, bytes: &[u8]) -> uasyncio::Result<()> {
        self.w.write(bytes);
        self.w.drain().await
    }

    /// EncryptedExtensions, Certificate, CertificateVerify and Finished; returns the
    /// server's application keys.
    async fn finish(self) -> (Keys, Stream, Stream) {
        let mut flight = hs_msg(8, &[0, 0]);
        flight.extend_from_slice(&hs_msg(11, &[0, 0, 0, 0]));
        flight.extend_from_slice(&hs_msg(15, &[4, 3, 0, 2, 0x30, 0]));
        self.finish_with(flight).await
    }

    /// `flight` (handshake messages, in one record), then Finished in its own record.
    async fn finish_with(mut self, flight: Vec<u8>) -> (Keys, Stream, Stream) {
        let ee = flight;
        self.transcript.extend_from_slice(&ee);
        let fkey = expand_label(&self.s_hs, "finished", &[], 32);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&fkey).unwrap();
        mac.update(&sha(&[&self.transcript]));
        let fin = hs_msg(20, &mac.finalize().into_bytes());
        self.transcript.extend_from_slice(&fin);
        let mut recs = self.keys.seal(&ee, 22);
        recs.extend_from_slice(&self.keys.seal(&fin, 22));
        let _ = self.send(&recs).await;
        let derived = expand_label(&self.hs_secret, "derived", &sha(&[]), 32);
        let master = extract(&derived, &[0; 32]);
        let s_ap = expand_label(&master, "s ap traffic", &sha(&[&self.transcript]), 32);
        (Keys::new(&s_ap), self.r, self.w)
    }
}

async fn keyed_server(script: Vec<u8>, r: Stream, w: Stream) -> uasyncio::Result<()> {
    let mut hs = Some(Server::hello(r, w).await?);
    let mut app: Option<(Keys, Stream, Stream)> = None;
    let mut rest = &script[..];
    let mut out = Vec::new();
    while let [len, kind, more @ ..] = rest {
        let n = usize::from(*len).min(more.len());
        let (bytes, next) = more.split_at(n);
        rest = next;
        if *kind == 0xFF && hs.is_some() {
            let Some(srv) = hs.take() else { unreachable!() };
            srv.w.write(&out);
            out.clear();
            app = Some(srv.finish().await);
            continue;
        }
        let keys = match (&mut app, &mut hs) {
            (Some((k, _, _)), _) => k,
            (None, Some(srv)) => &mut srv.keys,
            (None, None) => unreachable!(),
        };
        match *kind {
            0xFE => out.extend_from_slice(&keys.seal_raw(bytes)),
            k => out.extend_from_slice(&keys.seal(bytes, k)),
        }
    }
    let (r, w) = match (app, hs) {
        (Some((_, r, w)), _) => (r, w),
        (None, Some(srv)) => (srv.r, srv.w),
        (None, None) => unreachable!(),
    };
    w.write(&out);
    w.drain().await?;
    // End of script: close (the client reads to the end, so it must see one).
    w.close();
    while !r.read(4096).await.unwrap_or_default().is_empty() {}
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let [flags, script @ ..] = data else { return };
    let with_ca = flags & 1 == 1;
    let script = script.to_vec();
    common::run_virtual(async move {
        let (a, b, _) = common::stacks(LinkFaults::default());
        let srv = b
            .start_server(
                move |r: Stream, w: Stream| keyed_server(script.clone(), r, w),
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
            seed: [5; 32],
        };
        if let Ok((r, _w)) = a.open_connection(&common::B.to_string(), 443, Some(&cfg)).await {
            let _ = r.read(-1).await;
        }
        srv.close();
    });
});
