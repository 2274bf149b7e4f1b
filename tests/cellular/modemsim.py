#!/usr/bin/env python3
"""A cellular modem simulator: AT commands on a pty or unix socket, PPP bridged to a TUN device.

This file is the I/O shell around `modem.Modem` (which holds all behaviour and never touches
a file descriptor): it opens the serial end (a pty pair whose slave is symlinked to --pty, or
a listening unix socket for QEMU's ``-serial unix:PATH``), the TUN device, and runs one
`selectors` loop that moves bytes between them and calls `Modem.tick` at `Modem.deadline`.

Run it inside a network namespace (harness.py does): the TUN gets 10.64.0.1 peer 10.64.0.2.
One event per line goes to --log (or stderr); "ready ..." is logged once everything is open.
The loop is bounded by --max-runtime; SIGTERM/SIGINT end it cleanly.
"""

import argparse
import fcntl
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time
import tty

from modem import Modem, ModemConfig

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
OUT_CAP = 1 << 20


class Log:
    """One line per event, prefixed with seconds since start; flushed at once."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else sys.stderr
        self.t0 = time.monotonic()

    def __call__(self, msg):
        self.f.write(f"[{time.monotonic() - self.t0:8.3f}] {msg}\n")
        self.f.flush()


def fault_config(cfg, faults):
    """Apply --fault NAME[=ARG] options to a ModemConfig; raise ValueError on a bad one."""
    for spec in faults:
        name, _, arg = spec.partition("=")
        if name == "no-sim":
            cfg.sim = False
        elif name == "slow-reg":
            cfg.reg_delay = float(arg)
        elif name == "denied":
            cfg.reg_result = 3
        elif name == "roaming":
            cfg.reg_result = 5
        elif name == "lcp-drop":
            cfg.lcp_drop = int(arg or 1)
        elif name == "passive":
            cfg.passive = True
        elif name == "no-carrier-after":
            cfg.no_carrier_after = int(arg)
        elif name == "garbage":
            cfg.garbage = True
        elif name == "mute-after":
            cfg.mute_after = float(arg)
        elif name == "lcp-dead":
            cfg.lcp_dead = True
        elif name == "urc-storm":
            cfg.urc_storm = True
        else:
            raise ValueError(f"unknown fault {name!r}")
        cfg.faults.append(spec)
    return cfg


def open_tun(name, local, peer, log):
    """Create the TUN device (IFF_TUN|IFF_NO_PI), address it, IPv6 off, up. Returns the fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass
    for cmd in (f"ip addr add {local} peer {peer}/32 dev {name}", f"ip link set {name} mtu 1500 up"):
        if os.system(cmd) != 0:
            raise OSError(f"'{cmd}' failed (run as root inside a network namespace)")
    log(f"tun {name} up: {local} peer {peer}")
    return fd


class PtySerial:
    """The modem end of a pty pair; the slave's name is symlinked to `path`."""

    def __init__(self, path):
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(os.ttyname(self.slave), path)
        self.path = path
        self.fd = self.master  # we keep self.slave open: reads never see EIO

    def read(self):
        return os.read(self.master, 65536)

    def write(self, data):
        return os.write(self.master, data)

    def close(self):
        for fd in (self.master, self.slave):
            os.close(fd)
        if os.path.islink(self.path):
            os.unlink(self.path)


class UnixSerial:
    """A listening unix socket; one client at a time, accepting again after a disconnect."""

    def __init__(self, path):
        if os.path.exists(path):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.setblocking(False)
        self.path = path
        self.conn = None

    @property
    def fd(self):
        return self.conn.fileno() if self.conn else None

    def accept(self):
        self.conn, _ = self.listener.accept()
        self.conn.setblocking(False)

    def read(self):
        return self.conn.recv(65536)

    def write(self, data):
        return self.conn.send(data)

    def drop(self):
        self.conn.close()
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
        self.listener.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def run(args):
    log = Log(args.log)
    cfg = ModemConfig(apn=args.apn, pin=args.pin, reg_delay=args.reg_delay,
                      guard_s=args.guard_ms / 1000, restart_s=args.restart_ms / 1000,
                      max_configure=args.max_configure, exit_after_calls=args.exit_after_calls)
    if args.pap:
        user, _, password = args.pap.partition(":")
        cfg.pap = (user, password)
    fault_config(cfg, args.fault)
    modem = Modem(cfg, random.Random(args.seed), log)
    serial = PtySerial(args.pty) if args.pty else UnixSerial(args.unix)
    tun = None if args.no_tun else open_tun(args.tun, cfg.local_ip, cfg.peer_ip, log)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop.append("SIGINT"))
    log(f"ready serial={serial.path} tun={None if tun is None else args.tun} "
        f"faults={','.join(cfg.faults) or 'none'}")
    try:
        loop(modem, serial, tun, log, stop, time.monotonic() + args.max_runtime)
    finally:
        serial.close()
        if tun is not None:
            os.close(tun)
    log(f"exit ({stop[0] if stop else 'done'}); calls={modem.calls} tun_dropped={modem.tun_dropped}")
    return 0


def loop(modem, serial, tun, log, stop, end):
    sel = selectors.DefaultSelector()
    if tun is not None:
        sel.register(tun, selectors.EVENT_READ, "tun")
    unix = isinstance(serial, UnixSerial)
    if unix:
        sel.register(serial.listener, selectors.EVENT_READ, "accept")
    else:
        sel.register(serial.fd, selectors.EVENT_READ, "serial")
    exit_by = None
    while not stop:
        now = time.monotonic()
        if modem.exit_requested:
            # Give the last words (OK / NO CARRIER) up to 1 s to leave, then linger 0.3 s:
            # closing a pty master right after a write hangs up the slave and flushes its input.
            if exit_by is None:
                exit_by = now + 1.3
            if not modem.out:
                exit_by = min(exit_by, now + 0.3)
            if now >= exit_by:
                break
        if now >= end:
            log("max-runtime reached")
            break
        deadline = modem.deadline()
        timeout = min(end - now, 0.5 if deadline is None else max(deadline - now, 0))
        if exit_by is not None:
            timeout = min(timeout, 0.05)
        for key, _ in sel.select(timeout):
            now = time.monotonic()
            if key.data == "accept":
                if serial.conn is not None:
                    sel.unregister(serial.fd)
                    serial.drop()
                serial.accept()
                sel.register(serial.fd, selectors.EVENT_READ, "serial")
                log("serial client connected")
            elif key.data == "serial":
                try:
                    data = serial.read()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    log(f"serial read failed: {e}")
                    data = b""
                if not data:
                    if unix:
                        sel.unregister(serial.fd)
                        serial.drop()
                        log("serial client disconnected")
                        modem.serial_closed(now)
                    continue
                modem.receive(data, now)
            elif key.data == "tun":
                try:
                    pkt = os.read(tun, 65536)
                except BlockingIOError:
                    continue
                if pkt and pkt[0] >> 4 == 4:
                    modem.tun_packet(pkt)
                else:
                    modem.tun_dropped += 1
        modem.tick(time.monotonic())
        flush(modem, serial, tun, log)


def flush(modem, serial, tun, log):
    """Move the modem's output to the serial line and the TUN, without blocking."""
    for pkt in modem.tun_out:
        if tun is not None:
            try:
                os.write(tun, pkt)
            except OSError as e:
                log(f"tun write failed: {e}")
    modem.tun_out.clear()
    if not modem.out:
        return
    if serial.fd is None:
        modem.out.clear()  # nobody connected: the bytes fall on the floor, as on a real UART
        return
    try:
        n = serial.write(bytes(modem.out[:65536]))
        del modem.out[:n]
    except (BlockingIOError, InterruptedError):
        pass
    except OSError as e:
        log(f"serial write failed: {e}")
        modem.out.clear()
    if len(modem.out) > OUT_CAP:
        log(f"output backlog over {OUT_CAP} bytes: dropped (client not reading)")
        modem.out.clear()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    end = p.add_mutually_exclusive_group(required=True)
    end.add_argument("--pty", metavar="PATH", help="make a pty pair; symlink its slave to PATH")
    end.add_argument("--unix", metavar="PATH", help="listen on a unix socket (QEMU -serial unix:PATH)")
    p.add_argument("--fault", action="append", default=[], metavar="NAME[=ARG]",
                   help="no-sim, slow-reg=S, denied, roaming, lcp-drop=N, passive, "
                        "no-carrier-after=BYTES, garbage, mute-after=S, lcp-dead, urc-storm")
    p.add_argument("--urc-storm", action="store_true", help="same as --fault urc-storm")
    p.add_argument("--apn", default="internet", help="the APN the network accepts (default internet)")
    p.add_argument("--pin", help="SIM PIN the client must enter (default: no PIN)")
    p.add_argument("--pap", metavar="USER:PASS", help="require PAP with these credentials")
    p.add_argument("--reg-delay", type=float, default=0.3, help="seconds searching before registering")
    p.add_argument("--guard-ms", type=int, default=1000, help="+++ escape guard time (default 1000)")
    p.add_argument("--restart-ms", type=int, default=3000, help="PPP restart timer (default 3000)")
    p.add_argument("--max-configure", type=int, default=10, help="PPP Max-Configure (default 10)")
    p.add_argument("--tun", default="cell0", help="TUN device name (default cell0)")
    p.add_argument("--no-tun", action="store_true", help="no TUN (IP packets are dropped)")
    p.add_argument("--log", help="append events here instead of stderr")
    p.add_argument("--seed", type=int, default=1, help="seed for garbage, URCs, magic numbers")
    p.add_argument("--exit-after-calls", type=int, help="exit after this many calls ended")
    p.add_argument("--max-runtime", type=float, default=3600, help="exit after this many seconds")
    args = p.parse_args(argv)
    if args.urc_storm:
        args.fault.append("urc-storm")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        fault_config(ModemConfig(), args.fault)
    except ValueError as e:
        print(f"modemsim: --fault: {e}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
