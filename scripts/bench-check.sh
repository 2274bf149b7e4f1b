#!/usr/bin/env bash
# CI for the benchmarks: format, clippy (both bench crates, with and without our runtime),
# then the smoke pass: every workload on every runtime, tiny, speed not judged. The harness
# exits non-zero if any runtime's child fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$root/bench/Cargo.toml"
estd="$root/bench/embassy-std/Cargo.toml"

cargo fmt --check --manifest-path "$bench"
cargo fmt --check --manifest-path "$estd"
cargo clippy --release --all-targets --manifest-path "$bench" -- -D warnings
cargo clippy --release --all-targets --manifest-path "$bench" --no-default-features -- -D warnings
cargo clippy --release --all-targets --manifest-path "$estd" -- -D warnings
python3 -m py_compile "$root/bench/python/bench.py"

cargo run --quiet --release --manifest-path "$bench" -- --quick
