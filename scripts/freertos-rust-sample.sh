#!/usr/bin/env bash
# samples/freertos-rust: a freertos-rust application (its kernel build, Task, Queue,
# InterruptContext, CriticalRegion, allocator) that adds uasyncio, on QEMU mps2-an385.
#   run          build with cargo (FREERTOS_SRC = the V11.2.0 kernel from the freertos-next
#                crate) and boot it: request/reply rounds between a freertos-rust task and a
#                uasyncio task, an ISR with InterruptContext setting a ThreadSafeFlag, index-0
#                notifications on the loop task that uasyncio (index 1) must not notice
#   index-check  the same build with -DUASYNCIO_NOTIFY_INDEX=0 must stop at compile time
#                (freertos-rust owns notification index 0)
# Ends with "N passed, N failed". Usage: scripts/freertos-rust-sample.sh [run] [index-check]
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SAMPLE="$ROOT/samples/freertos-rust"
TGT="${FREERTOS_TARGET_DIR:-$ROOT/target/freertos}/freertos-rust"

# The kernel sources: the freertos-next crate's copy (cargo downloads it if needed).
FREERTOS_SRC="$(cargo metadata --format-version 1 --manifest-path "$ROOT/tests/freertos-posix/Cargo.toml" 2>/dev/null |
    python3 -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="freertos-next") + "/FreeRTOS-Kernel")')"
[ -f "$FREERTOS_SRC/tasks.c" ] || { echo "FreeRTOS kernel not found (got '$FREERTOS_SRC')"; exit 1; }
export FREERTOS_SRC

cases=("$@")
[ "${#cases[@]}" -gt 0 ] || cases=(run index-check)
passed=0; failed=0
result() { if [ "$2" = 1 ]; then passed=$((passed + 1)); echo "--- $1: ok"; else failed=$((failed + 1)); echo "--- $1: FAILED"; fi; }
cd "$SAMPLE" || exit 1
for c in "${cases[@]}"; do
    echo "=== $c"
    case "$c" in
    run)
        if ! CARGO_TARGET_DIR="$TGT" timeout 1800 nice cargo build --release; then result run 0; continue; fi
        arm-none-eabi-size "$TGT/thumbv7m-none-eabi/release/uasyncio-freertos-rust-sample" | tail -1 |
            awk '{print "size: text " $1 ", data " $2 ", bss " $3 " (bss includes the 256 KiB FreeRTOS heap)"}'
        out="$(CARGO_TARGET_DIR="$TGT" timeout 600 cargo run --release 2>&1)"; rc=$?
        printf '%s\n' "$out" | grep "^sample:"
        ok=1
        [ $rc -eq 0 ] || ok=0
        for want in "sample: 10 request/reply rounds between a freertos-rust task and a uasyncio task" \
                    "sample: 20 ThreadSafeFlag wakes from the InterruptContext ISR" "sample: PASS"; do
            grep -qF "$want" <<<"$out" || { echo "missing: $want"; ok=0; }
        done
        result "run (exit code $rc)" $ok
        ;;
    index-check)
        log="$(mktemp)"
        if CFLAGS_thumbv7m_none_eabi="-DUASYNCIO_NOTIFY_INDEX=0" CARGO_TARGET_DIR="$TGT-index" \
               timeout 1800 nice cargo build --release >"$log" 2>&1; then
            echo "the build with UASYNCIO_NOTIFY_INDEX=0 succeeded"; result index-check 0
        elif grep -m1 -F "UASYNCIO_NOTIFY_INDEX is below UASYNCIO_NOTIFY_INDEX_MIN" "$log"; then
            result "index-check: refused at compile time" 1
        else
            tail -20 "$log"; result index-check 0
        fi
        rm -f "$log"
        ;;
    *) echo "unknown case '$c' (run, index-check)"; result "$c" 0 ;;
    esac
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
