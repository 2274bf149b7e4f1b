#!/usr/bin/env bash
# Flash cost of uasyncio on Cortex-M3 (thumbv7m-none-eabi, release: lto, panic=abort,
# codegen-units=1; opt-level "s" and "z"), from the images in bench/cortex-m/:
#   size-base   reset vector, spinning panic handler, FreeRtosHeap allocator, stubs for the
#               C port functions (ports/freertos/uasyncio_freertos_port.c): no uasyncio
#   size-core   + run, create_task (and awaiting the Task), sleep_ms
#   size-sync   + Event, Lock, ThreadSafeFlag, gather, wait_for
#   size-net    + uasyncio-net (default-features = false): Stack on an in-memory link,
#               start_server, open_connection, Stream read/write/drain/close (ssl = None)
#   size-net-tls  size-net with its feature `tls`: the client connection TLS 1.3 with a CA
#   size-net-ppp  size-net with its feature `ppp`: a stack on PPP over a serial port
# The last two are reported as bytes over size-net: what each optional part of uasyncio-net
# costs where it is used (neither links when its cargo feature is off).
# Flash = .vector_table + .text + .rodata + .data (arm-none-eabi-size -A); "runtime" is an
# image's flash minus size-base's. compiler_builtins' memcpy/memmove/memset (which a C
# firmware usually shares with its libc) are counted, and also shown on their own.
# Usage: scripts/cortexm-sizes.sh [--breakdown]   (env CORTEXM_TARGET_DIR, default
# target/cortex-m; FREERTOS_TARGET_DIR/sizes if that is set)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${FREERTOS_TARGET_DIR:-}" ]; then DEF="$FREERTOS_TARGET_DIR/sizes"; else DEF="$ROOT/target/cortex-m"; fi
export CARGO_TARGET_DIR="${CORTEXM_TARGET_DIR:-$DEF}"
# Panic locations keep source paths in the image (build scripts' generated files too): without
# this the sizes would move by a few bytes with the checkout's and the target's directories.
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$ROOT=/uasyncio-rs --remap-path-prefix=$CARGO_TARGET_DIR=/target"
TARGET=thumbv7m-none-eabi
IMAGES=(base core sync net)
PROFILES=(release release-z)

for img in "${IMAGES[@]}"; do
    for prof in "${PROFILES[@]}"; do
        if [ "$img" = net ]; then
            # One crate, three feature sets: the variants first, each ELF copied aside, the
            # plain build last so that `size-net` is the plain image.
            for feat in tls ppp; do
                (cd "$ROOT/bench/cortex-m/size-net" && timeout 1800 cargo build -q --profile "$prof" --target "$TARGET" --features "$feat") \
                    || { echo "build of size-net --features $feat ($prof) failed"; exit 1; }
                cp "$CARGO_TARGET_DIR/$TARGET/$prof/size-net" "$CARGO_TARGET_DIR/$TARGET/$prof/size-net-$feat"
            done
        fi
        (cd "$ROOT/bench/cortex-m/size-$img" && timeout 1800 cargo build -q --profile "$prof" --target "$TARGET") \
            || { echo "build of size-$img ($prof) failed"; exit 1; }
    done
done

# flash <elf>: vector table + text + rodata + data.
flash() { arm-none-eabi-size -A "$1" | awk '$1 ~ /^\.(vector_table|text|rodata|data)$/ { s += $2 } END { print s }'; }
sec() { arm-none-eabi-size -A "$1" | awk -v n="$2" '$1 == n { s = $2 } END { print s + 0 }'; }
# builtins <elf>: bytes of compiler_builtins' mem* functions.
builtins() { arm-none-eabi-nm -S -C "$1" | awk 'function hex(s,   i, v) { v = 0; s = tolower(s); for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v } tolower($3) == "t" && ($4 ~ /compiler_builtins::mem::|__aeabi_mem|^mem(cpy|move|set|cmp)$/) { s += hex($2) } END { print s + 0 }'; }

for prof in "${PROFILES[@]}"; do
    case $prof in release) opt='"s"' ;; release-z) opt='"z"' ;; esac
    dir="$CARGO_TARGET_DIR/$TARGET/$prof"
    base="$(flash "$dir/size-base")"
    echo "opt-level $opt (bytes; runtime = flash - size-base's $base)"
    printf '  %-13s %8s %8s %8s %8s %18s %12s\n' image text rodata data flash runtime "of it mem*"
    for img in "${IMAGES[@]}"; do
        elf="$dir/size-$img"
        f="$(flash "$elf")"
        printf '  %-13s %8s %8s %8s %8s %18s %12s\n' "size-$img" "$(sec "$elf" .text)" "$(sec "$elf" .rodata)" \
            "$(sec "$elf" .data)" "$f" "$(awk -v a="$f" -v b="$base" 'BEGIN { printf "%d (%.1f KiB)", a - b, (a - b) / 1024 }')" \
            "$(builtins "$elf")"
    done
    net="$(flash "$dir/size-net")"
    for feat in tls ppp; do
        elf="$dir/size-net-$feat"
        f="$(flash "$elf")"
        printf '  %-13s %8s %8s %8s %8s %18s %12s   %s\n' "size-net-$feat" "$(sec "$elf" .text)" "$(sec "$elf" .rodata)" \
            "$(sec "$elf" .data)" "$f" "$(awk -v a="$f" -v b="$base" 'BEGIN { printf "%d (%.1f KiB)", a - b, (a - b) / 1024 }')" \
            "$(builtins "$elf")" "$feat: +$((f - net)) B over size-net"
    done
    echo
done

if [ "${1:-}" = --breakdown ]; then
    # Code (t/T symbols) per crate, opt-level "s": the first path segment of each demangled name.
    for img in core sync net; do
        echo "size-$img code by crate (opt-level \"s\", text symbols only):"
        arm-none-eabi-nm -S -C "$CARGO_TARGET_DIR/$TARGET/release/size-$img" | awk '
            function hex(s,   i, v) { v = 0; s = tolower(s); for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v } 
            tolower($3) == "t" { name = $0; sub(/^[0-9a-f]+ [0-9a-f]+ [tT] /, "", name)
                gsub(/^(<|&|core::ptr::drop_in_place<|dyn )+/, "", name)
                c = name; if (match(name, /^[A-Za-z_][A-Za-z0-9_]*::/)) c = substr(name, 1, RLENGTH - 2); else c = "(other)"
                s[c] += hex($2) }
            END { for (c in s) printf "  %-24s %8d\n", c, s[c] }' | sort -k2 -nr | head -12
    done
fi
