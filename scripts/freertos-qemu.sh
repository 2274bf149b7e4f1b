#!/usr/bin/env bash
# Builds the mps2-an385 firmware through the uasyncio FreeRTOS CMake component and runs it
# under QEMU (Cortex-M3), one boot per program; QEMU's exit code is each program's verdict.
#   selftest      rtos-shims' port on the board (SysTick µs clock, ISR gives, BASEPRI sections)
#   conformance   the whole tests/conformance suite
#   flag-isr      10,000 timer0 IRQs -> uasyncio_flag_set_from_isr (C) -> awaiting task
#   queue-isr     a C ISR sending into a full queue gets UASYNCIO_E_FULL and goes on
#   tsq-isr       a Rust ISR sends 10,000 items into a typed ThreadSafeQueue: none lost or reordered
#   app           uasyncio_start() from C, a legacy C task meeting its deadlines, C -> loop queue
#   task-ram      heap bytes per uasyncio task
#   large-future  a 4,000-byte future through run, create_task, wait_for, gather!, TaskGroup:
#                 the calling task's stack pays far less than its size (it goes to the heap)
#   wakeups       the idle loop's wake-ups: one per deadline, timers in one tick together, slack
#                 (counted by the loop's stats: a second build, with the firmware's feature `stats`;
#                 the first has only `conformance`, as a firmware that asks for no stats)
#   misuse-isr    a [task only] C API call from an ISR must stop the firmware with a message
# Ends with "N passed, N failed". Usage: scripts/freertos-qemu.sh [program[:arg]...]
# (e.g. conformance:flag:: runs the cases whose name contains "flag::", conformance:!thread_
# all but those containing "thread_").
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${FREERTOS_TARGET_DIR:-$ROOT/target/freertos}/mps2-an385"
ELF="$BUILD/fw.elf"

# UASYNCIO_USE_TOP_LEVEL: the firmware adds the component the documented way,
# add_subdirectory(<uasyncio-rs> uasyncio), not include(cmake/freertos.cmake).
timeout 600 cmake -S "$ROOT/firmware/mps2-an385" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFW_FEATURES=conformance \
    -DUASYNCIO_USE_TOP_LEVEL=ON >/dev/null || exit 1
timeout 1800 cmake --build "$BUILD" -j2 || exit 1

# The build with the loop's stats, for the programs that read them (built, or brought up to
# date, when first needed).
STATS_BUILD="${FREERTOS_TARGET_DIR:-$ROOT/target/freertos}/mps2-an385-stats"
stats_elf() {
    timeout 600 cmake -S "$ROOT/firmware/mps2-an385" -B "$STATS_BUILD" -DCMAKE_BUILD_TYPE=Release -DFW_FEATURES=stats \
        -DUASYNCIO_USE_TOP_LEVEL=ON >/dev/null || return 1
    timeout 1800 cmake --build "$STATS_BUILD" -j2 >&2 || return 1
    echo "$STATS_BUILD/fw.elf"
}

# qemu_run <elf> <program> [arg...]: prints the firmware's output, returns QEMU's exit code.
qemu_run() {
    local elf=$1
    shift
    local sh="arg=fw"
    for a in "$@"; do sh="$sh,arg=$a"; done
    timeout 600 qemu-system-arm -M mps2-an385 -nographic -monitor none -serial stdio \
        -semihosting-config "enable=on,target=native,$sh" -icount shift=7 -kernel "$elf" </dev/null
}

programs=("$@")
[ "${#programs[@]}" -gt 0 ] || programs=(selftest conformance flag-isr queue-isr tsq-isr app task-ram large-future wakeups misuse-isr)
passed=0; failed=0
for p in "${programs[@]}"; do
    echo "=== $p"
    if [[ "$p" == *:* ]]; then words=("${p%%:*}" "${p#*:}"); else words=("$p"); fi
    elf="$ELF"
    if [ "${words[0]}" = wakeups ]; then elf="$(stats_elf)" || { failed=$((failed + 1)); echo "--- $p: FAILED (the stats build)"; continue; }; fi
    out="$(qemu_run "$elf" "${words[@]}" 2>&1)"; rc=$?
    printf '%s\n' "$out"
    if [ "${words[0]}" = misuse-isr ]; then
        # Must stop with exit code 1 and a message naming the call.
        if [ $rc -eq 1 ] && grep -q "uasyncio_queue_create called from an interrupt handler" <<<"$out"; then ok=1; else ok=0; fi
    else
        if [ $rc -eq 0 ]; then ok=1; else ok=0; fi
    fi
    if [ $ok -eq 1 ]; then passed=$((passed + 1)); echo "--- $p: ok"; else failed=$((failed + 1)); echo "--- $p: FAILED (exit $rc)"; fi
done
echo
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
