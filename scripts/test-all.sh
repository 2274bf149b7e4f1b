#!/usr/bin/env bash
# Runs every test suite of the project, after installing what is missing (scripts/setup.sh).
# Prints one line per suite and, at the end, "suites: N passed, N failed"; exits non-zero if
# any suite failed. The whole run takes well under 30 minutes on 2 cores.
#
#   bash scripts/test-all.sh            # everything
#   bash scripts/test-all.sh quick      # lint + host tests only (no Miri, sanitizer, QEMU)
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-full}

bash scripts/setup.sh || { echo "setup failed"; exit 1; }

passed=0
failed=0
failed_names=()
suite() {
    local name=$1
    shift
    local start=$SECONDS
    printf '\n==== %s\n' "$name"
    if "$@"; then
        passed=$((passed + 1))
        printf '==== %s: ok (%ss)\n' "$name" $((SECONDS - start))
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        printf '==== %s: FAILED (%ss)\n' "$name" $((SECONDS - start))
    fi
}

# Lint: formatting and clippy with warnings as errors, on every crate and target.
suite "fmt" cargo fmt --all -- --check
suite "clippy" cargo clippy --workspace --all-targets -- -D warnings

# The runtime: unit tests, doc tests, and the MicroPython conformance suite on the std port.
suite "runtime + conformance (std port)" cargo test --workspace
# Stress at full size, in release: 100k tasks, 10k sleepers, 1M cross-thread wakes,
# 4 threads setting at once, cancel storms, with a leak check.
suite "stress (release)" cargo test --release -p uasyncio --test stress
# The no_std build of the runtime stays buildable for Cortex-M.
suite "no_std build check" cargo check -p uasyncio --no-default-features --features freertos --target thumbv7m-none-eabi

if [ "$mode" != quick ]; then
    # loom: the cross-context wake path and the flag's waker slot, model-checked.
    suite "loom" env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo test -p uasyncio --lib --release loom_
    # Miri over the unsafe task code: the runtime's unit and doc tests and the conformance suite.
    suite "miri" env MIRIFLAGS="-Zmiri-disable-isolation" \
        cargo +nightly miri test -p uasyncio -p uasyncio-conformance
    # ThreadSanitizer over the threaded stress tests (smaller sizes: TSan is ~10x slower).
    suite "thread sanitizer" env RUSTFLAGS="-Zsanitizer=thread" STRESS_SCALE=20 CARGO_TARGET_DIR=target/tsan \
        cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu -p uasyncio --test stress
fi

printf '\nsuites: %d passed, %d failed\n' "$passed" "$failed"
if [ "$failed" -ne 0 ]; then
    printf 'failed: %s\n' "${failed_names[*]}"
    exit 1
fi
