#!/usr/bin/env python3
"""Run one cellular scenario end to end: namespace, modem simulator, servers, client, teardown.

    sudo python3 tests/cellular/harness.py [options] -- CLIENT ARGS...   ({tty} etc. substituted)

Wiring (all inside a fresh network namespace, removed afterwards):
- modemsim.py owns TUN ``cell0``: 10.64.0.1 peer 10.64.0.2; the client gets 10.64.0.2 by IPCP.
- echoservers.py: TCP echo on 0.0.0.0:7000, TLS 1.3 echo on 0.0.0.0:7443 (cert for echo.test).
- dnsmasq on 10.64.0.1:53 answers echo.test -> 10.64.0.1 (IPCP's DNS server).
The client runs in the HOST namespace and reaches all that only through the modem's serial end:
{tty} (pty symlink) or {unix} (unix socket), plus {ca_der}/{ca_pem} (the self-signed echo.test
certificate to trust), {dir} (the scenario directory) and {ns} (the namespace name).

Exit status: the client's, 124 if it timed out; 125 if the scenario itself failed (setup, an
--expect-log that is missing, or a client status other than --expect-exit). With
--expect-exit N a client status of N gives 0. The simulator's log is printed on any failure.
"""

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP_FAILED = 125


class ScenarioError(Exception):
    pass


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ScenarioError(f"{' '.join(cmd)}: {r.stderr.strip() or r.returncode}")
    return r.stdout


def wait_for(pred, what, timeout, proc=None):
    end = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise ScenarioError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > end:
            raise ScenarioError(f"{what}: not ready within {timeout} s")
        time.sleep(0.02)


def file_has(path, text):
    try:
        with open(path, errors="replace") as f:
            return text in f.read()
    except FileNotFoundError:
        return False


class Scenario:
    """Everything one run needs; a context manager that always tears down what it made."""

    def __init__(self, opts):
        self.opts = opts
        self.dir = tempfile.mkdtemp(prefix="cellsim-")
        self.ns = f"cellsim-{os.getpid()}-{secrets.token_hex(3)}"
        self.procs = []
        self.ns_made = False
        self.last_log = ""
        self.sim_log = os.path.join(self.dir, "sim.log")
        self.tty = os.path.join(self.dir, "tty")
        self.unix = os.path.join(self.dir, "modem.sock")
        self.cert_pem = os.path.join(self.dir, "echo-cert.pem")
        self.cert_der = os.path.join(self.dir, "echo-cert.der")
        self.key_pem = os.path.join(self.dir, "echo-key.pem")

    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()

    def spawn(self, name, cmd, out_path):
        out = open(out_path, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns] + cmd, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        out.close()
        self.procs.append((name, p))
        return p

    def setup(self):
        sh("ip", "netns", "add", self.ns)
        self.ns_made = True
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.make_cert()
        serial = ["--pty", self.tty] if self.opts.transport == "pty" else ["--unix", self.unix]
        sim_cmd = [sys.executable, os.path.join(HERE, "modemsim.py"), *serial, "--log", self.sim_log,
                   "--guard-ms", str(self.opts.guard_ms)]
        for f in self.opts.fault:
            sim_cmd += ["--fault", f]
        sim_cmd += self.opts.sim_arg
        sim = self.spawn("modemsim", sim_cmd, os.path.join(self.dir, "sim.out"))
        wait_for(lambda: file_has(self.sim_log, "ready serial="), "modemsim", 10, sim)
        echo = self.spawn("echoservers", [sys.executable, os.path.join(HERE, "echoservers.py"),
                                          "--cert", self.cert_pem, "--key", self.key_pem],
                          os.path.join(self.dir, "echo.log"))
        wait_for(lambda: file_has(os.path.join(self.dir, "echo.log"), "ready"), "echo servers", 10, echo)
        dns_log = os.path.join(self.dir, "dnsmasq.log")
        dns = self.spawn("dnsmasq", ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--listen-address=10.64.0.1",
                                     "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=",
                                     "--address=/echo.test/10.64.0.1", "--log-facility=-", "--log-queries"],
                         dns_log)
        wait_for(lambda: file_has(dns_log, "started"), "dnsmasq", 10, dns)
        if self.opts.probe:
            r = subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, os.path.join(HERE, "echoservers.py"),
                                "--probe", "--cert", self.cert_pem], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise ScenarioError(f"probe of the servers failed: {r.stdout}{r.stderr}")
            print(f"harness: {r.stdout.strip()}", flush=True)

    def make_cert(self):
        """Self-signed ECDSA P-256, CN and SAN echo.test; CA:FALSE unless --cert-ca."""
        cnf = os.path.join(self.dir, "openssl.cnf")
        ca = "CA:TRUE" if self.opts.cert_ca else "CA:FALSE"
        with open(cnf, "w") as f:
            f.write("[req]\ndistinguished_name=dn\nx509_extensions=ext\nprompt=no\n[dn]\nCN=echo.test\n"
                    f"[ext]\nbasicConstraints=critical,{ca}\nsubjectAltName=DNS:echo.test\n"
                    "keyUsage=critical,digitalSignature" + (",keyCertSign" if self.opts.cert_ca else "") +
                    "\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n")
        sh("openssl", "req", "-x509", "-config", cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", self.key_pem, "-out", self.cert_pem, "-days", "2", "-sha256")
        sh("openssl", "x509", "-in", self.cert_pem, "-outform", "DER", "-out", self.cert_der)

    def substitute(self, arg):
        return (arg.replace("{tty}", self.tty).replace("{unix}", self.unix).replace("{ca_der}", self.cert_der)
                .replace("{ca_pem}", self.cert_pem).replace("{dir}", self.dir).replace("{ns}", self.ns))

    def run_client(self, cmd, timeout):
        """Run the client in the host namespace; return its exit status (124 on timeout)."""
        p = subprocess.Popen([self.substitute(a) for a in cmd], start_new_session=True)
        self.procs.append(("client", p))
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"harness: client still running after {timeout} s: killed", file=sys.stderr)
            return 124

    def log_text(self):
        try:
            with open(self.sim_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return "(no simulator log)\n"

    def teardown(self):
        self.last_log = self.log_text()
        for name, p in reversed(self.procs):
            stop(p)
        self.procs.clear()
        if self.ns_made:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
            self.ns_made = False
        if self.opts.keep:
            print(f"harness: kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def stop(p):
    """SIGTERM the process group we started, then SIGKILL after 3 s."""
    if p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 3)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def interrupted(signum, frame):
    """SIGTERM: unwind like Ctrl-C so that the teardown runs."""
    raise KeyboardInterrupt


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                usage="harness.py [options] -- CLIENT [ARGS...]")
    p.add_argument("--fault", action="append", default=[], help="passed to modemsim.py (repeatable)")
    p.add_argument("--expect-log", action="append", default=[], metavar="REGEX",
                   help="fail (125) unless the simulator log matches (repeatable)")
    p.add_argument("--expect-exit", type=int, help="the client status that counts as success")
    p.add_argument("--transport", choices=("pty", "unix"), default="pty")
    # The clients here wait 150 ms around +++; the simulator asks for 50 ms, so it still sees
    # the escape when a loaded host lets it read the bytes before +++ up to 100 ms late.
    p.add_argument("--guard-ms", type=int, default=50, help="+++ guard time (default 50)")
    p.add_argument("--sim-arg", action="append", default=[], metavar="ARG",
                   help="extra modemsim.py argument, e.g. --sim-arg=--apn=other (repeatable)")
    p.add_argument("--timeout", type=float, default=300, help="client deadline, seconds (default 300)")
    p.add_argument("--probe", action="store_true", help="check the echo servers from inside first")
    p.add_argument("--cert-ca", action="store_true", help="mark the self-signed certificate CA:TRUE")
    p.add_argument("--keep", action="store_true", help="keep the scenario directory")
    p.add_argument("--show-log", action="store_true", help="print the simulator log even on success")
    if "--" not in argv:
        if any(a in ("-h", "--help") for a in argv):
            p.print_help()
            print("\nThe faults (--fault) and the scenarios: tests/cellular/README.md.")
            sys.exit(0)
        p.error("give the client command after -- (options: --help)")
    i = argv.index("--")
    opts = p.parse_args(argv[:i])
    opts.client = argv[i + 1:]
    if not opts.client:
        p.error("empty client command after --")
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("harness: needs root: it makes a network namespace and a TUN device for the "
              "simulated network; run it with sudo", file=sys.stderr)
        return SETUP_FAILED
    signal.signal(signal.SIGTERM, interrupted)
    status, log = SETUP_FAILED, ""
    sc = Scenario(opts)
    try:
        with sc:
            t0 = time.monotonic()
            rc = sc.run_client(opts.client, opts.timeout)
            print(f"harness: client exited {rc} after {time.monotonic() - t0:.2f} s", file=sys.stderr)
            time.sleep(0.05)  # let the simulator log the last events
            log = sc.log_text()
            missing = [rx for rx in opts.expect_log if not re.search(rx, log, re.M)]
            for rx in missing:
                print(f"harness: simulator log lacks /{rx}/", file=sys.stderr)
            if missing:
                status = SETUP_FAILED
            elif opts.expect_exit is not None:
                status = 0 if rc == opts.expect_exit else SETUP_FAILED
                if status:
                    print(f"harness: client exited {rc}, expected {opts.expect_exit}", file=sys.stderr)
            else:
                status = rc
    except ScenarioError as e:
        print(f"harness: scenario setup failed: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("harness: interrupted; torn down", file=sys.stderr)
        status = 130
    if status != 0 or opts.show_log:
        print("---- simulator log ----\n" + (log or sc.last_log or "(none)"), file=sys.stderr, end="")
    return status


if __name__ == "__main__":
    sys.exit(main())
