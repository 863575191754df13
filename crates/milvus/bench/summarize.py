"""Two-column table (facedb | Milvus 2.3.5) from bench.py JSON files written by
scripts/bench-milvus-compare.sh.  Usage: python summarize.py OUT_DIR N [N ...]"""
import json
import os
import sys


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def metrics(r):
    if r is None:
        return {}
    flat = r.get("indexes", {}).get("FLAT", {})
    s = flat.get("searches", {}).get("-", {})
    out = {
        "insert rows/s (raw gRPC, batch 10k)": r.get("insert", {}).get("rows_per_s_wall"),
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


out, sizes = sys.argv[1], sys.argv[2:]
for n in sizes:
    f = metrics(load(os.path.join(out, f"facedb_{n}.json")))
    m = metrics(load(os.path.join(out, f"milvus_{n}.json")))
    keys = list(f or m)
    print(f"\n### n = {int(n):,} x 128\n")
    print("| metric | facedb | Milvus 2.3.5 | ratio |")
    print("|---|---|---|---|")
    for k in keys:
        a, b = f.get(k), m.get(k)
        ratio = ""
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
            ratio = f"{a / b:.1f}x" if "rows/s" in k or "q/s" in k else f"{b / a:.1f}x less" if "ms" in k or k.endswith(" s") else ""
        print(f"| {k} | {a} | {b} | {ratio} |")
