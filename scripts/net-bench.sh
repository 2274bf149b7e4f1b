#!/usr/bin/env bash
# Side-by-side TAP benchmark in one run: echo throughput (MB/s each way, one connection)
# and connection rate (connect, 1-byte echo, close; sequential) of
#   ours:    samples/echo_server  (uasyncio + uasyncio-net, smoltcp 0.14)
#   embassy: net/bench embassy_echo (embassy-executor + embassy-net 0.9.1, smoltcp 0.13)
# against the same Linux peer (Python asyncio, net/bench/peer.py) on the same kind of TAP,
# each run in a fresh network namespace. Same socket buffers (64 KiB) on both sides.
#
# usage: scripts/net-bench.sh [runs=3] [MiB=64] [conn_seconds=3]
# Needs root and /dev/net/tun; prints SKIP otherwise. Takes about runs * 2 * (5..15) s
# plus the first build (embassy's tree: ~2 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3} MIB=${2:-64} SECS=${3:-3}
if [ "$(id -u)" != 0 ] || [ ! -e /dev/net/tun ]; then
    echo "SKIP net-bench: needs root and /dev/net/tun"; exit 0
fi
scripts/net-deps.sh
T_OURS=${CARGO_TARGET_DIR:-$PWD/target}
T_EMBASSY=${BENCH_TARGET_DIR:-$PWD/target/net-bench-embassy}
(cd samples/echo_server && CARGO_TARGET_DIR=$T_OURS cargo build --release -q)
(cd net/bench && CARGO_TARGET_DIR=$T_EMBASSY cargo build --release -q)
OURS=$T_OURS/release/echo_server
EMBASSY=$T_EMBASSY/release/embassy_echo
NS=uanet-bench-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT

one() {  # $1 = ours|embassy
    ip netns del "$NS" 2>/dev/null || true
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip -n "$NS" tuntap add dev tap0 mode tap
    ip -n "$NS" addr add 192.168.69.100/24 dev tap0
    ip -n "$NS" link set tap0 up
    local srv_secs=$((SECS + 150))
    if [ "$1" = ours ]; then
        ip netns exec "$NS" "$OURS" --seconds "$srv_secs" >/dev/null &
    else
        ip netns exec "$NS" "$EMBASSY" "$srv_secs" >/dev/null &
    fi
    local pid=$!
    local out
    out=$(timeout 200 ip netns exec "$NS" python3 net/bench/peer.py "$MIB" "$SECS" || echo '{"error": "peer failed"}')
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ip netns del "$NS"
    echo "$out"
}

echo "net-bench: $RUNS runs x {ours, embassy}; $MIB MiB echo; ${SECS}s of sequential connections"
printf '%-8s %-4s %s\n' impl run result
RESULTS=""
for i in $(seq 1 "$RUNS"); do
    for impl in ours embassy; do
        r="$(one "$impl")"
        printf '%-8s %-4s %s\n' "$impl" "$i" "$r"
        RESULTS+="$impl $r"$'\n'
    done
done
# The medians side by side, and the ratio ours / embassy (above 1: ours is faster).
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
vals = {}
for line in sys.argv[1].splitlines():
    impl, _, js = line.partition(" ")
    for k, v in json.loads(js).items():
        if isinstance(v, (int, float)):
            vals.setdefault((impl, k), []).append(v)
for k, label in (("echo_MBps_each_way", "echo, MB/s each way"), ("connections_per_s", "sequential connections per s")):
    o, e = vals.get(("ours", k)), vals.get(("embassy", k))
    if not o or not e:
        print(f"{label}: missing results"); continue
    mo, me = statistics.median(o), statistics.median(e)
    print(f"{label}: ours {mo:.1f}, embassy-net {me:.1f} (median of {len(o)}); ours / embassy {mo / me:.2f}x")
PY
