#!/usr/bin/env bash
# Follows ports/freertos/README.md "Start from the template" on a copy of templates/freertos-app
# OUTSIDE the repository: copy, point the Rust crate at this checkout, configure, build and run
# for the FreeRTOS POSIX simulator, QEMU mps2-an385 (Cortex-M3) and QEMU microbit (Cortex-M0),
# checking each run's output. Prints the firmware sizes. Ends with "N passed, N failed".
# Then "bad-config": four broken copies must be refused early, each with a message naming
# what to change (a loop stack below UASYNCIO_MIN_STACK_BYTES at run time; an out-of-range
# UASYNCIO_NOTIFY_INDEX and a missing FreeRTOSConfig.h setting at compile time; the copy's
# relative path to the component left unchanged, at configure time), and a
# toolchain file naming the core with add_compile_options() must still give the Rust target.
# Then "globals": the global items (critical section, allocator, panic handler) from uasyncio's
# features instead of the crate, or from another crate (cortex-m's critical-section-single-core
# with `freertos-port`); a duplicate of each must be refused by the build with a clear message.
#   usage: scripts/freertos-template.sh [posix] [mps2-an385] [microbit] [bad-config] [globals]
#          (default: all; microbit is QEMU's nRF51 board, Cortex-M0, Rust target thumbv6m-none-eabi)
#   KEEP=1 keeps the temporary folder (its path is printed).
set -uo pipefail
UASYNCIO="$(cd "$(dirname "$0")/.." && pwd)"   # the README's <uasyncio-rs>
WORK="$(mktemp -d "${TMPDIR:-/tmp}/uasyncio-template.XXXXXX")"
case "$WORK" in "$UASYNCIO"/*) echo "the work folder must be outside the repository"; exit 1;; esac
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
echo "work folder: $WORK"

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(posix mps2-an385 microbit bad-config globals)
passed=0; failed=0
result() { # result <name> <ok>
    if [ "$2" = 1 ]; then passed=$((passed + 1)); echo "--- $1: ok"; else failed=$((failed + 1)); echo "--- $1: FAILED"; fi
}

# bad_copy <name>: a fresh copy of the template (pointed at the checkout) in $WORK/<name>.
bad_copy() {
    cp -r "$UASYNCIO/templates/freertos-app" "$WORK/$1"
    sed -i "s|path = \"../../../component\"|path = \"$UASYNCIO/component\"|" "$WORK/$1/rust/Cargo.toml"
}
# expect_build_error <name> <message> [cmake args...]: the build must fail with <message>.
expect_build_error() {
    local name="$1" want="$2"; shift 2
    local log="$WORK/$name.log"
    if timeout 900 cmake -S "$WORK/$name" -B "$WORK/$name/build" -DUASYNCIO_PATH="$UASYNCIO" "$@" >"$log" 2>&1 &&
       timeout 1800 nice cmake --build "$WORK/$name/build" -j2 >>"$log" 2>&1; then
        echo "the build succeeded"; result "bad-config $name" 0; return
    fi
    grep -m1 -F -- "$want" "$log" || { tail -20 "$log"; result "bad-config $name" 0; return; }
    result "bad-config $name: refused at compile time" 1
}

# set_features <name> <features...>: the uasyncio dependency's feature list in the copy.
set_features() {
    local name="$1"; shift
    local list; list="$(printf '"%s", ' "$@")"; list="${list%, }"
    sed -i "s|features = \[\"freertos\", \"ffi\"\]|features = [$list]|" "$WORK/$name/rust/Cargo.toml"
}
drop_heap() { sed -i '/^#\[global_allocator\]/,+1d' "$WORK/$1/rust/src/lib.rs"; }
drop_panic() { sed -i '/^#\[panic_handler\]/,/^}/d' "$WORK/$1/rust/src/lib.rs"; }
# run_copy <name> <board> [expect-fail-with]: build the copy for posix|mps2-an385 and run it.
run_copy() {
    local name="$1" board="$2" want="${3:-}" log="$WORK/$1.log" out rc args=()
    [ "$board" = posix ] || args=(-DCMAKE_TOOLCHAIN_FILE="$UASYNCIO/cmake/arm-none-eabi.cmake")
    if ! { timeout 900 cmake -S "$WORK/$name" -B "$WORK/$name/build" -DUASYNCIO_PATH="$UASYNCIO" "${args[@]}" >"$log" 2>&1 &&
           timeout 1800 nice cmake --build "$WORK/$name/build" -j2 >>"$log" 2>&1; }; then
        tail -20 "$log"; result "$name: build" 0; return
    fi
    if [ "$board" = posix ]; then out="$(timeout 120 "$WORK/$name/build/app" 2>&1)"; rc=$?
    else out="$(timeout 300 qemu-system-arm -M mps2-an385 -nographic -monitor none -serial stdio \
                -semihosting-config enable=on,target=native -kernel "$WORK/$name/build/app.elf" </dev/null 2>&1)"; rc=$?
    fi
    if [ -n "$want" ]; then
        printf '%s\n' "$out" | grep -v heartbeat
        if [ $rc -ne 0 ] && grep -qF -- "$want" <<<"$out"; then result "$name: stopped with the message" 1
        else result "$name (exit code $rc)" 0; fi
    else
        printf '%s\n' "$out" | grep -E "app: |rust: [0-9]"
        check_output "$name: run" "$rc" "$out"
    fi
}

# The README's steps 2 and 3: copy the template, point rust/Cargo.toml at the checkout.
cp -r "$UASYNCIO/templates/freertos-app" "$WORK/my-app"
cd "$WORK/my-app" || exit 1
sed -i "s|path = \"../../../component\"|path = \"$UASYNCIO/component\"|" rust/Cargo.toml
if grep -q "path = \"$UASYNCIO/component\"" rust/Cargo.toml; then result "copy + point rust/Cargo.toml at the checkout" 1
else result "copy + point rust/Cargo.toml at the checkout" 0; fi

check_output() { # check_output <name> <rc> <output>
    local ok=1
    [ "$2" -eq 0 ] || ok=0
    for want in "rust: loop running" "rust: heartbeat 5" \
                "rust: 10 messages from the C task, 20 interrupt wakes, 5 heartbeats" \
                "legacy task: the loop returned 0" "app: PASS"; do
        grep -qF "$want" <<<"$3" || { echo "missing: $want"; ok=0; }
    done
    result "$1 (exit code $2)" "$ok"
}

for t in "${targets[@]}"; do
    echo "=== $t"
    case "$t" in
    posix)
        # Step 4 (POSIX simulator).
        if timeout 900 cmake -S . -B build-posix -DUASYNCIO_PATH="$UASYNCIO" >"$WORK/cfg-posix.log" 2>&1 &&
           timeout 1800 nice cmake --build build-posix -j2 >"$WORK/build-posix.log" 2>&1; then
            result "posix: build" 1
            size build-posix/app 2>/dev/null | tail -1 | awk '{print "size (x86_64 host executable): text " $1 ", data " $2 ", bss " $3}'
            out="$(timeout 120 ./build-posix/app 2>&1)"; rc=$?
            printf '%s\n' "$out"
            check_output "posix: run" "$rc" "$out"
        else
            tail -n 40 "$WORK/cfg-posix.log" "$WORK/build-posix.log"; result "posix: build" 0
        fi
        ;;
    mps2-an385|microbit)
        # Step 5 (QEMU mps2-an385, Cortex-M3) and step 6 (QEMU microbit, Cortex-M0).
        if [ "$t" = microbit ]; then dir=build-m0; cpu=(-DUASYNCIO_ARM_CPU=cortex-m0); what="Cortex-M0 firmware"
        else dir=build-mps2; cpu=(); what="Cortex-M3 firmware"; fi
        if timeout 900 cmake -S . -B "$dir" -DUASYNCIO_PATH="$UASYNCIO" \
               -DCMAKE_TOOLCHAIN_FILE="$UASYNCIO/cmake/arm-none-eabi.cmake" "${cpu[@]}" >"$WORK/cfg-$t.log" 2>&1 &&
           timeout 1800 nice cmake --build "$dir" -j2 >"$WORK/build-$t.log" 2>&1; then
            result "$t: build" 1
            arm-none-eabi-size "$dir/app.elf" | tail -1 | awk -v w="$what" '{print "size (" w "): text " $1 ", data " $2 ", bss " $3 " (bss includes the FreeRTOS heap)"}'
            out="$(timeout 300 qemu-system-arm -M "$t" -nographic -monitor none -serial stdio \
                   -semihosting-config enable=on,target=native -kernel "$dir/app.elf" </dev/null 2>&1)"; rc=$?
            printf '%s\n' "$out"
            check_output "$t: run" "$rc" "$out"
        else
            tail -n 40 "$WORK/cfg-$t.log" "$WORK/build-$t.log"; result "$t: build" 0
        fi
        ;;
    bad-config)
        # A loop stack below UASYNCIO_MIN_STACK_BYTES: uasyncio_start returns UASYNCIO_E_STACK.
        bad_copy stack
        sed -i 's/#define APP_LOOP_STACK_BYTES  8192/#define APP_LOOP_STACK_BYTES  1024/' "$WORK/stack/main.c"
        if timeout 900 cmake -S "$WORK/stack" -B "$WORK/stack/build" -DUASYNCIO_PATH="$UASYNCIO" >"$WORK/stack.log" 2>&1 &&
           timeout 1800 nice cmake --build "$WORK/stack/build" -j2 >>"$WORK/stack.log" 2>&1; then
            out="$(timeout 120 "$WORK/stack/build/app" 2>&1)"; rc=$?
            printf '%s\n' "$out"
            if [ $rc -ne 0 ] && grep -qF "UASYNCIO_E_STACK: uasyncio_config_t.stack_bytes is below UASYNCIO_MIN_STACK_BYTES" <<<"$out"; then
                result "bad-config stack: refused by uasyncio_start" 1
            else result "bad-config stack" 0; fi
        else tail -20 "$WORK/stack.log"; result "bad-config stack: build" 0; fi
        # UASYNCIO_NOTIFY_INDEX beyond configTASK_NOTIFICATION_ARRAY_ENTRIES (2 in the template).
        bad_copy notify-index
        expect_build_error notify-index "UASYNCIO_NOTIFY_INDEX is out of range" -DCMAKE_C_FLAGS=-DUASYNCIO_NOTIFY_INDEX=2
        # UASYNCIO_NOTIFY_INDEX_MIN=1 (index 0 belongs to other code) with one notification entry.
        bad_copy notify-entries
        sed -i 's/#define configTASK_NOTIFICATION_ARRAY_ENTRIES      2/#define configTASK_NOTIFICATION_ARRAY_ENTRIES      1/' \
            "$WORK/notify-entries/config/posix/FreeRTOSConfig.h"
        expect_build_error notify-entries "uasyncio needs configTASK_NOTIFICATION_ARRAY_ENTRIES above UASYNCIO_NOTIFY_INDEX_MIN" \
            -DCMAKE_C_FLAGS=-DUASYNCIO_NOTIFY_INDEX_MIN=1
        # A FreeRTOSConfig.h without INCLUDE_vTaskDelete.
        bad_copy config-setting
        sed -i '/#define INCLUDE_vTaskDelete /d' "$WORK/config-setting/config/posix/FreeRTOSConfig.h"
        expect_build_error config-setting "uasyncio needs INCLUDE_vTaskDelete 1"
        # The copy's `path = "../../../component"` left as it was (it named the repository's
        # folder from inside the repository): refused at configure time, the message saying
        # where the path must point.
        cp -r "$UASYNCIO/templates/freertos-app" "$WORK/path-left"
        expect_build_error path-left "  path = \"$UASYNCIO/component\""
        # Not a mistake: a product toolchain file that names the core with add_compile_options()
        # instead of CMAKE_C_FLAGS. The Rust target must still follow it (configure only).
        bad_copy toolchain-options
        sed -e '/CMAKE_C_FLAGS_INIT\|CMAKE_ASM_FLAGS_INIT\|CMAKE_EXE_LINKER_FLAGS_INIT/d' "$UASYNCIO/cmake/arm-none-eabi.cmake" \
            >"$WORK/toolchain-options/toolchain.cmake"
        echo 'add_compile_options(-mcpu=cortex-m3 -mthumb)' >>"$WORK/toolchain-options/toolchain.cmake"
        if timeout 900 cmake -S "$WORK/toolchain-options" -B "$WORK/toolchain-options/build" -DUASYNCIO_PATH="$UASYNCIO" \
               -DCMAKE_TOOLCHAIN_FILE="$WORK/toolchain-options/toolchain.cmake" >"$WORK/toolchain-options.log" 2>&1 &&
           grep -rqF -- "--target thumbv7m-none-eabi" "$WORK/toolchain-options/build"; then
            result "toolchain-options: Rust target from add_compile_options" 1
        else tail -20 "$WORK/toolchain-options.log"; result "toolchain-options: Rust target from add_compile_options" 0; fi
        ;;
    globals)
        # All three from uasyncio: the crate declares none.
        bad_copy ours
        set_features ours freertos ffi global-allocator panic-handler
        drop_heap ours; drop_panic ours
        run_copy ours posix
        # uasyncio's panic handler reaches main.c's uasyncio_panic_hook, then configASSERT.
        bad_copy panic-hook
        set_features panic-hook freertos ffi global-allocator panic-handler
        drop_heap panic-hook; drop_panic panic-hook
        sed -i 's|    println!("rust: loop running");|    panic!("deliberate panic from the loop");|' "$WORK/panic-hook/rust/src/lib.rs"
        run_copy panic-hook mps2-an385 "deliberate panic from the loop"
        # The critical section from cortex-m (critical-section-single-core), not from uasyncio.
        bad_copy cs-cortex-m
        set_features cs-cortex-m freertos-port ffi
        sed -i '/^uasyncio = /a cortex-m = { version = "0.7", features = ["critical-section-single-core"] }' "$WORK/cs-cortex-m/rust/Cargo.toml"
        echo 'use cortex_m as _; // links its critical-section implementation' >>"$WORK/cs-cortex-m/rust/src/lib.rs"
        run_copy cs-cortex-m mps2-an385
        # Duplicates: each refused at build time.
        bad_copy dup-allocator
        set_features dup-allocator freertos ffi global-allocator
        expect_build_error dup-allocator "conflicts with global allocator in: rtos_shims"
        bad_copy dup-panic
        set_features dup-panic freertos ffi panic-handler
        expect_build_error dup-panic "found duplicate lang item \`panic_impl\`"
        bad_copy dup-cs
        sed -i '/^uasyncio = /a cortex-m = { version = "0.7", features = ["critical-section-single-core"] }' "$WORK/dup-cs/rust/Cargo.toml"
        echo 'use cortex_m as _; // links its critical-section implementation' >>"$WORK/dup-cs/rust/src/lib.rs"
        expect_build_error dup-cs "_critical_section_1_0_acquire" -DCMAKE_TOOLCHAIN_FILE="$UASYNCIO/cmake/arm-none-eabi.cmake"
        ;;
    *) echo "unknown target '$t' (posix, mps2-an385, microbit, bad-config, globals)"; result "$t" 0 ;;
    esac
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
