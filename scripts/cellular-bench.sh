#!/usr/bin/env bash
# The cellular figures of README.md (section Figures), measured (never judged: this script prints, it does
# not pass or fail on a number). As root, against the modem simulator (tests/cellular):
#   host  - the release `cellular` sample over a pty: time from CONNECT to IP up, TCP
#           throughput over PPP (1 MiB each way through the echo server), loop wake-ups
#           of the network while the link is up and idle for 30 s; three runs.
#   qemu  - the FreeRTOS firmware on QEMU mps2-an385 (scripts/cellular-qemu.sh): TCP over
#           PPP throughput, Cortex-M3 instructions from the UART RX interrupt to read()
#           (-icount), flash with and without TLS.
#   bash scripts/cellular-bench.sh [host] [qemu]     (default: both)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if [ "$(id -u)" -ne 0 ]; then
    echo "cellular-bench: needs root (network namespaces, TUN)"
    exit 1
fi

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(host qemu)

for part in "${parts[@]}"; do
    case "$part" in
    host)
        cargo build -q --release -p cellular || exit 1
        BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cellular"
        echo "== host: release sample over a pty (1 MiB each way, then 30 s idle), 3 runs"
        for i in 1 2 3; do
            python3 tests/cellular/harness.py --timeout 240 -- "$BIN" --device '{tty}' --apn internet \
                --server echo.test:7000 --lines 3 --guard-ms 150 --quiet --bulk-kib 1024 --idle-s 30 2>&1 |
                grep -a '^cellular:' | sed -e 's/.*CONNECT->up/CONNECT->up/' -e 's/; [0-9]* socket(s) left.*//'
        done
        ;;
    qemu)
        echo "== QEMU mps2-an385 (FreeRTOS firmware): throughput, RX interrupt -> read(), flash"
        bash scripts/cellular-qemu.sh throughput bench-rx size 2>&1 |
            grep -aE 'B/s|bytes/s|instr|per byte|median|firmware with|firmware without|text|^---|passed'
        ;;
    *)
        echo "unknown part $part (host, qemu)"
        exit 2
        ;;
    esac
done
