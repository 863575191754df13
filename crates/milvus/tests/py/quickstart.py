"""MilvusClient quick start (pymilvus >= 2.3) against a facedb server; asserts every result.
Usage: python quickstart.py HOST PORT   (prints OK on success, exits 1 with a message otherwise)"""
import sys

import numpy as np
from pymilvus import MilvusClient, MilvusException

host, port = sys.argv[1], sys.argv[2]
c = MilvusClient(uri=f"http://{host}:{port}")
NAME = "quickstart"
if c.has_collection(NAME):
    c.drop_collection(NAME)

# create_collection(dimension=) -> id INT64 pk, "vector" FLOAT_VECTOR, dynamic field on,
# COSINE index, loaded.
c.create_collection(NAME, dimension=4)
assert NAME in c.list_collections(), c.list_collections()
desc = c.describe_collection(NAME)
assert desc["enable_dynamic_field"] is True, desc
assert [f["name"] for f in desc["fields"]] == ["id", "vector"], desc
assert c.get_load_state(NAME)["state"].name == "Loaded", c.get_load_state(NAME)
assert c.describe_index(NAME, c.list_indexes(NAME)[0])["metric_type"] == "COSINE"

rng = np.random.default_rng(7)
vecs = rng.random((20, 4), dtype=np.float32)
rows = [{"id": i, "vector": vecs[i].tolist(), "color": f"c{i % 3}", "n": i * 10} for i in range(20)]
r = c.insert(NAME, rows)
assert r["insert_count"] == 20, r
assert list(r["ids"]) == list(range(20)), r
assert c.get_collection_stats(NAME)["row_count"] == 20

# search: cosine similarity, best first, dynamic fields returned
q = vecs[3]
res = c.search(NAME, data=[q.tolist()], limit=5, output_fields=["color", "n"])
norm = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
sims = norm @ (q / np.linalg.norm(q))
want = np.argsort(-sims, kind="stable")[:5].tolist()
got = [h["id"] for h in res[0]]
assert got == want, (got, want)
for h in res[0]:
    i = h["id"]
    assert abs(h["distance"] - sims[i]) <= 1e-5 * max(1.0, abs(sims[i])), (h, sims[i])
    assert h["entity"] == {"color": f"c{i % 3}", "n": i * 10}, h

# two queries, limit 3
res = c.search(NAME, data=[vecs[0].tolist(), vecs[19].tolist()], limit=3)
assert [len(x) for x in res] == [3, 3], res
assert res[0][0]["id"] == 0 and res[1][0]["id"] == 19, res

# query / get by primary key (vector and dynamic keys come back)
got = c.query(NAME, filter="id in [4, 2]", output_fields=["id", "color"])
assert sorted((g["id"], g["color"]) for g in got) == [(2, "c2"), (4, "c1")], got
got = c.get(NAME, ids=[5])
assert len(got) == 1 and got[0]["id"] == 5 and got[0]["n"] == 50 and got[0]["color"] == "c2", got
assert np.allclose(got[0]["vector"], vecs[5]), got
cnt = c.query(NAME, filter="", output_fields=["count(*)"])
assert cnt[0]["count(*)"] == 20, cnt
got = c.query(NAME, filter="id >= 17", output_fields=["n"])
assert sorted((g["id"], g["n"]) for g in got) == [(17, 170), (18, 180), (19, 190)], got
# the dynamic field by Milvus's name
got = c.query(NAME, filter='$meta["color"] == "c1" and id < 8', output_fields=["color"])
assert sorted(g["id"] for g in got) == [1, 4, 7], got
res = c.search(NAME, data=[q.tolist()], limit=20, filter="id in [0, 9, 3]")
assert sorted(h["id"] for h in res[0]) == [0, 3, 9] and res[0][0]["id"] == 3, res

# upsert replaces a row
c.upsert(NAME, [{"id": 5, "vector": [1.0, 0.0, 0.0, 0.0], "color": "new", "n": -1}])
got = c.get(NAME, ids=[5], output_fields=["color", "n"])
assert got == [{"id": 5, "color": "new", "n": -1}], got

# a duplicate primary key is rejected (facedb's rule)
try:
    c.insert(NAME, [{"id": 1, "vector": [0.0, 0.0, 0.0, 1.0]}])
    raise AssertionError("duplicate primary key accepted")
except MilvusException as e:
    assert "duplicate primary key 1" in e.message, e

# delete by ids, then they are gone
d = c.delete(NAME, ids=[1, 2, 3])
assert d == {"delete_count": 3}, d
assert c.get(NAME, ids=[1, 2, 3]) == [], c.get(NAME, ids=[1, 2, 3])
assert c.get_collection_stats(NAME)["row_count"] == 17
res = c.search(NAME, data=[vecs[3].tolist()], limit=20)
assert 3 not in [h["id"] for h in res[0]] and len(res[0]) == 17, res

c.release_collection(NAME)
assert c.get_load_state(NAME)["state"].name == "NotLoad"
try:
    c.search(NAME, data=[q.tolist()], limit=5)
    raise AssertionError("search on a released collection succeeded")
except MilvusException as e:
    assert e.code == 101 and "collection not loaded" in e.message, e
c.drop_collection(NAME)
assert not c.has_collection(NAME)
print("OK")
