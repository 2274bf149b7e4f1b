#!/usr/bin/env python3
"""Reads what twister did for scripts/zephyr-test.sh, and checks what twister does not.

twister (Zephyr's test runner) builds and runs this module's apps from their sample.yaml /
testcase.yaml and checks their console output. This script then:

  twister   reads twister.json: prints one line per configuration (app scenario x board),
            fails the run when an app has no configuration that ran on a board it was asked
            for (twister counts that as "filtered", e.g. a board name missing from a
            platform_allow, and still exits 0), and prints the bytes that the Rust static
            library and the C shim occupy in each image, from its linker map.
  console   runs an app (the README app, which scripts/zephyr-test.sh builds with the
            README's own commands, not twister's) until its yaml's regexes matched its console
            lines in order, and prints its sizes.

Sizes: GNU ld map input sections grouped as text+rodata, data, bss+noinit, kernel tables.
The shim's bss includes the uasyncio heap (CONFIG_UASYNCIO_HEAP_SIZE) and, with
CONFIG_UASYNCIO_LOOP_THREAD=y, the loop thread's stack.
"""
import argparse
import glob
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import yaml  # PyYAML: part of Zephyr's scripts/requirements-base.txt

SECTION = re.compile(r"^ (\.[^\s]+)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*))?$")
SIZE_ONLY = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")


def kind(section):
    """What an input section costs, or None when it is not in the image."""
    if section.startswith((".debug", ".comment", ".ARM.attributes", ".note", ".gnu", ".stab", ".llvm")):
        return None
    if section.startswith((".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".eh_frame", ".gcc_except")):
        return "text"
    if section.startswith((".data", ".sdata", ".init_array", ".tdata")):
        return "data"
    if section.startswith((".bss", ".sbss", ".noinit", "COMMON", ".tbss")):
        return "bss"
    return "other"


def map_sizes(map_path, matchers):
    """Bytes per (owner, kind) from a GNU ld map; owner: the first matcher in the input file."""
    sizes = {}
    with open(map_path, errors="replace") as f:
        lines = f.read().split("\n")
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        start = 0
    pending = None
    for line in lines[start:]:
        m = SECTION.match(line)
        if m:
            section, _addr, size, origin = m.groups()
            if size is None:
                pending = section
                continue
        else:
            m2 = SIZE_ONLY.match(line) if pending else None
            if not m2:
                pending = None
                continue
            section, (_addr, size, origin) = pending, m2.groups()
        pending = None
        k = kind(section)
        if k is None:
            continue
        for owner, needle in matchers:
            if needle in origin:
                sizes[(owner, k)] = sizes.get((owner, k), 0) + int(size, 16)
                break
    return sizes


def report_sizes(build, label):
    map_path = os.path.join(build, "zephyr", "zephyr.map")
    if not os.path.exists(map_path):
        return
    with open(map_path, errors="replace") as f:
        text = f.read()
    libs = sorted(set(re.findall(r"(/?[^\s()]*lib[A-Za-z0-9_]+\.a)\(", text)))
    rust = [lib for lib in libs if "/release/" in lib or "/debug/" in lib]
    matchers = [("rust", lib + "(") for lib in rust] + [("shim", "libuasyncio_shim.a")]
    sizes = map_sizes(map_path, matchers)
    for owner, name in (("rust", "Rust staticlib"), ("shim", "C shim        ")):
        t, d, b, o = (sizes.get((owner, k), 0) for k in ("text", "data", "bss", "other"))
        print(f"  size [{label}] {name}: text+rodata {t} B, data {d} B, bss+noinit {b} B, kernel tables {o} B")


LATENCY = re.compile(r"(?P<what>k_timer ISR -> thread \(k_sem\)|ISR -> task) latency over (?P<n>\d+) .*?"
                     r"min (?P<min>\d+) / avg (?P<avg>\d+) / max (?P<max>\d+) cycles at (?P<hz>\d+) Hz")


def report_latency(build, label, latencies):
    """The ISR -> thread and ISR -> task latency lines of an app's console log (tests/zephyr/port
    and tests/zephyr/timer_isr print them), in instructions when QEMU ran with -icount:
    instructions = cycles x (1e9 / Hz) ns / 2^shift ns."""
    shift = None
    try:
        with open(os.path.join(build, "zephyr", ".config")) as f:
            conf = f.read()
        if re.search(r"^CONFIG_QEMU_ICOUNT=y$", conf, re.M):
            m = re.search(r"^CONFIG_QEMU_ICOUNT_SHIFT=(\d+)$", conf, re.M)
            shift = int(m.group(1)) if m else None
        with open(os.path.join(build, "handler.log"), errors="replace") as f:
            log = f.read()
    except OSError:
        return
    for m in LATENCY.finditer(log):
        hz = int(m.group("hz"))
        if shift is None or hz <= 1_000_000:
            continue  # no instruction clock (native_sim), or a counter too coarse to mean anything
        per_cycle = 1e9 / hz / (1 << shift)
        lo, avg = (round(int(m.group(k)) * per_cycle) for k in ("min", "avg"))
        what = "k_sem" if m.group("what").startswith("k_timer") else "flag"
        latencies[(label, what)] = (lo, avg)
        print(f"  latency [{label}] {m.group('what')}: min {lo} / avg {avg} instructions "
              f"({m.group('min')} / {m.group('avg')} cycles at {hz} Hz, -icount shift={shift}, {m.group('n')} wakes)")


def board_matches(platform, board):
    """twister names a board by its full name (4.x: qemu_cortex_m3/ti_lm3s6965)."""
    return platform == board or platform.startswith(board + "/")


def twister(a):
    with open(a.json) as f:
        suites = json.load(f).get("testsuites", [])
    zbase = os.path.realpath(a.zephyr_base)
    apps = [os.path.realpath(p) for p in a.apps]
    boards = a.boards.split()
    # Zephyr 3.4's twister.json has no "path": find the app by its scenario name instead.
    by_scenario = {}
    for app in apps:
        for yname in ("testcase.yaml", "sample.yaml"):
            ypath = os.path.join(app, yname)
            if os.path.exists(ypath):
                with open(ypath) as f:
                    for scenario in (yaml.safe_load(f).get("tests") or {}):
                        by_scenario[scenario] = app

    def app_of(ts):
        path = ts.get("path")
        if path:
            return os.path.realpath(path if os.path.isabs(path) else os.path.join(zbase, path))
        return by_scenario.get(ts.get("name", "").split("/")[-1], ts.get("name", "?"))

    passed = failed = 0
    ran = {}  # (app, board) -> configurations that passed
    latencies = {}  # (board, "k_sem" | "flag") -> (min, avg) instructions
    for ts in sorted(suites, key=lambda t: (t.get("platform", ""), t.get("name", ""))):
        app = app_of(ts)
        platform = ts.get("platform", "?")
        board = next((b for b in boards if board_matches(platform, b)), platform)
        status = ts.get("status", "?")
        name = ts.get("name", "?")
        rel = os.path.relpath(app, a.repo)
        if status == "filtered":
            print(f"zephyr: [{board}] {rel} {name.split('/')[-1]}: not run here ({ts.get('reason', 'filtered')})")
            continue
        ok = status == "passed"
        print(f"zephyr: [{board}] {rel} {name.split('/')[-1]}: {'PASS' if ok else 'FAIL (' + status + ': ' + str(ts.get('reason', '')) + ')'}")
        if ok:
            passed += 1
            ran[(app, board)] = ran.get((app, board), 0) + 1
            scenario = name.split("/")[-1]
            maps = glob.glob(os.path.join(a.outdir, platform.replace("/", "_"), "**", scenario, "zephyr", "zephyr.map"), recursive=True)
            if maps:
                report_sizes(os.path.dirname(os.path.dirname(maps[0])), board)
                report_latency(os.path.dirname(os.path.dirname(maps[0])), board, latencies)
        else:
            failed += 1
    # Every app is meant for every board the script runs it on: an app without a configuration
    # that ran on a board was filtered (a yaml without the board's name, e.g. the 4.x spelling),
    # which fails the run instead of hiding it.
    for app in apps:
        for board in boards:
            if (app, board) not in ran and not any(
                    board_matches(t.get("platform", ""), board) and t.get("status") not in ("passed", "filtered")
                    and app_of(t) == app for t in suites):
                print(f"zephyr: [{board}] {os.path.relpath(app, a.repo)}: FAILED: nothing of it ran on '{board}' "
                      f"(twister filtered it: add '{board}' to its yaml's platform_allow)")
                failed += 1
    for board in boards:
        sem, flag = latencies.get((board, "k_sem")), latencies.get((board, "flag"))
        if sem and flag and sem[0] > 0:
            print(f"zephyr: [{board}] k_timer ISR -> task awaiting a ThreadSafeFlag: {flag[0]} instructions at best "
                  f"(avg {flag[1]}), {flag[0] / sem[0]:.2f}x the k_sem_give -> thread hand-off ({sem[0]}, avg {sem[1]})")
    for board in boards:
        n = sum(v for (app, b), v in ran.items() if b == board)
        print(f"zephyr: [{board}] {n} configurations passed")
    print(f"zephyr-report: passed={passed} failed={failed}")
    return 0 if failed == 0 else 1


def console(a):
    for name in ("testcase.yaml", "sample.yaml"):
        path = os.path.join(a.app, name)
        if os.path.exists(path):
            with open(path) as f:
                doc = yaml.safe_load(f)
            break
    else:
        sys.exit(f"no sample.yaml or testcase.yaml in {a.app}")
    regexes = []
    for block in [doc.get("common", {}) or {}] + list((doc.get("tests") or {}).values()):
        for regex in (block.get("harness_config") or {}).get("regex", []):
            if regex not in regexes:
                regexes.append(regex)
    pending = [re.compile(r) for r in regexes]
    # Run the command (in its own process group: `ninja run` starts QEMU or the native_sim
    # executable as a child), log and check its lines, and stop it once every line matched or
    # after the timeout (the app never exits by itself).
    proc = subprocess.Popen(a.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + a.timeout
    buf = b""
    with open(a.log, "w") as log:
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace").rstrip("\r")
                log.write(text + "\n")
                print("    " + text, flush=True)
                if pending and pending[0].search(text):
                    pending.pop(0)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if pending:
        print(f"zephyr: [{a.label}] expected output not seen: {[p.pattern for p in pending]}")
    report_sizes(a.build, a.label)
    return 1 if pending else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("twister")
    t.add_argument("--json", required=True)
    t.add_argument("--outdir", required=True)
    t.add_argument("--zephyr-base", required=True)
    t.add_argument("--repo", required=True)
    t.add_argument("--boards", required=True)
    t.add_argument("apps", nargs="*")
    c = sub.add_parser("console")
    c.add_argument("--app", required=True)
    c.add_argument("--log", required=True)
    c.add_argument("--build", required=True)
    c.add_argument("--label", required=True)
    c.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    c.add_argument("cmd", nargs="+", help="the command that runs the app (after --)")
    a = ap.parse_args()
    return twister(a) if a.cmd == "twister" else console(a)


if __name__ == "__main__":
    sys.exit(main())
