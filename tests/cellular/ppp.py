"""The network side of PPP: LCP, PAP and IPCP as a modem's peer runs them (RFC 1661/1332/1877).

`ControlProtocol` is the option-negotiation automaton of RFC 1661 section 4 (the states a
network-side peer passes through: Stopped for a passive open, Req-Sent, Ack-Rcvd, Ack-Sent,
Opened, Closing, Stopping, Closed), with the restart timer and the Max-Configure /
Max-Terminate counters. `Lcp` and `Ipcp` add their options; `PppServer` ties them together
over the HDLC codec and hands IPv4 packets to a callback (the TUN).

Everything here is sans-I/O: callers pass `now` (seconds, any monotonic clock) and ask
`deadline()` when to call `tick()` next. That is what lets the self-test drive it with a
virtual clock.

Choices that matter for the client we test (ppproto 0.2.1):
- our LCP Configure-Request asks for ACCM 0, a magic number, PFC and ACFC (as pppd does);
  ppproto rejects the last three and we drop them, as RFC 1661 says;
- IPCP gives the peer its address and one DNS server by Configure-Nak of 0.0.0.0; the
  secondary DNS option is rejected (smoltcp keeps only one DNS server by default);
- LCP packets are sent with the default ACCM (all control characters escaped), others with
  the ACCM the peer asked for. We accept unescaped control characters at any time.
"""

import struct

import hdlc

LCP_PROTO, PAP_PROTO, IPCP_PROTO, IPV4_PROTO = 0xC021, 0xC023, 0x8021, 0x0021

CONF_REQ, CONF_ACK, CONF_NAK, CONF_REJ = 1, 2, 3, 4
TERM_REQ, TERM_ACK, CODE_REJ, PROTO_REJ = 5, 6, 7, 8
ECHO_REQ, ECHO_REPLY, DISCARD_REQ = 9, 10, 11

CODE_NAMES = {1: "conf-req", 2: "conf-ack", 3: "conf-nak", 4: "conf-rej", 5: "term-req",
              6: "term-ack", 7: "code-rej", 8: "proto-rej", 9: "echo-req", 10: "echo-reply",
              11: "discard-req"}


def parse_options(data):
    """[(type, value bytes)] from a Configure-* body; None if malformed."""
    opts, i = [], 0
    while i < len(data):
        if i + 2 > len(data) or data[i + 1] < 2 or i + data[i + 1] > len(data):
            return None
        opts.append((data[i], bytes(data[i + 2:i + data[i + 1]])))
        i += data[i + 1]
    return opts


def build_options(opts):
    return b"".join(bytes((t, len(v) + 2)) + v for t, v in opts)


def packet(code, ident, data=b""):
    return struct.pack("!BBH", code, ident, len(data) + 4) + bytes(data)


class ControlProtocol:
    """RFC 1661 automaton for one control protocol. Subclasses supply the options."""

    name = "cp"
    protocol = 0
    max_terminate = 2

    def __init__(self, server, restart_s, max_configure):
        self.server = server
        self.restart_s = restart_s
        self.max_configure = max_configure
        self.state = "initial"
        self.timer = None
        self.restart_count = 0
        self.ident = 0
        self.req_ident = None
        self.conf_reqs_sent = 0

    # -- hooks for subclasses ------------------------------------------------------------
    def own_options(self):
        return []

    def peer_nak(self, opt_type, value):
        pass

    def peer_reject(self, opt_type):
        pass

    def check_option(self, opt_type, value):
        """Return ('ack'|'nak'|'rej', value) for one option of the peer's request."""
        return "rej", value

    def peer_acked(self, opts):
        """The peer's request is about to be acknowledged: its options now apply."""

    def this_layer_up(self, now):
        self.server.log(f"ppp {self.name} opened")

    def this_layer_down(self, now):
        self.server.log(f"ppp {self.name} down")

    def this_layer_finished(self, now, why):
        self.server.layer_finished(self, now, why)

    def extra_code(self, code, ident, data, now):
        """Codes beyond 1..7 (LCP's echo etc.); return False to Code-Reject."""
        return False

    # -- actions -------------------------------------------------------------------------
    def send(self, code, ident, data=b""):
        self.server.send_control(self, code, ident, data)

    def next_ident(self):
        self.ident = (self.ident + 1) & 0xFF
        return self.ident

    def irc(self, count):
        self.restart_count = count

    def scr(self, now):
        self.req_ident = self.next_ident()
        self.conf_reqs_sent += 1
        self.restart_count -= 1
        self.timer = now + self.restart_s
        self.send(CONF_REQ, self.req_ident, build_options(self.own_options()))

    def str_(self, now):
        self.restart_count -= 1
        self.timer = now + self.restart_s
        self.send(TERM_REQ, self.next_ident())

    def set_state(self, state):
        if state in ("opened", "stopped", "closed", "initial"):
            self.timer = None
        self.state = state

    # -- events --------------------------------------------------------------------------
    def open(self, now, passive=False):
        """Administrative Open + lower layer Up."""
        if passive:
            self.set_state("stopped")
            return
        self.irc(self.max_configure)
        self.scr(now)
        self.set_state("req-sent")

    def close(self, now):
        """Administrative Close: Terminate-Request if opened, else stop at once."""
        if self.state == "opened":
            self.this_layer_down(now)
        if self.state in ("opened", "req-sent", "ack-rcvd", "ack-sent"):
            self.irc(self.max_terminate)
            self.str_(now)
            self.set_state("closing")
        elif self.state not in ("closing", "closed"):
            self.set_state("closed")

    def tick(self, now):
        if self.timer is None or now < self.timer:
            return
        self.timer = None
        if self.state in ("closing", "stopping"):
            if self.restart_count > 0:
                self.str_(now)
            else:
                self.set_state("closed" if self.state == "closing" else "stopped")
                self.this_layer_finished(now, "terminated")
        elif self.state in ("req-sent", "ack-rcvd", "ack-sent"):
            if self.restart_count > 0:
                self.server.log(f"ppp {self.name} restart timer: conf-req again")
                self.scr(now)
                if self.state == "ack-rcvd":
                    self.set_state("req-sent")
            else:
                self.set_state("stopped")
                self.this_layer_finished(
                    now, f"no answer after {self.conf_reqs_sent} conf-req (max-configure)")

    def receive(self, info, now):
        if len(info) < 4:
            return
        code, ident, length = struct.unpack("!BBH", info[:4])
        if length < 4 or length > len(info):
            return
        data = bytes(info[4:length])
        if code == CONF_REQ:
            self.rcv_conf_req(ident, data, now)
        elif code == CONF_ACK:
            self.rcv_conf_ack(ident, now)
        elif code in (CONF_NAK, CONF_REJ):
            self.rcv_conf_nak(code, ident, data, now)
        elif code == TERM_REQ:
            self.rcv_term_req(ident, now)
        elif code == TERM_ACK:
            self.rcv_term_ack(now)
        elif code == CODE_REJ:
            self.server.log(f"ppp {self.name} code-reject received")
        elif not self.extra_code(code, ident, data, now):
            self.server.log(f"ppp {self.name} unknown code {code}: code-reject")
            self.send(CODE_REJ, self.next_ident(), info[:length][:1400])

    def rcv_conf_req(self, ident, data, now):
        if self.state in ("closed", "initial"):
            self.send(TERM_ACK, ident)
            return
        if self.state in ("closing", "stopping"):
            return
        opts = parse_options(data)
        if opts is None:
            self.server.log(f"ppp {self.name} malformed conf-req dropped")
            return
        code, reply = self.judge(opts)
        good = code == CONF_ACK
        if self.state == "opened":
            self.this_layer_down(now)
            self.irc(self.max_configure)
            self.scr(now)
        elif self.state == "stopped":
            self.irc(self.max_configure)
            self.scr(now)
        if good:
            self.peer_acked(opts)
        self.send(code, ident, build_options(reply))
        if good and self.state == "ack-rcvd":
            self.set_state("opened")
            self.this_layer_up(now)
        elif good:
            self.set_state("ack-sent")
        elif self.state != "ack-rcvd":
            self.set_state("req-sent")

    def judge(self, opts):
        """RFC 1661 5.1-5.4: Reject beats Nak beats Ack; the reply lists only that class."""
        verdicts = [(t,) + self.check_option(t, v) for t, v in opts]
        for want, code in (("rej", CONF_REJ), ("nak", CONF_NAK)):
            chosen = [(t, v) for t, verdict, v in verdicts if verdict == want]
            if chosen:
                return code, chosen
        return CONF_ACK, opts

    def rcv_conf_ack(self, ident, now):
        if ident != self.req_ident:
            return
        if self.state in ("closed", "stopped"):
            self.send(TERM_ACK, ident)
        elif self.state == "req-sent":
            self.irc(self.max_configure)
            self.set_state("ack-rcvd")  # the restart timer keeps running (RFC 1661 4.6)
        elif self.state == "ack-sent":
            self.irc(self.max_configure)
            self.set_state("opened")
            self.this_layer_up(now)
        elif self.state in ("ack-rcvd", "opened"):
            if self.state == "opened":
                self.this_layer_down(now)
            self.scr(now)
            self.set_state("req-sent")

    def rcv_conf_nak(self, code, ident, data, now):
        if ident != self.req_ident:
            return
        if self.state in ("closed", "stopped"):
            self.send(TERM_ACK, ident)
            return
        if self.state not in ("req-sent", "ack-rcvd", "ack-sent", "opened"):
            return
        for t, v in parse_options(data) or []:
            if code == CONF_REJ:
                self.peer_reject(t)
            else:
                self.peer_nak(t, v)
        if self.state == "opened":
            self.this_layer_down(now)
        if self.state in ("req-sent", "ack-sent"):
            self.irc(self.max_configure)
        self.scr(now)
        if self.state != "ack-sent":
            self.set_state("req-sent")

    def rcv_term_req(self, ident, now):
        self.send(TERM_ACK, ident)
        if self.state == "opened":
            self.server.log(f"ppp {self.name} terminate-request from peer")
            self.this_layer_down(now)
            self.restart_count = 0
            self.timer = now + self.restart_s
            self.set_state("stopping")
        elif self.state in ("ack-rcvd", "ack-sent"):
            self.set_state("req-sent")

    def rcv_term_ack(self, now):
        if self.state == "closing":
            self.set_state("closed")
            self.this_layer_finished(now, "terminated")
        elif self.state == "stopping":
            self.set_state("stopped")
            self.this_layer_finished(now, "terminated")
        elif self.state == "ack-rcvd":
            self.set_state("req-sent")
        elif self.state == "opened":
            self.this_layer_down(now)
            self.scr(now)
            self.set_state("req-sent")


class Lcp(ControlProtocol):
    """LCP (RFC 1661): MRU, ACCM, PAP, magic number, PFC, ACFC; echo and protocol-reject."""

    name = "lcp"
    protocol = LCP_PROTO

    def __init__(self, server, restart_s, max_configure, pap=False):
        super().__init__(server, restart_s, max_configure)
        self.want = {2: (0).to_bytes(4, "big"), 5: server.rng.randbytes(4), 7: b"", 8: b""}
        if pap:
            self.want[3] = PAP_PROTO.to_bytes(2, "big")
        self.peer_accm = hdlc.DEFAULT_ACCM
        self.peer_magic = b"\0\0\0\0"

    def own_options(self):
        order = (2, 3, 5, 7, 8)
        return [(t, self.want[t]) for t in order if t in self.want]

    def magic(self):
        return self.want.get(5, b"\0\0\0\0")

    def peer_nak(self, opt_type, value):
        if opt_type == 5:
            self.want[5] = self.server.rng.randbytes(4)
        elif opt_type == 2 and len(value) == 4:
            self.want[2] = value

    def peer_reject(self, opt_type):
        if opt_type == 3:
            self.server.log("ppp lcp peer rejected PAP")
        self.want.pop(opt_type, None)

    def check_option(self, opt_type, value):
        if opt_type == 1:  # MRU
            if len(value) == 2 and int.from_bytes(value, "big") >= 128:
                return "ack", value
            return "nak", (1500).to_bytes(2, "big")
        if opt_type == 2:  # ACCM
            return ("ack", value) if len(value) == 4 else ("rej", value)
        if opt_type == 5:  # magic number
            if len(value) != 4:
                return "rej", value
            if value == self.magic() and value != b"\0\0\0\0":
                return "nak", self.server.rng.randbytes(4)  # looped back?
            return "ack", value
        if opt_type in (7, 8) and value == b"":
            return "ack", value
        return "rej", value

    def peer_acked(self, opts):
        self.peer_accm, self.peer_magic = hdlc.DEFAULT_ACCM, b"\0\0\0\0"
        for t, v in opts:
            if t == 2:
                self.peer_accm = int.from_bytes(v, "big")
            elif t == 5:
                self.peer_magic = v

    def this_layer_up(self, now):
        super().this_layer_up(now)
        self.server.lcp_up(now)

    def this_layer_down(self, now):
        super().this_layer_down(now)
        self.server.lcp_down(now)

    def extra_code(self, code, ident, data, now):
        if code == ECHO_REQ:
            if self.state == "opened":
                self.server.log("ppp lcp echo-request -> echo-reply")
                self.send(ECHO_REPLY, ident, self.magic() + data[4:])
            return True
        if code in (ECHO_REPLY, DISCARD_REQ):
            return True
        if code == PROTO_REJ:
            proto = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
            self.server.log(f"ppp lcp protocol-reject from peer for 0x{proto:04x}")
            return True
        return False


class Ipcp(ControlProtocol):
    """IPCP (RFC 1332) with the DNS extension of RFC 1877."""

    name = "ipcp"
    protocol = IPCP_PROTO

    def __init__(self, server, restart_s, max_configure, local, peer, dns):
        super().__init__(server, restart_s, max_configure)
        self.local, self.peer, self.dns = local, peer, dns
        self.send_address = True

    def own_options(self):
        return [(3, self.local)] if self.send_address else []

    def peer_reject(self, opt_type):
        if opt_type == 3:
            self.send_address = False

    def check_option(self, opt_type, value):
        if opt_type == 3:  # IP-Address
            return ("ack", value) if value == self.peer else ("nak", self.peer)
        if opt_type == 129:  # primary DNS
            return ("ack", value) if value == self.dns else ("nak", self.dns)
        return "rej", value  # compression, IP-Addresses, secondary DNS, NBNS

    def this_layer_up(self, now):
        self.server.log(f"ppp ipcp opened peer={ip_str(self.peer)} dns={ip_str(self.dns)}")
        self.server.ipcp_up = True

    def this_layer_down(self, now):
        self.server.log("ppp ipcp down")
        self.server.ipcp_up = False


def ip_str(b):
    return ".".join(str(x) for x in b)


def ip_bytes(s):
    return bytes(int(x) for x in s.split("."))


class PppServer:
    """One PPP session (one call). Feed it the client's bytes; it emits frames and packets.

    emit(bytes) writes to the serial line; deliver(packet) hands an IPv4 packet to the TUN;
    finished(reason) tells the modem that the link is over (it then drops the call).
    drop_lcp() says whether to drop this LCP frame of the client (fault lcp-drop).
    """

    def __init__(self, cfg, rng, log, emit, deliver, finished, drop_lcp=lambda: False):
        self.cfg, self.rng, self.log = cfg, rng, log
        self.emit, self.deliver, self.finished = emit, deliver, finished
        self.drop_lcp = drop_lcp
        self.decoder = hdlc.Decoder(rx_accm=0)
        self.lcp = Lcp(self, cfg.restart_s, cfg.max_configure, pap=cfg.pap is not None)
        self.ipcp = Ipcp(self, cfg.restart_s, cfg.max_configure, ip_bytes(cfg.local_ip),
                         ip_bytes(cfg.peer_ip), ip_bytes(cfg.dns))
        self.ipcp_up = False
        self.authed = cfg.pap is None
        self.ended = False
        self.rx_frames = self.tx_frames = 0

    # -- life cycle ----------------------------------------------------------------------
    def start(self, now):
        if self.cfg.lcp_dead:
            self.log("ppp lcp-dead: not answering LCP")
            return
        self.lcp.open(now, passive=self.cfg.passive)
        if self.cfg.passive:
            self.log("ppp passive: waiting for the peer's conf-req")

    def deadline(self):
        times = [t for t in (self.lcp.timer, self.ipcp.timer) if t is not None]
        return min(times) if times else None

    def tick(self, now):
        self.lcp.tick(now)
        self.ipcp.tick(now)

    # -- byte stream ---------------------------------------------------------------------
    def feed(self, data, now):
        for proto, info in self.decoder.feed(data):
            if self.ended:
                return
            self.rx_frames += 1
            self.on_frame(proto, info, now)

    def on_frame(self, proto, info, now):
        if proto == LCP_PROTO:
            code = info[0] if info else 0
            if self.cfg.lcp_dead:
                self.log(f"ppp rx lcp {CODE_NAMES.get(code, code)} ignored (lcp-dead)")
                return
            if self.drop_lcp():
                self.log(f"ppp rx lcp {CODE_NAMES.get(code, code)} dropped (lcp-drop)")
                return
            self.log(f"ppp rx lcp {CODE_NAMES.get(code, code)}")
            self.lcp.receive(info, now)
        elif self.lcp.state != "opened":
            self.log(f"ppp rx 0x{proto:04x} before lcp opened: discarded")
        elif proto == PAP_PROTO:
            self.on_pap(info, now)
        elif proto == IPCP_PROTO:
            if not self.authed:
                return
            code = info[0] if info else 0
            self.log(f"ppp rx ipcp {CODE_NAMES.get(code, code)}")
            self.ipcp.receive(info, now)
        elif proto == IPV4_PROTO:
            if self.ipcp_up:
                self.deliver(bytes(info))
        else:
            self.log(f"ppp rx unknown protocol 0x{proto:04x}: protocol-reject")
            self.lcp.send(PROTO_REJ, self.lcp.next_ident(), proto.to_bytes(2, "big") + info[:1400])

    def on_pap(self, info, now):
        if len(info) < 5 or info[0] != 1 or self.cfg.pap is None:
            return
        ident = info[1]
        ulen = info[4]
        user = bytes(info[5:5 + ulen])
        plen = info[5 + ulen] if len(info) > 5 + ulen else 0
        password = bytes(info[6 + ulen:6 + ulen + plen])
        want_user, want_pass = self.cfg.pap
        if user.decode(errors="replace") == want_user and password.decode(errors="replace") == want_pass:
            self.log(f"ppp pap ok user={want_user}")
            msg = b"welcome"
            self.send_frame(PAP_PROTO, bytes((2, ident)) + (len(msg) + 5).to_bytes(2, "big")
                            + bytes((len(msg),)) + msg)
            if not self.authed:
                self.authed = True
                self.ipcp.open(now)
        else:
            self.log("ppp pap failed: wrong user or password")
            msg = b"denied"
            self.send_frame(PAP_PROTO, bytes((3, ident)) + (len(msg) + 5).to_bytes(2, "big")
                            + bytes((len(msg),)) + msg)
            self.lcp.close(now)

    # -- layer events --------------------------------------------------------------------
    def lcp_up(self, now):
        if self.authed:
            self.ipcp.open(now)

    def lcp_down(self, now):
        if self.ipcp.state != "initial":
            if self.ipcp_up:
                self.ipcp.this_layer_down(now)
            self.ipcp.set_state("initial")
        self.authed = self.cfg.pap is None

    def layer_finished(self, layer, now, why):
        if layer is self.ipcp:
            self.log(f"ppp ipcp failed: {why}; closing lcp")
            self.lcp.close(now)
            return
        self.log(f"ppp lcp finished: {why}")
        self.end(f"lcp {why}")

    def end(self, reason):
        if not self.ended:
            self.ended = True
            self.lcp.timer = self.ipcp.timer = None
            self.finished(reason)

    def stop(self):
        """The call is gone (hang-up or drop): no more timers or frames."""
        self.ended = True
        self.lcp.timer = self.ipcp.timer = None
        self.ipcp_up = False

    # -- output --------------------------------------------------------------------------
    def send_control(self, layer, code, ident, data):
        self.log(f"ppp tx {layer.name} {CODE_NAMES.get(code, code)}")
        self.send_frame(layer.protocol, packet(code, ident, data))

    def send_frame(self, protocol, info):
        if self.ended:
            return
        accm = hdlc.DEFAULT_ACCM if protocol == LCP_PROTO else self.lcp.peer_accm
        self.tx_frames += 1
        self.emit(hdlc.encode(protocol, info, accm))

    def send_ip(self, pkt):
        """An IPv4 packet from the TUN for the client; dropped unless IPCP is up."""
        if self.ipcp_up and not self.ended:
            self.send_frame(IPV4_PROTO, pkt)
            return True
        return False
