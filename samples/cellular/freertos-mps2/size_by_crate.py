#!/usr/bin/env python3
"""Flash (text + read-only data) of a firmware ELF by Rust crate, from its symbol table.

Usage: size_by_crate.py FW.elf. Rust symbols are grouped by their first path component
(`smoltcp::...` -> smoltcp); symbols of C code by name (FreeRTOS, newlib, board). LTO
inlines across crates, so an inlined function counts in its caller's crate: read the
figures as "where the code ended up", not as exact per-crate costs.
"""
import collections
import re
import subprocess
import sys

CRYPTO = {"p256", "elliptic_curve", "primeorder", "crypto_bigint", "aes", "aes_gcm", "ghash", "polyval",
          "sha2", "hkdf", "hmac", "digest", "ecdsa", "der", "spki", "x509_cert", "const_oid", "rand_chacha",
          "rand_core", "subtle", "ctr", "cipher", "universal_hash", "signature", "generic_array",
          "heapless", "sec1", "ff", "group", "base16ct", "zeroize", "typenum", "p384", "rsa", "pkcs1",
          "embedded_tls"}


def main() -> int:
    elf = sys.argv[1]
    out = subprocess.run(["arm-none-eabi-nm", "-S", "--size-sort", "-C", elf],
                         capture_output=True, text=True, check=True).stdout
    by = collections.Counter()
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        _, size, kind, name = parts
        if kind not in "TtRrWw":
            continue
        n = int(size, 16)
        m = re.match(r"^(?:<)?([A-Za-z_][A-Za-z0-9_]*)::", name)
        if m:
            crate = m.group(1)
        elif name.startswith("uasyncio_serial") or name.startswith("uasyncio_"):
            crate = "uasyncio C API"
        elif re.match(r"^(x|v|ux|pv|pc|prv|e)[A-Z]", name) or name.startswith("port") or "Port" in name:
            crate = "FreeRTOS kernel"
        elif name.startswith("board_") or name.endswith("_Handler") or name.startswith("cell_"):
            crate = "board glue (C)"
        else:
            crate = "other C / compiler builtins"
        by[crate] += n
    total = sum(by.values())
    tls = sum(v for k, v in by.items() if k in CRYPTO)
    for crate, n in by.most_common():
        print(f"  {n:8d}  {crate}")
    print(f"  {total:8d}  total of sized symbols; TLS + crypto crates: {tls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
