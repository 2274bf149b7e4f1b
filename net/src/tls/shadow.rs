//! The shadow decryptor: the record guard's eyes inside the encryption.
//!
//! `embedded-tls` 0.19.0 panics (`unimplemented!()`) on a post-handshake handshake message
//! other than NewSessionTicket, and on a second CertificateVerify when a CA is set; both
//! arrive encrypted, so a header parser cannot see them. No crate offers "decrypt a TLS 1.3
//! record stream on the side to inspect it" (rustls and embedded-tls only decrypt records
//! they consume themselves, and neither exposes its traffic keys), so this module does it.
//! It reuses the crates `embedded-tls` already links (`p256`, `hkdf`, `sha2`, `aes`,
//! `ghash`), so it adds code but no dependency to a firmware.
//!
//! How it gets the keys: we hand `embedded-tls` its random number generator, so the shadow
//! holds a clone of it and replays the two draws `embedded-tls` makes for its ClientHello
//! (32 bytes of client random, then the P-256 ephemeral key). It then reads the ClientHello
//! `embedded-tls` actually sends and **checks** that the random and the key share are the
//! ones it derived. If they are not (a later `embedded-tls` draws differently), the
//! connection is refused: the shadow never lets records through unchecked. From the
//! ServerHello's key share it computes the ECDHE secret and runs the TLS 1.3 key schedule
//! (RFC 8446 §7.1, HKDF-SHA256) over the transcript it sees: the ClientHello, the
//! ServerHello, and the server's encrypted handshake messages up to its Finished.
//!
//! How it inspects a record: AES-128-GCM in a streaming form (AES-CTR for the plaintext,
//! GHASH for the tag) over the bytes as they pass, with O(1) memory: no copy of the record
//! is kept. The inner content type is the last non-zero byte of the plaintext, so the parse
//! of a record's messages is speculative and committed at the record's end; the last
//! non-zero byte and the count of zeros after it are held back until then. The decision
//! falls when the record's last byte passes the guard, before `embedded-tls` holds a whole
//! record, so a refused record is never processed.
//!
//! Invariants:
//! - Fail closed: a record whose tag does not verify with the shadow's keys is refused. The
//!   server's own bad record and a shadow out of step with `embedded-tls` (say, a transcript
//!   that differs) end the same way: a reset connection and a `RuntimeError`, never a record
//!   the shadow could not read.
//! - The shadow sees message boundaries as `embedded-tls` does: it decodes one record's
//!   handshake messages with the declared lengths, and also checks that the fields
//!   `embedded-tls` reads add up to exactly the declared length (it ignores the declared
//!   length and parses fields in sequence, so a short message would shift its view of the
//!   next one). A message may not span records (`embedded-tls` cannot parse that either).
//! - Server handshake order is exactly EncryptedExtensions, (CertificateRequest),
//!   Certificate, CertificateVerify, Finished (a certificate-authenticated TLS 1.3
//!   handshake without PSK, the only kind `embedded-tls` offers); after that only
//!   NewSessionTicket. Application data before the Finished and unknown inner content
//!   types are refused.
//!
//! Cost: about 1 KB of state per connection (AES round keys, GHASH, SHA-256, a few
//! counters), plus the ClientHello and ServerHello (a few hundred bytes) while they are
//! gathered; one extra AES-CTR and GHASH pass over every byte received.

use alloc::vec::Vec;

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit as _, StreamCipher};
use aes::Aes128;
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use hkdf::Hkdf;
use p256::ecdh::EphemeralSecret;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use super::guard::GuardError;

const TAG: usize = 16;
/// Largest ClientHello or ServerHello message the shadow gathers.
const MAX_HELLO: usize = 2048;

const HS_CLIENT_HELLO: u8 = 1;
const HS_NEW_SESSION_TICKET: u8 = 4;
const HS_ENCRYPTED_EXTENSIONS: u8 = 8;
const HS_CERTIFICATE: u8 = 11;
const HS_CERTIFICATE_REQUEST: u8 = 13;
const HS_CERTIFICATE_VERIFY: u8 = 15;
const HS_FINISHED: u8 = 20;
const HS_KEY_UPDATE: u8 = 24;

const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APPLICATION_DATA: u8 = 23;

const EXT_KEY_SHARE: u16 = 51;
const GROUP_SECP256R1: u16 = 23;
const AES_128_GCM_SHA256: [u8; 2] = [0x13, 0x01];
/// The ServerHello random that marks a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91, 0xC2, 0xA2, 0x11,
    0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// One step of how `embedded-tls` reads a message body: skip `n` bytes, or read an
/// `n`-byte big-endian length and skip that many bytes.
#[derive(Clone, Copy, Debug)]
enum Step {
    Skip(u8),
    Len(u8),
}

/// The fields `embedded-tls` 0.19 reads, in order, per handshake message type (see
/// `handshake/*.rs` there); a body must be exactly these.
fn fields(kind: u8) -> &'static [Step] {
    match kind {
        // version, random; session id; suite, compression; extensions
        2 => &[Step::Skip(34), Step::Len(1), Step::Skip(3), Step::Len(2)],
        HS_ENCRYPTED_EXTENSIONS => &[Step::Len(2)],
        HS_CERTIFICATE => &[Step::Len(1), Step::Len(3)],
        HS_CERTIFICATE_REQUEST => &[Step::Len(1), Step::Len(2)],
        HS_CERTIFICATE_VERIFY => &[Step::Skip(2), Step::Len(2)],
        // verify_data of SHA-256
        HS_FINISHED => &[Step::Skip(32)],
        // lifetime, age_add; nonce; ticket; extensions
        HS_NEW_SESSION_TICKET => &[Step::Skip(8), Step::Len(1), Step::Len(2), Step::Len(2)],
        _ => &[],
    }
}

/// Follows [`fields`] over a body that arrives in pieces.
#[derive(Clone, Copy, Debug)]
struct FieldWalk {
    steps: &'static [Step],
    /// Bytes still to skip in the current step (after its length is known).
    skip: usize,
    /// Length bytes still to read, and the value so far.
    len_left: u8,
    len: usize,
}

impl FieldWalk {
    fn new(kind: u8) -> Self {
        let mut w = FieldWalk {
            steps: fields(kind),
            skip: 0,
            len_left: 0,
            len: 0,
        };
        w.next_step();
        w
    }

    fn next_step(&mut self) {
        if let Some((first, rest)) = self.steps.split_first() {
            self.steps = rest;
            match *first {
                Step::Skip(n) => self.skip = usize::from(n),
                Step::Len(n) => {
                    self.len_left = n;
                    self.len = 0;
                }
            }
        }
    }

    fn done(&self) -> bool {
        self.steps.is_empty() && self.skip == 0 && self.len_left == 0
    }

    /// Consume `b` (part of the body); false if the body is longer than the fields.
    fn feed(&mut self, mut b: &[u8]) -> bool {
        while !b.is_empty() {
            if self.done() {
                return false;
            }
            if self.len_left > 0 {
                self.len = self.len << 8 | usize::from(b[0]);
                self.len_left -= 1;
                b = &b[1..];
                if self.len_left == 0 {
                    self.skip = self.len;
                    if self.skip == 0 {
                        self.next_step();
                    }
                }
            } else {
                let k = self.skip.min(b.len());
                self.skip -= k;
                b = &b[k..];
                if self.skip == 0 {
                    self.next_step();
                }
            }
        }
        true
    }
}

/// Where the server's handshake stands (non-PSK TLS 1.3, certificate authentication).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    EncryptedExtensions,
    CertificateOrRequest,
    Certificate,
    CertificateVerify,
    Finished,
    /// After the server's Finished: application keys.
    Established,
}

impl Order {
    fn next(self, kind: u8) -> Result<Order, GuardError> {
        use Order::*;
        Ok(match (self, kind) {
            (EncryptedExtensions, HS_ENCRYPTED_EXTENSIONS) => CertificateOrRequest,
            (CertificateOrRequest, HS_CERTIFICATE_REQUEST) => Certificate,
            (CertificateOrRequest | Certificate, HS_CERTIFICATE) => CertificateVerify,
            (CertificateVerify, HS_CERTIFICATE_VERIFY) => Finished,
            (Finished, HS_FINISHED) => Established,
            (Established, HS_NEW_SESSION_TICKET) => Established,
            (Established, HS_KEY_UPDATE) => {
                return Err("the server sent a KeyUpdate, which embedded-tls 0.19 cannot perform")
            }
            (Established, _) => {
                return Err("the server sent a handshake message other than NewSessionTicket after the handshake")
            }
            _ => return Err("the server sent its handshake messages out of order (RFC 8446 §4)"),
        })
    }
}

/// The speculative parse of one record's plaintext as handshake messages.
#[derive(Clone)]
struct Spec {
    hdr: [u8; 4],
    hdr_got: usize,
    /// Body bytes left of the current message (when `hdr_got == 4`).
    left: usize,
    walk: FieldWalk,
    order: Order,
    /// Only during the handshake: the transcript including this record's messages.
    transcript: Option<Sha256>,
    /// Set once a message would break a rule (reported only if the record is a handshake).
    err: Option<GuardError>,
    /// The transcript hash right after the server's Finished.
    finished_hash: Option<[u8; 32]>,
}

impl Spec {
    fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() && self.err.is_none() {
            if self.finished_hash.is_some() {
                self.err = Some("the server sent more after its Finished in the same record (RFC 8446 §5.1)");
                return;
            }
            if self.hdr_got < 4 {
                self.hash(&b[..1]);
                self.hdr[self.hdr_got] = b[0];
                self.hdr_got += 1;
                b = &b[1..];
                if self.hdr_got == 4 {
                    let [kind, x, y, z] = self.hdr;
                    self.left = usize::from(x) << 16 | usize::from(y) << 8 | usize::from(z);
                    match self.order.next(kind) {
                        Ok(o) => self.order = o,
                        Err(e) => {
                            self.err = Some(e);
                            return;
                        }
                    }
                    self.walk = FieldWalk::new(kind);
                    if self.left == 0 {
                        self.end_message();
                    }
                }
                continue;
            }
            let k = self.left.min(b.len());
            self.hash(&b[..k]);
            if !self.walk.feed(&b[..k]) {
                self.err = Some(MALFORMED);
                return;
            }
            self.left -= k;
            b = &b[k..];
            if self.left == 0 {
                self.end_message();
            }
        }
    }

    fn hash(&mut self, b: &[u8]) {
        if let Some(t) = &mut self.transcript {
            t.update(b);
        }
    }

    fn end_message(&mut self) {
        if !self.walk.done() {
            self.err = Some(MALFORMED);
            return;
        }
        self.hdr_got = 0;
        if self.order == Order::Established && self.finished_hash.is_none() {
            if let Some(t) = &self.transcript {
                self.finished_hash = Some(t.clone().finalize().into());
            }
        }
    }
}

const MALFORMED: GuardError =
    "the server sent a handshake message whose fields do not add up to its length (embedded-tls would misparse it)";

/// Keys of one direction of one epoch, and the record sequence number.
struct Epoch {
    aes: Aes128,
    iv: [u8; 12],
    seq: u64,
}

/// The record being decrypted.
struct Rec {
    aad: [u8; 5],
    /// Ciphertext bytes left, then tag bytes gathered.
    ct_left: usize,
    tag: [u8; TAG],
    tag_got: usize,
    nonce: [u8; 12],
    /// AES-CTR from counter 2 (RFC 8446 uses GCM with 96-bit nonces).
    ctr: ctr::Ctr32BE<Aes128>,
    ghash: GHash,
    /// A partial ciphertext block for GHASH.
    blk: [u8; 16],
    blk_got: usize,
    ct_len: usize,
    /// The last non-zero plaintext byte and the zeros after it, held back.
    held: Option<u8>,
    zeros: usize,
    spec: Spec,
}

enum Phase {
    /// Before our ClientHello: the RNG clone to replay.
    Start(ChaCha20Rng),
    /// Gathering our ClientHello record.
    ClientHello {
        rng: ChaCha20Rng,
        buf: Vec<u8>,
    },
    /// Waiting for / gathering the ServerHello message.
    ServerHello {
        secret: EphemeralSecret,
        buf: Vec<u8>,
    },
    /// Encrypted records.
    Keyed,
    Failed,
}

/// The shadow decryptor of one connection (see the module doc).
pub(crate) struct Shadow {
    phase: Phase,
    transcript: Sha256,
    /// The handshake secret, kept to derive the master secret at the Finished.
    hs_secret: [u8; 32],
    epoch: Option<Epoch>,
    order: Order,
    rec: Option<Rec>,
}

impl Shadow {
    /// A shadow for a connection whose `embedded-tls` gets `ChaCha20Rng::from_seed(seed)`.
    pub(crate) fn new(rng: ChaCha20Rng) -> Self {
        Shadow {
            phase: Phase::Start(rng),
            transcript: Sha256::new(),
            hs_secret: [0; 32],
            epoch: None,
            order: Order::EncryptedExtensions,
            rec: None,
        }
    }

    /// Bytes `embedded-tls` sends; only the first record (the ClientHello) matters.
    pub(crate) fn sent(&mut self, bytes: &[u8]) -> Result<(), GuardError> {
        let r = self.sent_inner(bytes);
        if r.is_err() {
            self.phase = Phase::Failed;
        }
        r
    }

    fn sent_inner(&mut self, bytes: &[u8]) -> Result<(), GuardError> {
        match core::mem::replace(&mut self.phase, Phase::Failed) {
            Phase::Start(rng) => {
                self.phase = Phase::ClientHello { rng, buf: Vec::new() };
                self.sent_inner(bytes)
            }
            Phase::ClientHello { rng, mut buf } => {
                buf.extend_from_slice(bytes);
                if buf.len() > MAX_HELLO + 5 {
                    return Err("our ClientHello is larger than the TLS guard expects");
                }
                let complete = match buf.get(3..5) {
                    Some(&[hi, lo]) => buf.len() >= 5 + usize::from(u16::from_be_bytes([hi, lo])),
                    _ => false,
                };
                if !complete {
                    self.phase = Phase::ClientHello { rng, buf };
                    return Ok(());
                }
                let secret = self.client_hello(rng, &buf)?;
                self.phase = Phase::ServerHello {
                    secret,
                    buf: Vec::new(),
                };
                Ok(())
            }
            other => {
                self.phase = other;
                Ok(())
            }
        }
    }

    /// Check our ClientHello record against the replayed RNG; returns the ephemeral key.
    fn client_hello(&mut self, mut rng: ChaCha20Rng, rec: &[u8]) -> Result<EphemeralSecret, GuardError> {
        const BAD: GuardError = "our ClientHello is not one the TLS guard can parse";
        const DRIFT: GuardError = "embedded-tls did not draw its ClientHello random and key share from our RNG as the TLS guard expects (check the embedded-tls version); the guard cannot check this connection";
        let mut r = Reader(rec);
        if r.take(1)? != [CT_HANDSHAKE] {
            return Err(BAD);
        }
        r.take(2)?;
        let rec_len = r.u(2)?;
        let msg = r.take(rec_len)?;
        let mut m = Reader(msg);
        if m.take(1)? != [HS_CLIENT_HELLO] {
            return Err(BAD);
        }
        let body_len = m.u(3)?;
        if body_len != m.0.len() {
            return Err(BAD);
        }
        m.take(2)?;
        let random = m.take(32)?;
        let sid = m.u(1)?;
        m.take(sid)?;
        let suites = m.u(2)?;
        m.take(suites)?;
        let comp = m.u(1)?;
        m.take(comp)?;
        let ext_len = m.u(2)?;
        let mut ext = Reader(m.take(ext_len)?);
        let mut share = None;
        while !ext.0.is_empty() {
            let kind = ext.u(2)?;
            let len = ext.u(2)?;
            let data = ext.take(len)?;
            if kind == usize::from(EXT_KEY_SHARE) {
                let mut d = Reader(data);
                let list = d.u(2)?;
                let mut d = Reader(d.take(list)?);
                while !d.0.is_empty() {
                    let group = d.u(2)?;
                    let klen = d.u(2)?;
                    let key = d.take(klen)?;
                    if group == usize::from(GROUP_SECP256R1) {
                        share = Some(key);
                    }
                }
            }
        }
        let share = share.ok_or(DRIFT)?;
        let mut expect_random = [0u8; 32];
        rng.fill_bytes(&mut expect_random);
        let secret = EphemeralSecret::random(&mut rng);
        let public = p256::EncodedPoint::from(&secret.public_key());
        if random != expect_random || share != public.as_bytes() {
            return Err(DRIFT);
        }
        self.transcript.update(msg);
        Ok(secret)
    }

    /// Plaintext handshake bytes of the server (the guard lets only its ServerHello pass).
    pub(crate) fn server_hello(&mut self, bytes: &[u8]) -> Result<(), GuardError> {
        match core::mem::replace(&mut self.phase, Phase::Failed) {
            Phase::ServerHello { secret, mut buf } => {
                buf.extend_from_slice(bytes);
                if buf.len() > MAX_HELLO {
                    return Err("the server sent a ServerHello longer than 2 KiB");
                }
                let complete = match buf.get(..4) {
                    Some(&[_, x, y, z]) => {
                        buf.len() >= 4 + (usize::from(x) << 16 | usize::from(y) << 8 | usize::from(z))
                    }
                    _ => false,
                };
                if !complete {
                    self.phase = Phase::ServerHello { secret, buf };
                    return Ok(());
                }
                self.parse_server_hello(&secret, &buf)?;
                self.phase = Phase::Keyed;
                Ok(())
            }
            Phase::Failed => Err("the TLS guard already refused this connection"),
            _ => Err("the server sent its ServerHello before our ClientHello was complete"),
        }
    }

    fn parse_server_hello(&mut self, secret: &EphemeralSecret, msg: &[u8]) -> Result<(), GuardError> {
        const BAD: GuardError = "the server sent a malformed ServerHello";
        let mut walk = FieldWalk::new(2);
        let body = msg.get(4..).ok_or(BAD)?;
        if !walk.feed(body) || !walk.done() {
            return Err(MALFORMED);
        }
        let mut m = Reader(body);
        m.take(2).map_err(|_| BAD)?;
        if m.take(32).map_err(|_| BAD)? == HRR_RANDOM {
            return Err("the server sent a HelloRetryRequest (embedded-tls offers one key share and cannot retry)");
        }
        let sid = m.u(1).map_err(|_| BAD)?;
        m.take(sid).map_err(|_| BAD)?;
        if m.take(2).map_err(|_| BAD)? != AES_128_GCM_SHA256 {
            return Err("the server chose a cipher suite other than TLS_AES_128_GCM_SHA256, the one we offer");
        }
        m.take(1).map_err(|_| BAD)?;
        let ext_len = m.u(2).map_err(|_| BAD)?;
        let mut ext = Reader(m.take(ext_len).map_err(|_| BAD)?);
        let mut share = None;
        while !ext.0.is_empty() {
            let kind = ext.u(2).map_err(|_| BAD)?;
            let len = ext.u(2).map_err(|_| BAD)?;
            let data = ext.take(len).map_err(|_| BAD)?;
            if kind == usize::from(EXT_KEY_SHARE) {
                let mut d = Reader(data);
                if d.u(2).map_err(|_| BAD)? != usize::from(GROUP_SECP256R1) {
                    return Err("the server's key share is not on P-256, the group we offer");
                }
                let klen = d.u(2).map_err(|_| BAD)?;
                share = Some(d.take(klen).map_err(|_| BAD)?);
            }
        }
        let share = share.ok_or("the server's ServerHello has no key share (PSK-only is not offered)")?;
        let peer =
            p256::PublicKey::from_sec1_bytes(share).map_err(|_| "the server's key share is not a P-256 point")?;
        let shared = secret.diffie_hellman(&peer);
        self.transcript.update(msg);

        let zeros = [0u8; 32];
        let (early, _) = Hkdf::<Sha256>::extract(Some(&zeros), &zeros);
        let early = Hkdf::<Sha256>::from_prk(&early).map_err(|_| BAD)?;
        let derived = expand_label(&early, b"derived", &Sha256::digest([]))?;
        let (hs, hs_hkdf) = Hkdf::<Sha256>::extract(Some(&derived), shared.raw_secret_bytes());
        self.hs_secret = hs.into();
        let hello_hash: [u8; 32] = self.transcript.clone().finalize().into();
        let s_hs = expand_label(&hs_hkdf, b"s hs traffic", &hello_hash)?;
        self.epoch = Some(epoch(&s_hs)?);
        Ok(())
    }

    /// An encrypted record's header arrived (`len` > 16, checked by the guard).
    pub(crate) fn begin_record(&mut self, hdr: [u8; 5], len: usize) -> Result<(), GuardError> {
        if !matches!(self.phase, Phase::Keyed) {
            return Err("the server sent an encrypted record before its ServerHello");
        }
        let ep = self
            .epoch
            .as_ref()
            .ok_or("the server sent an encrypted record before its ServerHello")?;
        let mut nonce = ep.iv;
        for (n, s) in nonce[4..].iter_mut().zip(ep.seq.to_be_bytes()) {
            *n ^= s;
        }
        let mut h = [0u8; 16];
        ep.aes.encrypt_block((&mut h).into());
        let mut ghash = GHash::new(&h.into());
        ghash.update_padded(&hdr);
        let ct_len = len.saturating_sub(TAG);
        self.rec = Some(Rec {
            aad: hdr,
            ct_left: ct_len,
            tag: [0; TAG],
            tag_got: 0,
            nonce,
            ctr: ctr::Ctr32BE::from_core(ctr::CtrCore::inner_iv_init(
                ep.aes.clone(),
                &counter_block(&nonce, 2).into(),
            )),
            ghash,
            blk: [0; 16],
            blk_got: 0,
            ct_len,
            held: None,
            zeros: 0,
            spec: Spec {
                hdr: [0; 4],
                hdr_got: 0,
                left: 0,
                walk: FieldWalk::new(0),
                order: self.order,
                transcript: (self.order != Order::Established).then(|| self.transcript.clone()),
                err: None,
                finished_hash: None,
            },
        });
        Ok(())
    }

    /// Body bytes of the current encrypted record.
    pub(crate) fn record_bytes(&mut self, mut b: &[u8]) -> Result<(), GuardError> {
        let rec = self.rec.as_mut().ok_or("the TLS guard lost track of the record")?;
        let mut plain = [0u8; 512];
        while !b.is_empty() {
            if rec.ct_left == 0 {
                let k = (TAG - rec.tag_got).min(b.len());
                rec.tag[rec.tag_got..rec.tag_got + k].copy_from_slice(&b[..k]);
                rec.tag_got += k;
                b = &b[k..];
                if !b.is_empty() {
                    return Err("the TLS guard lost track of the record");
                }
                continue;
            }
            let k = rec.ct_left.min(b.len()).min(plain.len());
            let (ct, rest) = b.split_at(k);
            b = rest;
            rec.ct_left -= k;
            // GHASH over the ciphertext: complete a partial block, then whole blocks.
            let mut c = ct;
            if rec.blk_got > 0 {
                let n = (16 - rec.blk_got).min(c.len());
                rec.blk[rec.blk_got..rec.blk_got + n].copy_from_slice(&c[..n]);
                rec.blk_got += n;
                c = &c[n..];
                if rec.blk_got == 16 {
                    rec.ghash.update(&[rec.blk.into()]);
                    rec.blk_got = 0;
                }
            }
            if rec.blk_got == 0 {
                let mut blocks = [ghash::Block::default(); 32];
                let mut nb = 0;
                let mut whole = c.chunks_exact(16);
                for (dst, blk) in blocks.iter_mut().zip(whole.by_ref()) {
                    dst.copy_from_slice(blk);
                    nb += 1;
                }
                rec.ghash.update(&blocks[..nb]);
                let tail = whole.remainder();
                rec.blk[..tail.len()].copy_from_slice(tail);
                rec.blk_got = tail.len();
            }
            // AES-CTR for the plaintext.
            plain[..k].copy_from_slice(ct);
            rec.ctr.apply_keystream(&mut plain[..k]);
            rec.plain(&plain[..k]);
        }
        Ok(())
    }

    /// The current record's last byte passed: verify it and decide.
    pub(crate) fn end_record(&mut self) -> Result<(), GuardError> {
        let rec = self.rec.take().ok_or("the TLS guard lost track of the record")?;
        let ep = self.epoch.as_mut().ok_or("the TLS guard has no keys")?;
        let mut ghash = rec.ghash;
        if rec.blk_got > 0 {
            ghash.update_padded(&rec.blk[..rec.blk_got]);
        }
        let mut lens = [0u8; 16];
        lens[..8].copy_from_slice(&((rec.aad.len() as u64) * 8).to_be_bytes());
        lens[8..].copy_from_slice(&((rec.ct_len as u64) * 8).to_be_bytes());
        ghash.update(&[lens.into()]);
        let mut mask = counter_block(&rec.nonce, 1);
        ep.aes.encrypt_block((&mut mask).into());
        let tag = ghash.finalize();
        let diff = tag
            .iter()
            .zip(mask)
            .zip(rec.tag)
            .fold(0u8, |d, ((t, m), r)| d | (t ^ m ^ r));
        if diff != 0 || rec.tag_got != TAG {
            return Err("a record from the server failed authentication (forged or corrupted, or the TLS guard's key schedule disagrees with embedded-tls)");
        }
        ep.seq = ep.seq.checked_add(1).ok_or("the server sent 2^64 records")?;
        let established = self.order == Order::Established;
        match rec.held {
            Some(CT_HANDSHAKE) => {
                let spec = rec.spec;
                if let Some(e) = spec.err {
                    return Err(e);
                }
                if spec.hdr_got != 0 {
                    return Err("the server split a handshake message across records (embedded-tls cannot parse that)");
                }
                self.order = spec.order;
                if let Some(t) = spec.transcript {
                    self.transcript = t;
                }
                if let Some(hash) = spec.finished_hash {
                    let hs = Hkdf::<Sha256>::from_prk(&self.hs_secret).map_err(|_| "TLS guard key schedule")?;
                    let derived = expand_label(&hs, b"derived", &Sha256::digest([]))?;
                    let (_, master) = Hkdf::<Sha256>::extract(Some(&derived), &[0u8; 32]);
                    let s_ap = expand_label(&master, b"s ap traffic", &hash)?;
                    self.epoch = Some(epoch(&s_ap)?);
                }
                Ok(())
            }
            Some(CT_ALERT) => Ok(()),
            Some(CT_APPLICATION_DATA) if established => Ok(()),
            Some(CT_APPLICATION_DATA) => Err("the server sent application data before its Finished"),
            Some(_) => Err("the server sent an encrypted record of an unknown inner content type"),
            None => Err("the server sent an encrypted record without an inner content type"),
        }
    }
}

impl Rec {
    /// Decrypted bytes: hold back the last non-zero byte and trailing zeros (the content
    /// type and padding, if this is the record's end); the rest is content.
    fn plain(&mut self, chunk: &[u8]) {
        match chunk.iter().rposition(|b| *b != 0) {
            None => self.zeros += chunk.len(),
            Some(i) => {
                if let Some(h) = self.held.take() {
                    self.spec.feed(&[h]);
                    let zeros = [0u8; 64];
                    while self.zeros > 0 {
                        let n = self.zeros.min(zeros.len());
                        self.spec.feed(&zeros[..n]);
                        self.zeros -= n;
                    }
                }
                self.zeros = 0;
                self.spec.feed(&chunk[..i]);
                self.held = Some(chunk[i]);
                self.zeros = chunk.len() - i - 1;
            }
        }
    }
}

fn counter_block(nonce: &[u8; 12], ctr: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..12].copy_from_slice(nonce);
    b[12..].copy_from_slice(&ctr.to_be_bytes());
    b
}

/// HKDF-Expand-Label (RFC 8446 §7.1) to 32 bytes.
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], ctx: &[u8]) -> Result<[u8; 32], GuardError> {
    let mut out = [0u8; 32];
    expand_into(prk, label, ctx, &mut out)?;
    Ok(out)
}

fn expand_into(prk: &Hkdf<Sha256>, label: &[u8], ctx: &[u8], out: &mut [u8]) -> Result<(), GuardError> {
    const ERR: GuardError = "TLS guard key schedule: label too long";
    let len = u16::try_from(out.len()).map_err(|_| ERR)?;
    let llen = u8::try_from(6 + label.len()).map_err(|_| ERR)?;
    let clen = u8::try_from(ctx.len()).map_err(|_| ERR)?;
    let len = len.to_be_bytes();
    prk.expand_multi_info(&[&len, &[llen], b"tls13 ", label, &[clen], ctx], out)
        .map_err(|_| ERR)
}

fn epoch(secret: &[u8; 32]) -> Result<Epoch, GuardError> {
    let prk = Hkdf::<Sha256>::from_prk(secret).map_err(|_| "TLS guard key schedule")?;
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    expand_into(&prk, b"key", &[], &mut key)?;
    expand_into(&prk, b"iv", &[], &mut iv)?;
    Ok(Epoch {
        aes: Aes128::new(&key.into()),
        iv,
        seq: 0,
    })
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], GuardError> {
        if n > self.0.len() {
            return Err("a TLS hello message is truncated");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    /// A big-endian integer of `n` (1 to 3) bytes.
    fn u(&mut self, n: usize) -> Result<usize, GuardError> {
        Ok(self.take(n)?.iter().fold(0usize, |v, b| v << 8 | usize::from(*b)))
    }
}

#[cfg(test)]
mod tests {
    use super::{FieldWalk, Order, HS_FINISHED, HS_NEW_SESSION_TICKET};

    #[test]
    fn field_walk_matches_exact_lengths_only() {
        // NewSessionTicket: lifetime, age_add, nonce(1), ticket(2), extensions(0).
        let nst = [0, 0, 0, 1, 0, 0, 0, 2, 1, 9, 0, 2, 7, 7, 0, 0];
        let mut w = FieldWalk::new(HS_NEW_SESSION_TICKET);
        assert!(w.feed(&nst) && w.done());
        let mut w = FieldWalk::new(HS_NEW_SESSION_TICKET);
        assert!(w.feed(&nst[..15]) && !w.done());
        let mut long = nst.to_vec();
        long.push(1);
        let mut w = FieldWalk::new(HS_NEW_SESSION_TICKET);
        assert!(!w.feed(&long));
        let mut w = FieldWalk::new(HS_FINISHED);
        for _ in 0..32 {
            assert!(w.feed(&[1]));
        }
        assert!(w.done());
    }

    #[test]
    fn order_is_enforced() {
        assert!(Order::EncryptedExtensions.next(15).is_err());
        assert!(Order::CertificateOrRequest.next(15).is_err());
        assert!(Order::Finished.next(15).is_err());
        assert!(Order::Established.next(20).is_err());
        assert!(Order::Established.next(24).is_err());
        assert_eq!(Order::Established.next(4), Ok(Order::Established));
    }
}
