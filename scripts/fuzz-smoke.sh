#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for about 20 s from its checked-in corpus; fails on a
# crash, a leak or a hang. Needs nightly and cargo-fuzz. Usage: scripts/fuzz-smoke.sh [seconds]
# Targets (fuzz/README.md has their inputs and invariants): stream_segmentation,
# tls_server_bytes, tls_keyed, message_queue, at_modem, ppp_input; every target listed by
# `cargo fuzz list` runs, and one without a seed corpus in fuzz/corpus/<target> fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-20}"
cd "$ROOT/fuzz"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
cargo +nightly fuzz build
for t in $(cargo +nightly fuzz list); do
    if ! ls corpus/"$t"/* >/dev/null 2>&1; then
        echo "fuzz target $t has no seed corpus in fuzz/corpus/$t" >&2
        exit 1
    fi
    work="$(mktemp -d)"
    cp corpus/"$t"/* "$work"/ 2>/dev/null || true
    echo "== $t ($SECS s)"
    cargo +nightly fuzz run "$t" "$work" corpus/"$t" -- -max_total_time="$SECS" -timeout=60 -rss_limit_mb=3000 2>&1 | tail -4
    rm -rf "$work"
done
