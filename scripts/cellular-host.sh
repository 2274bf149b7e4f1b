#!/usr/bin/env bash
# The cellular sample on the host against the modem simulator (tests/cellular), as root: each
# scenario runs `cellular` on a pty to a simulated modem whose PPP peer bridges to a TUN in a
# network namespace the harness makes, with TCP and TLS echo servers and DNS there.
# Normal runs must echo every line and leave no socket or task behind; each fault must end
# either in a recovered link or in a clear error that names the layer (AT, SIM, registration,
# PPP, TCP, TLS). Ends with "N passed, N failed".
#   bash scripts/cellular-host.sh              # the simulator's self-test and every scenario
#   bash scripts/cellular-host.sh tls denied   # only the scenarios named
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if [ "$(id -u)" -ne 0 ]; then
    echo "cellular-host: needs root (network namespaces, TUN): skipped"
    echo "0 passed, 0 failed"
    exit 0
fi

cargo build -q -p cellular || exit 1
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/cellular"
HARNESS=(python3 tests/cellular/harness.py --timeout 240)
# The client's guard time is longer than the simulator's (100 ms), as a modem's S12 requires.
CLIENT=("$BIN" --device '{tty}' --apn internet --guard-ms 150 --quiet)

passed=0
failed=0
only=("$@")

# scenario NAME EXPECT_EXIT OUTPUT_REGEX [harness args...] -- [client args...]
scenario() {
    local name=$1 want=$2 regex=$3
    shift 3
    if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* ]]; then
        return
    fi
    local hargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do hargs+=("$1"); shift; done
    shift
    local out rc
    out="$("${HARNESS[@]}" --expect-exit "$want" "${hargs[@]}" -- "${CLIENT[@]}" "$@" 2>&1)"
    rc=$?
    if [ $rc -eq 0 ] && grep -Eq "$regex" <<<"$out"; then
        passed=$((passed + 1))
        printf 'ok      %-22s %s\n' "$name" "$(grep -E '^cellular: ' <<<"$out" | tail -n 1)"
    else
        failed=$((failed + 1))
        printf 'FAILED  %-22s (harness exit %s; wanted client exit %s and /%s/)\n' "$name" "$rc" "$want" "$regex"
        printf '%s\n' "$out" | tail -n 40 | sed 's/^/    /'
    fi
}

if [ ${#only[@]} -eq 0 ]; then
    echo "== modem simulator self-test"
    if python3 tests/cellular/selftest.py; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi

echo "== scenarios"
OK='^cellular: OK .* 0 socket\(s\) left; 0 task\(s\) left'
scenario tcp 0 "$OK" --expect-log 'ppp ipcp opened' -- --server echo.test:7000 --lines 200
scenario tls 0 "$OK" -- --server echo.test:7443 --tls --ca '{ca_der}' --lines 50
scenario by-address 0 "$OK" -- --server 10.64.0.1:7000 --lines 20
scenario slow-registration 0 "$OK" --fault slow-reg=3 -- --server echo.test:7000 --lines 20
scenario roaming 0 "$OK" --fault roaming -- --server echo.test:7000 --lines 20
scenario lcp-first-frames-lost 0 "$OK" --fault lcp-drop=2 -- --server echo.test:7000 --lines 20
scenario passive-peer 0 "$OK" --fault passive -- --server echo.test:7000 --lines 20
scenario garbage 0 "$OK" --fault garbage -- --server echo.test:7000 --lines 100
scenario garbage-tls 0 "$OK" --fault garbage -- --server echo.test:7443 --tls --ca '{ca_der}' --lines 20
scenario urc-storm 0 "$OK" --fault urc-storm -- --server echo.test:7000 --lines 50
# The call drops mid-transfer: the supervisor redials, the app reconnects and finishes.
scenario no-carrier-midway 0 '^cellular: OK .* over 2 connection\(s\).* 1 drop\(s\);.* 0 socket\(s\) left; 0 task\(s\) left' --fault no-carrier-after=3000 \
    --expect-log 'call dropped' -- --server echo.test:7000 --lines 200
scenario sim-pin 0 "$OK" --sim-arg=--pin=1234 --expect-log 'AT\+CPIN="1234"' -- --server echo.test:7000 --lines 20 --pin 1234
scenario sim-pin-missing 1 '^cellular: FAILED \[SIM\] .*asks for a PIN and none is configured' --sim-arg=--pin=1234 -- \
    --server echo.test:7000 --max-failures 1
scenario no-sim 1 '^cellular: FAILED \[SIM\] .*SIM not inserted' --fault no-sim -- --server echo.test:7000 --max-failures 2
scenario registration-denied 1 '^cellular: FAILED \[registration\] .*denied' --fault denied -- --server echo.test:7000 --max-failures 2
scenario silent-modem 1 '^cellular: FAILED \[AT\] .*no answer' --fault mute-after=0.2 -- --server echo.test:7000 --max-failures 1
scenario lcp-never-opens 1 '^cellular: FAILED \[PPP\] .*LCP negotiation timed out' --fault lcp-dead -- \
    --server echo.test:7000 --max-failures 2 --ppp-restart-ms 300 --ppp-max-configure 3
scenario wrong-apn 1 '^cellular: FAILED \[AT\] .*NO CARRIER.*APN' -- --server echo.test:7000 --max-failures 1 --apn wrong.apn
scenario tcp-refused 1 '^cellular: FAILED \[TCP\] .*ECONNREFUSED' -- --server echo.test:7001
scenario tls-to-plain-server 1 '^cellular: FAILED \[TLS\] ' -- --server echo.test:7000 --tls

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
