#!/usr/bin/env bash
# Builds the cellular sample's Zephyr app (samples/cellular/zephyr) and runs it against the
# modem simulator (tests/cellular/harness.py): AT bring-up, PPP, DNS (echo.test), TCP echo to
# :7000, hang-up, then the same with TLS 1.3 to :7443 (the shared application of
# samples/cellular/src, twice). Boards:
#   native_sim 64-bit  the modem UART is Zephyr's native tty driver opened on the simulator's
#                      pty (harness --transport pty, zephyr.exe -modem_tty_port={tty}); the
#                      CA is read from the host file {ca_der}
#   qemu_cortex_m3     the modem on uart1 (QEMU's second -serial, unix:{unix}), the console on
#                      uart0 (-serial stdio); command line and CA through semihosting. TLS
#                      does not fit its 256 KiB of flash / 64 KiB of RAM: built and run
#                      without it (reported as "not run")
# Checks per (tree, board): "TCP" passes when the app reports its TCP echo (every line came
# back), "TLS" when it reports its TLS echo. Needs root (the harness makes a network
# namespace with a TUN device). Ends with "N passed, N failed".
#
# Usage: scripts/cellular-zephyr.sh [ZEPHYR_TREE[,MODULE;MODULE...]]...
#   Each argument is a Zephyr tree, optionally with the extra Zephyr modules its Arm build
#   needs (CMSIS), e.g.
#     scripts/cellular-zephyr.sh /z/zephyr-3.4,/z/cmsis /z/zephyr-4.0,/z/cmsis40/cmsis
#   Without arguments: $ZEPHYR_BASE with $UASYNCIO_ZEPHYR_MODULES (as scripts/zephyr-test.sh);
#   when that is unset too, the script prints a skip line and exits 0.
# Environment: CELLULAR_ZEPHYR_BOARDS ("native qemu_cortex_m3" by default; qemu_cortex_m3
# only when arm-none-eabi-gcc and qemu-system-arm exist), CELLULAR_ZEPHYR_BUILD (build root,
# default <repo>/build/cellular-zephyr), CARGO_TARGET_DIR (default <build root>/cargo).
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

trees=("$@")
if [ ${#trees[@]} -eq 0 ]; then
    if [ -z "${ZEPHYR_BASE:-}" ]; then
        echo "cellular-zephyr: skipped (ZEPHYR_BASE is unset and no tree was given; see samples/cellular/zephyr/README.md)"
        exit 0
    fi
    trees=("$ZEPHYR_BASE${UASYNCIO_ZEPHYR_MODULES:+,$UASYNCIO_ZEPHYR_MODULES}")
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "cellular-zephyr: skipped (needs root: the simulator's harness makes a network namespace and a TUN device)"
    exit 0
fi

build_root="${CELLULAR_ZEPHYR_BUILD:-$repo/build/cellular-zephyr}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$build_root/cargo}"
boards="${CELLULAR_ZEPHYR_BOARDS:-native}"
if [ -z "${CELLULAR_ZEPHYR_BOARDS:-}" ] && command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null; then
    boards="native qemu_cortex_m3"
fi
app="$repo/samples/cellular/zephyr"
harness="$repo/tests/cellular/harness.py"

passed=0; failed=0; notrun=0; results=()
result() { # result <label> <pass|FAIL|not run> [why]
    results+=("$1: $2${3:+ ($3)}")
    case "$2" in
        pass) passed=$((passed + 1)) ;;
        FAIL) failed=$((failed + 1)) ;;
        *) notrun=$((notrun + 1)) ;;
    esac
    echo "--- $1: $2${3:+ ($3)}"
}

seed() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

for spec in "${trees[@]}"; do
    tree="${spec%%,*}"
    extra_modules=""
    [ "$spec" != "$tree" ] && extra_modules="${spec#*,}"
    if [ ! -f "$tree/VERSION" ]; then
        echo "cellular-zephyr: $tree is not a Zephyr tree (no VERSION)"
        result "$tree" FAIL "not a Zephyr tree"
        continue
    fi
    major=$(tr -d '\r' < "$tree/VERSION" | sed -n 's/^VERSION_MAJOR *= *//p')
    minor=$(tr -d '\r' < "$tree/VERSION" | sed -n 's/^VERSION_MINOR *= *//p')
    version="$(tr -d '\r' < "$tree/VERSION" | sed -n 's/^\(VERSION_MAJOR\|VERSION_MINOR\|PATCHLEVEL\) *= *//p' | paste -sd.)"
    if [ "$major" -gt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -ge 7 ]; }; then
        native_board="native_sim/native/64"
    else
        native_board="native_sim_64"
    fi
    for b in $boards; do
        [ "$b" = native ] && board="$native_board" || board="$b"
        label="zephyr $version $board"
        bdir="$build_root/$version/${board//\//_}"
        log="$bdir.log"
        mkdir -p "$(dirname "$bdir")"
        case "$board" in
            native_sim*)
                toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=host)
                modules="$repo" ;;
            *)
                gcc_path="$(command -v arm-none-eabi-gcc)"
                toolchain=(ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb "GNUARMEMB_TOOLCHAIN_PATH=$(dirname "$(dirname "$gcc_path")")")
                modules="$repo${extra_modules:+;$extra_modules}" ;;
        esac
        echo "=== $label: building ($bdir)"
        echo "    env ${toolchain[*]} ZEPHYR_BASE=$tree cmake -G Ninja -S $app -B $bdir -DBOARD=$board -DZEPHYR_MODULES='$modules' -DCONFIG_UASYNCIO_RAM_REPORT=y && ninja -C $bdir"
        if ! env "${toolchain[@]}" ZEPHYR_BASE="$tree" timeout 900 cmake -G Ninja -S "$app" -B "$bdir" -DBOARD="$board" \
                "-DZEPHYR_MODULES=$modules" -DCONFIG_UASYNCIO_RAM_REPORT=y >"$log" 2>&1 \
            || ! env "${toolchain[@]}" ZEPHYR_BASE="$tree" timeout 1800 ninja -C "$bdir" >>"$log" 2>&1; then
            tail -n 30 "$log"
            result "$label TCP" FAIL "build failed, log $log"
            result "$label TLS" FAIL "build failed, log $log"
            continue
        fi
        tls_built=1
        grep -q "cellular: TLS OFF" "$log" && tls_built=0
        case "$board" in
            native_sim*)
                cmd=(timeout 240 python3 "$harness" --transport pty --timeout 230 --
                     timeout 220 "$bdir/zephyr/zephyr.exe" "-modem_tty_port={tty}"
                     -testargs session guard=150 "ca={ca_der}" "seed=$(seed)") ;;
            qemu_cortex_m3)
                grep -E '^ +(FLASH|RAM):' "$log" | tail -2 | sed 's/^/    /'
                arm-none-eabi-size "$bdir/zephyr/zephyr.elf" | sed 's/^/    /'
                # -icount: guest time from the instruction count (sleep=on: idle time follows
                # the host clock). Without it, a loaded host stretches the moments where
                # SysTick reads 0, and cortex_m_systick.c before upstream PR #63344 (no VAL == 0
                # realignment; 4.0 has it, 3.4.99 not) counts a whole period twice: the guest
                # clock ran 10-50x fast on 3.4.99 and the TCP echo timed out.
                cmd=(timeout 240 python3 "$harness" --transport unix --timeout 230 --
                     timeout 220 qemu-system-arm -M lm3s6965evb -icount shift=6,align=off,sleep=on
                     -nographic -monitor none
                     -serial stdio -serial "unix:{unix}"
                     -semihosting-config "enable=on,target=native,arg=zephyr,arg=session,arg=guard=150,arg=ca={ca_der},arg=seed=$(seed)"
                     -kernel "$bdir/zephyr/zephyr.elf") ;;
            *)
                result "$label TCP" FAIL "no run command for this board"
                result "$label TLS" FAIL "no run command for this board"
                continue ;;
        esac
        echo "=== $label: running"
        echo "    ${cmd[*]}"
        out="$("${cmd[@]}" </dev/null 2>&1)"; rc=$?
        printf '%s\n' "$out" | sed 's/^/    /'
        if grep -q "^report: TCP echo (shared application): " <<<"$out"; then
            result "$label TCP" pass
        else
            result "$label TCP" FAIL "exit $rc"
        fi
        if [ "$tls_built" = 0 ]; then
            result "$label TLS" "not run" "built without TLS: it does not fit the board (README.md)"
        elif grep -q "^report: TLS echo (shared application): " <<<"$out"; then
            result "$label TLS" pass
        else
            result "$label TLS" FAIL "exit $rc"
        fi
    done
done

echo
printf '%s\n' "${results[@]}"
[ "$notrun" -eq 0 ] || echo "($notrun not run)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
