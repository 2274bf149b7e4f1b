#!/usr/bin/env bash
# Instruction counts on Cortex-M3 (QEMU mps2-an385, -icount shift=7: 128 ns of virtual time
# per instruction, timer0 at 25 MHz, so one instruction is 3.2 timer ticks): from the timer0
# interrupt firing to the waiting task running again. Raw FreeRTOS first, then through
# rtos-shims, then through uasyncio's ThreadSafeFlag set from the C ISR. Then uasyncio's own
# costs, clocked by free-running timer1 (median of 201 short batches): a task switch (two
# tasks looping on sleep_ms(0)) and a spawn + complete (create_task(trivial).await). Then,
# unless FREERTOS_BENCH_EMBASSY=0, the same three costs on embassy-executor's Cortex-M
# executor, bare metal (scripts/cortexm-bench.sh), in a table beside ours. Then uasyncio's
# four rows again from a build with the loop's counters (feature `stats`, which a firmware
# asks for; the first build has none). Then sizes (of the first build: runtime, C API, board
# programs).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${FREERTOS_TARGET_DIR:-$ROOT/target/freertos}/mps2-an385-min"
ELF="$BUILD/fw.elf"
SHIFT=7

timeout 600 cmake -S "$ROOT/firmware/mps2-an385" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFW_FEATURES= >/dev/null || exit 1
if ! timeout 1800 cmake --build "$BUILD" -j2 >"$BUILD/build.log" 2>&1; then
    tail -n 40 "$BUILD/build.log"
    echo "freertos-bench: the firmware build failed (whole log: $BUILD/build.log)"
    exit 1
fi

median() { sed -n 's/.* median \([0-9]*\) .*/\1/p'; }
declare -A med
# run <elf> <program>: prints its report lines, sets med[<program>] (exits on a failure, with
# the program's output on stderr).
run() {
    out="$(timeout 300 qemu-system-arm -M mps2-an385 -nographic -monitor none -serial stdio \
        -semihosting-config "enable=on,target=native,arg=fw,arg=$2,arg=shift=$SHIFT" \
        -icount shift=$SHIFT -kernel "$1" </dev/null 2>&1)" || { echo "$2 failed" >&2; printf '%s\n' "$out" >&2; exit 1; }
    grep '^report:' <<<"$out"
    med[$2]="$(grep '^report:' <<<"$out" | median)"
}
for p in raw-sem raw-notify shim-sem shim-notify bench-flag bench-yield bench-yield-timer bench-spawn; do
    run "$ELF" "$p"
done
echo
awk -v f="${med[bench-flag]}" -v s="${med[raw-sem]}" -v n="${med[raw-notify]}" 'BEGIN {
    printf "ThreadSafeFlag (ISR -> awaiting task): %d instructions = %.2fx raw FreeRTOS semaphore (%d), %.2fx raw task notification (%d)\n", f, f / s, s, f / n, n }'
echo "uasyncio task switch (sleep_ms(0), 2 tasks): ${med[bench-yield]} instructions per switch"
echo "uasyncio task switch with a timer pending (a third task asleep): ${med[bench-yield-timer]} instructions per switch"
echo "uasyncio spawn + complete (create_task(trivial).await): ${med[bench-spawn]} instructions per task"

# The embassy column (bench/cortex-m/embassy-mps2, bare metal) and the side-by-side table;
# FREERTOS_BENCH_EMBASSY=0 skips it.
status=0
if [ "${FREERTOS_BENCH_EMBASSY:-1}" != 0 ]; then
    echo
    "$ROOT/scripts/cortexm-bench.sh" "${med[bench-yield]}" "${med[bench-spawn]}" "${med[bench-flag]}" "${med[raw-sem]}" || status=1
fi

# The same rows with the loop's counters (feature `stats`).
STATS_BUILD="$BUILD-stats"
timeout 600 cmake -S "$ROOT/firmware/mps2-an385" -B "$STATS_BUILD" -DCMAKE_BUILD_TYPE=Release -DFW_FEATURES=stats >/dev/null || exit 1
if ! timeout 1800 cmake --build "$STATS_BUILD" -j2 >"$STATS_BUILD/build.log" 2>&1; then
    tail -n 40 "$STATS_BUILD/build.log"
    echo "freertos-bench: the firmware build with stats failed (whole log: $STATS_BUILD/build.log)"
    exit 1
fi
echo
echo "with the loop's counters (uasyncio feature \`stats\`):"
declare -A plain
for p in bench-flag bench-yield bench-yield-timer bench-spawn; do plain[$p]="${med[$p]}"; done
for p in bench-flag bench-yield bench-yield-timer bench-spawn; do
    run "$STATS_BUILD/fw.elf" "$p" >/dev/null
    printf '  %-18s %5s instructions (%s without)\n' "$p" "${med[$p]}" "${plain[$p]}"
done

echo
echo "sizes (arm-none-eabi-size, Berkeley):"
arm-none-eabi-size "$ELF"
# The Rust part as linked: input sections taken from the Rust static library (from the map;
# only below "Linker script and memory map": the list above it is of the sections
# --gc-sections discarded, which are not in the image).
awk '
    function hex(s,   i, c, v) { v = 0; s = tolower(substr(s, 3)); for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c } return v }
    function add(sec, size) { tot[sec ~ /bss/ ? "bss" : (sec ~ /^\.data/ ? "data" : "text")] += hex(size) }
    /^Linker script and memory map/ { linked = 1 }
    !linked { next }
    /^ \.(text|rodata|data|bss)[^ ]* +0x[0-9a-f]+ +0x[0-9a-f]+ .*libuasyncio_fw_mps2\.a/ { add($1, $3); next }
    /^ \.(text|rodata|data|bss)[^ ]*$/ { sec = $1; if ((getline line) > 0 && line ~ /libuasyncio_fw_mps2\.a/) { split(line, f, " "); add(sec, f[2]) } }
    END { printf "Rust part (libuasyncio_fw_mps2.a, linked): text+rodata %d, data %d, bss %d bytes\n", tot["text"], tot["data"], tot["bss"] }
' "$BUILD/fw.map"
exit $status
