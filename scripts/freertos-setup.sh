#!/usr/bin/env bash
# Installs what the FreeRTOS parts of uasyncio-rs need on a fresh Debian 12 machine (as root).
# Idempotent: a second run only checks. Bounded in time.
#   - gcc-arm-none-eabi + newlib: the C side of the mps2-an385 firmware and the ARM_CM3 kernel
#   - qemu-system-arm: runs the firmware (board mps2-an385)
#   - cmake: the FreeRTOS component entry (cmake/freertos.cmake)
#   - rust targets thumbv7m-none-eabi (Cortex-M3) and thumbv6m-none-eabi (Cortex-M0, QEMU microbit)
set -euo pipefail

need_apt=()
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -f /usr/lib/arm-none-eabi/lib/libc.a ] || need_apt+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need_apt+=(qemu-system-arm)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v make >/dev/null 2>&1 || need_apt+=(make)
# gdb: scripts/gdb-task-dump.sh (the task dump called from a debugger).
command -v gdb >/dev/null 2>&1 || need_apt+=(gdb)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)

if [ "${#need_apt[@]}" -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "freertos-setup: not root; skipping apt-get install ${need_apt[*]} (the FreeRTOS suites need them)"
    need_apt=()
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "freertos-setup: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update
    timeout 1200 apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 "${need_apt[@]}"
fi

for target in thumbv7m-none-eabi thumbv6m-none-eabi; do
    if ! rustup target list --installed | grep -qx "$target"; then
        echo "freertos-setup: rustup target add $target"
        timeout 600 rustup target add "$target"
    fi
done

for tool in arm-none-eabi-gcc qemu-system-arm cmake; do
    command -v "$tool" >/dev/null 2>&1 && "$tool" --version | head -1
done
echo "freertos-setup: ok"
