"""The simulated modem's behaviour, without any I/O: AT dialogue, registration, calls, faults.

`Modem.receive(bytes, now)` takes what the client wrote to the serial line; the modem appends
its answer to `Modem.out` (the I/O loop drains it) and IPv4 packets for the network to
`Modem.tun_out`. Time only advances through the `now` arguments and `tick(now)`, which the
I/O loop calls at `deadline()`; so the self-test can run whole dialogues on a virtual clock.

Modes (V.250): ``command`` (no call), ``data`` (a call, bytes are PPP) and ``online``
(online command mode: a call is up but the client escaped with ``+++``; ``ATO`` resumes,
``ATH`` hangs up). The registration clock and the mute clock start with the first byte the
client sends (the moment the "modem is powered"), so a slow client does not skip them.
"""

from dataclasses import dataclass, field

import atcmd
import ppp

STAT_NAMES = {0: "not registered", 1: "home", 2: "searching", 3: "denied", 5: "roaming"}
CME_TEXT = {3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
            11: "SIM PIN required", 16: "incorrect password", 30: "no network service"}
URC_EXTRA = ['+QIND: "csq",20,99', "RING", '+QIND: "act","LTE"']


@dataclass
class ModemConfig:
    """Everything the command line sets (see modemsim.py --help)."""
    apn: str = "internet"
    pin: str = None
    sim: bool = True
    reg_delay: float = 0.3
    reg_result: int = 1           # 1 home, 5 roaming, 3 denied
    guard_s: float = 1.0
    restart_s: float = 3.0
    max_configure: int = 10
    passive: bool = False
    lcp_dead: bool = False
    lcp_drop: int = 0
    no_carrier_after: int = None
    garbage: bool = False
    mute_after: float = None
    urc_storm: bool = False
    pap: tuple = None             # (user, password) the client must send, or None
    local_ip: str = "10.64.0.1"
    peer_ip: str = "10.64.0.2"
    dns: str = "10.64.0.1"
    exit_after_calls: int = None
    faults: list = field(default_factory=list)


class Modem:
    def __init__(self, cfg, rng, log):
        self.cfg, self.rng, self.log = cfg, rng, log
        self.out = bytearray()
        self.tun_out = []
        self.mode = "command"
        self.echo = True
        self.cmee = 1
        self.reg_n = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}
        self.stat = 0 if not cfg.sim else 2
        self.pin_ok = cfg.pin is None
        self.contexts = {}
        self.line = bytearray()
        self.timers = {}
        self.started = None
        self.muted = False
        self.call = None            # the PppServer of the current call
        self.calls = 0
        self.calls_ended = 0
        self.call_rx_bytes = 0
        self.no_carrier_fired = False
        self.lcp_dropped = 0
        self.last_rx = None
        self.plus_count = 0
        self.exit_requested = False
        self.call_pending_start = False  # PPP starts after CONNECT has been written
        self.tun_dropped = 0

    # -- clock ---------------------------------------------------------------------------
    def deadline(self):
        times = list(self.timers.values())
        if self.call is not None and not self.muted:
            d = self.call.deadline()
            if d is not None:
                times.append(d)
        return min(times) if times else None

    def tick(self, now):
        for name, when in sorted(self.timers.items(), key=lambda kv: kv[1]):
            if when <= now and self.timers.get(name) == when:
                del self.timers[name]
                getattr(self, "_timer_" + name)(now)
        if self.call is not None and not self.muted:
            self.call.tick(now)

    def _power_on(self, now):
        self.started = now
        if self.cfg.sim and self.pin_ok:
            self.timers["reg"] = now + self.cfg.reg_delay
        if self.cfg.mute_after is not None:
            self.timers["mute"] = now + self.cfg.mute_after
        if self.cfg.urc_storm:
            self.timers["storm"] = now + 0.05

    def _timer_reg(self, now):
        self.set_stat(self.cfg.reg_result)

    def _timer_mute(self, now):
        self.log("muted (mute-after): the modem answers nothing from now on")
        self.muted = True
        self.out.clear()
        self.timers.clear()

    def _timer_storm(self, now):
        if self.mode != "data":
            self.urc(self.rng.choice(self.storm_urcs()))
        self.timers["storm"] = now + self.rng.uniform(0.02, 0.08)

    def _timer_escape(self, now):
        if self.plus_count == 3 and self.mode == "data":
            self.plus_count = 0
            self.mode = "online"
            self.log("escape +++ -> online command mode")
            self.final("OK")

    # -- output --------------------------------------------------------------------------
    def write(self, data):
        if self.muted:
            return
        if self.cfg.garbage and self.rng.random() < 0.5:
            self.out += bytes(self.rng.choice(GARBAGE_BYTES) for _ in range(self.rng.randint(1, 8)))
        self.out += data

    def info(self, text):
        self.log(f"at< {text}")
        self.write(b"\r\n" + text.encode() + b"\r\n")

    def final(self, text):
        self.info(text)

    def urc(self, text):
        self.log(f"urc< {text}")
        self.write(b"\r\n" + text.encode() + b"\r\n")

    def cme(self, code):
        if self.cmee == 0:
            return "ERROR"
        if self.cmee == 2:
            return f"+CME ERROR: {CME_TEXT.get(code, code)}"
        return f"+CME ERROR: {code}"

    # -- registration --------------------------------------------------------------------
    def set_stat(self, stat):
        self.stat = stat
        self.log(f"registration: {STAT_NAMES.get(stat, stat)} (stat {stat})")
        if self.mode != "data":
            for name in self.reg_n:
                if self.reg_n[name]:
                    self.urc(self.reg_urc(name))

    def registered(self):
        return self.stat in (1, 5)

    def reg_urc(self, name):
        text = f"{name}: {self.stat}"
        if self.reg_n[name] >= 2 and self.registered():
            text += ',"00C3","0000ABCD"' + (",7" if name == "+CEREG" else "")
        return text

    def storm_urcs(self):
        return URC_EXTRA + [self.reg_urc(n) for n in self.reg_n if self.reg_n[n]]

    # -- serial input --------------------------------------------------------------------
    def receive(self, data, now):
        if self.started is None:
            self._power_on(now)
        # Timers that fell due before these bytes were read fire first. On a loaded host the
        # simulator may read a command late, after the +++ escape's trailing guard time ran
        # out: a real modem had switched to command mode by then, so the bytes are a command
        # (without this, `ATH` after the guard time cancelled the escape as data).
        self.tick(now)
        if self.muted:
            self.log(f"muted: ignored {len(data)} bytes")
            return
        if self.mode == "data":
            self._data_rx(data, now)
            return
        for i, b in enumerate(data):
            if b in (0x0D, 0x0A, 0x08) or 0x20 <= b < 0x7F:
                if self.echo:
                    self.out.append(b)
            if b == 0x0D:
                line = self.line.decode(errors="replace")
                self.line.clear()
                self.command_line(line, now)
                if self.mode == "data":  # CONNECT: the rest of this chunk is PPP
                    rest = data[i + 1:]
                    if rest:
                        self._data_rx(rest, now)
                    return
            elif b == 0x08:
                del self.line[-1:]
            elif 0x20 <= b < 0x7F and len(self.line) < 1024:
                self.line.append(b)
        self.last_rx = now

    def serial_closed(self, now):
        """The client disconnected (unix socket transport)."""
        if self.call is not None:
            self._end_call("serial closed", send_no_carrier=False)
        self.line.clear()
        self.plus_count = 0
        self.last_rx = None

    # -- command mode --------------------------------------------------------------------
    def command_line(self, line, now):
        start = line.upper().find("AT")
        if start < 0:
            if line.strip():
                self.log(f"at: no AT in {line[:60]!r}: ignored")
            return
        if start > 0:  # V.250: what comes before the "AT" prefix is not part of the command
            self.log(f"at: ignored {start} bytes before AT")
            line = line[start:]
        self.log(f"at> {line}")
        try:
            cmds = atcmd.parse_line(line)
        except atcmd.AtSyntaxError as e:
            self.log(f"at: syntax error: {e}")
            self.final("ERROR")
            return
        if self.cfg.urc_storm and self.rng.random() < 0.5:
            self.urc(self.rng.choice(self.storm_urcs()))
        for cmd in cmds:
            lines, result = self.run(cmd, now)
            for text in lines:
                self.info(text)
                if self.cfg.urc_storm and self.rng.random() < 0.3:
                    self.urc(self.rng.choice(self.storm_urcs()))
            if result is not None:
                self.final(result)
                if result == "CONNECT":
                    self.mode = "data"
                    self.last_rx = now
                    if self.call_pending_start:
                        self.call_pending_start = False
                        self.call.start(now)
                return
        self.final("OK")

    def run(self, cmd, now):
        """Run one command; return (information lines, final result or None for 'go on')."""
        if cmd.name.startswith("S") and cmd.name[1:].isdigit():
            handler = self.cmd_S
        else:
            key = cmd.name.replace("&", "AMP_").lstrip("+")
            handler = getattr(self, "cmd_" + key, None) if key.replace("_", "").isalnum() else None
        if handler is None:
            self.log(f"at: unknown command {cmd.name}")
            return [], "ERROR"
        return handler(cmd, now)

    @staticmethod
    def _num(cmd, default=0):
        try:
            return int(cmd.args[0]) if cmd.args and cmd.args[0] not in (None, "") else default
        except ValueError:
            return None

    def cmd_E(self, cmd, now):
        n = self._num(cmd)
        if n not in (0, 1):
            return [], "ERROR"
        self.echo = n == 1
        return [], None

    def cmd_V(self, cmd, now):
        return [], (None if self._num(cmd) == 1 else "ERROR")  # only verbose result codes

    def _ok(self, cmd, now):
        return [], None

    cmd_Q = cmd_X = cmd_L = cmd_M = cmd_AMP_C = cmd_AMP_D = cmd_AMP_K = cmd_AMP_W = _ok

    def cmd_S(self, cmd, now):
        return (["000"], None) if cmd.kind == "read" else ([], None)

    def cmd_Z(self, cmd, now):
        self.echo = True
        self.reg_n = dict.fromkeys(self.reg_n, 0)
        return [], None

    cmd_AMP_F = cmd_Z

    def cmd_I(self, cmd, now):
        return ["uasyncio-rs modemsim", "Revision: modemsim 1.0"], None

    def cmd_CGMI(self, cmd, now):
        return ["uasyncio-rs"], None

    def cmd_CGMM(self, cmd, now):
        return ["modemsim"], None

    def cmd_CGMR(self, cmd, now):
        return ["modemsim 1.0"], None

    def cmd_CGSN(self, cmd, now):
        return ["356938035643809"], None

    cmd_GSN = cmd_CGSN

    def cmd_CIMI(self, cmd, now):
        if not self.cfg.sim:
            return [], self.cme(10)
        return ["001010123456789"], None

    def cmd_CMEE(self, cmd, now):
        if cmd.kind == "read":
            return [f"+CMEE: {self.cmee}"], None
        if cmd.kind == "test":
            return ["+CMEE: (0-2)"], None
        n = self._num(cmd)
        if n not in (0, 1, 2):
            return [], "ERROR"
        self.cmee = n
        return [], None

    def cmd_CPIN(self, cmd, now):
        if not self.cfg.sim:
            return [], self.cme(10)
        if cmd.kind == "read":
            return [f"+CPIN: {'READY' if self.pin_ok else 'SIM PIN'}"], None
        if cmd.kind != "set" or not cmd.args:
            return [], "ERROR"
        if self.pin_ok:
            return [], self.cme(3)
        if cmd.args[0] != self.cfg.pin:
            self.log("sim: wrong PIN")
            return [], self.cme(16)
        self.pin_ok = True
        self.log("sim: PIN accepted")
        self.timers["reg"] = now + self.cfg.reg_delay
        return [], None

    def _reg(self, cmd, now):
        name = cmd.name
        if cmd.kind == "read":
            text = self.reg_urc(name).replace(": ", f": {self.reg_n[name]},", 1)
            return [text], None
        if cmd.kind == "test":
            return [f"{name}: (0-2)"], None
        n = self._num(cmd)
        if n not in (0, 1, 2):
            return [], self.cme(4)
        self.reg_n[name] = n
        return [], None

    cmd_CREG = cmd_CGREG = cmd_CEREG = _reg

    def cmd_COPS(self, cmd, now):
        if cmd.kind == "read":
            return [('+COPS: 0,0,"SimNet",7' if self.registered() else "+COPS: 0")], None
        if cmd.kind == "test":
            return ['+COPS: (2,"SimNet","SimNet","00101",7),,(0-4),(0-2)'], None
        return [], None

    def cmd_CSQ(self, cmd, now):
        return [("+CSQ: 20,99" if self.cfg.sim else "+CSQ: 99,99")], None

    def cmd_CGATT(self, cmd, now):
        if cmd.kind == "read":
            return [f"+CGATT: {1 if self.registered() else 0}"], None
        return [], None

    def cmd_CGACT(self, cmd, now):
        if cmd.kind == "read":
            return [f"+CGACT: {cid},{1 if self.call else 0}" for cid in sorted(self.contexts)], None
        return [], None

    def cmd_CGDCONT(self, cmd, now):
        if cmd.kind == "read":
            return [f'+CGDCONT: {cid},"{t}","{apn}","0.0.0.0",0,0'
                    for cid, (t, apn) in sorted(self.contexts.items())], None
        if cmd.kind == "test":
            return ['+CGDCONT: (1-16),"IP",,,(0-2),(0-4)'], None
        cid = self._num(cmd, None)
        if cid is None or not 1 <= cid <= 16:
            return [], self.cme(4)
        if len(cmd.args) == 1:
            self.contexts.pop(cid, None)
            return [], None
        pdp_type = (cmd.args[1] or "IP").upper()
        apn = cmd.args[2] if len(cmd.args) > 2 and cmd.args[2] is not None else ""
        if pdp_type not in ("IP", "IPV4V6", "IPV6", "PPP"):
            return [], self.cme(4)
        self.contexts[cid] = (pdp_type, apn)
        return [], None

    def cmd_CGDATA(self, cmd, now):
        if cmd.kind == "test":
            return ['+CGDATA: ("PPP")'], None
        if cmd.kind != "set" or (cmd.args[0] or "PPP").upper() != "PPP":
            return [], self.cme(4)
        try:
            cid = int(cmd.args[1]) if len(cmd.args) > 1 and cmd.args[1] else 1
        except ValueError:
            return [], self.cme(4)
        return self.dial(cid, now)

    def cmd_D(self, cmd, now):
        number = cmd.args[0] if cmd.args else ""
        if not (number.startswith("*99") and number.endswith("#")):
            self.log(f"dial: {number!r} is not a packet data number (*99# or *99***<cid>#)")
            return [], "NO CARRIER"
        parts = number[:-1].split("*")  # '*99***1' -> ['', '99', '', '', '1']
        cid = 1
        if len(parts) >= 5 and parts[4]:
            try:
                cid = int(parts[4])
            except ValueError:
                return [], "NO CARRIER"
        return self.dial(cid, now)

    def cmd_H(self, cmd, now):
        if self.call is not None:
            self._end_call("ATH", send_no_carrier=False)
        return [], None

    def cmd_O(self, cmd, now):
        if self.call is None or self.mode != "online":
            return [], "NO CARRIER"
        self.log("ATO: back to data mode")
        return [], "CONNECT"

    # -- calls ---------------------------------------------------------------------------
    def dial(self, cid, now):
        if not self.cfg.sim:
            return [], self.cme(10)
        if not self.pin_ok:
            return [], self.cme(11)
        if self.call is not None:
            return [], self.cme(3)
        if not self.registered():
            self.log(f"dial: not registered ({STAT_NAMES.get(self.stat)})")
            return [], self.cme(30)
        ctx = self.contexts.get(cid)
        if ctx is None:
            self.log(f"dial: PDP context {cid} is not defined (AT+CGDCONT={cid},\"IP\",\"<apn>\")")
            return [], "NO CARRIER"
        if ctx[1].lower() != self.cfg.apn.lower():
            self.log(f"dial: wrong APN {ctx[1]!r} (the network wants {self.cfg.apn!r})")
            return [], "NO CARRIER"
        self.calls += 1
        self.call_rx_bytes = 0
        self.plus_count = 0
        self.log(f"call {self.calls} connected cid={cid} apn={ctx[1]}")
        self.call = ppp.PppServer(self.cfg, self.rng, self.log, self._ppp_emit, self._deliver,
                                  self._ppp_finished, self._drop_lcp)
        self.call_pending_start = True
        return [], "CONNECT"

    def _drop_lcp(self):
        if self.lcp_dropped < self.cfg.lcp_drop:
            self.lcp_dropped += 1
            return True
        return False

    def _ppp_emit(self, frame):
        """Frames go out only in data mode; in online command mode they are discarded."""
        if self.mode == "data":
            self.write(frame)

    def _deliver(self, pkt):
        self.tun_out.append(pkt)

    def _ppp_finished(self, reason):
        self._end_call(reason, send_no_carrier=True)

    def _end_call(self, reason, send_no_carrier):
        call, self.call = self.call, None
        if call is None:
            return
        call.stop()
        self.mode = "command"
        self.plus_count = 0
        self.timers.pop("escape", None)
        self.calls_ended += 1
        self.log(f"call {'dropped' if send_no_carrier else 'ended'} ({reason})")
        if send_no_carrier:
            self.final("NO CARRIER")
        if self.cfg.exit_after_calls and self.calls_ended >= self.cfg.exit_after_calls:
            self.log(f"exit after {self.calls_ended} calls")
            self.exit_requested = True

    def tun_packet(self, pkt):
        """An IPv4 packet from the network side for the client."""
        if self.muted or self.mode != "data" or self.call is None or not self.call.send_ip(pkt):
            self.tun_dropped += 1

    # -- data mode -----------------------------------------------------------------------
    def _data_rx(self, data, now):
        """PPP bytes, watching for the +++ escape (guard time, +++, guard time)."""
        to_ppp = bytearray()
        for b in data:
            quiet = self.last_rx is None or now - self.last_rx >= self.cfg.guard_s
            if b == 0x2B and self.plus_count < 3 and (self.plus_count > 0 or quiet):
                self.plus_count += 1
            else:
                to_ppp += b"+" * self.plus_count
                self.plus_count = 0
                to_ppp.append(b)
            self.last_rx = now
        if self.plus_count == 3:
            self.timers["escape"] = now + self.cfg.guard_s
        else:
            self.timers.pop("escape", None)
        if not to_ppp or self.call is None:
            return
        limit = self.cfg.no_carrier_after
        if limit is not None and not self.no_carrier_fired:
            room = limit - self.call_rx_bytes
            if room <= len(to_ppp):
                self.call.feed(bytes(to_ppp[:max(room, 0)]), now)
                self.no_carrier_fired = True
                self._end_call("no-carrier-after", send_no_carrier=True)
                return
        self.call_rx_bytes += len(to_ppp)
        self.call.feed(bytes(to_ppp), now)


# Garbage never contains the PPP flag (0x7E) or CR/LF, so it cannot end a frame or a line.
GARBAGE_BYTES = [b for b in range(256) if b not in (0x7E, 0x0D, 0x0A)]
