#!/usr/bin/env bash
# Runs every test suite of the project, after installing what is missing (scripts/setup.sh).
# Prints one line per suite and, at the end, "suites: N passed, N failed"; exits non-zero if
# any suite failed. The whole run takes about 16 minutes on 2 cores (fresh clone).
#
#   bash scripts/test-all.sh            # everything
#   bash scripts/test-all.sh quick      # every suite but loom, Miri, ThreadSanitizer and the fuzz smoke
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
suite "fmt (every workspace)" bash scripts/fmt-check.sh
suite "clippy" cargo clippy --workspace --all-targets -- -D warnings
# ... and on the no_std feature sets and Cortex-M targets the line above never builds, and on
# the crates that are workspaces of their own.
suite "clippy: no_std ports, C API, net and cellular on Cortex-M; standalone crates" bash scripts/clippy-targets.sh
# API and internal docs: every intra-doc link resolves (private items too, where the
# module docs argue the unsafe code), with warnings as errors.
# The runtime's docs once more without feature `stats` (their links must not lean on it).
suite "rustdoc links" env RUSTDOCFLAGS="-D warnings" sh -c 'cargo doc --workspace --no-deps --document-private-items &&
    cargo doc -p uasyncio --no-deps --document-private-items --no-default-features --features std --target-dir target/doc-nostats'
# The C headers (C API, FreeRTOS port, Zephyr shim, serial) agree with the Rust declarations.
suite "C headers vs Rust (cbindgen, extern blocks)" bash scripts/check-headers.sh

# The runtime: unit tests, doc tests, and the MicroPython conformance suite on the std port.
suite "runtime + conformance (std port)" cargo test --workspace
# The C API on the host (feature `ffi`, which the line above leaves off): the loop thread's
# start and end (Zephyr's boot-time thread too), the task dump, the error text a failed run
# leaves for C.
suite "C API on the host (feature ffi)" sh -c 'cargo test -p uasyncio --features ffi --test ffi_start --test ffi_dump --test ffi_boot && cargo test -p uasyncio --features ffi --doc ffi'
# The README's network example on the in-memory link, then the echo_server sample on a TAP in a
# namespace it makes, against a Python asyncio client (the network suites themselves run in
# `cargo test --workspace` above).
suite "net: pair_echo example, echo_server sample over TAP" bash scripts/net-echo-sample.sh
# The runtime without its counters and traces (feature `stats` off, as in a firmware that
# does not ask for it): the same unit, integration and doc tests but those that read them.
suite "runtime without feature stats (std port)" cargo test -p uasyncio --no-default-features --features std
# Stress at full size, in release: 100k tasks, 10k sleepers, 1M cross-thread wakes,
# 4 threads setting at once, cancel storms, with a leak check.
suite "stress (release)" cargo test --release -p uasyncio --test stress
# The rtos-trace hooks (off by default) as a tracer sees them.
suite "rtos-trace hooks" cargo test -p uasyncio --features rtos-trace --test rtos_trace
# The task dump typed into gdb at a breakpoint (C API uasyncio_log_tasks).
suite "task dump from gdb" bash scripts/gdb-task-dump.sh
# The no_std build of the runtime (FreeRTOS port + C API) stays buildable for Cortex-M3.
suite "no_std build (thumbv7m, freertos + ffi)" cargo build -p uasyncio --no-default-features --features freertos,ffi --target thumbv7m-none-eabi
suite "no_std build (thumbv7m, zephyr)" cargo check -p uasyncio --no-default-features --features zephyr --target thumbv7m-none-eabi
# The cellular stack (serial ring, AT, modem, supervisor, PPP over smoltcp, TLS) without std.
suite "no_std build (thumbv7m, cellular + net + ppp + tls)" cargo build -p cellular --no-default-features \
    --features tls,uasyncio/freertos --target thumbv7m-none-eabi
# Cortex-M0/M0+ (Armv6-M: no atomic swap): the runtime through portable-atomic.
suite "no_std build (thumbv6m, freertos + ffi)" cargo build -p uasyncio --no-default-features --features freertos,ffi --target thumbv6m-none-eabi
# Zephyr: the module's samples and tests on native_sim, qemu_cortex_m3 and mps2_an385 need a
# Zephyr tree, which no package registry carries: without ZEPHYR_BASE this says so and skips.
# The port's Rust logic (clock, timeouts, priorities) is tested on the host by `cargo test`.
suite "zephyr (skips without ZEPHYR_BASE)" bash scripts/zephyr-test.sh
# Benchmarks build, lint, and run a tiny smoke pass of every workload (no speed judged).
suite "benchmarks: lint + smoke" bash scripts/bench-check.sh
# The real FreeRTOS kernel (V11.2.0): the POSIX simulator port on the host (shims, flag from
# the tick interrupt and from tasks of other priorities, the C API, the conformance suite,
# one scheduler per process), and QEMU mps2-an385 (Cortex-M3) firmware built through the
# CMake component (conformance, 10,000 timer interrupts, a legacy C task, the C API).
suite "freertos: posix port" bash scripts/freertos-posix.sh
suite "freertos: qemu mps2-an385" bash scripts/freertos-qemu.sh
# The template firmware, copied outside the repository and built exactly as
# ports/freertos/README.md says: POSIX simulator, mps2-an385 (Cortex-M3), microbit (Cortex-M0).
suite "freertos: template app outside the repo" bash scripts/freertos-template.sh
# An application built on freertos-rust (its kernel build, tasks, InterruptContext) adding uasyncio.
suite "freertos: freertos-rust sample (mps2-an385)" bash scripts/freertos-rust-sample.sh
# The cellular path end to end: the modem simulator (AT dialogue, PPP network side, TUN in a
# namespace with TCP/TLS echo servers and DNS), then the sample on the host over a pty — normal,
# TLS, and every fault (no SIM, denied, silent modem, lost LCP frames, passive peer, NO CARRIER
# mid-transfer, garbage, URC storms, LCP never opening) — and the same application as FreeRTOS
# firmware on QEMU mps2-an385 with the modem on UART0.
suite "cellular: host sample vs modem simulator" bash scripts/cellular-host.sh
suite "cellular: FreeRTOS firmware on QEMU vs modem simulator" bash scripts/cellular-qemu.sh

if [ "$mode" != quick ]; then
    # loom: the cross-context wake path and the flag's waiter slot, model-checked.
    suite "loom" env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo test -p uasyncio -p uasyncio-cellular --lib --release loom_
    # The loom models and the code they build under `--cfg loom`, linted as the rest is.
    suite "clippy (--cfg loom)" env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
        cargo clippy -p uasyncio -p uasyncio-cellular --all-targets -- -D warnings
    # Miri over the unsafe task code: the runtime's unit tests and the whole conformance suite
    # (spawn, wake, cancel, finish, reset, handles, gather, a flag set from another thread).
    # The stress tests are left to ThreadSanitizer: under Miri they take hours.
    miri() {
        export MIRIFLAGS="-Zmiri-disable-isolation"
        cargo +nightly miri test -p uasyncio --lib && cargo +nightly miri test -p uasyncio-conformance --test host &&
            cargo +nightly miri test -p uasyncio-cellular --lib --features std
    }
    suite "miri" miri
    # ThreadSanitizer over the threaded stress tests (smaller sizes: TSan is ~10x slower).
    suite "thread sanitizer" env RUSTFLAGS="-Zsanitizer=thread" STRESS_SCALE=20 CARGO_TARGET_DIR=target/tsan \
        cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu -p uasyncio --test stress
    # A short pass of every fuzz target from its corpus (fuzz/README.md has the invariants).
    suite "fuzz smoke" bash scripts/fuzz-smoke.sh 20
fi

printf '\nsuites: %d passed, %d failed\n' "$passed" "$failed"
if [ "$failed" -ne 0 ]; then
    printf 'failed: %s\n' "${failed_names[*]}"
    exit 1
fi
