"""Where an insert's time goes, through the same raw gRPC Insert as ../shared/peers/milvus/bench.py.

Against a server already listening (facedb serve or Milvus) on HOST:PORT:
  1. floor: the same 10,000 x 128 request sent to a collection that does not exist, so the
     server receives and decodes it, then refuses it (transport + decoding, no store work);
  2. insert N rows in BATCH-row requests, as bench.py does: client encode s, RPC s, rows/s,
     and the server's CPU seconds (from /proc, given its PID file);
  3. two bounds on bench.py's wall-clock rows/s with this client: the client's encode alone
     (a server answering in no time), and the encode plus one floor round trip (1.) per batch
     (a server that receives and decodes each request as this one does, and stores nothing).

With --floor-only, only 1. (and --json F writes {"batch", "floor_p50_ms"} for summarize.py).

Usage: python insert_probe.py [--n 200000] [--batch 10000] [--pidfile F] [--host H] [--port P]
                              [--floor-only] [--json F]
Run with the peers' venv python (pymilvus 2.2.7), e.g. ~/.cache/facedb-peers/milvus/venv/bin/python.
"""
import argparse
import importlib.util
import json
import os
import time

import grpc
import numpy as np
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility
from pymilvus.grpc_gen import milvus_pb2_grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "..", "..", "..", "..", "shared", "peers", "milvus", "bench.py")
spec = importlib.util.spec_from_file_location("peer_bench", PEER)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)


def cpu_s(pidfile):
    if not pidfile:
        return None
    pid = int(open(pidfile).read().strip())
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--pidfile")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", default="19530")
    ap.add_argument("--floor-only", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    connections.connect(host=a.host, port=a.port)
    stub = milvus_pb2_grpc.MilvusServiceStub(grpc.insecure_channel(
        f"{a.host}:{a.port}", options=[("grpc.max_send_message_length", 256 << 20)]))
    rows = a.batch if a.floor_only else a.n
    X = np.random.default_rng(0).standard_normal((rows, 128), dtype=np.float32)

    req = peer.raw_insert_request("no_such_collection_probe", np.arange(a.batch, dtype=np.int64),
                                  X[:a.batch])
    lat, c0 = [], cpu_s(a.pidfile)
    for _ in range(50):
        t = time.perf_counter()
        stub.Insert(req)
        lat.append(time.perf_counter() - t)
    c1 = cpu_s(a.pidfile)
    cpu = f", server CPU {(c1 - c0) / 50 * 1e3:.2f} ms per request" if c0 is not None else ""
    floor = np.percentile(lat, 50)
    print(f"floor (refused {a.batch} x 128 request): p50 {floor * 1e3:.2f} ms{cpu}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"batch": a.batch, "floor_p50_ms": round(floor * 1e3, 3)}, f)
    if a.floor_only:
        return

    name = "insert_probe"
    if utility.has_collection(name):
        utility.drop_collection(name)
    Collection(name, CollectionSchema([
        FieldSchema("id", DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=128)]))
    enc = rpc = 0.0
    lat, c0, t0 = [], cpu_s(a.pidfile), time.perf_counter()
    for s in range(0, a.n, a.batch):
        e = min(a.n, s + a.batch)
        t = time.perf_counter()
        r = peer.raw_insert_request(name, np.arange(s, e, dtype=np.int64), X[s:e])
        t1 = time.perf_counter()
        res = stub.Insert(r)
        t2 = time.perf_counter()
        if res.status.error_code != 0:
            raise SystemExit(f"insert failed: {res.status}")
        enc, rpc = enc + t1 - t, rpc + t2 - t1
        lat.append(t2 - t1)
    wall, c1 = time.perf_counter() - t0, cpu_s(a.pidfile)
    cpu = f", server CPU {c1 - c0:.2f} s" if c0 is not None else ""
    print(f"insert {a.n} rows in {a.batch}-row requests: {a.n / wall:,.0f} rows/s, wall {wall:.2f} s "
          f"= client encode {enc:.2f} s + RPC {rpc:.2f} s (p50 {np.percentile(lat, 50) * 1e3:.1f} ms){cpu}")
    print(f"client encode bound (a server answering in no time): {a.n / enc:,.0f} rows/s")
    batches = -(-a.n // a.batch)
    print(f"floor bound (each batch encoded, sent, decoded and refused, no store work): "
          f"{a.n / (enc + batches * floor):,.0f} rows/s")
    utility.drop_collection(name)


if __name__ == "__main__":
    main()
