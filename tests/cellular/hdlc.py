"""HDLC-like framing for PPP over a serial line (RFC 1662), both directions.

A frame on the wire is ``7E | FF 03 | protocol (2) | information | FCS-16 (LSB first) | 7E``.
Inside the frame, 0x7E and 0x7D and every control character (< 0x20) whose bit is set in the
sender's async-control-character-map (ACCM) are sent as ``7D, byte ^ 0x20``.

`encode` builds one frame; `Decoder` turns a byte stream back into frames. The decoder is
tolerant in the ways a receiver must be (RFC 1662 section 4 and 7): bytes outside frames,
runs of flags, aborted frames (7D 7E) and frames with a bad FCS are dropped and counted;
control characters that the receive ACCM says the peer escapes are ignored when they arrive
unescaped (a modem may insert them). Address/control compression (ACFC) and protocol-field
compression (PFC) are undone on receive; we never send compressed headers.
"""

FLAG = 0x7E
ESC = 0x7D
DEFAULT_ACCM = 0xFFFFFFFF
GOOD_FCS = 0xF0B8
MAX_FRAME = 4096


def _fcs_table():
    table = []
    for byte in range(256):
        v = byte
        for _ in range(8):
            v = (v >> 1) ^ 0x8408 if v & 1 else v >> 1
        table.append(v)
    return table


_FCS_TABLE = _fcs_table()


def fcs16(data, fcs=0xFFFF):
    """The running FCS-16 of RFC 1662 (poly x^16+x^12+x^5+1, reflected), not complemented."""
    for b in data:
        fcs = (fcs >> 8) ^ _FCS_TABLE[(fcs ^ b) & 0xFF]
    return fcs


def _must_escape(b, accm):
    return b in (FLAG, ESC) or (b < 0x20 and accm & (1 << b))


def escape(data, accm=DEFAULT_ACCM):
    """Byte-stuff `data` for transmission with the given ACCM."""
    out = bytearray()
    for b in data:
        if _must_escape(b, accm):
            out += bytes((ESC, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def encode(protocol, info, accm=DEFAULT_ACCM):
    """One complete frame (leading and trailing flag) carrying `info` for `protocol`."""
    body = bytes((0xFF, 0x03)) + protocol.to_bytes(2, "big") + bytes(info)
    fcs = fcs16(body) ^ 0xFFFF
    body += fcs.to_bytes(2, "little")
    return bytes((FLAG,)) + escape(body, accm) + bytes((FLAG,))


def parse_body(body):
    """Split an unescaped, FCS-checked frame body into (protocol, info); None if malformed."""
    if body[:2] == b"\xff\x03":
        body = body[2:]
    if not body:
        return None
    if body[0] & 1:  # protocol-field compression: a one-byte protocol
        return body[0], body[1:]
    if len(body) < 2:
        return None
    return int.from_bytes(body[:2], "big"), body[2:]


class Decoder:
    """Incremental frame decoder: `feed(bytes)` returns a list of (protocol, info) tuples."""

    def __init__(self, rx_accm=DEFAULT_ACCM):
        self.rx_accm = rx_accm
        self.buf = bytearray()
        self.in_frame = False
        self.escaped = False
        self.bad_fcs = 0
        self.junk_bytes = 0

    def feed(self, data):
        frames = []
        for b in data:
            if b == FLAG:
                frame = self._end_frame()
                if frame is not None:
                    frames.append(frame)
                self.in_frame = True
                continue
            if not self.in_frame:
                self.junk_bytes += 1
                continue
            if b < 0x20 and self.rx_accm & (1 << b):
                continue  # inserted by the line, not by the peer
            if b == ESC:
                self.escaped = True
                continue
            if self.escaped:
                b ^= 0x20
                self.escaped = False
            if len(self.buf) >= MAX_FRAME:
                self.buf.clear()
                self.in_frame = False
                self.junk_bytes += 1
                continue
            self.buf.append(b)
        return frames

    def _end_frame(self):
        body, aborted = bytes(self.buf), self.escaped
        self.buf.clear()
        self.escaped = False
        if not body:
            return None  # back-to-back flags
        if aborted or len(body) < 4 or fcs16(body) != GOOD_FCS:
            self.bad_fcs += 1
            return None
        parsed = parse_body(body[:-2])
        if parsed is None:
            self.bad_fcs += 1
        return parsed
