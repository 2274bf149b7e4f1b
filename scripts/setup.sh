#!/usr/bin/env bash
# Installs everything the demos and the test suites need on a fresh Debian 12 machine that has
# only the Rust toolchain (rustup), gcc, Python and apt. Idempotent: quick when all is there.
#   - rustup: clippy, rustfmt; nightly with miri + rust-src (Miri, ThreadSanitizer);
#     the thumbv7m-none-eabi and thumbv6m-none-eabi targets (Cortex-M3, Cortex-M0 builds);
#     cargo-fuzz; cbindgen (pinned) for scripts/check-headers.sh.
#   - Debian (as root): see each suite's own dependency script (net, FreeRTOS).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

have_component() { rustup component list --toolchain "$1" --installed 2>/dev/null | grep -q "^$2"; }

for c in clippy rustfmt; do
    have_component stable "$c" || { log "rustup component add $c"; rustup component add "$c" --toolchain stable; }
done
if ! rustup toolchain list | grep -q '^nightly'; then
    log "rustup toolchain install nightly"
    rustup toolchain install nightly --profile minimal
fi
for c in miri rust-src; do
    have_component nightly "$c" || { log "rustup component add $c (nightly)"; rustup component add "$c" --toolchain nightly; }
done
for t in thumbv7m-none-eabi thumbv6m-none-eabi; do
    rustup target list --installed | grep -qx "$t" || { log "rustup target add $t"; rustup target add "$t"; }
done

# cargo-fuzz for the fuzz smoke pass (fuzz/; nightly).
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo install cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

# cbindgen, pinned, for scripts/check-headers.sh (the C API's declarations from the Rust side).
CBINDGEN_VERSION=0.29.0
if [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]; then
    log "cargo install cbindgen --version $CBINDGEN_VERSION"
    cargo install cbindgen --version "$CBINDGEN_VERSION" --locked
fi

# Debian packages, per suite (each script is idempotent and skips cleanly when not root).
for deps in scripts/net-deps.sh scripts/freertos-setup.sh; do
    if [ -x "$deps" ] || [ -f "$deps" ]; then
        log "$deps"
        bash "$deps"
    fi
done
log "done"
