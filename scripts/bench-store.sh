#!/usr/bin/env bash
# Side-by-side benchmark of the embedded store's exact search against faiss IndexFlatL2 and
# the machine's memory bandwidth, in one run, on 1M x 128 face-like (peers/ann gen.py face128)
# and uniform random vectors. Writes everything under ${OUT:-/tmp/facedb-bench-store}.
# Usage: ./scripts/bench-store.sh [N]     (needs ../shared/peers/ann; takes ~15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
OUT=${OUT:-/tmp/facedb-bench-store}
PEERS=../shared/peers/ann
ANN=${ANN_HOME:-$HOME/.cache/facedb-peers/ann}
mkdir -p "$OUT"
bash "$PEERS/setup.sh" >/dev/null
PY="$ANN/venv/bin/python"
[ -f "$ANN/data/face128_$N/base.npy" ] || "$PY" "$PEERS/gen.py" --dataset face128 --n "$N"
cargo build --release -p facedb
echo "== load before: $(cat /proc/loadavg)"
echo "== memory bandwidth (peers/ann bench.py bandwidth)"
"$PY" "$PEERS/bench.py" bandwidth --gb 2 | tee "$OUT/bandwidth.json" | grep -E '"(seq|sum|read)[^"]*GBs"|sgemm_1T_gflops' || true
echo "== facedb FLAT on face128_$N"
./target/release/facedb bench store --dataset "$ANN/data/face128_$N" --out "$OUT/face128" | tee "$OUT/facedb-face128.txt"
"$PY" "$PEERS/bench.py" ingest --dataset face128 --n "$N" --lib facedb --index flat --ids "$OUT/face128/ids.npy" --timings "$OUT/face128/timings.json"
echo "== faiss IndexFlatL2 on face128_$N"
OPENBLAS_CORETYPE=SkylakeX "$PY" "$PEERS/bench.py" run --dataset face128 --n "$N" --index faiss_flat 2>&1 | tee "$OUT/faiss-face128.txt"
echo "== facedb FLAT on uniform random $N x 128"
./target/release/facedb bench store --n "$N" | tee "$OUT/facedb-uniform.txt"
echo "== load after: $(cat /proc/loadavg)"
echo "tables: $ANN/results.md"
