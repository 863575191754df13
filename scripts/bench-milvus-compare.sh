#!/usr/bin/env bash
# Side by side: `facedb serve` and the real Milvus 2.3.5 of ../shared/peers/milvus, one after the
# other on 127.0.0.1:19530, through the same pymilvus 2.2.7 code (../shared/peers/milvus/bench.py):
# insert rows/s (raw gRPC batches), flush, load, index build time, nq=1 latency and nq=100
# throughput per index and search setting, recall@10, all searches with consistency_level="Strong".
# Prints a two-column table; JSON in $OUT.
#
# facedb runs twice: as by default (each write fsynced before it is acknowledged), and with
# `--no-fsync` (acknowledged once written, not yet on disk: the durability of Milvus standalone,
# whose rocksmq writes unsynced).
#
# The client's encode of each raw 10k x 128 request (bench.py's raw_insert_request: several 5 MB
# buffers) costs 15-19 ms of each batch, mostly page faults: glibc returns each buffer to the
# kernel on free and faults a new one in for the next batch. CLIENT_ENV (e.g. the glibc
# tunables "MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824", which keep
# them) is set for bench.py against every server alike; it changes no code and no request.
#
# Usage: scripts/bench-milvus-compare.sh [N ...]        (default: 200000 1000000)
# Env:   OUT (default target/bench-milvus), DATASET (random|face, default random), METRIC (L2|IP),
#        NQ_LAT (nq=1 searches timed, default 100), ONLY (facedb|milvus: run one side only),
#        INDEXES (bench.py's comma list: FLAT,IVF_FLAT,HNSW; default FLAT),
#        FACEDB_MODES (default "fsync no-fsync"), CLIENT_ENV (environment for bench.py, default
#        none)
# Needs root for the Milvus peer (see ../shared/peers/milvus/README.md); ports 19530, 9091, 2379
# and Milvus's internal ones must be free.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER=$(cd "$ROOT/../shared/peers/milvus" && pwd)
OUT="${OUT:-$ROOT/target/bench-milvus}"
DATASET="${DATASET:-random}"
METRIC="${METRIC:-L2}"
NQ_LAT="${NQ_LAT:-100}"
ONLY="${ONLY:-}"
INDEXES="${INDEXES:-FLAT}"
FACEDB_MODES="${FACEDB_MODES:-fsync no-fsync}"
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(200000 1000000)
export MILVUS_HOME="${MILVUS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/facedb-peers/milvus}"
mkdir -p "$OUT"

bash "$PEER/setup.sh" >&2          # venv: milvus 2.3.5 server wheel + pymilvus 2.2.7 + numpy
PY="$MILVUS_HOME/venv/bin/python"
read -r -a client_env <<<"${CLIENT_ENV:-}"
client() { env "${client_env[@]}" "$PY" "$@"; }
(cd "$ROOT" && cargo build --release -q -p facedb)
FACEDB="$ROOT/target/release/facedb"

common=(--dataset "$DATASET" --metric "$METRIC" --indexes "$INDEXES" --consistency Strong
        --strong-sample 0 --nq 1000 --nq-lat "$NQ_LAT" --nq-batch 100 --batch 10000)

# The round trip of one 10k x 128 Insert the server refuses (unknown collection), p50: with
# bench.py's client encode, the wall-clock insert rows/s of a server that receives and decodes
# each request as this one does and stores nothing (summarize.py's "bound" row).
floor() { client "$ROOT/crates/milvus/bench/insert_probe.py" --floor-only --batch 10000 --json "$1" >/dev/null; }

wait_port() { for _ in $(seq 1 300); do (echo >/dev/tcp/127.0.0.1/19530) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

for N in "${SIZES[@]}"; do
  if [[ "$ONLY" != milvus ]]; then
    for MODE in $FACEDB_MODES; do
      DATA=$(mktemp -d /tmp/facedb-bench.XXXXXX)
      FLAGS=(); NAME=facedb
      [[ "$MODE" == no-fsync ]] && { FLAGS=(--no-fsync); NAME=facedb-nofsync; }
      "$FACEDB" serve --data "$DATA" --port 19530 "${FLAGS[@]}" 2>"$OUT/${NAME}_$N.log" &
      PID=$!
      echo "$PID" >"$OUT/facedb.pid"
      wait_port || { echo "facedb serve did not start" >&2; kill "$PID"; exit 1; }
      # facedb has no background compaction to wait for: --settle-s 0
      client "$PEER/bench.py" --n "$N" "${common[@]}" --settle-s 0 --pidfile "$OUT/facedb.pid" \
        --out "$OUT/${NAME}_$N.json"
      floor "$OUT/${NAME}_$N.floor.json"
      kill -TERM "$PID"; wait "$PID" || true
      rm -rf "$DATA"
    done
  fi
  if [[ "$ONLY" != facedb ]]; then
    bash "$PEER/start.sh" >&2
    client "$PEER/bench.py" --n "$N" "${common[@]}" --settle-s 30 \
      --pidfile "$MILVUS_HOME/milvus.pid" --out "$OUT/milvus_$N.json" || true
    floor "$OUT/milvus_$N.floor.json" || true
    bash "$PEER/stop.sh" >&2
  fi
done
"$PY" "$ROOT/crates/milvus/bench/summarize.py" "$OUT" "${SIZES[@]}"
