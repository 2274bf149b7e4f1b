#!/usr/bin/env bash
# uasyncio on the real FreeRTOS kernel (V11.2.0, POSIX simulator port) on this host:
#   shims        rtos-shims' freertos port (semaphores, tick ISR, clock, heap, tasks, misuse)
#   flag         ThreadSafeFlag from the tick hook (10,000 sets) and from tasks, the C API queue
#   conformance  the whole tests/conformance suite
# Each case runs in its own process (one FreeRTOS scheduler per process); every binary ends
# with "N passed, N failed". Usage: scripts/freertos-posix.sh [shims|flag|conformance]...
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${FREERTOS_TARGET_DIR:-$ROOT/target/freertos}"
tests=("$@")
[ "${#tests[@]}" -gt 0 ] || tests=(shims flag conformance)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
cd "$ROOT/tests/freertos-posix"
timeout 2400 cargo test --release --no-fail-fast --features conformance "${args[@]}"
