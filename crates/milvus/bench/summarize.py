"""Table (facedb | facedb --no-fsync | Milvus 2.3.5) from bench.py JSON files written by
scripts/bench-milvus-compare.sh.  Usage: python summarize.py OUT_DIR N [N ...]"""
import json
import os
import sys


WALL = "insert rows/s (raw gRPC, batch 10k)"
# Its ratios are to Milvus's wall-clock rows/s: the most a server's wall ratio can be.
BOUND = "insert rows/s bound (client encode + refused round trip; ratio to Milvus's wall)"


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def metrics(r, floor=None):
    if r is None:
        return {}
    flat = r.get("indexes", {}).get("FLAT", {})
    s = flat.get("searches", {}).get("-", {})
    out = {
        WALL: r.get("insert", {}).get("rows_per_s_wall"),
        # bench.py's own server-ingest figure: rows over the time spent inside the Insert
        # calls, without the client's encode of each request.
        "insert rows/s, RPC time only": r.get("insert", {}).get("rows_per_s_rpc_only"),
        # Rows over bench.py's client encode plus one refused round trip per batch: the
        # wall-clock figure of a server that receives and decodes each request as this one
        # does and stores nothing.
        BOUND: bound(r, floor),
        "insert: client encode s": r.get("insert", {}).get("client_encode_s"),
        "insert: RPC s": r.get("insert", {}).get("rpc_s"),
        "insert: RPC p50 ms": r.get("insert", {}).get("batch_latency_ms_p50"),
        "insert: server CPU s": r.get("insert", {}).get("server_cpu_s"),
        "flush s": r.get("flush_s"),
        "load s": flat.get("load_s"),
        "FLAT nq=1 p50 ms (Strong)": s.get("nq1_latency_ms", {}).get("p50"),
        "FLAT nq=1 p99 ms (Strong)": s.get("nq1_latency_ms", {}).get("p99"),
        "FLAT nq=100 q/s (Strong)": s.get("batch", {}).get("qps"),
        "recall@10 vs numpy": s.get("recall_at_k"),
        "server RSS after load MiB": (flat.get("mem_after_load") or {}).get("rss_mib"),
        "has_collection RPC p50 ms": (r.get("rpc_floor_has_collection_ms") or {}).get("p50"),
    }
    for name, idx in r.get("indexes", {}).items():
        if name == "FLAT":
            continue
        out[f"{name} build s"] = idx.get("build_s")
        for tag, s in idx.get("searches", {}).items():
            out[f"{name} {tag} nq=1 p50 ms (Strong)"] = s.get("nq1_latency_ms", {}).get("p50")
            out[f"{name} {tag} nq=100 q/s (Strong)"] = s.get("batch", {}).get("qps")
            out[f"{name} {tag} recall@10"] = s.get("recall_at_k")
            out[f"{name} {tag} recall@1"] = s.get("recall_at_1")
    return out


def bound(r, floor):
    ins = r.get("insert", {})
    if not floor or ins.get("client_encode_s") is None:
        return None
    batches = -(-ins["rows"] // ins["batch"])
    return round(ins["rows"] / (ins["client_encode_s"] + batches * floor["floor_p50_ms"] / 1e3))


def ratio(k, a, b):
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b):
        return ""
    if "rows/s" in k or "q/s" in k:
        return f"{a / b:.1f}x"
    if k.startswith("insert:"):
        return ""
    if "ms" in k or k.endswith(" s"):
        return f"{b / a:.1f}x less"
    return ""


out, sizes = sys.argv[1], sys.argv[2:]
for n in sizes:
    f, g, m = (metrics(load(os.path.join(out, f"{name}_{n}.json")),
                       load(os.path.join(out, f"{name}_{n}.floor.json")))
               for name in ("facedb", "facedb-nofsync", "milvus"))
    keys = list(f or g or m)
    print(f"\n### n = {int(n):,} x 128\n")
    print("| metric | facedb | facedb --no-fsync | Milvus 2.3.5 | facedb / Milvus | --no-fsync / Milvus |")
    print("|---|---|---|---|---|---|")
    for k in keys:
        a, c, b = f.get(k), g.get(k), m.get(k)
        base = m.get(WALL) if k == BOUND else b
        print(f"| {k} | {a} | {c} | {b} | {ratio(k, a, base)} | {ratio(k, c, base)} |")
