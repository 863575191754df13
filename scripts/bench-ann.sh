#!/usr/bin/env bash
# Approximate indexes side by side, in one run: faiss (Flat, IVF_FLAT, SQ8, HNSW32), hnswlib
# (M16), usearch (f32) and facedb (FLAT, SQ8, IVF_FLAT, IVF_SQ8, HNSW, with sweeps), on
#  - face128_N: the peers' synthetic dlib-like data (../shared/peers/ann/gen.py), and
#  - facecal_N: facedb's generator calibrated on real dlib descriptors (`facedb bench facegen`),
# all through ../shared/peers/ann/bench.py (facedb via `bench.py ingest`), then prints results.md
# and facedb's open-set vs enrolled single-query latency.
#
# Usage: ./scripts/bench-ann.sh [N]        (default N = 1000000; run it on a quiet machine)
# Env:   ANN_HOME   peers' home (default ~/.cache/facedb-peers/ann): venv, data, results
#        PY         Python with the peers' packages (default $ANN_HOME/venv/bin/python;
#                   ../shared/peers/ann/setup.sh creates it when missing)
#        FIT        labelled descriptors for the fit (default: ../shared/data/faces/dev encoded
#                   by `facedb bench facefit` when the models are there, else the
#                   face_recognition reference encodings)
#        MODELS     face models (default $FACEDB_MODELS, else ./models)
#        DATASETS   default "face128 facecal";  PEER_INDEXES  bench.py index names (empty: none)
#        FACEDB_INDEXES  default "FLAT SQ8 IVF_FLAT IVF_SQ8 HNSW" (empty: none);  NLIST (4 sqrt(N),
#                   as bench.py's faiss_ivfflat);  TAG  stored with facedb's records
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PEERS=../shared/peers/ann
export ANN_HOME=${ANN_HOME:-$HOME/.cache/facedb-peers/ann}
PY=${PY:-$ANN_HOME/venv/bin/python}
DATASETS=${DATASETS:-face128 facecal}
PEER_INDEXES=${PEER_INDEXES-faiss_flat,faiss_ivfflat,faiss_sq8,faiss_hnsw32,hnswlib_m16,usearch_f32}
FACEDB_INDEXES=${FACEDB_INDEXES-FLAT SQ8 IVF_FLAT IVF_SQ8 HNSW}
NLIST=${NLIST:-$(awk -v n="$N" 'BEGIN { printf "%d", 4 * sqrt(n) + 0.5 }')}
TAG=${TAG:-}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX} # faiss's OpenBLAS: see peers/ann/README.md

[ -d "$PEERS" ] || { echo "missing $PEERS (the peers' harness)" >&2; exit 1; }
if [ ! -x "$PY" ]; then
    bash "$PEERS/setup.sh"
    PY=$ANN_HOME/venv/bin/python
fi
cargo build --release -p facedb
FACEDB=./target/release/facedb
mkdir -p "$ANN_HOME/data"
echo "== $(date -u +%FT%TZ) N=$N nlist=$NLIST load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- data
if [[ " $DATASETS " == *" facecal "* ]] && [ ! -f "$ANN_HOME/data/facecal_$N/meta.json" ]; then
    if [ -z "${FIT:-}" ]; then
        MODELS=${MODELS:-${FACEDB_MODELS:-models}}
        if [ -d ../shared/data/faces/dev ] && [ -f "$MODELS/dlib_face_recognition_resnet_model_v1.dat" ]; then
            FIT=$ANN_HOME/facefit-dev.json
            [ -f "$FIT" ] || "$FACEDB" bench facefit ../shared/data/faces/dev --models "$MODELS" --out "$FIT"
        else
            FIT=../shared/data/reference/face_recognition_encodings.json
        fi
    fi
    echo "== facecal_$N fitted on $FIT"
    "$FACEDB" bench facegen --fit "$FIT" --n "$N" --out "$ANN_HOME/data/facecal_$N"
fi
if [[ " $DATASETS " == *" face128 "* ]] && [ ! -f "$ANN_HOME/data/face128_$N/meta.json" ]; then
    "$PY" "$PEERS/gen.py" --dataset face128 --n "$N"
fi

# --- runs (sweeps like bench.py's for faiss and hnswlib, plus facedb's defaults)
NPROBES=default
for v in 1 4 16 32 64 128 256 512 1024; do
    if [ "$v" -le "$NLIST" ]; then NPROBES="$NPROBES,$v"; fi
done
for ds in $DATASETS; do
    if [ -n "$PEER_INDEXES" ]; then
        echo "== ${ds}_$N: peers ($PEER_INDEXES)"
        "$PY" "$PEERS/bench.py" run --dataset "$ds" --n "$N" --index "$PEER_INDEXES" || echo "peers on $ds failed"
    fi
    for ix in $FACEDB_INDEXES; do
        case $ix in
        FLAT) args=() ;;
        SQ8) args=(--sweep rerank=1,2,4,8) ;;
        IVF_FLAT | IVF_SQ8) args=(--param "nlist=$NLIST" --sweep "nprobe=$NPROBES") ;;
        HNSW) args=(--param M=16 --param efConstruction=200 --sweep ef=16,32,64,128,default,256,512,1024) ;;
        *) args=() ;;
        esac
        echo "== ${ds}_$N: facedb $ix ${args[*]}"
        "$FACEDB" bench ann --dataset "$ANN_HOME/data/${ds}_$N" --index "$ix" "${args[@]}" \
            --ingest --python "$PY" --bench-py "$PEERS/bench.py" --tag "$TAG" ||
            echo "facedb $ix on $ds: not run (see the error above)"
    done
done

# --- report
cat "$ANN_HOME/results.md"
echo
echo "## facedb: single-query latency of open-set vs enrolled probes (1 thread, medians)"
echo
"$PY" - "$ANN_HOME/data" "$N" <<'EOF'
import glob, json, os, sys
data, n = sys.argv[1], sys.argv[2]
print("| dataset | index | setting | open p50 us | enrolled p50 us | open / enrolled | probes (open, enrolled) |")
print("|---|---|---|---|---|---|---|")
for t in sorted(glob.glob(os.path.join(data, f"*_{n}", "facedb", "*", "*", "timings.json"))):
    parts = t.split(os.sep)
    j = json.load(open(t)).get("open_vs_enrolled_1T") or {}
    if not j:
        continue
    print(f"| {parts[-5]} | {parts[-3]} | {parts[-2]} | {j['open_p50_us']:.0f} | {j['enrolled_p50_us']:.0f} | "
          f"{j['open_over_enrolled']:.2f} | {j['n_open']}, {j['n_enrolled']} |")
EOF
echo "== done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg); tables in $ANN_HOME/results.md"
