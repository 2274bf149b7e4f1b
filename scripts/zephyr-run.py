#!/usr/bin/env python3
"""Runs one built Zephyr app of this module and checks its console output.

Used by scripts/zephyr-test.sh. native_sim images run as host processes (`--no-rt`:
simulated time runs as fast as the host can); qemu_cortex_m3 images run in
`qemu-system-arm -M lm3s6965evb` (mps2_an385, 4.x `mps2/an385`: `-M mps2-an385`) with `-icount shift=3,align=off,sleep=off`, so guest time is a
function of the instructions executed (deterministic, and idle time passes instantly) and
semihosting gives the exit status.

An app passes when the regular expressions of its sample.yaml / testcase.yaml
(`harness_config.regex`) match its console lines in order and, for a test (testcase.yaml),
when it exits with status 0. A sample never exits: it is stopped once every line matched.

Then prints the bytes that the Rust static library and the C shim occupy in the image, from
the GNU ld map file (input sections grouped as text+rodata, data, bss+noinit, kernel tables).
The shim's bss includes the uasyncio heap (CONFIG_UASYNCIO_HEAP_SIZE) and the loop thread's
stack (CONFIG_UASYNCIO_LOOP_THREAD_STACK_SIZE).
"""
import argparse
import os
import re
import select
import subprocess
import sys
import time

import yaml  # PyYAML: part of Zephyr's scripts/requirements-base.txt


def app_spec(app):
    """(is_test, expected regexes, allowed platforms or None) from the app's yaml."""
    for name, is_test in (("testcase.yaml", True), ("sample.yaml", False)):
        path = os.path.join(app, name)
        if os.path.exists(path):
            with open(path) as f:
                doc = yaml.safe_load(f)
            regexes, allowed = [], None
            blocks = [doc.get("common", {})] + list((doc.get("tests") or {}).values())
            for block in blocks:
                for regex in (block.get("harness_config") or {}).get("regex", []):
                    if regex not in regexes:
                        regexes.append(regex)
                if "platform_allow" in block:
                    allowed = (allowed or []) + str(block["platform_allow"]).split()
            return is_test, regexes, allowed
    sys.exit(f"no sample.yaml or testcase.yaml in {app}")


def variants(app, board):
    """The CMake cache entries (one string per build, '' for none) of the app's tests or
    samples that run on `board`, from their `platform_allow` and `extra_args`, as twister
    reads them."""
    for name in ("testcase.yaml", "sample.yaml"):
        path = os.path.join(app, name)
        if os.path.exists(path):
            with open(path) as f:
                doc = yaml.safe_load(f)
            common = doc.get("common", {}) or {}
            out = []
            for block in (doc.get("tests") or {}).values():
                allow = block.get("platform_allow", common.get("platform_allow"))
                if allow is not None and board not in str(allow).split():
                    continue
                args = block.get("extra_args", "")
                args = " ".join(args) if isinstance(args, list) else str(args)
                if args not in out:
                    out.append(args)
            return out
    sys.exit(f"no sample.yaml or testcase.yaml in {app}")


def command(board, build, is_test):
    if board.startswith("native_sim") or board.startswith("native_posix"):
        # A sample never exits: stop it after 60 s of simulated time (instant with --no-rt).
        return [os.path.join(build, "zephyr", "zephyr.exe"), "--no-rt"] + ([] if is_test else ["--stop_at=60"])
    machines = {"qemu_cortex_m3": "lm3s6965evb", "mps2_an385": "mps2-an385", "mps2/an385": "mps2-an385"}
    if board in machines:
        return ["qemu-system-arm", "-M", machines[board], "-nographic", "-semihosting",
                "-icount", "shift=3,align=off,sleep=off",
                "-kernel", os.path.join(build, "zephyr", "zephyr.elf")]
    sys.exit(f"zephyr-run: don't know how to run board {board}")


def ram_report_enabled(build):
    """True when the image prints the shim's RAM report (CONFIG_UASYNCIO_RAM_REPORT=y)."""
    try:
        with open(os.path.join(build, "zephyr", ".config")) as f:
            return "CONFIG_UASYNCIO_RAM_REPORT=y\n" in f.read()
    except OSError:
        return False


def run(cmd, regexes, is_test, timeout, want_ram=False):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    pending = [re.compile(r) for r in regexes]
    buf = b""
    timed_out = False
    ram_seen = not want_ram
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
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
            print("    " + text, flush=True)
            if pending and pending[0].search(text):
                pending.pop(0)
            if text.startswith("uasyncio ram:"):
                ram_seen = True
        if not pending and ram_seen and not is_test:
            break
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    missing = [p.pattern for p in pending] + ([] if ram_seen else ["uasyncio ram:"])
    return proc.returncode, missing, timed_out


SECTION = re.compile(r"^ (\.[^\s]+)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*))?$")
SIZE_ONLY = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")


def kind(section):
    """What an input section costs: flash (text, read-only data, unwind tables), initialised
    RAM (data), zeroed or uninitialised RAM (bss), or other allocated sections (kernel object
    tables such as .z_init_*). None: not in the image (debug info, comments, attributes,
    the LLVM bitcode that rustc embeds)."""
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
    """Bytes per (owner, kind) from a GNU ld map; owner is the first matcher found in the
    input file name."""
    sizes = {}
    with open(map_path, errors="replace") as f:
        lines = f.read().split("\n")
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        start = 0
    pending_section = None
    for line in lines[start:]:
        m = SECTION.match(line)
        if m:
            section, addr, size, origin = m.groups()
            if size is None:
                pending_section = section
                continue
        else:
            m2 = SIZE_ONLY.match(line) if pending_section else None
            if not m2:
                pending_section = None
                continue
            section, (addr, size, origin) = pending_section, m2.groups()
        pending_section = None
        k = kind(section)
        if k is None:
            continue
        for owner, needle in matchers:
            if needle in origin:
                sizes[(owner, k)] = sizes.get((owner, k), 0) + int(size, 16)
                break
    return sizes


def report_sizes(build, board):
    zdir = os.path.join(build, "zephyr")
    map_path = os.path.join(zdir, "zephyr.map")
    if not os.path.exists(map_path):
        return
    with open(map_path, errors="replace") as f:
        text = f.read()
    libs = sorted(set(re.findall(r"(/[^\s()]*/lib[A-Za-z0-9_]+\.a)\(", text)))
    rust = [lib for lib in libs if "/release/" in lib or "/debug/" in lib]
    matchers = [("rust", lib) for lib in rust] + [("shim", "libuasyncio_shim.a")]
    sizes = map_sizes(map_path, matchers)
    for owner in ("rust", "shim"):
        t, d, b, o = (sizes.get((owner, k), 0) for k in ("text", "data", "bss", "other"))
        label = "Rust staticlib" if owner == "rust" else "C shim        "
        print(f"  size [{board}] {label}: text+rodata {t} B, data {d} B, bss+noinit {b} B, kernel tables {o} B")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--board", required=True)
    ap.add_argument("--app", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--check-platform", action="store_true", help="only exit 0 if the app allows the board")
    ap.add_argument("--variants", action="store_true",
                    help="print the builds the app needs on the board, one line each: '-' or its extra_args")
    ap.add_argument("--timeout", type=float, default=None, help="seconds; default 300 for a test, 60 for a sample")
    a = ap.parse_args()
    if a.variants:
        for v in variants(a.app, a.board) or []:
            print(v or "-")
        return 0
    is_test, regexes, allowed = app_spec(a.app)
    name = os.path.basename(os.path.normpath(a.app))
    if allowed is not None and a.board not in allowed:
        if not a.check_platform:
            print(f"zephyr: [{a.board}] {name}: skipped (not in its platform_allow)")
        return 3
    if a.check_platform:
        return 0
    print(f"zephyr: [{a.board}] {name}: running {'test' if is_test else 'sample'}", flush=True)
    if a.timeout is None:
        a.timeout = 300 if is_test else 60
    rc, missing, timed_out = run(command(a.board, a.build, is_test), regexes, is_test, a.timeout,
                                 ram_report_enabled(a.build))
    ok = not missing and not timed_out and (rc == 0 or not is_test)
    if missing:
        print(f"zephyr: [{a.board}] {name}: expected output not seen: {missing}")
    if timed_out:
        print(f"zephyr: [{a.board}] {name}: timed out after {a.timeout:.0f} s")
    if is_test and rc != 0 and not timed_out:
        print(f"zephyr: [{a.board}] {name}: exit status {rc}")
    report_sizes(a.build, a.board)
    print(f"zephyr: [{a.board}] {name}: {'PASS' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
