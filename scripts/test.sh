#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# Usage: ./scripts/test.sh   (from the repository root; needs root for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Setup steps of the crates that need system packages, models or Python clients.
for s in scripts/setup-*.sh; do
    [ -e "$s" ] || continue
    echo "== $s"
    bash "$s"
done
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== cargo test"
cargo test --workspace --release
