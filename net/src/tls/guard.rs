//! The record guard: a byte-stream parser of TLS record headers between the socket and
//! `embedded-tls` (see the `tls` module doc for the rules and why they exist).
//!
//! It sees every byte the server sends, in order, in whatever pieces the socket delivers,
//! and keeps only counters: the header being gathered, the bytes left in the current
//! record, and the ServerHello's length. Every check is a decision on a header or on the
//! first four bytes of the first handshake message, so the offending record never reaches
//! `embedded-tls`. It also passes every byte on to its [`Shadow`] decryptor (our
//! ClientHello on the way out; the ServerHello and each encrypted record on the way in),
//! whose verdict on a record falls when the record's last byte passes, before
//! `embedded-tls` holds the whole record.

use super::shadow::Shadow;

/// Largest TLSCiphertext fragment (RFC 8446 §5.2: 2^14 + 256).
pub(crate) const MAX_CIPHERTEXT: usize = 16_384 + 256;
/// Largest TLSPlaintext fragment (§5.1).
const MAX_PLAINTEXT: usize = 16_384;
/// AES-GCM tag length: an encrypted record must be longer to hold a content type.
const AEAD_TAG: usize = 16;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const SERVER_HELLO: u8 = 2;

/// Why the guard refused the server's bytes (shown in the `RuntimeError`).
pub(crate) type GuardError = &'static str;

/// Where the plaintext handshake stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hello {
    /// Gathering the ServerHello's 4-byte header (`got` bytes so far).
    Header { got: usize, len: [u8; 3] },
    /// Inside the ServerHello body, `left` bytes to go.
    Body { left: usize },
    /// The ServerHello is complete: plaintext handshake records are over.
    Done,
}

/// The parser state (see the module doc).
pub(crate) struct RecordGuard {
    hdr: [u8; 5],
    hdr_got: usize,
    /// Content type and bytes left of the record being passed through.
    kind: u8,
    left: usize,
    hello: Hello,
    /// Decrypts on the side to check what is inside encrypted records; `None` only in the
    /// header-only unit tests below.
    shadow: Option<Shadow>,
}

#[cfg(test)]
impl Default for RecordGuard {
    fn default() -> Self {
        RecordGuard::with_shadow(None)
    }
}

impl RecordGuard {
    /// A guard whose shadow decryptor replays `rng`, the generator `embedded-tls` gets.
    pub(crate) fn new(rng: rand_chacha::ChaCha20Rng) -> Self {
        RecordGuard::with_shadow(Some(Shadow::new(rng)))
    }

    fn with_shadow(shadow: Option<Shadow>) -> Self {
        RecordGuard {
            hdr: [0; 5],
            hdr_got: 0,
            kind: 0,
            left: 0,
            hello: Hello::Header { got: 0, len: [0; 3] },
            shadow,
        }
    }

    /// Bytes `embedded-tls` sends (the shadow reads our ClientHello from them). After an
    /// `Err` the connection must be dropped.
    pub(crate) fn sent(&mut self, bytes: &[u8]) -> Result<(), GuardError> {
        match &mut self.shadow {
            Some(s) => s.sent(bytes),
            None => Ok(()),
        }
    }

    /// Check the next bytes the server sent; `Err` names the violation. After an `Err` the
    /// connection must be dropped (the guard's state is no longer meaningful).
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), GuardError> {
        while !bytes.is_empty() {
            if self.left == 0 {
                let k = (5 - self.hdr_got).min(bytes.len());
                self.hdr[self.hdr_got..self.hdr_got + k].copy_from_slice(&bytes[..k]);
                self.hdr_got += k;
                bytes = &bytes[k..];
                if self.hdr_got == 5 {
                    self.hdr_got = 0;
                    self.header()?;
                }
                continue;
            }
            let k = self.left.min(bytes.len());
            let chunk = &bytes[..k];
            if self.kind == HANDSHAKE {
                self.plaintext_handshake(chunk)?;
                if let Some(s) = &mut self.shadow {
                    s.server_hello(chunk)?;
                }
            } else if self.kind == APPLICATION_DATA {
                if let Some(s) = &mut self.shadow {
                    s.record_bytes(chunk)?;
                }
            }
            self.left -= k;
            bytes = &bytes[k..];
            if self.left == 0 && self.kind == APPLICATION_DATA {
                if let Some(s) = &mut self.shadow {
                    s.end_record()?;
                }
            }
        }
        Ok(())
    }

    /// Whether the server has sent its whole ServerHello (encrypted records may follow).
    #[cfg(test)]
    pub(crate) fn hello_done(&self) -> bool {
        self.hello == Hello::Done
    }

    fn header(&mut self) -> Result<(), GuardError> {
        let [kind, major, _, hi, lo] = self.hdr;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if major != 3 {
            return Err("the server sent a record with a version other than 3.x (not TLS)");
        }
        match kind {
            APPLICATION_DATA => {
                if len > MAX_CIPHERTEXT {
                    return Err("the server sent an encrypted record longer than 2^14 + 256 bytes");
                }
                if len <= AEAD_TAG {
                    return Err(
                        "the server sent an encrypted record too short to hold a content type (at most 16 bytes)",
                    );
                }
                if let Some(s) = &mut self.shadow {
                    s.begin_record(self.hdr, len)?;
                }
            }
            HANDSHAKE | ALERT | CHANGE_CIPHER_SPEC => {
                if len > MAX_PLAINTEXT {
                    return Err("the server sent a plaintext record longer than 2^14 bytes");
                }
                if len == 0 {
                    return Err("the server sent an empty handshake, alert or change_cipher_spec record");
                }
                if kind == HANDSHAKE && self.hello == Hello::Done {
                    return Err(
                        "the server sent a plaintext handshake record after its ServerHello (TLS 1.3 encrypts the rest)",
                    );
                }
            }
            _ => return Err("the server sent a record of an unknown content type"),
        }
        self.kind = kind;
        self.left = len;
        Ok(())
    }

    fn plaintext_handshake(&mut self, mut b: &[u8]) -> Result<(), GuardError> {
        while !b.is_empty() {
            match &mut self.hello {
                Hello::Header { got, len } => {
                    if *got == 0 && b[0] != SERVER_HELLO {
                        return Err("the server's first handshake message is not a ServerHello");
                    }
                    if *got > 0 {
                        len[*got - 1] = b[0];
                    }
                    *got += 1;
                    b = &b[1..];
                    if *got == 4 {
                        let [x, y, z] = *len;
                        let left = usize::from(x) << 16 | usize::from(y) << 8 | usize::from(z);
                        self.hello = if left == 0 { Hello::Done } else { Hello::Body { left } };
                    }
                }
                Hello::Body { left } => {
                    let k = (*left).min(b.len());
                    *left -= k;
                    b = &b[k..];
                    if *left == 0 {
                        self.hello = Hello::Done;
                    }
                }
                Hello::Done => {
                    return Err("the server sent handshake data after its ServerHello in the same plaintext record");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RecordGuard;
    use alloc::vec;

    fn feed_bytewise(g: &mut RecordGuard, b: &[u8]) -> Result<(), &'static str> {
        for x in b {
            g.feed(core::slice::from_ref(x))?;
        }
        Ok(())
    }

    /// A 6-byte ServerHello body in one record (the guard does not parse the body).
    const HELLO: &[u8] = &[22, 3, 3, 0, 10, 2, 0, 0, 6, 1, 2, 3, 4, 5, 6];

    #[test]
    fn hello_then_encrypted_records_pass_in_any_pieces() {
        let mut g = RecordGuard::default();
        feed_bytewise(&mut g, HELLO).unwrap();
        assert!(g.hello_done());
        let mut rec = vec![23, 3, 3, 0, 17];
        rec.extend_from_slice(&[0xAA; 17]);
        g.feed(&rec).unwrap();
        feed_bytewise(&mut g, &rec).unwrap();
        g.feed(&[20, 3, 3, 0, 1, 1, 21, 3, 3, 0, 2, 1, 0]).unwrap();
    }

    #[test]
    fn t2_plaintext_handshake_after_hello_is_refused() {
        let mut g = RecordGuard::default();
        g.feed(HELLO).unwrap();
        let t2 = [0x16, 3, 3, 0, 0x0c, 0x0f, 0, 0, 8, 4, 3, 0, 4, 0x30, 2, 0, 0];
        assert!(g.feed(&t2).unwrap_err().contains("plaintext handshake record after"));
        let mut g = RecordGuard::default();
        let mut both = HELLO.to_vec();
        both[4] += 4;
        both.extend_from_slice(&[0x0f, 0, 0, 0]);
        assert!(g.feed(&both).unwrap_err().contains("same plaintext record"));
    }

    #[test]
    fn t1_tag_only_records_are_refused() {
        for len in [0u8, 1, 16] {
            let mut g = RecordGuard::default();
            g.feed(HELLO).unwrap();
            assert!(g.feed(&[23, 3, 3, 0, len]).unwrap_err().contains("too short"));
        }
    }

    #[test]
    fn other_violations_are_refused() {
        let cases: [&[u8]; 5] = [
            &[24, 3, 3, 0, 1],
            &[22, 2, 0, 0, 1],
            &[22, 3, 3, 0, 0],
            &[23, 3, 3, 0x41, 0x01],
            &[22, 3, 3, 0, 4, 8, 0, 0, 0],
        ];
        for c in cases {
            assert!(RecordGuard::default().feed(c).is_err(), "{c:?}");
        }
    }
}
