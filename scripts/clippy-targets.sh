#!/usr/bin/env bash
# clippy with warnings as errors on the feature sets and targets `cargo clippy --workspace`
# (host, default features) never builds: the no_std ports (FreeRTOS, Zephyr), the C API, the
# network and cellular crates without std, on Cortex-M3 (thumbv7m) and Cortex-M0 (thumbv6m),
# the host crates with every feature on, and the crates that are workspaces of their own
# (firmware, samples, template, test and bench crates). Every `unsafe` block is linted in one
# of these.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
check() { # check <target> <cargo args...>
    local target=$1
    shift
    if cargo clippy -q "$@" ${target:+--target "$target"} -- -D warnings; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: clippy $* ${target:+--target $target}"
    fi
}

m3=thumbv7m-none-eabi
m0=thumbv6m-none-eabi
check $m3 -p uasyncio --no-default-features --features freertos,ffi
check $m0 -p uasyncio --no-default-features --features freertos,ffi
check $m3 -p uasyncio --no-default-features --features zephyr,ffi
check $m3 -p uasyncio --no-default-features --features freertos,rtos-trace
check $m3 -p uasyncio --no-default-features --features freertos,stats
check $m3 -p rtos-shims --no-default-features --features freertos,global-allocator,panic-handler
check $m3 -p uasyncio-net --no-default-features --features ppp,tls,uasyncio/freertos
check $m3 -p uasyncio-cellular --no-default-features --features ffi,uasyncio/freertos
check $m3 -p cellular --no-default-features --features tls,uasyncio/freertos
# The flash-size images (their own workspaces, one target directory for the four;
# `scripts/cortexm-sizes.sh` builds them), the network one with both of its optional parts.
sizes_dir="${CARGO_TARGET_DIR:-$PWD/target}/size-lint"
for img in base core sync; do
    check $m3 --manifest-path "bench/cortex-m/size-$img/Cargo.toml" --target-dir "$sizes_dir"
done
check $m3 --manifest-path bench/cortex-m/size-net/Cargo.toml --target-dir "$sizes_dir" --features tls,ppp
# The crates that are workspaces of their own (firmware, samples, the template, test and bench
# crates), which the root `cargo clippy --workspace` does not reach, each on its own target.
# The Zephyr ones need a Zephyr tree (zephyr-sys) and are built by scripts/zephyr-test.sh.
ws_dir="${CARGO_TARGET_DIR:-$PWD/target}/ws-lint"
check $m3 --manifest-path firmware/mps2-an385/rust/Cargo.toml --target-dir "$ws_dir" --all-features
check $m3 --manifest-path samples/cellular/freertos-mps2/rust/Cargo.toml --target-dir "$ws_dir" --all-features
check $m3 --manifest-path templates/freertos-app/rust/Cargo.toml --target-dir "$ws_dir"
check $m0 --manifest-path templates/freertos-app/rust/Cargo.toml --target-dir "$ws_dir"
check $m3 --manifest-path bench/cortex-m/embassy-mps2/Cargo.toml --target-dir "$ws_dir"
check "" --manifest-path tests/freertos-posix/Cargo.toml --target-dir "$ws_dir" --all-targets --all-features
check "" --manifest-path net/bench/Cargo.toml --target-dir "$ws_dir" --all-targets
check "" --manifest-path fuzz/Cargo.toml --target-dir "$ws_dir" --all-targets
# The freertos-rust sample's build script compiles the kernel: the one freertos-next brings,
# as scripts/freertos-rust-sample.sh finds it.
FREERTOS_SRC="$(cargo metadata --format-version 1 --manifest-path tests/freertos-posix/Cargo.toml 2>/dev/null |
    python3 -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="freertos-next") + "/FreeRTOS-Kernel")')"
FREERTOS_SRC="$FREERTOS_SRC" check $m3 --manifest-path samples/freertos-rust/Cargo.toml --target-dir "$ws_dir"
check "" -p uasyncio --all-targets --features ffi,diagnostics
check "" -p uasyncio --all-targets --features rtos-trace
check "" -p uasyncio --all-targets --no-default-features --features std
check "" -p uasyncio-net --all-targets --all-features
check "" -p uasyncio-cellular --all-targets --all-features

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
