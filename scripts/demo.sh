#!/usr/bin/env bash
# The main job, from a fresh machine: installs what it needs, builds facedb, runs the demo.
# Usage: ./scripts/demo.sh   (from the repository root; needs root for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."
for s in scripts/setup-*.sh; do
    [ -e "$s" ] || continue
    bash "$s"
done
cargo build --release -p facedb
./target/release/facedb demo
