#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for about 20 s from its checked-in corpus; fails on a
# crash, a leak or a hang. Needs nightly and cargo-fuzz. Usage: scripts/fuzz-smoke.sh [seconds]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-20}"
cd "$ROOT/fuzz"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
cargo +nightly fuzz build
for t in $(cargo +nightly fuzz list); do
    work="$(mktemp -d)"
    cp corpus/"$t"/* "$work"/ 2>/dev/null || true
    echo "== $t ($SECS s)"
    cargo +nightly fuzz run "$t" "$work" corpus/"$t" -- -max_total_time="$SECS" -timeout=60 -rss_limit_mb=3000 2>&1 | tail -4
    rm -rf "$work"
done
