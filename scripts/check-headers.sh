#!/usr/bin/env bash
# Checks every C<->Rust boundary of the repository against the Rust side, which is the source
# of truth: a C header that drifted from the Rust declarations fails here, with the
# compiler's "conflicting types" or a failed _Static_assert naming the item.
#
#   component/include/uasyncio.h (the C API)  vs  component/src/ffi.rs, as cbindgen sees it
#       (component/cbindgen.toml): every function, constant and the uasyncio_config_t layout.
#   ports/freertos/uasyncio_freertos_port.h   vs  rtos-shims/src/freertos/*.rs
#   rtos-shims/zephyr-shim/uasyncio_shim.h    vs  rtos-shims/src/zephyr/*.rs
#   cellular/include/uasyncio_serial.h        vs  cellular/src/serial/*.rs
#       the ports: the Rust `extern "C"` blocks and `#[no_mangle] extern "C" fn`s, turned into
#       C prototypes and compiled after the real header (scripts/c_boundary.py); a header
#       function that Rust neither calls nor defines is reported unless named with --c-only.
#
# Each check compiles with the host's cc (64-bit) and, when installed, arm-none-eabi-gcc
# (32-bit: UASYNCIO_MIN_STACK_BYTES and size_t differ). The headers include only stddef.h and
# stdint.h, so no RTOS stubs are needed. Needs cbindgen at the version scripts/setup.sh pins.
#   usage: bash scripts/check-headers.sh      (KEEP=1 keeps the generated declarations)
set -uo pipefail
cd "$(dirname "$0")/.."

want=$(sed -n 's/^CBINDGEN_VERSION=//p' scripts/setup.sh)
have=$(cbindgen --version 2>/dev/null)
if [ "$have" != "cbindgen $want" ]; then
    echo "check-headers: needs cbindgen $want (found: ${have:-none}); run: bash scripts/setup.sh"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uasyncio-headers.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "generated declarations in $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

generate="cbindgen --config component/cbindgen.toml --crate uasyncio component -o $tmp/uasyncio-from-rust.h"
if ! $generate -q; then
    echo "check-headers: cbindgen failed: $generate"
    exit 1
fi

compilers=(cc)
command -v arm-none-eabi-gcc >/dev/null && compilers+=(arm-none-eabi-gcc)

failed=0
check() { # check <what the fix is> <c_boundary.py args...>
    local fix=$1
    shift
    if ! python3 scripts/c_boundary.py "$@"; then
        failed=$((failed + 1))
        printf '  -> %s\n' "$fix"
    fi
}

for cc in "${compilers[@]}"; do
    # uasyncio.h: the queue handle is a `c_void` pointer on the Rust side (--same); the
    # functions C defines (the FreeRTOS port's, or the application's panic hook) are --c-only.
    check "the Rust side (component/src/ffi.rs) is the truth: change component/include/uasyncio.h to match what cbindgen makes of it (see it with: KEEP=1 bash scripts/check-headers.sh, or $generate)" \
        cbindgen --cc "$cc" --label "uasyncio.h ($cc)" --generated "$tmp/uasyncio-from-rust.h" \
        --header component/include/uasyncio.h --same uasyncio_queue_t=void \
        --define UASYNCIO_FFI --define 'UASYNCIO_64BIT=UINTPTR_MAX > 0xFFFFFFFFu' \
        --c-only uasyncio_panic_hook --c-only uasyncio_isr_enter --c-only uasyncio_isr_exit

    # uasyncio.h is compiled too: it declares the panic hook and uasyncio_isr_enter/exit again.
    check "make ports/freertos/uasyncio_freertos_port.h (and .c) match rtos-shims/src/freertos/ffi.rs" \
        externs --cc "$cc" --label "freertos port ($cc)" --rust rtos-shims/src/freertos/*.rs \
        --header ports/freertos/uasyncio_freertos_port.h --context component/include/uasyncio.h \
        --c-only uasyncio_isr_enter --c-only uasyncio_isr_exit --c-only uasyncio_rtos_scheduler_running \
        --external pvPortMalloc --external vPortFree --external pxCurrentTCB

    # uasyncio_ram_report: called by the shim at exit and by Rust samples, defined by the shim.
    check "make rtos-shims/zephyr-shim/uasyncio_shim.h (and .c) match rtos-shims/src/zephyr/ffi.rs" \
        externs --cc "$cc" --label "zephyr shim ($cc)" --rust rtos-shims/src/zephyr/*.rs \
        --header rtos-shims/zephyr-shim/uasyncio_shim.h \
        --c-only uasyncio_ram_report

    check "make cellular/include/uasyncio_serial.h match cellular/src/serial/ffi.rs" \
        externs --cc "$cc" --label "cellular serial ($cc)" --rust cellular/src/serial/*.rs \
        --header cellular/include/uasyncio_serial.h
done

if [ "$failed" -ne 0 ]; then
    echo "check-headers: $failed check(s) failed"
    exit 1
fi
echo "check-headers: all C<->Rust boundaries agree"
