#!/usr/bin/env python3
"""A tiny AT + PPP *client* for testing the simulator without the Rust stack.

It behaves like the client we care about (ppproto 0.2.1): it asks for ACCM 0 only, rejects
every LCP option but ACCM and PAP, never retransmits its own Configure-Request, asks IPCP for
an address and two DNS servers. It is just enough to bring a link up and exchange a few
hand-built IPv4 packets (ICMP echo, TCP SYN, DNS query) with the namespace behind the TUN.

Used in two ways: in-process by selftest.py against `modem.Modem` on a virtual clock
(`ModemIO`), and as a harness client over a real pty (`FdIO`, `python3 pppclient.py TTY`).
"""

import os
import re
import select
import socket
import struct
import sys
import time
import tty

import hdlc
import ppp
from ppp import (CONF_ACK, CONF_NAK, CONF_REJ, CONF_REQ, ECHO_REQ, IPCP_PROTO, IPV4_PROTO,
                 LCP_PROTO, PAP_PROTO, TERM_ACK, build_options, packet, parse_options)


class ClientError(Exception):
    pass


# -- transports ------------------------------------------------------------------------------
class FdIO:
    """A real file descriptor (the pty slave) with real time."""

    def __init__(self, fd):
        self.fd = fd

    def now(self):
        return time.monotonic()

    def write(self, data):
        os.write(self.fd, data)

    def read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        return os.read(self.fd, 65536) if r else b""

    def sleep(self, s):
        time.sleep(s)


class ModemIO:
    """An in-process modem.Modem driven by a virtual clock: no sleeping, no flakiness."""

    def __init__(self, modem):
        self.modem, self.t = modem, 1000.0

    def now(self):
        return self.t

    def write(self, data):
        self.modem.receive(data, self.t)

    def read(self, timeout):
        end = self.t + timeout
        while not self.modem.out:
            d = self.modem.deadline()
            if d is None or d > end:
                self.t = end
                return b""
            self.t = max(self.t, d)
            self.modem.tick(self.t)
        data = bytes(self.modem.out)
        self.modem.out.clear()
        return data

    def sleep(self, s):
        self.t += s
        self.modem.tick(self.t)


# -- AT ------------------------------------------------------------------------------------
FINALS = re.compile(r"^(OK|ERROR|NO CARRIER|CONNECT.*|\+CME ERROR:.*|BUSY|NO DIALTONE)$")


class At:
    """Send a command, collect information lines until a final result code; skip the rest."""

    def __init__(self, io, log=lambda m: None):
        self.io, self.log, self.buf = io, log, b""

    def command(self, cmd, timeout=5.0, expect_prefix=None):
        self.io.write(cmd.encode() + b"\r")
        end = self.io.now() + timeout
        lines = []
        while True:
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.strip(b"\r").decode(errors="replace").strip()
                if not line or line == cmd:
                    continue
                if FINALS.match(line):
                    self.log(f"{cmd} -> {lines} {line}")
                    return lines, line
                if expect_prefix is None or line.startswith(expect_prefix):
                    lines.append(line)
            if self.io.now() >= end:
                raise ClientError(f"{cmd}: no final result within {timeout} s")
            self.buf += self.io.read(end - self.io.now())


def bring_up(io, apn="internet", reg_timeout=10.0, log=lambda m: None):
    """ATE0, SIM, registration, PDP context, dial. Returns the At helper after CONNECT."""
    at = At(io, log)
    for _ in range(3):  # first line may be eaten by junk on the line
        try:
            if at.command("ATE0", 2.0)[1] == "OK":
                break
        except ClientError:
            continue
    _, res = at.command("AT+CPIN?", expect_prefix="+CPIN")
    if res != "OK":
        raise ClientError(f"SIM: {res}")
    end = io.now() + reg_timeout
    while True:
        lines, res = at.command("AT+CREG?", expect_prefix="+CREG: ")
        stat = next((int(m.group(1)) for m in map(re.compile(r"\+CREG: \d,(\d)").match, lines) if m), None)
        if stat in (1, 5):
            break
        if stat == 3:
            raise ClientError("registration denied")
        if io.now() >= end:
            raise ClientError(f"not registered after {reg_timeout} s (stat {stat})")
        io.sleep(0.1)
    if at.command(f'AT+CGDCONT=1,"IP","{apn}"')[1] != "OK":
        raise ClientError("CGDCONT failed")
    _, res = at.command("ATD*99#", 10.0)
    if not res.startswith("CONNECT"):
        raise ClientError(f"dial: {res}")
    return at


# -- PPP -----------------------------------------------------------------------------------
class PppClient:
    """Client-side LCP (+PAP) and IPCP, the way ppproto does them."""

    def __init__(self, io, pap=None, log=lambda m: None, pending=b""):
        self.io, self.pap, self.log = io, pap, log
        self.pending = pending  # bytes read after CONNECT: the peer's first frame may be there
        self.dec = hdlc.Decoder(rx_accm=0)
        self.ident = 0
        self.lcp = {"acked": False, "ack_sent": False}
        self.ipcp = {"acked": False, "ack_sent": False, "started": False}
        self.ipcp_opts = {3: b"\0" * 4, 129: b"\0" * 4, 131: b"\0" * 4}
        self.need_pap = False
        self.pap_ok = pap is None
        self.packets = []
        self.terminated = False
        self.no_carrier = False

    def send(self, proto, info):
        self.io.write(hdlc.encode(proto, info))

    def ctl(self, proto, code, ident, data=b""):
        self.send(proto, packet(code, ident, data))

    def next_id(self):
        self.ident = (self.ident + 1) & 0xFF
        return self.ident

    def lcp_open(self):
        return self.lcp["acked"] and self.lcp["ack_sent"]

    def ipcp_open(self):
        return self.ipcp["acked"] and self.ipcp["ack_sent"]

    def send_ipcp_req(self):
        self.ctl(IPCP_PROTO, CONF_REQ, self.next_id(), build_options(sorted(self.ipcp_opts.items())))

    def open(self, timeout=10.0):
        """Negotiate until IPCP is open; return our address as a string."""
        self.ctl(LCP_PROTO, CONF_REQ, self.next_id(), build_options([(2, b"\0\0\0\0")]))
        end = self.io.now() + timeout
        for proto, info in self.dec.feed(self.pending):
            self.on_frame(proto, info)
        while not self.ipcp_open():
            if self.io.now() >= end:
                raise ClientError(f"PPP not up within {timeout} s (lcp {self.lcp}, ipcp {self.ipcp})")
            self.pump(end - self.io.now())
            if self.terminated or self.no_carrier:
                raise ClientError("link ended during negotiation")
        return ppp.ip_str(self.ipcp_opts[3])

    def pump(self, timeout):
        data = self.io.read(min(timeout, 0.5))
        if b"NO CARRIER" in data:
            self.no_carrier = True
        for proto, info in self.dec.feed(data):
            self.on_frame(proto, info)

    def on_frame(self, proto, info):
        if len(info) < 4 and proto != IPV4_PROTO:
            return
        if proto == LCP_PROTO:
            self.on_lcp(info)
        elif proto == PAP_PROTO:
            if info[0] == 2:
                self.pap_ok = True
                self.send_ipcp_start()
            elif info[0] == 3:
                raise ClientError("PAP refused")
        elif proto == IPCP_PROTO:
            self.on_ipcp(info)
        elif proto == IPV4_PROTO:
            self.packets.append(bytes(info))

    def on_lcp(self, info):
        code, ident = info[0], info[1]
        data = bytes(info[4:struct.unpack("!H", info[2:4])[0]])
        if code == CONF_REQ:
            opts = parse_options(data) or []
            bad = [(t, v) for t, v in opts if t not in (2, 3)]
            if bad:
                self.ctl(LCP_PROTO, CONF_REJ, ident, build_options(bad))
                return
            self.need_pap = any(t == 3 for t, _ in opts)
            self.ctl(LCP_PROTO, CONF_ACK, ident, data)
            self.lcp["ack_sent"] = True
        elif code == CONF_ACK:
            self.lcp["acked"] = True
        elif code == ppp.TERM_REQ:
            self.ctl(LCP_PROTO, TERM_ACK, ident)
            self.terminated = True
        elif code == ECHO_REQ:
            self.ctl(LCP_PROTO, ppp.ECHO_REPLY, ident, b"\0\0\0\0" + data[4:])
        if self.lcp_open() and not self.ipcp["started"]:
            self.ipcp["started"] = True
            if self.need_pap and self.pap:
                user, pw = (x.encode() for x in self.pap)
                body = bytes((len(user),)) + user + bytes((len(pw),)) + pw
                self.send(PAP_PROTO, packet(1, self.next_id(), body))
            else:
                self.send_ipcp_start()

    def send_ipcp_start(self):
        self.send_ipcp_req()

    def on_ipcp(self, info):
        code, ident = info[0], info[1]
        data = bytes(info[4:struct.unpack("!H", info[2:4])[0]])
        if code == CONF_REQ:
            self.ctl(IPCP_PROTO, CONF_ACK, ident, data)
            self.ipcp["ack_sent"] = True
        elif code == CONF_ACK:
            self.ipcp["acked"] = True
        elif code in (CONF_NAK, CONF_REJ):
            for t, v in parse_options(data) or []:
                if code == CONF_REJ:
                    self.ipcp_opts.pop(t, None)
                else:
                    self.ipcp_opts[t] = v
            self.send_ipcp_req()

    def ip(self, pkt):
        self.send(IPV4_PROTO, pkt)

    def wait_packet(self, match, timeout=5.0):
        end = self.io.now() + timeout
        while self.io.now() < end:
            for p in self.packets:
                if match(p):
                    self.packets.remove(p)
                    return p
            self.pump(end - self.io.now())
        raise ClientError("no matching packet")


# -- hand-built IPv4 -----------------------------------------------------------------------
def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0,
                      ppp.ip_bytes(src), ppp.ip_bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + payload


def icmp_echo(src, dst, seq=1, data=b"modemsim"):
    body = struct.pack("!BBHHH", 8, 0, 0, 0x1234, seq) + data
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def tcp_syn(src, dst, sport, dport, seq=1000):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = ppp.ip_bytes(src) + ppp.ip_bytes(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    return ipv4(src, dst, 6, tcp)


def dns_query(src, dst, name, sport=5353, qid=0x4242):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    udp = struct.pack("!HHHH", sport, 53, 8 + len(q), 0) + q  # checksum 0: none (IPv4)
    return ipv4(src, dst, 17, udp)


def probe_network(client, me, server="10.64.0.1", log=print):
    """Ping the server, SYN its echo port, resolve echo.test. Raises ClientError on failure."""
    client.ip(icmp_echo(me, server))
    client.wait_packet(lambda p: p[9] == 1 and p[20] == 0)
    log("icmp echo reply from " + server)
    client.ip(tcp_syn(me, server, 40000, 7000))
    p = client.wait_packet(lambda p: p[9] == 6 and struct.unpack("!H", p[20:22])[0] == 7000)
    if p[33] & 0x12 != 0x12:
        raise ClientError(f"tcp 7000: flags 0x{p[33]:02x}, not SYN-ACK")
    log("tcp syn-ack from port 7000")
    client.ip(dns_query(me, server, "echo.test"))
    p = client.wait_packet(lambda p: p[9] == 17 and struct.unpack("!H", p[20:22])[0] == 53)
    if ppp.ip_bytes(server) not in p[28:]:
        raise ClientError("dns answer for echo.test lacks " + server)
    log("dns echo.test -> " + server)


def main():
    """Harness client: pppclient.py TTY|unix:PATH. Exit 0 if the link came up and answered."""
    path = sys.argv[1]
    if path.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path[5:])
        fd = os.dup(sock.fileno())
        sock.close()
    else:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
    io = FdIO(fd)
    log = lambda m: print("client:", m, flush=True)  # noqa: E731
    try:
        at = bring_up(io, log=log)
        client = PppClient(io, log=log, pending=at.buf)
        me = client.open()
        log(f"ppp up, address {me}")
        probe_network(client, me, log=log)
    except ClientError as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
