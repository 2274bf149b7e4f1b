//! TLS 1.3 server-side key schedule helpers (RFC 8446 §7) for the hostile-server tests
//! (`net/tests/hostile.rs`) and the `tls_keyed` fuzz target (`fuzz/`), which include this
//! file with `#[path]`: SHA-256 transcript hashes, HKDF-Expand-Label, the handshake and
//! application traffic keys, record sealing, and reading the client's ClientHello.
#![allow(dead_code)]

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use uasyncio_net::Stream;

pub fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn expand_label(secret: &[u8], label: &str, ctx: &[u8], len: usize) -> Vec<u8> {
    let full = format!("tls13 {label}");
    let mut info = Vec::new();
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(ctx.len() as u8);
    info.extend_from_slice(ctx);
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::from_prk(secret)
        .unwrap()
        .expand(&info, &mut out)
        .unwrap();
    out
}

pub fn extract(salt: &[u8], ikm: &[u8]) -> Vec<u8> {
    Hkdf::<Sha256>::extract(Some(salt), ikm).0.to_vec()
}

/// One direction's traffic keys and record counter.
pub struct Keys {
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
    pub seq: u64,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        Keys {
            key: expand_label(secret, "key", &[], 16),
            iv: expand_label(secret, "iv", &[], 12),
            seq: 0,
        }
    }

    /// A TLSCiphertext record holding `inner` (content || type || padding), as is.
    pub fn seal_raw(&mut self, inner: &[u8]) -> Vec<u8> {
        let mut nonce = self.iv.clone();
        for (i, b) in self.seq.to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        self.seq += 1;
        let len = (inner.len() + 16) as u16;
        let mut rec = vec![23, 3, 3];
        rec.extend_from_slice(&len.to_be_bytes());
        let c = Aes128Gcm::new_from_slice(&self.key)
            .unwrap()
            .encrypt(nonce.as_slice().into(), Payload { msg: inner, aad: &rec })
            .unwrap();
        rec.extend_from_slice(&c);
        rec
    }

    pub fn seal(&mut self, content: &[u8], kind: u8) -> Vec<u8> {
        let mut inner = content.to_vec();
        inner.push(kind);
        self.seal_raw(&inner)
    }
}

pub fn hs_msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

pub async fn read_record(r: &Stream) -> uasyncio::Result<(u8, Vec<u8>)> {
    let h = r.readexactly(5).await?;
    let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
    Ok((h[0], r.readexactly(len).await?))
}

/// The ClientHello's legacy session id and P-256 key share.
pub fn parse_client_hello(ch: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut p = 4 + 2 + 32;
    let sid = ch[p + 1..p + 1 + usize::from(ch[p])].to_vec();
    p += 1 + usize::from(ch[p]);
    p += 2 + usize::from(u16::from_be_bytes([ch[p], ch[p + 1]]));
    p += 1 + usize::from(ch[p]);
    let end = p + 2 + usize::from(u16::from_be_bytes([ch[p], ch[p + 1]]));
    p += 2;
    while p < end {
        let ty = u16::from_be_bytes([ch[p], ch[p + 1]]);
        let len = usize::from(u16::from_be_bytes([ch[p + 2], ch[p + 3]]));
        let data = &ch[p + 4..p + 4 + len];
        if ty == 0x33 {
            let mut q = 2;
            while q < data.len() {
                let group = u16::from_be_bytes([data[q], data[q + 1]]);
                let klen = usize::from(u16::from_be_bytes([data[q + 2], data[q + 3]]));
                if group == 0x17 {
                    return (sid, data[q + 4..q + 4 + klen].to_vec());
                }
                q += 4 + klen;
            }
        }
        p += 4 + len;
    }
    panic!("no P-256 key share in the ClientHello");
}
