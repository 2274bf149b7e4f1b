#!/usr/bin/env bash
# First net/examples/pair_echo.rs, the README's network example (two stacks on the in-memory
# link: start_server, open_connection, a refused connect), as the README runs it. Then
# samples/echo_server on a TAP in a private network namespace, talked to by a Python asyncio
# client (8 connections x 256 KiB echoed, checked byte for byte). Cleans up the namespace on
# exit. The TAP part needs root and /dev/net/tun (prints SKIP otherwise); ~10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(cargo run -q -p uasyncio-net --features std --example pair_echo)"
printf '%s\n' "$out"
grep -q "^pair_echo: 3 lines echoed$" <<<"$out"
grep -q "^pair_echo: port 7001: OSError: \[Errno 111\] ECONNREFUSED$" <<<"$out"
. scripts/tap-netns.sh
if ! tapns_ok; then
    echo "SKIP net-echo-sample: needs root and /dev/net/tun"; exit 0
fi
scripts/net-deps.sh
cargo build -q -p echo_server
BIN=${CARGO_TARGET_DIR:-$(pwd)/target}/debug/echo_server
NS=uanet-sample-$$
tapns_up "$NS"
ip netns exec "$NS" "$BIN" --tap tap0 --ip 192.168.69.1 --port 7000 --seconds 20 &
SRV=$!
timeout 60 ip netns exec "$NS" python3 - <<'PY'
import asyncio, os
async def connect():
    for _ in range(200):
        try:
            return await asyncio.open_connection("192.168.69.1", 7000)
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit("echo_server did not answer")
async def one(i):
    r, w = await connect()
    data = os.urandom(256 * 1024)
    async def send():
        w.write(data); await w.drain()
    got = (await asyncio.gather(send(), r.readexactly(len(data))))[1]
    assert got == data, f"connection {i}: echo differs"
    assert w.get_extra_info("peername")[0] == "192.168.69.1"
    w.close(); await w.wait_closed()
async def main():
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(8))), 30)
asyncio.run(main())
print("net-echo-sample: 8 connections x 256 KiB echoed intact")
PY
kill "$SRV" 2>/dev/null || true
wait "$SRV" 2>/dev/null || true
