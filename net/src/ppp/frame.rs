//! Our side of the framing: find frames in the byte stream, vet them before `ppproto` sees
//! them, spot the modem's text between frames, and build the few frames ppproto cannot.
//!
//! `ppproto` decodes HDLC itself, but it panics on some well-formed frames a peer may send
//! (a 3-byte frame, an option longer than 4 bytes, more than 6 options, an Echo-Request
//! longer than 126 bytes, a PAP length field one or two bytes past the end, a malformed
//! option list, a Protocol-Reject it would have to build above 128 bytes). So the link
//! task decodes each frame first ([`Deframer`]), checks it ([`check`]) and hands ppproto
//! only frames it can digest, re-framed ([`for_ppproto`]); the rest are counted and dropped.
//! Decoding first also gives what ppproto does not report: where a frame ends (so modem
//! text such as `NO CARRIER` is recognised only between frames), and which control packets
//! passed (Terminate-Request, Echo-Reply).

use alloc::vec::Vec;

/// HDLC flag sequence: starts and ends every frame.
pub(crate) const FLAG: u8 = 0x7E;
/// HDLC control escape: the next byte is XORed with 0x20.
pub(crate) const ESC: u8 = 0x7D;
/// Address and control fields of every PPP frame (no ACFC: ppproto rejects it).
const ADDR: u8 = 0xFF;
const CTRL: u8 = 0x03;

/// Protocol numbers.
pub(crate) const PROTO_IPV4: u16 = 0x0021;
pub(crate) const PROTO_LCP: u16 = 0xC021;
pub(crate) const PROTO_PAP: u16 = 0xC023;
pub(crate) const PROTO_IPCP: u16 = 0x8021;

/// Control packet codes (RFC 1661 §5).
const CONF_REQ: u8 = 1;
const CONF_NAK: u8 = 3;
const CONF_REJ: u8 = 4;
const TERM_REQ: u8 = 5;
const ECHO_REQ: u8 = 9;
const ECHO_REPLY: u8 = 10;

/// ppproto's limits (its `wire.rs`): options per Configure packet it builds, option data
/// bytes it can copy, and the largest control packet it can emit.
const PPPROTO_MAX_OPTIONS: usize = 6;
const PPPROTO_MAX_OPTION_DATA: usize = 4;
pub(super) const PPPROTO_MAX_PACKET: usize = 128;

/// What the modem prints when the call drops (the CR LF around it are not needed to match).
const NO_CARRIER: &[u8] = b"NO CARRIER";

const fn fcs_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut v = i as u16;
        let mut k = 0;
        while k < 8 {
            v = if v & 1 != 0 { (v >> 1) ^ 0x8408 } else { v >> 1 };
            k += 1;
        }
        t[i] = v;
        i += 1;
    }
    t
}

/// RFC 1662 FCS-16 lookup table.
static FCS_TABLE: [u16; 256] = fcs_table();
/// FCS-16 initial value.
const FCS_INIT: u16 = 0xFFFF;
/// FCS-16 over a frame including its own FCS.
const FCS_GOOD: u16 = 0xF0B8;

/// RFC 1662 FCS-16 of `data`, continuing from `fcs`.
pub(crate) fn fcs16(mut fcs: u16, data: &[u8]) -> u16 {
    for &b in data {
        fcs = (fcs >> 8) ^ FCS_TABLE[usize::from((fcs ^ u16::from(b)) & 0xFF)];
    }
    fcs
}

/// What [`Deframer::push`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A complete frame with a good FCS: [`Deframer::frame`].
    Frame,
    /// `NO CARRIER` between frames: the modem dropped the call.
    NoCarrier,
    /// A frame was dropped: bad FCS, too short, too long, or aborted.
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a frame (before the first flag, or in text after a flag).
    Text,
    /// Right after a flag.
    Start,
    /// Inside a frame.
    Frame,
    /// A frame longer than the limit: skip to the next flag.
    Skip,
}

/// Splits the byte stream into frames (unescaped, FCS checked) and text.
pub(crate) struct Deframer {
    buf: Vec<u8>,
    max: usize,
    state: State,
    escape: bool,
    /// Bytes of `NO CARRIER` matched so far.
    text: usize,
}

impl Deframer {
    /// A deframer for frames of at most `max` bytes unescaped (address to FCS).
    pub(crate) fn new(max: usize) -> Self {
        Deframer {
            buf: Vec::with_capacity(max),
            max,
            state: State::Text,
            escape: false,
            text: 0,
        }
    }

    /// The last complete frame: address, control, protocol, information, FCS.
    pub(crate) fn frame(&self) -> &[u8] {
        &self.buf
    }

    /// Take one byte of the stream.
    pub(crate) fn push(&mut self, b: u8) -> Option<Event> {
        if b == FLAG {
            let done = self.state == State::Frame && !self.buf.is_empty() && !self.escape;
            let was_frame = matches!(self.state, State::Frame | State::Skip);
            self.state = State::Start;
            self.escape = false;
            self.text = 0;
            let good = self.buf.len() >= 6 && self.buf[1] == CTRL && fcs16(FCS_INIT, &self.buf) == FCS_GOOD;
            if done && good {
                return Some(Event::Frame);
            }
            self.buf.clear();
            return (done || was_frame).then_some(Event::Dropped);
        }
        match self.state {
            State::Start if b == ADDR => {
                self.buf.clear();
                self.buf.push(b);
                self.state = State::Frame;
                None
            }
            State::Start | State::Text => {
                self.state = State::Text;
                self.match_text(b)
            }
            State::Frame => {
                if b == ESC {
                    self.escape = true;
                    return None;
                }
                let b = if core::mem::take(&mut self.escape) { b ^ 0x20 } else { b };
                if self.buf.len() >= self.max {
                    self.state = State::Skip;
                } else {
                    self.buf.push(b);
                }
                None
            }
            State::Skip => None,
        }
    }

    fn match_text(&mut self, b: u8) -> Option<Event> {
        if NO_CARRIER.get(self.text) == Some(&b) {
            self.text += 1;
        } else {
            self.text = usize::from(NO_CARRIER.first() == Some(&b));
        }
        if self.text == NO_CARRIER.len() {
            self.text = 0;
            return Some(Event::NoCarrier);
        }
        None
    }
}

/// Control packets seen in a frame that passed [`check`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    /// An LCP Terminate-Request: the peer closes the link.
    pub(crate) terminate_request: bool,
    /// An LCP Echo-Reply (an answer to our keepalive).
    pub(crate) echo_reply: bool,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Whether ppproto can take frame `f` (address to FCS, as [`Deframer::frame`]) without
/// panicking; `None` to drop it. Mirrors ppproto 0.2.1's parsing: packets its own length
/// checks refuse pass through (it ignores them safely).
pub(crate) fn check(f: &[u8]) -> Option<Seen> {
    // Protocol and information: what ppproto calls the packet.
    let pkt = f.get(2..f.len().checked_sub(2)?)?;
    let proto = be16(pkt, 0)?;
    let mut seen = Seen::default();
    match proto {
        PROTO_IPV4 => {}
        PROTO_LCP | PROTO_IPCP => {
            let (Some(&code), Some(len)) = (pkt.get(2), be16(pkt, 4)) else {
                return Some(seen); // shorter than a header: ppproto ignores it
            };
            if len < 4 {
                // ppproto would cut the packet inside its own header and index past it.
                return None;
            }
            let Some(body) = pkt.get(6..usize::from(len) + 2) else {
                return Some(seen); // length field past the end: ppproto ignores it
            };
            match code {
                CONF_REQ => {
                    let mut n = 0;
                    options_ok(body, |data| {
                        n += 1;
                        data <= PPPROTO_MAX_OPTION_DATA
                    })
                    .then_some(())?;
                    (n <= PPPROTO_MAX_OPTIONS).then_some(())?;
                }
                CONF_NAK | CONF_REJ => options_ok(body, |_| true).then_some(())?,
                // Answered by echoing the packet back in one of ppproto's 128-byte buffers.
                ECHO_REQ => (usize::from(len) + 2 <= PPPROTO_MAX_PACKET).then_some(())?,
                TERM_REQ if proto == PROTO_LCP => seen.terminate_request = true,
                ECHO_REPLY if proto == PROTO_LCP => seen.echo_reply = true,
                _ => {}
            }
        }
        PROTO_PAP => {
            // ppproto checks `len <= packet` but then slices `len + 2`.
            if let Some(len) = be16(pkt, 4).filter(|_| pkt.len() >= 6) {
                (usize::from(len) + 2 <= pkt.len() || usize::from(len) > pkt.len()).then_some(())?;
            }
        }
        // Anything else is answered with a Protocol-Reject that carries the whole packet
        // plus 6 bytes of headers in a 128-byte buffer.
        _ => (pkt.len() + 6 <= PPPROTO_MAX_PACKET).then_some(())?,
    }
    Some(seen)
}

/// Whether `body` is a well-formed option list whose every option's data length `ok` accepts.
fn options_ok(mut body: &[u8], mut ok: impl FnMut(usize) -> bool) -> bool {
    while !body.is_empty() {
        let Some(&len) = body.get(1) else { return false };
        let len = usize::from(len);
        if len < 2 || len > body.len() || !ok(len - 2) {
            return false;
        }
        body = &body[len..];
    }
    true
}

/// Append frame `f` (address to FCS, unescaped) to `out` as ppproto's reader wants it: a
/// flag, the bytes with flag and escape escaped, a closing flag.
pub(crate) fn for_ppproto(f: &[u8], out: &mut Vec<u8>) {
    out.push(FLAG);
    for &b in f {
        if b == FLAG || b == ESC {
            out.extend_from_slice(&[ESC, b ^ 0x20]);
        } else {
            out.push(b);
        }
    }
    out.push(FLAG);
}

/// An unescaped frame (address to FCS) carrying `proto` and `payload`.
pub(crate) fn frame(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 6);
    f.extend_from_slice(&[ADDR, CTRL]);
    f.extend_from_slice(&proto.to_be_bytes());
    f.extend_from_slice(payload);
    let fcs = fcs16(FCS_INIT, &f) ^ 0xFFFF;
    f.extend_from_slice(&fcs.to_le_bytes());
    f
}

/// The empty Configure-Nak (Authenticate-Nak for PAP) of `proto` that makes ppproto send
/// its Configure-Request again: its way of taking RFC 1661's TO+ event (see the module
/// docs of `ppp`).
pub(crate) fn restart_nudge(proto: u16) -> Vec<u8> {
    frame(proto, &[CONF_NAK, 0, 0, 4])
}

/// Append frame `f` (unescaped) to `out` for the wire, escaping every control character
/// (the default ACCM, always safe).
pub(crate) fn for_wire(f: &[u8], out: &mut Vec<u8>) {
    out.push(FLAG);
    for &b in f {
        if b < 0x20 || b == FLAG || b == ESC {
            out.extend_from_slice(&[ESC, b ^ 0x20]);
        } else {
            out.push(b);
        }
    }
    out.push(FLAG);
}

/// An LCP Echo-Request with identifier `id` (magic number 0: none was negotiated).
pub(crate) fn echo_request(id: u8) -> Vec<u8> {
    frame(PROTO_LCP, &[ECHO_REQ, id, 0, 8, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn feed(d: &mut Deframer, bytes: &[u8]) -> Vec<Event> {
        bytes.iter().filter_map(|&b| d.push(b)).collect()
    }

    #[test]
    fn fcs_of_a_frame_with_its_fcs_is_good() {
        let f = frame(PROTO_LCP, &[1, 1, 0, 4]);
        assert_eq!(fcs16(FCS_INIT, &f), FCS_GOOD);
    }

    #[test]
    fn frames_and_text_are_told_apart() {
        let mut d = Deframer::new(64);
        let mut wire = Vec::new();
        for_wire(&echo_request(7), &mut wire);
        wire.extend_from_slice(b"\r\nRING\r\n\x7e\r\nNO CARRIER\r\n");
        let mut ev = Vec::new();
        for &b in &wire {
            if let Some(e) = d.push(b) {
                if e == Event::Frame {
                    assert_eq!(d.frame(), &echo_request(7)[..]);
                }
                ev.push(e);
            }
        }
        assert_eq!(ev, [Event::Frame, Event::NoCarrier]);
    }

    #[test]
    fn no_carrier_inside_a_frame_is_data() {
        let mut d = Deframer::new(64);
        let mut wire = Vec::new();
        for_ppproto(&frame(PROTO_IPV4, b"\r\nNO CARRIER\r\n"), &mut wire);
        assert_eq!(feed(&mut d, &wire), [Event::Frame]);
    }

    #[test]
    fn bad_fcs_and_overlong_frames_are_dropped() {
        let mut d = Deframer::new(16);
        let mut f = frame(PROTO_IPV4, &[1, 2, 3]);
        f[4] ^= 1;
        let mut wire = Vec::new();
        for_wire(&f, &mut wire);
        for_wire(&frame(PROTO_IPV4, &[0; 40]), &mut wire);
        assert_eq!(feed(&mut d, &wire), [Event::Dropped, Event::Dropped]);
    }

    #[test]
    fn frames_ppproto_would_panic_on_are_refused() {
        // Too short for a protocol field.
        assert!(check(&[0xFF, 0x03, 0x21, 0, 0]).is_none());
        // An option with 5 data bytes in a Configure-Request.
        assert!(check(&frame(PROTO_LCP, &[1, 1, 0, 11, 9, 7, 1, 2, 3, 4, 5])).is_none());
        // Seven options.
        let mut p = vec![1, 1, 0, 4 + 7 * 2];
        p.extend([0x20, 2].repeat(7));
        assert!(check(&frame(PROTO_IPCP, &p)).is_none());
        // Malformed option list in a Configure-Reject.
        assert!(check(&frame(PROTO_LCP, &[4, 1, 0, 6, 2, 9])).is_none());
        // A long Echo-Request and a long unknown protocol.
        let mut e = vec![9, 1, 0, 200];
        e.resize(200, 0);
        assert!(check(&frame(PROTO_LCP, &e)).is_none());
        assert!(check(&frame(0x0057, &[0; 130])).is_none());
        // A length field shorter than the header.
        assert!(check(&frame(PROTO_LCP, &[9, 1, 0, 1])).is_none());
        // PAP whose length field points one byte past the end.
        assert!(check(&frame(PROTO_PAP, &[2, 1, 0, 5])).is_none());
        // Fine ones.
        assert!(check(&frame(PROTO_IPV4, &[0x45; 100])).is_some());
        assert!(check(&restart_nudge(PROTO_LCP)).is_some());
        assert!(check(&restart_nudge(PROTO_PAP)).is_some());
        assert_eq!(
            check(&frame(PROTO_LCP, &[5, 3, 0, 4])),
            Some(Seen {
                terminate_request: true,
                echo_reply: false
            })
        );
    }
}
