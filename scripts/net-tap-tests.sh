#!/usr/bin/env bash
# Network tests of uasyncio-net:
#   1. the in-memory pair suite (no privileges needed; ~2 s);
#   2. the TAP suite against real Linux peers (Python asyncio, http.server, dnsmasq,
#      openssl s_server, reqwless), each test in a network namespace it makes and removes
#      (~15 s). Without root or /dev/net/tun the TAP tests print SKIP and pass.
# Installs its Debian packages first (scripts/net-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../net"
../scripts/net-deps.sh
cargo test --features std --test pair
cargo test --features std --test tap
cargo test --features std --lib
