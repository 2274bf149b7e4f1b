#!/usr/bin/env bash
# Builds and runs this module's Zephyr samples and tests (samples/zephyr/*, tests/zephyr/*)
# with twister, Zephyr's own test runner ($ZEPHYR_BASE/scripts/twister), which reads their
# sample.yaml / testcase.yaml (platforms, extra_args, expected console lines): on native_sim
# 64-bit, and on qemu_cortex_m3 and mps2 an385 (QEMU) when the Arm toolchain and QEMU are
# installed. On top of twister it
#   - fails the run when an app ran on no configuration of a board it was asked for (twister
#     counts such an app as "filtered" and passes; e.g. a yaml without the 4.x board name),
#   - builds the README's app (samples/zephyr/hello) out of tree with the README's own
#     commands (plain CMake, -DZEPHYR_MODULES), runs it and checks its output,
#   - runs the zephyr-lang-rust app (samples/zephyr/lang_rust) when a zephyr-lang-rust
#     checkout is given,
#   - prints the size of the Rust part and of the C shim of every image (linker map),
#   - runs scripts/cellular-zephyr.sh.
# scripts/zephyr-report.py reads twister's twister.json for the first and the sizes.
#
# Needs a Zephyr tree (>= 3.4) with its Python requirements (scripts/requirements-base.txt,
# -build-test.txt, -run-test.txt); this script never fetches one.
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
#   UASYNCIO_ZEPHYR_BUILD    build root (default: <repo>/build/zephyr); twister's output goes
#                            to <root>/twister-native and <root>/twister-arm
#   UASYNCIO_ZEPHYR_CMAKE_ARGS extra CMake arguments for every build, space-separated, as
#                            -DNAME=VALUE, e.g. -DCONFIG_UASYNCIO_RAM_REPORT=y (each app
#                            then prints its loop thread's stack high-water mark and heap
#                            peak, in twister's handler.log)
#   UASYNCIO_ZEPHYR_LANG_RUST a zephyr-lang-rust checkout (Zephyr 4.0: its v4.0-branch, with
#                            libclang for bindgen, BINDGEN_EXTRA_CLANG_ARGS if needed): the
#                            CONFIG_RUST=y apps (samples/zephyr/lang_rust) are run with it on
#                            the Arm boards. Unset: they are listed as not built.
#   UASYNCIO_TWISTER_ARGS    extra twister arguments, space-separated (e.g. -j 1)
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

# Arm toolchain: the Zephyr SDK when installed, else the GNU Arm Embedded toolchain on PATH.
arm_toolchain=()
if [ -n "${ZEPHYR_SDK_INSTALL_DIR:-}" ]; then
    arm_toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=zephyr)
elif gcc_path="$(command -v arm-none-eabi-gcc)"; then
    arm_toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb "GNUARMEMB_TOOLCHAIN_PATH=$(dirname "$(dirname "$gcc_path")")")
fi
# UASYNCIO_ZEPHYR_CMAKE_ARGS (-DNAME=VALUE) as twister extra args (NAME=VALUE).
cmake_extra=()
for arg in ${UASYNCIO_ZEPHYR_CMAKE_ARGS:-}; do cmake_extra+=(-x "${arg#-D}"); done

# run_twister <label> <modules> <boards> <apps> <toolchain env...>: one twister run (one
# toolchain: native_sim builds with the host compiler, the Arm boards with the Arm one), then
# zephyr-report.py over its twister.json.
run_twister() {
    local label="$1" mods="$2" boards="$3" apps="$4"
    shift 4
    [ -n "$boards" ] && [ -n "$apps" ] || return 0
    local outdir="$build_root/twister-$label" args=() b a
    for b in $boards; do args+=(-p "$b"); done
    for a in $apps; do args+=(-T "$repo/${a%/}"); done
    mkdir -p "$build_root"
    echo "zephyr: twister ($label): boards $boards"
    echo "zephyr:   $ZEPHYR_BASE/scripts/twister ${args[*]} -x ZEPHYR_MODULES=$mods --outdir $outdir"
    local rc=0
    env "$@" python3 "$ZEPHYR_BASE/scripts/twister" "${args[@]}" -x "ZEPHYR_MODULES=$mods" \
        ${cmake_extra[@]+"${cmake_extra[@]}"} --outdir "$outdir" --clobber-output --inline-logs \
        ${UASYNCIO_TWISTER_ARGS:-} >"$outdir.log" 2>&1 || rc=$?
    # twister's summary lines (counts of passed/failed/filtered configurations).
    grep -E "test (scenarios|configurations)|executed test|test cases passed|ERROR +- +[^P]" "$outdir.log" | grep -v "not found in the list of platforms" | sed 's/^/zephyr:   twister: /' || true
    if [ ! -f "$outdir/twister.json" ]; then
        tail -n 40 "$outdir.log"
        echo "zephyr: twister ($label) produced no report (log: $outdir.log)"
        failed=$((failed + 1)); failures="$failures twister-$label"
        return 0
    fi
    local report
    report="$(python3 "$repo/scripts/zephyr-report.py" twister --json "$outdir/twister.json" --outdir "$outdir" \
        --zephyr-base "$ZEPHYR_BASE" --repo "$repo" --boards "$boards" $(for a in $apps; do echo "$repo/${a%/}"; done))" || rc=1
    echo "$report"
    local p f
    p="$(sed -n 's/^zephyr-report: passed=\([0-9]*\) failed=\([0-9]*\)$/\1/p' <<<"$report")"
    f="$(sed -n 's/^zephyr-report: passed=\([0-9]*\) failed=\([0-9]*\)$/\2/p' <<<"$report")"
    passed=$((passed + ${p:-0}))
    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then f=1; fi
    if [ "${f:-0}" -gt 0 ]; then
        failed=$((failed + f)); failures="$failures twister-$label(log: $outdir.log)"
    fi
}

native_boards=""
arm_boards=""
for board in $UASYNCIO_ZEPHYR_BOARDS; do
    case "$board" in
        native_sim*|native_posix*) native_boards="$native_boards $board" ;;
        *) arm_boards="$arm_boards $board" ;;
    esac
done
run_twister native "$modules" "$native_boards" "$UASYNCIO_ZEPHYR_APPS" ZEPHYR_TOOLCHAIN_VARIANT=host
# zephyr-lang-rust apps (CONFIG_RUST=y): uasyncio as a plain dependency of the app's one Rust
# crate. zephyr-lang-rust supports Cortex-M and RISC-V only, so these run on the Arm boards,
# in the same twister run (the zephyr-lang-rust module is harmless to the other apps).
arm_apps="$UASYNCIO_ZEPHYR_APPS"
arm_modules="$modules"
if [ -n "$lang_rust_apps" ]; then
    if [ -z "${UASYNCIO_ZEPHYR_LANG_RUST:-}" ]; then
        for app in $lang_rust_apps; do
            echo "zephyr: $app: not built (UASYNCIO_ZEPHYR_LANG_RUST, a zephyr-lang-rust checkout, is unset)"
        done
    elif [ "${major:-0}" -lt 4 ]; then
        # zephyr-lang-rust's v4.0-branch binds Zephyr 4.0's headers (its bindgen wrapper
        # includes zephyr/autoconf.h, which 3.x generates elsewhere): a 3.x tree fails to
        # build it with a bindgen error, so say so instead.
        for app in $lang_rust_apps; do
            echo "zephyr: $app: not built (zephyr-lang-rust needs Zephyr 4.0 or later; this tree is $version: unset UASYNCIO_ZEPHYR_LANG_RUST or use a 4.x tree)"
        done
    else
        arm_apps="$arm_apps $lang_rust_apps"
        arm_modules="$modules;$UASYNCIO_ZEPHYR_LANG_RUST"
    fi
fi
if [ -n "$arm_boards" ] && [ "${#arm_toolchain[@]}" -eq 0 ]; then
    echo "zephyr: FAILED: boards$arm_boards need arm-none-eabi-gcc or the Zephyr SDK"
    failed=$((failed + 1)); failures="$failures arm-toolchain"
else
    run_twister arm "$arm_modules" "$arm_boards" "$arm_apps" ${arm_toolchain[@]+"${arm_toolchain[@]}"}
fi

# The application of README.md (section Zephyr), samples/zephyr/hello, built out of tree the
# way the README says: copied into a folder of its own, its Cargo.toml pointing at this
# module's component/, configured with plain CMake and -DZEPHYR_MODULES.
readme_root="$build_root/readme"
[ "$run_readme" = 1 ] && UASYNCIO_ZEPHYR_README_BOARDS="$UASYNCIO_ZEPHYR_BOARDS" || UASYNCIO_ZEPHYR_README_BOARDS=""
rm -rf "$readme_root"
mkdir -p "$readme_root"
cp -r "$repo/samples/zephyr/hello" "$readme_root/hello"
sed -i "s#path = \"../../../component\"#path = \"$repo/component\"#" "$readme_root/hello/Cargo.toml"
# toolchain_env <board>: sets tc_env to the README's toolchain variables for the board: the
# host gcc for native_sim; for Arm, Debian's arm-none-eabi-gcc unless a Zephyr SDK is set up.
toolchain_env() {
    case "$1" in
        native_sim*) tc_env=(ZEPHYR_TOOLCHAIN_VARIANT=host) ;;
        *)
            if [ -n "${ZEPHYR_SDK_INSTALL_DIR:-}" ]; then
                tc_env=()
            else
                local gcc_path
                gcc_path="$(command -v arm-none-eabi-gcc)"
                tc_env=(ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb "GNUARMEMB_TOOLCHAIN_PATH=$(dirname "$(dirname "$gcc_path")")")
            fi ;;
    esac
}
for board in $UASYNCIO_ZEPHYR_README_BOARDS; do
    bdir="$readme_root/build-${board//\//_}"
    log="$bdir.log"
    toolchain_env "$board"
    case "$board" in
        native_sim*) cmd=(env "${tc_env[@]}" cmake -G Ninja -S hello -B "$bdir" "-DBOARD=$board" "-DZEPHYR_MODULES=$repo") ;;
        *)
            cmd=(env ${tc_env[@]+"${tc_env[@]}"} cmake -G Ninja -S hello -B "$bdir" "-DBOARD=$board" "-DZEPHYR_MODULES=$modules")
            [ -n "${ZEPHYR_SDK_INSTALL_DIR:-}" ] || cmd+=(-DCONFIG_MINIMAL_LIBC=y) ;;
    esac
    echo "zephyr: [$board] README app (out of tree): ${cmd[*]} && ninja -C $bdir"
    if ! (cd "$readme_root" && "${cmd[@]}" >"$log" 2>&1 && ninja -C "$bdir" >>"$log" 2>&1); then
        tail -n 30 "$log"
        echo "zephyr: [$board] README app: BUILD FAILED (log: $log)"
        failed=$((failed + 1)); failures="$failures $board:README-app(build)"
        continue
    fi
    # Run it the way the README's reader would (`ninja run`: native_sim's executable, or QEMU
    # for the Arm boards) until its expected lines appeared (it never exits by itself).
    run_log="$bdir.run.log"
    if python3 "$repo/scripts/zephyr-report.py" console --app "$readme_root/hello" --log "$run_log" \
            --build "$bdir" --label "$board README app" -- ninja -C "$bdir" run; then
        echo "zephyr: [$board] README app: PASS"
        passed=$((passed + 1))
    else
        echo "zephyr: [$board] README app: FAIL (log: $run_log)"
        failed=$((failed + 1)); failures="$failures $board:README-app"
    fi
done

# The same application through west, as README.md's step 1 and the end of step 3 say: a west
# workspace whose manifest names this repository at modules/lib/uasyncio (the README's
# project entry), the app at the workspace's top with path = "../modules/lib/uasyncio/component",
# built with `west build -b <board> hello` and run with `west build -t run`. This machine
# cannot `west update` from GitHub, so the workspace's project folders are links to the trees
# given (Zephyr, this repository, the extra modules); west and Zephyr's CMake find every
# module through the manifest, as after a `west update`.
if [ -n "$UASYNCIO_ZEPHYR_README_BOARDS" ] && ! command -v west >/dev/null; then
    echo "zephyr: README app through west: FAILED (west is not installed: pip install west)"
    failed=$((failed + 1)); failures="$failures README-app(west)"
elif [ -n "$UASYNCIO_ZEPHYR_README_BOARDS" ]; then
    # Where the workspace goes. Zephyr turns some linker-script paths into paths relative to
    # $ZEPHYR_BASE/include as written (here a link), which the preprocessor then resolves from
    # the real tree; they land right only if the workspace shares no leading folder with the
    # real tree and its zephyr/include is at least as deep (the extra ../ stop at /). So: a
    # folder of its own under /tmp (or /var/tmp when the tree is under /tmp), made deep enough.
    real_include="$(cd "$ZEPHYR_BASE/include" && pwd -P)"
    case "$real_include" in /tmp/*) ws_parent=/var/tmp ;; *) ws_parent=/tmp ;; esac
    # The previous run's workspace goes (its path is kept in the build folder).
    if [ -f "$build_root/west-ws.path" ]; then
        old_ws="$(cat "$build_root/west-ws.path")"
        case "$old_ws" in "$ws_parent"/uasyncio-west.*) rm -rf "${old_ws%%/w/*}" ;; esac
    fi
    ws="$(mktemp -d "$ws_parent/uasyncio-west.XXXXXX")"
    echo "$ws" >"$build_root/west-ws.path"
    want_depth=$(tr -cd / <<<"$real_include" | wc -c)
    while [ "$(tr -cd / <<<"$ws/zephyr/include" | wc -c)" -lt "$want_depth" ]; do ws="$ws/w"; done
    mkdir -p "$ws/.west" "$ws/manifest" "$ws/modules/lib" "$ws/modules/extra"
    ln -s "$(cd "$ZEPHYR_BASE" && pwd)" "$ws/zephyr"
    ln -s "$repo" "$ws/modules/lib/uasyncio"
    printf '[manifest]\npath = manifest\nfile = west.yml\n[zephyr]\nbase = zephyr\n' >"$ws/.west/config"
    {
        echo "manifest:"
        echo "  projects:"
        echo "    - name: zephyr"
        echo "      url: https://github.com/zephyrproject-rtos/zephyr"
        echo "      path: zephyr"
        echo "      west-commands: scripts/west-commands.yml"
        echo "    - name: uasyncio-rs"
        echo "      url: file://$repo"
        echo "      revision: main"
        echo "      path: modules/lib/uasyncio"
        IFS=';' read -ra extra <<<"${UASYNCIO_ZEPHYR_MODULES:-}"
        for m in "${extra[@]}"; do
            [ -n "$m" ] || continue
            # The folder's name is the module's name for a module.yml without one (CMSIS).
            name="$(basename "$m")"
            [ ! -e "$ws/modules/extra/$name" ] || name="$name-$RANDOM"
            ln -s "$(cd "$m" && pwd)" "$ws/modules/extra/$name"
            echo "    - name: $name"
            echo "      url: file://$m"
            echo "      path: modules/extra/$name"
        done
        echo "  self:"
        echo "    path: manifest"
    } >"$ws/manifest/west.yml"
    cp -r "$repo/samples/zephyr/hello" "$ws/hello"
    sed -i 's#path = "../../../component"#path = "../modules/lib/uasyncio/component"#' "$ws/hello/Cargo.toml"
    for board in $UASYNCIO_ZEPHYR_README_BOARDS; do
        bname="build-west-${board//\//_}"
        log="$ws/$bname.log"
        # ZEPHYR_BASE as a west user has it: the workspace's zephyr (west and Zephyr's module
        # lookup find the workspace from there).
        toolchain_env "$board"
        tc=(env "ZEPHYR_BASE=$ws/zephyr" ${tc_env[@]+"${tc_env[@]}"})
        echo "zephyr: [$board] README app through west (in $ws): west build -b $board -d $bname hello"
        if ! (cd "$ws" && "${tc[@]}" west build -b "$board" -d "$bname" hello >"$log" 2>&1); then
            tail -n 30 "$log"
            echo "zephyr: [$board] README app through west: BUILD FAILED (log: $log)"
            failed=$((failed + 1)); failures="$failures $board:README-app(west,build)"
            continue
        fi
        run_log="$ws/$bname.run.log"
        if (cd "$ws" && python3 "$repo/scripts/zephyr-report.py" console --app "$ws/hello" --log "$run_log" \
                --build "$ws/$bname" --label "$board README app (west)" -- "${tc[@]}" west build -d "$bname" -t run); then
            echo "zephyr: [$board] README app through west: PASS"
            passed=$((passed + 1))
        else
            echo "zephyr: [$board] README app through west: FAIL (log: $run_log)"
            failed=$((failed + 1)); failures="$failures $board:README-app(west)"
        fi
    done
fi

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
