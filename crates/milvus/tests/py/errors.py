"""Error cases of ../shared/peers/milvus/errors_example.py against a facedb server, asserted:
each gives a MilvusException with Milvus 2.3.5's code and message (pymilvus 2.2.x reports the
deprecated error_code, 2.3.x the newer code), and the server keeps serving afterwards.
Usage: python errors.py HOST PORT   (prints OK on success, exits 1 with a message otherwise)"""
import sys

import pymilvus
from pymilvus import (connections, utility, Collection, CollectionSchema, FieldSchema, DataType,
                      MilvusException)

host, port = sys.argv[1], sys.argv[2]
V23 = pymilvus.__version__.startswith("2.3")
connections.connect(host=host, port=port)
NAME = "people_err"
if utility.has_collection(NAME):
    utility.drop_collection(NAME)
schema = CollectionSchema([
    FieldSchema(name="id", dtype=DataType.INT64, is_primary=True, auto_id=False),
    FieldSchema(name="name", dtype=DataType.VARCHAR, max_length=200),
    FieldSchema(name="metrics", dtype=DataType.FLOAT_VECTOR, dim=3),
])
coll = Collection(NAME, schema, shards_num=2)
# the schema round-trips: pymilvus reopens the collection only if DescribeCollection returns
# exactly the schema it sent
reopened = Collection(NAME, schema)
assert reopened.schema == schema, (reopened.schema, schema)
assert Collection(NAME).schema == schema
coll.insert([[1, 2, 3, 4, 5, 6],
             ['xiaoming', 'xiaoyue', 'xiaowang', 'xiaoli', 'xiaozhang', 'xiaozhao'],
             [[1.8, 75, 25], [1.75, 70, 24], [1.8, 80, 28], [1.78, 78, 30], [1.75, 70, 23], [1.8, 76, 29]]])
coll.flush()
Q = [[1.75, 72, 24]]
P = {"metric_type": "L2", "params": {"nprobe": 10}}
failures = []


def search(**kw):
    args = dict(data=Q, anns_field="metrics", param=P, limit=10, output_fields=["id", "name"],
                consistency_level="Strong")
    args.update(kw)
    return coll.search(**args)


def expect(tag, fn, code23, code22, *fragments):
    """fn must raise MilvusException with the version's code and every fragment in the message
    (a tuple fragment means: one of these)."""
    try:
        r = fn()
    except MilvusException as e:
        want = code23 if V23 else code22
        msg = e.message
        ok = e.code == want and all(
            any(x in msg for x in f) if isinstance(f, tuple) else f in msg for f in fragments)
        if not ok:
            failures.append(f"{tag}: got code={e.code!r} message={msg!r}; want code={want} and {fragments}")
        return
    failures.append(f"{tag}: no error, got {r!r}")


def check(tag, cond, detail=""):
    if not cond:
        failures.append(f"{tag}: {detail}")


# load needs an index first, as in Milvus
expect("load without index", lambda: coll.load(), 700, 25, "index not found")
coll.create_index("metrics", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
expect("search before load", lambda: search(), 101, 1,
       "failed to search: collection not loaded[collection=")
expect("query before load", lambda: coll.query(expr="id > 0"), 101, 1,
       "failed to query: collection not loaded[collection=")
coll.load()
expect("insert mixed dims", lambda: coll.insert(
    [[102, 103], ["a", "b"], [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]]]), 65535, 1,
    "the length(7) of float data should divide the dim(3)")
expect("insert duplicate pk", lambda: coll.insert([[1], ["dup"], [[1.75, 72, 24]]]), 1100, 5,
       "duplicate primary key 1")
expect("insert duplicate pk within batch", lambda: coll.insert(
    [[7, 7], ["p", "q"], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]), 1100, 5, "duplicate primary key 7")
rows = coll.query(expr="id == 1", output_fields=["id", "name"], consistency_level="Strong")
check("duplicate not written", rows == [{"id": 1, "name": "xiaoming"}], rows)
check("count after rejected inserts", coll.num_entities == 6, coll.num_entities)
res = search(limit=16384)
check("limit 16384", [len(h) for h in res] == [6], [len(h) for h in res])
check("L2 order", [h.id for h in res[0]] == [2, 5, 1, 6, 4, 3], [h.id for h in res[0]])
expect("limit 16385", lambda: search(limit=16385), 65535, 1,
       "topk [16385] is invalid, top k should be in range [1, 16384], but got 16385")
expect("unknown output field", lambda: search(output_fields=["id", "age"]), 65535, 1,
       "field age not exist")
res = search(output_fields=["*"])
check("output *", res[0][0].entity.get("name") == "xiaoyue", res)
expect("malformed expr", lambda: search(expr="id >> 2"), 65535, 1,
       "failed to create query plan: cannot parse expression: id >> 2, error: ")
expect("malformed expr 'id >'", lambda: search(expr="id >"), 65535, 1,
       "cannot parse expression: id >, error: ")
expect("expr on unknown field", lambda: search(expr="age > 2"), 65535, 1,
       "cannot parse expression: age > 2, error: field age not exist")
expect("expr type mismatch", lambda: search(expr="name > 2"), 65535, 1,
       "cannot parse expression: name > 2, error: ")
expect("unquoted like pattern", lambda: search(expr="name like xiao%"), 65535, 1,
       "cannot parse expression: name like xiao%, error: ")
res = search(expr="id in [2,4,6]")
check("filtered search", [h.id for h in res[0]] == [2, 6, 4], [h.id for h in res[0]])
expect("metric mismatch", lambda: search(param={"metric_type": "IP", "params": {}}), 65535, 1,
       "metric type not match: invalid parameter[expected=L2][actual=IP]")
if V23:  # pymilvus 2.2 checks these on the client
    expect("query vector dim 4", lambda: search(data=[[1.0, 2.0, 3.0, 4.0]]), 65535, 1,
           "vector dimension mismatch")
    expect("anns_field unknown", lambda: search(anns_field="vec"), 65535, 1,
           "failed to get field schema by name: fieldName(vec) not found")
    expect("anns_field not a vector", lambda: search(anns_field="name"), 65535, 1,
           "field (name) to search is not of vector data type")
try:
    Collection("no_such_collection").search(Q, "metrics", P, 10)
    failures.append("search on a missing collection: no error")
except Exception as e:  # pymilvus raises SchemaNotReadyException after has_collection says no
    check("missing collection", "not exist" in str(e), repr(e))
for dim in (0, 32769):
    expect(f"create dim={dim}", lambda: Collection(f"bad_dim_{dim}", CollectionSchema([
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=dim)])), 65535, 1,
        f"invalid dimension: {dim}. should be in range 1 ~ 32768")
expect("drop index while loaded", lambda: coll.drop_index(), 65535, 1,
       "index cannot be dropped, collection is loaded, please release it first")
coll.delete("id in [1]")
rows = coll.query(expr="id == 1", output_fields=["name"], consistency_level="Strong")
check("delete then query", rows == [], rows)
check("count after delete", coll.num_entities == 5, coll.num_entities)
check("server still serves", utility.get_server_version().startswith("v2.3.5"))
coll.release()
coll.drop_index()
utility.drop_collection(NAME)
check("dropped", not utility.has_collection(NAME))
if failures:
    print("FAILURES:\n" + "\n".join(failures))
    sys.exit(1)
print("OK")
