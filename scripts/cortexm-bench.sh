#!/usr/bin/env bash
# The embassy column of the Cortex-M3 benchmark: bench/cortex-m/embassy-mps2 (embassy-executor
# 0.10's thread-mode Cortex-M executor, bare metal, no RTOS) on QEMU mps2-an385 with
# -icount shift=7, measured exactly as scripts/freertos-bench.sh measures uasyncio:
#   embassy-yield    two tasks looping on yield_now (instructions per task switch)
#   embassy-spawn    spawn a pool_size=1 task that signals a Signal, await it (per task)
#   embassy-signal   timer0 ISR sets a Signal<CriticalSectionRawMutex> -> awaiting task
# Usage:
#   scripts/cortexm-bench.sh                          embassy's figures only
#   scripts/cortexm-bench.sh YIELD SPAWN FLAG RAWSEM  also the comparison table, given our
#                                                     medians (scripts/freertos-bench.sh does this)
# Env: EMBASSY_MPS2_TARGET_DIR (cargo target dir; default target/embassy-mps2, or
# FREERTOS_TARGET_DIR/embassy-mps2 if that is set).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CRATE="$ROOT/bench/cortex-m/embassy-mps2"
if [ -n "${FREERTOS_TARGET_DIR:-}" ]; then DEF="$FREERTOS_TARGET_DIR/embassy-mps2"; else DEF="$ROOT/target/embassy-mps2"; fi
export CARGO_TARGET_DIR="${EMBASSY_MPS2_TARGET_DIR:-$DEF}"
TARGET=thumbv7m-none-eabi
ELF="$CARGO_TARGET_DIR/$TARGET/release/embassy-mps2"
SHIFT=7

(cd "$CRATE" && timeout 1800 cargo build --release --locked --target "$TARGET" -q) || { echo "embassy-mps2: build failed"; exit 1; }

median() { sed -n 's/.* median \([0-9]*\) .*/\1/p'; }
declare -A med
for p in embassy-yield embassy-spawn embassy-signal; do
    out="$(timeout 300 qemu-system-arm -M mps2-an385 -nographic -monitor none -serial stdio \
        -semihosting-config "enable=on,target=native,arg=fw,arg=$p,arg=shift=$SHIFT" \
        -icount shift=$SHIFT -kernel "$ELF" </dev/null 2>&1)" || { echo "$p failed"; printf '%s\n' "$out"; exit 1; }
    grep '^report:' <<<"$out"
    med[$p]="$(grep '^report:' <<<"$out" | median)"
    [ -n "${med[$p]}" ] || { echo "$p: no median in its report"; printf '%s\n' "$out"; exit 1; }
done

[ $# -eq 4 ] || exit 0
echo
echo "Cortex-M3 (QEMU mps2-an385, -icount shift=$SHIFT), instructions, median; ratio = embassy / uasyncio (above 1: uasyncio wins)"
awk -v oy="$1" -v os="$2" -v of="$3" -v raw="$4" \
    -v ey="${med[embassy-yield]}" -v es="${med[embassy-spawn]}" -v ef="${med[embassy-signal]}" 'BEGIN {
    printf "| %-40s | %8s | %7s | %5s | %16s |\n", "row", "uasyncio", "embassy", "ratio", "raw FreeRTOS sem"
    printf "| %-40s | %8s | %7s | %5s | %16s |\n", "----------------------------------------", "-------:", "------:", "----:", "---------------:"
    printf "| %-40s | %8d | %7d | %5.2f | %16s |\n", "task switch (per switch)", oy, ey, ey / oy, "-"
    printf "| %-40s | %8d | %7d | %5.2f | %16s |\n", "spawn + complete (per task)", os, es, es / os, "-"
    printf "| %-40s | %8d | %7d | %5.2f | %16d |\n", "timer0 IRQ -> awaiting task", of, ef, ef / of, raw
}'
