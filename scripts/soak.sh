#!/usr/bin/env bash
# Soak run (host, release build): `bash scripts/soak.sh [minutes]` (default 60).
# Runs tests/soak for that long: task spawn/cancel churn, ThreadSafeFlag set from three OS
# threads, TCP echo over a TAP against a Python asyncio echo peer in a private network
# namespace, RSS and live-task samples every 10 s (SOAK_SAMPLE_SECS). Prints a summary and
# exits non-zero on any failed operation, lost wake-up, leaked task or socket, or RSS growth
# after warm-up above max(1 MiB, 10 %). Without root or /dev/net/tun the TCP part is skipped
# (said so in the output). Not in test-all.sh; `soak.sh 1` is the short form for CI.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN=${1:-60}
case $MIN in ''|*[!0-9]*) echo "usage: $0 [minutes]" >&2; exit 2 ;; esac
. scripts/tap-netns.sh
cargo build -q --release -p uasyncio-soak
BIN=${CARGO_TARGET_DIR:-$(pwd)/target}/release/uasyncio-soak
ARGS=(--seconds $((MIN * 60)) --sample-secs "${SOAK_SAMPLE_SECS:-10}")
if ! tapns_ok; then
    echo "soak: not root or no /dev/net/tun: TCP part skipped"
    exec "$BIN" "${ARGS[@]}"
fi
scripts/net-deps.sh
tapns_up "uasoak-$$"
ip netns exec "$TAPNS" python3 -u - <<'PY' &
import asyncio
async def echo(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except OSError:
        pass
    finally:
        w.close()
async def main():
    srv = await asyncio.start_server(echo, "192.168.69.100", 7000, backlog=64)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
PY
TAPNS_PIDS=$!
for _ in $(seq 100); do
    ip netns exec "$TAPNS" ss -Hltn "sport = :7000" | grep -q . && break
    sleep 0.1
done
ip netns exec "$TAPNS" "$BIN" "${ARGS[@]}" --tap tap0 --peer 192.168.69.100:7000
