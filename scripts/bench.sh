#!/usr/bin/env bash
# The full side-by-side measurement (bench/README.md): ours, embassy (raw + std), tokio current-thread,
# CPython asyncio, one table on stdout. About a minute on a 2-core machine; run it on a quiet one.
#   scripts/bench.sh                      # everything, median of 5
#   scripts/bench.sh --reps 9 --only ours,embassy-raw --workloads yield,pingpong
# Extra arguments go to the harness (see `--help`). Progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec cargo run --quiet --release --manifest-path "$root/bench/Cargo.toml" -- "$@"
