#!/usr/bin/env python3
"""Self-test of the modem simulator, without the Rust client.

    python3 tests/cellular/selftest.py [-v] [-k SUBSTRING]     # prints "N passed, N failed"

Three groups:
- codec and parser unit tests (hdlc.py, atcmd.py);
- the modem's behaviour and faults on a virtual clock: modem.Modem driven in-process by the
  tiny client of pppclient.py, so no test depends on wall-clock speed;
- end to end (root only, else skipped): harness.py makes a namespace, the simulator, the echo
  servers and dnsmasq; pppclient.py dials through the real pty (or unix socket), opens
  LCP/IPCP and gets an ICMP echo reply, a TCP SYN-ACK from 10.64.0.1:7000 and a DNS answer.
"""

import os
import random
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import atcmd  # noqa: E402
import hdlc  # noqa: E402
import ppp  # noqa: E402
import pppclient  # noqa: E402
from modem import Modem, ModemConfig  # noqa: E402
from modemsim import fault_config  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Skip(Exception):
    pass


# -- helpers -----------------------------------------------------------------------------------
def make(*faults, **cfg):
    """A modem with these faults, its log lines, and a virtual-clock transport."""
    logs = []
    c = fault_config(ModemConfig(**cfg), list(faults))
    m = Modem(c, random.Random(7), logs.append)
    return m, logs, pppclient.ModemIO(m)


def up(io, **kw):
    at = pppclient.bring_up(io)
    client = pppclient.PppClient(io, pending=at.buf, **kw)
    return at, client, client.open()


def read_for(io, seconds):
    """Everything the modem sends during the next `seconds` of virtual time."""
    end, data = io.now() + seconds, b""
    while io.now() < end:
        data += io.read(end - io.now())
    return data


def has(logs, text):
    return any(text in line for line in logs)


def count(logs, text):
    return sum(text in line for line in logs)


# -- HDLC codec --------------------------------------------------------------------------------
@test
def fcs_check_value():
    assert fcs16(b"123456789") ^ 0xFFFF == 0x906E  # CRC-16/X-25 check value
    body = b"\xff\x03\xc0\x21hello"
    fcs = (fcs16(body) ^ 0xFFFF).to_bytes(2, "little")
    assert fcs16(body + fcs) == hdlc.GOOD_FCS


fcs16 = hdlc.fcs16


@test
def escapes_round_trip_every_byte():
    info = bytes(range(256)) * 2
    for accm in (hdlc.DEFAULT_ACCM, 0, 1 << 0x11):
        frame = hdlc.encode(0x0021, info, accm)
        assert frame[0] == frame[-1] == 0x7E and 0x7E not in frame[1:-1]
        assert hdlc.Decoder(rx_accm=0).feed(frame) == [(0x0021, info)]


@test
def accm_decides_which_controls_are_escaped():
    info = bytes(range(0x20))
    raw = hdlc.encode(0x0021, info, 0)[1:-1]
    full = hdlc.encode(0x0021, info, hdlc.DEFAULT_ACCM)[1:-1]
    only_xon = hdlc.encode(0x0021, info, 1 << 0x11)[1:-1]
    assert bytes(range(0x20)) in raw  # nothing escaped
    assert not any(b < 0x20 for b in full)
    assert 0x11 not in only_xon and 0x13 in only_xon and b"\x7d\x31" in only_xon


@test
def decoder_drops_bad_frames_and_junk():
    good = hdlc.encode(0xC021, b"\x09\x01\x00\x08abcd")
    bad = bytearray(good)
    bad[5] ^= 1
    aborted = good[:6] + b"\x7d\x7e"
    d = hdlc.Decoder(rx_accm=0)
    out = d.feed(b"junk\r\nOK\r\n" + bytes(bad) + aborted + b"\x7e\x7e" + good + b"\x00\x01" + good)
    assert out == [(0xC021, b"\x09\x01\x00\x08abcd")] * 2, out
    assert d.bad_fcs >= 2


@test
def decoder_undoes_acfc_pfc_and_ignores_inserted_controls():
    body = b"\x21" + b"\x45payload"  # PFC: one-byte protocol, ACFC: no FF 03
    fcs = (fcs16(body) ^ 0xFFFF).to_bytes(2, "little")
    frame = b"\x7e" + hdlc.escape(body + fcs) + b"\x7e"
    assert hdlc.Decoder().feed(frame) == [(0x21, b"\x45payload")]
    noisy = frame[:4] + b"\x11\x13" + frame[4:]  # XON/XOFF inserted by the line
    assert hdlc.Decoder().feed(noisy) == [(0x21, b"\x45payload")]
    assert hdlc.Decoder(rx_accm=0).feed(noisy) == []  # taken as data: FCS fails


# -- AT parser ---------------------------------------------------------------------------------
@test
def at_parser_basic_and_extended():
    P = atcmd.parse_line
    assert [(c.name, c.kind, c.args) for c in P("ATE0V1")] == [("E", "exec", ["0"]), ("V", "exec", ["1"])]
    assert [(c.name, c.kind) for c in P("AT+CREG?;+CGREG=?")] == [("+CREG", "read"), ("+CGREG", "test")]
    c = P('at+cgdcont=1,"IP","my;apn,x"')[0]
    assert (c.name, c.kind, c.args) == ("+CGDCONT", "set", ["1", "IP", "my;apn,x"])
    assert P('AT+CGDATA="PPP",1')[0].args == ["PPP", "1"]
    assert P("ATD*99***1#")[0].args == ["*99***1#"]
    assert P("AT")[0:] == []
    assert [(c.name, c.kind, c.args) for c in P("AT&C1S7=60S0?")] == [
        ("&C", "exec", ["1"]), ("S7", "set", ["60"]), ("S0", "read", [])]
    assert P("AT+CMEE=,2")[0].args == [None, "2"]


@test
def at_parser_rejects_bad_syntax():
    for line in ("XT", 'AT+CGDCONT=1,"IP', "AT+", "AT+CREG?x", "ATS", "AT!"):
        try:
            atcmd.parse_line(line)
        except atcmd.AtSyntaxError:
            continue
        raise AssertionError(f"{line!r} parsed")


# -- modem behaviour (virtual clock) -------------------------------------------------------------
def at(io, cmd, prefix=None):
    return pppclient.At(io).command(cmd, expect_prefix=prefix)


@test
def echo_on_by_default_then_ate0():
    m, logs, io = make()
    io.write(b"AT\r")
    assert io.read(1) == b"AT\r\r\nOK\r\n"
    io.write(b"ATE0\r")
    assert io.read(1) == b"ATE0\r\r\nOK\r\n"
    io.write(b"AT\r")
    assert io.read(1) == b"\r\nOK\r\n"
    assert has(logs, "at> AT") and has(logs, "at< OK")


@test
def identification_and_unknown_commands():
    m, logs, io = make()
    assert at(io, "ATI")[1] == "OK" and at(io, "AT+CGMI") == (["uasyncio-rs"], "OK")
    assert at(io, "AT+CGMM")[0] == ["modemsim"]
    assert at(io, "AT+CSQ", "+CSQ") == (["+CSQ: 20,99"], "OK")
    assert at(io, "AT+FOO")[1] == "ERROR" and at(io, "ATQ0+BAR")[1] == "ERROR"
    assert at(io, 'AT+CGDCONT=1,"IP"')[1] == "OK"
    assert at(io, "AT+CGDCONT?")[0] == ['+CGDCONT: 1,"IP","","0.0.0.0",0,0']


@test
def fault_no_sim():
    m, logs, io = make("no-sim")
    assert at(io, "AT+CPIN?")[1] == "+CME ERROR: 10"
    assert at(io, "AT+CMEE=2")[1] == "OK" and at(io, "AT+CPIN?")[1] == "+CME ERROR: SIM not inserted"
    io.sleep(5)
    assert at(io, "AT+CREG?", "+CREG")[0] == ["+CREG: 0,0"]
    assert at(io, 'AT+CGDCONT=1,"IP","internet"')[1] == "OK"
    assert at(io, "ATD*99#")[1] == "+CME ERROR: SIM not inserted"
    try:
        pppclient.bring_up(make("no-sim")[2])
    except pppclient.ClientError as e:
        assert "CME ERROR: 10" in str(e)
    else:
        raise AssertionError("bring_up worked without a SIM")


@test
def pin_is_asked_when_configured():
    m, logs, io = make(pin="1234")
    assert at(io, "AT+CPIN?", "+CPIN") == (["+CPIN: SIM PIN"], "OK")
    assert at(io, 'AT+CPIN="0000"')[1] == "+CME ERROR: 16"
    assert at(io, 'AT+CPIN="1234"')[1] == "OK"
    assert at(io, "AT+CPIN?", "+CPIN")[0] == ["+CPIN: READY"]


@test
def fault_denied_with_urcs():
    m, logs, io = make("denied")
    assert at(io, "AT+CREG=1;+CEREG=2")[1] == "OK"
    assert at(io, "AT+CREG?", "+CREG")[0] == ["+CREG: 1,2"]
    assert io.read(5) == b"\r\n+CREG: 3\r\n\r\n+CEREG: 3\r\n"
    assert at(io, "AT+CREG?", "+CREG")[0] == ["+CREG: 1,3"]
    at(io, 'AT+CGDCONT=1,"IP","internet"')
    assert at(io, "ATD*99#")[1] == "+CME ERROR: 30"
    try:
        pppclient.bring_up(make("denied")[2])
    except pppclient.ClientError as e:
        assert "denied" in str(e)
    else:
        raise AssertionError("registered although denied")


@test
def fault_roaming_and_slow_reg():
    m, logs, io = make("roaming", "slow-reg=20")
    assert at(io, "AT+CGREG=2")[1] == "OK"
    io.sleep(19)
    assert at(io, "AT+CGREG?", "+CGREG")[0] == ["+CGREG: 2,2"]
    io.sleep(2)
    # the URC '+CGREG: 5,...' came first; the answer to the read has <n> in front
    assert at(io, "AT+CGREG?", "+CGREG: 2,")[0] == ['+CGREG: 2,5,"00C3","0000ABCD"']
    assert at(io, "AT+COPS?", "+COPS")[0] == ['+COPS: 0,0,"SimNet",7']
    up(io)
    assert has(logs, "registration: roaming (stat 5)")


@test
def wrong_or_missing_apn_gives_no_carrier():
    m, logs, io = make()
    at(io, "AT")  # the modem's clock starts with the first byte
    io.sleep(1)
    assert at(io, "ATD*99#")[1] == "NO CARRIER"
    assert has(logs, "PDP context 1 is not defined")
    at(io, 'AT+CGDCONT=1,"IP","other"')
    assert at(io, "ATD*99#")[1] == "NO CARRIER" and has(logs, "wrong APN 'other'")
    at(io, 'AT+CGDCONT=3,"IP","internet"')
    assert at(io, 'AT+CGDATA="PPP",3')[1] == "CONNECT"


@test
def link_carries_ipv4_both_ways():
    m, logs, io = make()
    _, client, me = up(io)
    assert me == "10.64.0.2" and client.ipcp_opts[129] == bytes((10, 64, 0, 1))
    assert 131 not in client.ipcp_opts  # secondary DNS rejected
    ping = pppclient.icmp_echo(me, "10.64.0.1")
    client.ip(ping)
    assert m.tun_out == [ping]
    m.tun_packet(b"\x45" + bytes(30))
    raw = bytes(m.out)  # the client asked for ACCM 0: IPv4 frames carry raw control bytes
    assert bytes(30) in raw and b"\x7d\x20" not in raw, raw
    client.pump(1)
    assert client.packets == [b"\x45" + bytes(30)]
    client.ctl(ppp.LCP_PROTO, ppp.ECHO_REQ, 5, bytes(8))
    assert b"\x7d\x20\x7d\x20" in bytes(m.out)  # LCP always with the default ACCM
    assert has(logs, "ppp lcp opened") and has(logs, "ppp ipcp opened peer=10.64.0.2")


@test
def dial_forms_and_lcp_echo_and_protocol_reject():
    m, logs, io = make()
    at(io, "AT")
    io.sleep(1)
    at(io, 'AT+CGDCONT=1,"IP","internet"')
    assert at(io, "ATD*99***1#")[1] == "CONNECT"
    client = pppclient.PppClient(io)
    client.open()
    client.ctl(ppp.LCP_PROTO, ppp.ECHO_REQ, 77, b"\0\0\0\0ping")
    client.send(0x0057, b"\x60" + bytes(39))  # IPv6: never negotiated
    client.pump(1)
    assert has(logs, "echo-request -> echo-reply") and has(logs, "protocol-reject")


@test
def escape_online_command_mode_and_hang_up():
    m, logs, io = make(guard_s=0.1)
    at_, client, me = up(io)
    io.sleep(0.2)
    io.write(b"+++")
    assert b"OK" in io.read(1) and m.mode == "online"
    assert at(io, "AT+CSQ", "+CSQ")[0] == ["+CSQ: 20,99"]
    assert at(io, "ATO")[1] == "CONNECT" and m.mode == "data"
    io.write(b"x+++")  # no guard time before: data, not an escape
    assert io.read(1) == b"" and m.mode == "data"
    io.sleep(0.2)
    io.write(b"+++")
    io.read(1)
    assert at(io, "ATH")[1] == "OK" and m.call is None and has(logs, "call ended (ATH)")
    assert at(io, "ATD*99#")[1] == "CONNECT"  # a new call after the hang-up


@test
def an_escape_whose_guard_ran_out_before_the_next_read_is_not_lost():
    # A loaded host: the trailing guard time runs out while the simulator does not look, and
    # the client's ATH is read in the same wake-up. The escape comes first, ATH is a command.
    m, logs, io = make(guard_s=0.1)
    up(io)
    io.sleep(0.2)
    io.write(b"+++")
    io.t += 0.15  # no tick: nobody looked at the modem during the guard time
    io.write(b"ATH\r")
    got = read_for(io, 1)
    assert got.count(b"OK") == 2 and m.call is None and has(logs, "call ended (ATH)"), got


@test
def fault_lcp_drop_restart_timer_retransmits():
    m, logs, io = make("lcp-drop=1", restart_s=3.0)
    pppclient.bring_up(io)
    client = pppclient.PppClient(io)
    try:
        client.open(timeout=10)  # our conf-req is dropped and, like ppproto, never resent
    except pppclient.ClientError:
        pass
    assert has(logs, "dropped (lcp-drop)") and has(logs, "restart timer: conf-req again")
    assert count(logs, "ppp tx lcp conf-req") >= 3
    assert not has(logs, "lcp opened")


@test
def max_configure_then_no_carrier_then_redial():
    m, logs, io = make(restart_s=1.0, max_configure=4)
    data = pppclient.bring_up(io).buf + read_for(io, 10)  # the client stays silent
    assert data.count(b"\x7e\xff\x7d\x23\xc0\x21\x7d\x21") == 4, data  # four LCP conf-req
    assert b"NO CARRIER" in data and has(logs, "max-configure")
    assert at(io, "ATD*99#")[1] == "CONNECT"


@test
def fault_passive_waits_for_the_peer():
    m, logs, io = make("passive")
    at_ = pppclient.bring_up(io)
    assert at_.buf == b"" and io.read(5) == b""
    client = pppclient.PppClient(io)
    assert client.open() == "10.64.0.2"


@test
def fault_lcp_dead_never_answers():
    m, logs, io = make("lcp-dead")
    pppclient.bring_up(io)
    client = pppclient.PppClient(io)
    try:
        client.open(timeout=30)
    except pppclient.ClientError:
        pass
    else:
        raise AssertionError("link opened with lcp-dead")
    assert not has(logs, "ppp tx") and has(logs, "ignored (lcp-dead)")


@test
def fault_garbage_is_survivable():
    for seed in range(5):
        m, logs, io = make("garbage")
        m.rng.seed(seed)
        _, client, me = up(io)
        client.ip(pppclient.icmp_echo(me, "10.64.0.1"))
        assert len(m.tun_out) == 1
        m.tun_packet(b"\x45" + bytes(30))
        client.pump(1)
        assert client.packets == [b"\x45" + bytes(30)]
    assert client.dec.bad_fcs + client.dec.junk_bytes > 0


@test
def fault_no_carrier_after_bytes_then_redial():
    m, logs, io = make("no-carrier-after=300")
    _, client, me = up(io)
    for i in range(10):
        client.ip(pppclient.icmp_echo(me, "10.64.0.1", seq=i))
    assert b"NO CARRIER" in io.read(1) and has(logs, "call dropped (no-carrier-after)")
    assert m.mode == "command"
    assert at(io, "ATD*99#")[1] == "CONNECT"  # fires once: the redial keeps its carrier
    client = pppclient.PppClient(io)
    client.open()
    for i in range(10):
        client.ip(pppclient.icmp_echo(me, "10.64.0.1", seq=i))
    assert m.call is not None


@test
def fault_mute_after():
    m, logs, io = make("mute-after=5")
    assert at(io, "AT")[1] == "OK"
    io.sleep(6)
    io.write(b"AT\r")
    assert io.read(5) == b"" and has(logs, "muted")


@test
def fault_urc_storm_does_not_break_commands():
    m, logs, io = make("urc-storm")
    at(io, "AT+CREG=1")
    for _ in range(20):
        assert at(io, "AT+CSQ", "+CSQ") == (["+CSQ: 20,99"], "OK")
    assert count(logs, "urc< ") > 10
    up(io)


@test
def peer_terminate_then_no_carrier():
    m, logs, io = make(restart_s=0.5)
    _, client, _ = up(io)
    client.ctl(ppp.LCP_PROTO, ppp.TERM_REQ, 9)
    data = read_for(io, 5)
    assert b"NO CARRIER" in data and has(logs, "terminate-request from peer")


@test
def pap_credentials_checked():
    m, logs, io = make(pap=("user", "secret"))
    assert up(io, pap=("user", "secret"))[2] == "10.64.0.2" and has(logs, "pap ok")
    m, logs, io = make(pap=("user", "secret"))
    try:
        up(io, pap=("user", "wrong"))
    except pppclient.ClientError:
        pass
    assert has(logs, "pap failed") and not has(logs, "ipcp opened")


@test
def exit_after_calls_is_requested():
    m, logs, io = make(exit_after_calls=2)
    up(io)
    m.receive(b"", io.now())
    io.sleep(2)
    io.write(b"+++")
    read_for(io, 2)
    assert at(io, "ATH")[1] == "OK" and not m.exit_requested
    assert at(io, "ATD*99#")[1] == "CONNECT"
    io.sleep(2)
    io.write(b"+++")
    read_for(io, 2)
    at(io, "ATH")
    assert m.exit_requested and has(logs, "exit after 2 calls")


@test
def bad_fault_names_are_refused():
    for spec in ("nosuch", "slow-reg=abc", "no-carrier-after"):
        try:
            fault_config(ModemConfig(), [spec])
        except ValueError:
            continue
        raise AssertionError(f"{spec!r} accepted")


# -- the real program on a pty (no root needed: --no-tun) ----------------------------------------
@test
def cli_pty_dial_escape_hang_up_exit():
    """modemsim.py on a real pty with real time; only generous deadlines guard against hangs."""
    import tempfile
    import time
    d = tempfile.mkdtemp(prefix="modemsim-test-")
    path, log = os.path.join(d, "tty"), os.path.join(d, "sim.log")
    sim = subprocess.Popen([sys.executable, os.path.join(HERE, "modemsim.py"), "--pty", path, "--no-tun",
                            "--log", log, "--guard-ms", "100", "--exit-after-calls", "1",
                            "--max-runtime", "60", "--reg-delay", "0"])
    try:
        end = time.monotonic() + 10
        while not (os.path.exists(log) and "ready" in open(log).read()):
            assert time.monotonic() < end and sim.poll() is None, "modemsim did not start"
            time.sleep(0.02)
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        import tty as tty_mod
        tty_mod.setraw(fd)
        io = pppclient.FdIO(fd)
        at_ = pppclient.bring_up(io)
        client = pppclient.PppClient(io, pending=at_.buf)
        assert client.open() == "10.64.0.2"
        time.sleep(0.3)  # guard time
        io.write(b"+++")
        got, end = b"", time.monotonic() + 10
        while b"\r\nOK\r\n" not in got:  # the escape's OK comes after the trailing guard time
            assert time.monotonic() < end, got
            got += io.read(0.5)
        assert at_.command("ATH", 5)[1] == "OK"
        os.close(fd)
        assert sim.wait(timeout=30) == 0
        text = open(log).read()
        for line in ("at> ATD*99#", "ppp lcp opened", "ppp ipcp opened peer=10.64.0.2",
                     "escape +++ -> online command mode", "call ended (ATH)", "exit after 1 calls"):
            assert line in text, text
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
        print(open(log).read()) if os.environ.get("SHOWLOG") else None
        subprocess.run(["rm", "-rf", d])


# -- end to end through harness.py (root) --------------------------------------------------------
def harness(*args, timeout=120):
    if os.geteuid() != 0:
        raise Skip("needs root (network namespace, TUN)")
    cmd = [sys.executable, os.path.join(HERE, "harness.py"), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


CLIENT = [sys.executable, os.path.join(HERE, "pppclient.py")]


@test
def e2e_pty_icmp_tcp_dns_and_tls_probe():
    rc, out = harness("--probe", "--expect-log", r"ppp ipcp opened peer=10\.64\.0\.2",
                      "--", *CLIENT, "{tty}")
    assert rc == 0, out
    for text in ("TLSv1.3 echo", "icmp echo reply", "syn-ack from port 7000", "dns echo.test -> 10.64.0.1"):
        assert text in out, out


@test
def e2e_unix_socket_with_garbage():
    rc, out = harness("--transport", "unix", "--fault", "garbage", "--", *CLIENT, "unix:{unix}")
    assert rc == 0, out


@test
def e2e_no_sim_fails_clearly_and_expect_log():
    rc, out = harness("--fault", "no-sim", "--expect-exit", "1", "--expect-log", r"CME ERROR: 10",
                      "--", *CLIENT, "{tty}")
    assert rc == 0 and "CME ERROR: 10" in out, out
    rc, out = harness("--expect-log", "never logged", "--", sys.executable, "-c", "pass")
    assert rc == 125 and "lacks /never logged/" in out and "---- simulator log" in out, out
    rc, out = harness("--timeout", "1", "--", "sleep", "30")
    assert rc == 124, out


def main():
    verbose = "-v" in sys.argv
    only = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else ""
    passed = failed = skipped = 0
    for fn in TESTS:
        if only not in fn.__name__:
            continue
        try:
            fn()
        except Skip as e:
            skipped += 1
            print(f"skip {fn.__name__}: {e}")
            continue
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}")
            traceback.print_exc()
            continue
        passed += 1
        if verbose:
            print(f"ok   {fn.__name__}")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
