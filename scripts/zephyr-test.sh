#!/usr/bin/env bash
# Builds and runs this module's Zephyr samples and tests (samples/zephyr/*, tests/zephyr/*):
# on native_sim 64-bit, and on qemu_cortex_m3 (QEMU lm3s6965evb) when the Arm toolchain and
# QEMU are installed. Checks each app's expected console lines (sample.yaml/testcase.yaml
# `harness_config.regex`, in order) and, for tests, the exit status. Prints the size of the
# Rust part and of the C shim of every image, read from the linker map.
#
# Needs a Zephyr tree (>= 3.4) with its Python requirements; this script never fetches one.
#
# Environment:
#   ZEPHYR_BASE              the Zephyr tree. Unset: the script prints a skip line and exits 0.
#   UASYNCIO_ZEPHYR_BOARDS   boards, space-separated (default: native_sim 64-bit, plus
#                            qemu_cortex_m3 and mps2_an385 when arm-none-eabi-gcc and
#                            qemu-system-arm exist). An app runs only on the boards of its
#                            yaml's platform_allow.
#   UASYNCIO_ZEPHYR_MODULES  extra Zephyr modules, ';'-separated; Cortex-M boards need CMSIS
#                            (a checkout of zephyrproject-rtos/cmsis)
#   UASYNCIO_ZEPHYR_APPS     apps to run, space-separated paths relative to the repository
#                            (default: all samples/zephyr/* and tests/zephyr/* apps)
#   UASYNCIO_ZEPHYR_BUILD    build root (default: <repo>/build/zephyr)
#   CARGO_TARGET_DIR         shared cargo target directory (default: one per build)
#
# Exit status: 0 when every app built and ran as expected.
set -euo pipefail

if [ -z "${ZEPHYR_BASE:-}" ]; then
    echo "zephyr: skipped (ZEPHYR_BASE is unset; see README.md, section Zephyr)"
    exit 0
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_root="${UASYNCIO_ZEPHYR_BUILD:-$repo/build/zephyr}"
modules="$repo${UASYNCIO_ZEPHYR_MODULES:+;$UASYNCIO_ZEPHYR_MODULES}"

# Board names changed with hardware model v2 (Zephyr 3.7): native_sim_64 -> native_sim/native/64.
major=$(tr -d '\r' < "$ZEPHYR_BASE/VERSION" | sed -n 's/^VERSION_MAJOR *= *//p')
minor=$(tr -d '\r' < "$ZEPHYR_BASE/VERSION" | sed -n 's/^VERSION_MINOR *= *//p')
if [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 7 ]; }; then
    native_board="native_sim/native/64"
else
    native_board="native_sim_64"
fi
if [ -z "${UASYNCIO_ZEPHYR_BOARDS:-}" ]; then
    UASYNCIO_ZEPHYR_BOARDS="$native_board"
    if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null; then
        UASYNCIO_ZEPHYR_BOARDS="$UASYNCIO_ZEPHYR_BOARDS qemu_cortex_m3 mps2_an385"
    fi
fi
if [ -z "${UASYNCIO_ZEPHYR_APPS:-}" ]; then
    UASYNCIO_ZEPHYR_APPS=""
    for d in "$repo"/samples/zephyr/*/ "$repo"/tests/zephyr/*/; do
        if [ -f "$d/sample.yaml" ] || [ -f "$d/testcase.yaml" ]; then
            UASYNCIO_ZEPHYR_APPS="$UASYNCIO_ZEPHYR_APPS ${d#"$repo"/}"
        fi
    done
fi

version="$(tr -d '\r' < "$ZEPHYR_BASE/VERSION" | sed -n 's/^\(VERSION_MAJOR\|VERSION_MINOR\|PATCHLEVEL\) *= *//p' | paste -sd.)"
echo "zephyr: $version at $ZEPHYR_BASE"
echo "zephyr: boards: $UASYNCIO_ZEPHYR_BOARDS"

passed=0
failed=0
skipped=0
failures=""
for board in $UASYNCIO_ZEPHYR_BOARDS; do
    # QEMU boards: semihosting lets a test end QEMU with its exit status (twister, which stops
    # QEMU itself once the expected line appeared, builds without it).
    extra=(-DCONFIG_SEMIHOST=y)
    case "$board" in
        native_sim*|native_posix*)
            extra=()
            toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=host) ;;
        *)
            if [ -n "${ZEPHYR_SDK_INSTALL_DIR:-}" ]; then
                toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=zephyr)
            else
                gcc_path="$(command -v arm-none-eabi-gcc)"
                toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb "GNUARMEMB_TOOLCHAIN_PATH=$(dirname "$(dirname "$gcc_path")")")
            fi ;;
    esac
    for app in $UASYNCIO_ZEPHYR_APPS; do
        app="${app%/}"
        name="$(basename "$app")"
        if ! python3 "$repo/scripts/zephyr-run.py" --check-platform --board "$board" --app "$repo/$app" --build none; then
            echo "zephyr: [$board] $app: skipped (not in its platform_allow)"
            skipped=$((skipped + 1))
            continue
        fi
        # One build per test entry of the yaml that runs on this board (its extra_args become
        # CMake cache entries, as with twister): e.g. the conformance suite in two halves on
        # qemu_cortex_m3, whose flash cannot hold all of it.
        for variant in $(python3 "$repo/scripts/zephyr-run.py" --variants --board "$board" --app "$repo/$app" --build none); do
        vargs=()
        suffix=""
        if [ "$variant" != "-" ]; then
            for kv in ${variant//,/ }; do vargs+=("-D$kv"); done
            suffix="-${variant##*=}"
        fi
        bdir="$build_root/${board//\//_}/$name$suffix"
        log="$bdir.log"
        mkdir -p "$(dirname "$bdir")"
        echo "zephyr: [$board] $app$suffix: building"
        if ! env "${toolchain[@]}" cmake -G Ninja -S "$repo/$app" -B "$bdir" -DBOARD="$board" \
                "-DZEPHYR_MODULES=$modules" ${extra[@]+"${extra[@]}"} ${vargs[@]+"${vargs[@]}"} >"$log" 2>&1 \
            || ! env "${toolchain[@]}" cmake --build "$bdir" >>"$log" 2>&1; then
            tail -n 30 "$log"
            echo "zephyr: [$board] $app$suffix: BUILD FAILED (log: $log)"
            failed=$((failed + 1)); failures="$failures $board:$app$suffix(build)"
            continue
        fi
        if python3 "$repo/scripts/zephyr-run.py" --board "$board" --app "$repo/$app" --build "$bdir"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1)); failures="$failures $board:$app$suffix"
        fi
        done
    done
done

[ -z "$failures" ] || echo "zephyr: failed:$failures"
echo "zephyr: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
