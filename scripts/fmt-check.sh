#!/usr/bin/env bash
# `cargo fmt --check` on the root workspace and on every crate that is a workspace of its own
# (firmware, samples, templates, test and bench crates, the Zephyr ones too: formatting needs
# no build), which the root `cargo fmt --all` does not reach.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0
cargo fmt --all -- --check || failed=1
for manifest in $(git ls-files '*Cargo.toml'); do
    [ "$manifest" != Cargo.toml ] && grep -q '^\[workspace\]' "$manifest" || continue
    cargo fmt --manifest-path "$manifest" -- --check || {
        echo "FAILED: cargo fmt --manifest-path $manifest -- --check"
        failed=1
    }
done
exit $failed
