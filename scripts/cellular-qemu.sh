#!/usr/bin/env bash
# Builds the cellular sample's FreeRTOS firmware (samples/cellular/freertos-mps2) for QEMU
# mps2-an385 and runs it against the modem simulator (tests/cellular/harness.py): UART0 is
# wired to the simulator (-serial unix:...), UART1 is the console (-serial stdio). Needs
# root (the harness makes a network namespace with a TUN device).
#
#   at                AT sync + modem bring-up to CONNECT, hang-up
#   session           the shared application of the cellular sample (samples/cellular/src,
#                     the code the host binary runs) under the link supervisor: bring-up,
#                     PPP, DNS (echo.test), TCP echo :7000, hang-up; then again with TLS 1.3
#                     to :7443 (CA = the harness's DER certificate, read through semihosting)
#   session-garbage   the same with the simulator's `garbage` fault (random bytes before AT
#                     lines and PPP frames)
#   session-lcp-drop  the same with `lcp-drop=1` (the first LCP frame lost: PPP's restart
#                     timer must resend its Configure-Request)
#   throughput        one call: TCP echo, 32 KiB through the echo server (the TCP-over-PPP
#                     figure), TLS echo, hang-up (the firmware's own app.rs)
# Figures (printed, never a verdict): `throughput`'s bytes/s; `bench-rx` counts instructions
# from the UART RX interrupt to read() under -icount; `size` prints the flash of the firmware
# with and without the application's TLS.
#
# Ends with "N passed, N failed". Usage: scripts/cellular-qemu.sh [program...]
# (default: at session session-garbage session-lcp-drop throughput; add bench-rx and size)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "cellular-qemu: needs root (the modem simulator makes a network namespace with a TUN device): skipped"
    echo "0 passed, 0 failed"
    exit 0
fi
BUILD="${CELLULAR_FW_BUILD_DIR:-$ROOT/target/cellular-fw}"
SRC="$ROOT/samples/cellular/freertos-mps2"

build() { # build <dir> <cargo features>
    timeout 600 cmake -S "$SRC" -B "$1" -DCMAKE_BUILD_TYPE=Release "-DCELL_FEATURES=$2" >/dev/null || return 1
    timeout 1800 cmake --build "$1" -j2 | grep -E '^ +text|cellfw.elf$|error|warning: unused' || true
    [ -f "$1/cellfw.elf" ]
}

# run_sim <harness args...> -- <firmware args...>: QEMU as the harness's client.
run_sim() {
    local hargs=() fargs="arg=fw"
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do hargs+=("$1"); shift; done
    shift
    for a in "$@"; do fargs="$fargs,arg=$a"; done
    timeout 400 python3 "$ROOT/tests/cellular/harness.py" --transport unix --timeout 300 "${hargs[@]}" -- \
        timeout 290 qemu-system-arm -M mps2-an385 -nographic -monitor none \
        -serial 'unix:{unix}' -serial stdio \
        -semihosting-config "enable=on,target=native,$fargs" ${QEMU_EXTRA:-} -kernel "$BUILD/cellfw.elf" </dev/null
}

seed() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

programs=("$@")
[ "${#programs[@]}" -gt 0 ] || programs=(at session session-garbage session-lcp-drop throughput)

build "$BUILD" tls || { echo "build failed"; echo; echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
for p in "${programs[@]}"; do
    echo "=== $p"
    common=(guard=150 "ca={ca_der}" "seed=$(seed)")
    case "$p" in
        at) out="$(run_sim -- at guard=150 "seed=$(seed)" 2>&1)"; rc=$? ;;
        session) out="$(run_sim --expect-log 'ppp ipcp opened' -- session "${common[@]}" 2>&1)"; rc=$? ;;
        throughput) out="$(run_sim -- throughput "${common[@]}" bulk=32768 2>&1)"; rc=$? ;;
        session-garbage) out="$(run_sim --fault garbage -- session "${common[@]}" 2>&1)"; rc=$? ;;
        session-lcp-drop) out="$(run_sim --fault lcp-drop=1 --expect-log 'ppp lcp opened' -- session "${common[@]}" 2>&1)"; rc=$? ;;
        bench-rx)
            # Under -icount the guest clock follows instructions; the program has no deadlines.
            out="$(QEMU_EXTRA="-icount shift=${SHIFT:-5}" run_sim -- bench-rx "shift=${SHIFT:-5}" n=50 2>&1)"; rc=$? ;;
        size)
            out=""; rc=0
            for feat in tls ""; do
                dir="$BUILD-size-${feat:-notls}"
                build "$dir" "$feat" >/dev/null || rc=1
                if [ -n "$feat" ]; then what="with TLS"; else what="without TLS (uasyncio-net built without its tls feature)"; fi
                out+="firmware $what: $(arm-none-eabi-size "$dir/cellfw.elf" | tail -1)"$'\n'
                out+="$(python3 "$SRC/size_by_crate.py" "$dir/cellfw.elf" 2>&1 | sed -n '1,20p;$p')"$'\n'
            done ;;
        *) out="unknown program $p"; rc=2 ;;
    esac
    printf '%s\n' "$out"
    if [ $rc -eq 0 ] && { [ "$p" = size ] || grep -q "firmware: PASS" <<<"$out"; }; then
        passed=$((passed + 1)); echo "--- $p: ok"
    else
        failed=$((failed + 1)); echo "--- $p: FAILED (exit $rc)"
    fi
done
echo
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
