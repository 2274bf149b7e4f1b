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
#                            qemu-system-arm exist), under the names of the tree's version:
#                            3.x native_sim_64 / mps2_an385, 4.x native_sim/native/64 /
#                            mps2/an385. An app whose yaml does not allow a board FAILS the
#                            run (nothing is skipped silently).
#   UASYNCIO_ZEPHYR_MODULES  extra Zephyr modules, ';'-separated; Cortex-M boards need CMSIS
#                            (a checkout of zephyrproject-rtos/cmsis)
#   UASYNCIO_ZEPHYR_APPS     apps to run, space-separated paths relative to the repository
#                            (default: all samples/zephyr/* and tests/zephyr/* apps, then
#                            the README's app built out of tree; the word README in the
#                            list selects that one)
#   UASYNCIO_ZEPHYR_BUILD    build root (default: <repo>/build/zephyr)
#   UASYNCIO_ZEPHYR_CMAKE_ARGS extra CMake arguments for every build, space-separated, e.g.
#                            -DCONFIG_UASYNCIO_RAM_REPORT=y (each app then prints its loop
#                            thread's stack high-water mark and heap peak)
#   UASYNCIO_ZEPHYR_LANG_RUST a zephyr-lang-rust checkout (Zephyr 4.0: its v4.0-branch, with
#                            libclang for bindgen, BINDGEN_EXTRA_CLANG_ARGS if needed): the
#                            CONFIG_RUST=y apps (samples/zephyr/lang_rust) are built with it on
#                            the Arm boards. Unset: they are listed as not built.
#   CARGO_TARGET_DIR         shared cargo target directory (default: one per build)
#
# Exit status: 0 when every app built and ran as expected on every board (or ZEPHYR_BASE is
# unset); 1 when any build, run, or board name failed.
set -euo pipefail

if [ -z "${ZEPHYR_BASE:-}" ]; then
    echo "zephyr: skipped (ZEPHYR_BASE is unset; see README.md, section Zephyr)"
    exit 0
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_root="${UASYNCIO_ZEPHYR_BUILD:-$repo/build/zephyr}"
modules="$repo${UASYNCIO_ZEPHYR_MODULES:+;$UASYNCIO_ZEPHYR_MODULES}"

# Board names changed with hardware model v2 (Zephyr 3.7): native_sim_64 -> native_sim/native/64,
# mps2_an385 -> mps2/an385. Each version is tested under its own names (4.x still accepts the
# old ones with a deprecation warning, which would hide a yaml that lacks the new name).
major=$(tr -d '\r' < "$ZEPHYR_BASE/VERSION" | sed -n 's/^VERSION_MAJOR *= *//p')
minor=$(tr -d '\r' < "$ZEPHYR_BASE/VERSION" | sed -n 's/^VERSION_MINOR *= *//p')
if [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 7 ]; }; then
    native_board="native_sim/native/64"
    mps2_board="mps2/an385"
else
    native_board="native_sim_64"
    mps2_board="mps2_an385"
fi
if [ -z "${UASYNCIO_ZEPHYR_BOARDS:-}" ]; then
    UASYNCIO_ZEPHYR_BOARDS="$native_board"
    if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null; then
        UASYNCIO_ZEPHYR_BOARDS="$UASYNCIO_ZEPHYR_BOARDS qemu_cortex_m3 $mps2_board"
    fi
fi
# The README's app, built out of tree, runs with the default app list or when the list names
# README.
given_apps="${UASYNCIO_ZEPHYR_APPS:-}"
case " ${given_apps:-README} " in *" README "*) run_readme=1 ;; *) run_readme=0 ;; esac
UASYNCIO_ZEPHYR_APPS=""
lang_rust_apps=""
for app in $given_apps; do
    if [ "$app" = README ]; then
        continue
    elif grep -qs '^CONFIG_RUST=y' "$repo/$app/prj.conf"; then
        lang_rust_apps="$lang_rust_apps $app"
    else
        UASYNCIO_ZEPHYR_APPS="$UASYNCIO_ZEPHYR_APPS $app"
    fi
done
if [ -z "$given_apps" ]; then
    for d in "$repo"/samples/zephyr/*/ "$repo"/tests/zephyr/*/; do
        if grep -qs '^CONFIG_RUST=y' "$d/prj.conf"; then
            # zephyr-lang-rust apps: built below, when a zephyr-lang-rust checkout is given.
            lang_rust_apps="$lang_rust_apps ${d#"$repo"/}"
        elif [ -f "$d/sample.yaml" ] || [ -f "$d/testcase.yaml" ]; then
            UASYNCIO_ZEPHYR_APPS="$UASYNCIO_ZEPHYR_APPS ${d#"$repo"/}"
        fi
    done
fi

version="$(tr -d '\r' < "$ZEPHYR_BASE/VERSION" | sed -n 's/^\(VERSION_MAJOR\|VERSION_MINOR\|PATCHLEVEL\) *= *//p' | paste -sd.)"
echo "zephyr: $version at $ZEPHYR_BASE"
echo "zephyr: boards: $UASYNCIO_ZEPHYR_BOARDS"

passed=0
failed=0
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
            # Every app is meant for every board this script runs: a skip means a yaml lacks a
            # board name (e.g. the 4.x spelling), so it fails the run instead of hiding it.
            echo "zephyr: [$board] $app: FAILED: '$board' is not in its platform_allow (add it to its yaml)"
            failed=$((failed + 1)); failures="$failures $board:$app(platform_allow)"
            continue
        fi
        # One build per test entry of the yaml that runs on this board (its extra_args become
        # CMake cache entries, as with twister): e.g. the conformance suite in two halves on
        # qemu_cortex_m3, whose flash cannot hold all of it.
        variants="$(python3 "$repo/scripts/zephyr-run.py" --variants --board "$board" --app "$repo/$app" --build none)"
        if [ -z "$variants" ]; then
            echo "zephyr: [$board] $app: FAILED: no test entry of its yaml runs on '$board'"
            failed=$((failed + 1)); failures="$failures $board:$app(no-variant)"
            continue
        fi
        for variant in $variants; do
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
                "-DZEPHYR_MODULES=$modules" ${extra[@]+"${extra[@]}"} ${vargs[@]+"${vargs[@]}"} ${UASYNCIO_ZEPHYR_CMAKE_ARGS:-} >"$log" 2>&1 \
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

# The application of README.md (section Zephyr), samples/zephyr/hello, built out of tree the
# way the README says: copied into a folder of its own, its Cargo.toml pointing at this
# module's component/, configured with plain CMake and -DZEPHYR_MODULES.
readme_root="$build_root/readme"
[ "$run_readme" = 1 ] && UASYNCIO_ZEPHYR_README_BOARDS="$UASYNCIO_ZEPHYR_BOARDS" || UASYNCIO_ZEPHYR_README_BOARDS=""
rm -rf "$readme_root"
mkdir -p "$readme_root"
cp -r "$repo/samples/zephyr/hello" "$readme_root/hello"
sed -i "s#path = \"../../../component\"#path = \"$repo/component\"#" "$readme_root/hello/Cargo.toml"
for board in $UASYNCIO_ZEPHYR_README_BOARDS; do
    bdir="$readme_root/build-${board//\//_}"
    log="$bdir.log"
    case "$board" in
        native_sim*)
            cmd=(env ZEPHYR_TOOLCHAIN_VARIANT=host cmake -G Ninja -S hello -B "$bdir" "-DBOARD=$board"
                 "-DZEPHYR_MODULES=$repo") ;;
        *)
            if [ -n "${ZEPHYR_SDK_INSTALL_DIR:-}" ]; then
                cmd=(cmake -G Ninja -S hello -B "$bdir" "-DBOARD=$board" "-DZEPHYR_MODULES=$modules")
            else
                gcc_path="$(command -v arm-none-eabi-gcc)"
                cmd=(env ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb "GNUARMEMB_TOOLCHAIN_PATH=$(dirname "$(dirname "$gcc_path")")"
                     cmake -G Ninja -S hello -B "$bdir" "-DBOARD=$board" "-DZEPHYR_MODULES=$modules"
                     -DCONFIG_MINIMAL_LIBC=y)
            fi ;;
    esac
    echo "zephyr: [$board] README app (out of tree): ${cmd[*]} && ninja -C $bdir"
    if ! (cd "$readme_root" && "${cmd[@]}" >"$log" 2>&1 && ninja -C "$bdir" >>"$log" 2>&1); then
        tail -n 30 "$log"
        echo "zephyr: [$board] README app: BUILD FAILED (log: $log)"
        failed=$((failed + 1)); failures="$failures $board:README-app(build)"
    elif python3 "$repo/scripts/zephyr-run.py" --board "$board" --app "$readme_root/hello" --build "$bdir"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); failures="$failures $board:README-app"
    fi
done

# zephyr-lang-rust apps (CONFIG_RUST=y): uasyncio as a plain dependency of the app's one Rust
# crate. zephyr-lang-rust supports Cortex-M and RISC-V only, so these run on the Arm boards.
for app in $lang_rust_apps; do
    app="${app%/}"
    name="$(basename "$app")"
    if [ -z "${UASYNCIO_ZEPHYR_LANG_RUST:-}" ]; then
        echo "zephyr: $app: not built (UASYNCIO_ZEPHYR_LANG_RUST, a zephyr-lang-rust checkout, is unset)"
        continue
    fi
    for board in $UASYNCIO_ZEPHYR_BOARDS; do
        case "$board" in native_sim*|native_posix*) continue ;; esac
        if ! python3 "$repo/scripts/zephyr-run.py" --check-platform --board "$board" --app "$repo/$app" --build none; then
            echo "zephyr: [$board] $app: FAILED: '$board' is not in its platform_allow (add it to its yaml)"
            failed=$((failed + 1)); failures="$failures $board:$app(platform_allow)"
            continue
        fi
        if [ -n "${ZEPHYR_SDK_INSTALL_DIR:-}" ]; then
            toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=zephyr)
        else
            gcc_path="$(command -v arm-none-eabi-gcc)"
            toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb "GNUARMEMB_TOOLCHAIN_PATH=$(dirname "$(dirname "$gcc_path")")")
        fi
        bdir="$build_root/${board//\//_}/$name"
        log="$bdir.log"
        mkdir -p "$(dirname "$bdir")"
        echo "zephyr: [$board] $app: building (zephyr-lang-rust: $UASYNCIO_ZEPHYR_LANG_RUST)"
        if ! env "${toolchain[@]}" cmake -G Ninja -S "$repo/$app" -B "$bdir" -DBOARD="$board" \
                "-DZEPHYR_MODULES=$modules;$UASYNCIO_ZEPHYR_LANG_RUST" -DCONFIG_MINIMAL_LIBC=y \
                ${UASYNCIO_ZEPHYR_CMAKE_ARGS:-} >"$log" 2>&1 \
            || ! env "${toolchain[@]}" cmake --build "$bdir" >>"$log" 2>&1; then
            tail -n 30 "$log"
            echo "zephyr: [$board] $app: BUILD FAILED (log: $log)"
            failed=$((failed + 1)); failures="$failures $board:$app(build)"
            continue
        fi
        if python3 "$repo/scripts/zephyr-run.py" --board "$board" --app "$repo/$app" --build "$bdir"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1)); failures="$failures $board:$app"
        fi
    done
done

# The cellular sample as a Zephyr app against the modem simulator (needs root; skips cleanly
# without a tree, like this script).
if bash "$repo/scripts/cellular-zephyr.sh"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); failures="$failures cellular-zephyr"
fi

[ -z "$failures" ] || echo "zephyr: failed:$failures"
echo "zephyr: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
