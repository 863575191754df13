//! Raw gRPC tests of the service with the generated Rust client (no Python needed): exact
//! schema round-trip and persistence, search/query parameters, Milvus-shaped statuses for
//! requests clients would refuse themselves (`raw_grpc_errors.txt`), authentication.

mod common;

use base64::Engine;
use common::TestServer;
use facedb_milvus::proto::common::{
    KeyValuePair, PlaceholderGroup, PlaceholderType, PlaceholderValue, SegmentState, Status,
};
use facedb_milvus::proto::milvus::milvus_service_client::MilvusServiceClient;
use facedb_milvus::proto::milvus::{
    search_request::SearchInput, CreateCollectionRequest, CreateIndexRequest, DeleteRequest,
    DescribeCollectionRequest, DescribeIndexRequest, DropIndexRequest, FlushRequest,
    GetCollectionStatisticsRequest, GetLoadStateRequest, GetPersistentSegmentInfoRequest,
    GetQuerySegmentInfoRequest, GetVersionRequest, HasCollectionRequest, InsertRequest,
    LoadCollectionRequest, ManualCompactionRequest, QueryRequest, ReleaseCollectionRequest,
    SearchRequest, SearchResults, ShowCollectionsRequest, UpsertRequest,
};
use facedb_milvus::proto::schema::{
    field_data, i_ds, scalar_field, vector_field, CollectionSchema, DataType, FieldData,
    FieldSchema, FloatArray, LongArray, ScalarField, StringArray, VectorField,
};
use facedb_milvus::Credentials;
use prost::Message;
use tonic::transport::Channel;

type Client = MilvusServiceClient<Channel>;

async fn client(server: &TestServer) -> Client {
    let ch = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    MilvusServiceClient::new(ch)
}

#[allow(deprecated)]
fn codes(s: &Option<Status>) -> (i32, i32, String) {
    let s = s.clone().unwrap_or_default();
    (s.error_code, s.code, s.reason)
}

fn kv(k: &str, v: &str) -> KeyValuePair {
    KeyValuePair {
        key: k.into(),
        value: v.into(),
    }
}

const IDS: [i64; 6] = [1, 2, 3, 4, 5, 6];
const NAMES: [&str; 6] = [
    "xiaoming",
    "xiaoyue",
    "xiaowang",
    "xiaoli",
    "xiaozhang",
    "xiaozhao",
];
const METRICS: [[f32; 3]; 6] = [
    [1.8, 75.0, 25.0],
    [1.75, 70.0, 24.0],
    [1.8, 80.0, 28.0],
    [1.78, 78.0, 30.0],
    [1.75, 70.0, 23.0],
    [1.8, 76.0, 29.0],
];
const Q: [f32; 3] = [1.75, 72.0, 24.0];

fn people_schema() -> CollectionSchema {
    CollectionSchema {
        name: "people".into(),
        description: "people".into(),
        fields: vec![
            FieldSchema {
                name: "id".into(),
                is_primary_key: true,
                description: "key".into(),
                data_type: DataType::Int64 as i32,
                ..Default::default()
            },
            FieldSchema {
                name: "name".into(),
                data_type: DataType::VarChar as i32,
                type_params: vec![kv("max_length", "200")],
                ..Default::default()
            },
            FieldSchema {
                name: "metrics".into(),
                data_type: DataType::FloatVector as i32,
                // an extra type parameter must come back as sent
                type_params: vec![kv("dim", "3"), kv("mmap.enabled", "false")],
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

fn long(name: &str, v: Vec<i64>) -> FieldData {
    FieldData {
        r#type: DataType::Int64 as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::LongData(LongArray { data: v })),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn strings(name: &str, v: Vec<String>) -> FieldData {
    FieldData {
        r#type: DataType::VarChar as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::StringData(StringArray { data: v })),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn floats(name: &str, dim: i64, v: Vec<f32>) -> FieldData {
    FieldData {
        r#type: DataType::FloatVector as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim,
            data: Some(vector_field::Data::FloatVector(FloatArray { data: v })),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn insert_req(ids: Vec<i64>, names: Vec<&str>, flat: Vec<f32>, dim: i64) -> InsertRequest {
    InsertRequest {
        collection_name: "people".into(),
        num_rows: ids.len() as u32,
        fields_data: vec![
            long("id", ids),
            strings("name", names.into_iter().map(String::from).collect()),
            floats("metrics", dim, flat),
        ],
        ..Default::default()
    }
}

/// Creates `people` with the seed's rows, a FLAT index of `metric`, loaded.
async fn seed(c: &mut Client, metric: &str) {
    let st = c
        .create_collection(CreateCollectionRequest {
            collection_name: "people".into(),
            schema: people_schema().encode_to_vec(),
            shards_num: 2,
            consistency_level: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(st)).1, 0);
    let r = c
        .insert(insert_req(
            IDS.to_vec(),
            NAMES.to_vec(),
            METRICS.iter().flatten().copied().collect(),
            3,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&r.status).1, 0, "{:?}", r.status);
    assert_eq!(r.insert_cnt, 6);
    assert_eq!(
        r.i_ds.unwrap().id_field,
        Some(i_ds::IdField::IntId(LongArray { data: IDS.to_vec() }))
    );
    let st = c
        .create_index(CreateIndexRequest {
            collection_name: "people".into(),
            field_name: "metrics".into(),
            extra_params: vec![
                kv("index_type", "IVF_FLAT"),
                kv("metric_type", metric),
                kv("params", "{\"nlist\": 128}"),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(st)).1, 0);
    let st = c
        .load_collection(LoadCollectionRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(st)).1, 0);
}

fn search_req(topk: &str, extra: &[(&str, &str)], vectors: &[&[f32]]) -> SearchRequest {
    let mut params = vec![kv("anns_field", "metrics"), kv("topk", topk)];
    params.extend(extra.iter().map(|(k, v)| kv(k, v)));
    let group = PlaceholderGroup {
        placeholders: vec![PlaceholderValue {
            tag: "$0".into(),
            r#type: PlaceholderType::FloatVector as i32,
            values: vectors
                .iter()
                .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect())
                .collect(),
            ..Default::default()
        }],
    };
    SearchRequest {
        collection_name: "people".into(),
        search_input: Some(SearchInput::PlaceholderGroup(group.encode_to_vec())),
        output_fields: vec!["name".into()],
        search_params: params,
        nq: vectors.len() as i64,
        ..Default::default()
    }
}

fn hit_ids(r: &SearchResults) -> Vec<i64> {
    match r
        .results
        .as_ref()
        .and_then(|x| x.ids.as_ref())
        .and_then(|i| i.id_field.clone())
    {
        Some(i_ds::IdField::IntId(a)) => a.data,
        other => panic!("no int ids: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_index_and_load_state_round_trip_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let sent = people_schema();
    let mut expected = sent.clone();
    for (i, f) in expected.fields.iter_mut().enumerate() {
        f.field_id = 100 + i as i64;
    }
    let described_id;
    {
        let server = TestServer::start(dir.path(), None);
        let mut c = client(&server).await;
        let d = c
            .describe_collection(DescribeCollectionRequest {
                collection_name: "people".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        // not found: error_code UnexpectedError + code 100 + "can't find collection" (pymilvus 2.2)
        let (ec, code, reason) = codes(&d.status);
        assert_eq!((ec, code), (1, 100));
        assert_eq!(
            reason,
            "can't find collection[database=default][collection=people]"
        );
        seed(&mut c, "L2").await;
        let d = c
            .describe_collection(DescribeCollectionRequest {
                collection_name: "people".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(codes(&d.status).1, 0);
        assert_eq!(d.schema.as_ref(), Some(&expected));
        assert_eq!(d.shards_num, 2);
        described_id = d.collection_id;
        assert!(described_id > 0);
    }
    // a new server on the same directory knows schema, index and loaded state
    let server = TestServer::start(dir.path(), None);
    let mut c = client(&server).await;
    let d = c
        .describe_collection(DescribeCollectionRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.schema.as_ref(), Some(&expected));
    assert_eq!(d.collection_id, described_id);
    let idx = c
        .describe_index(DescribeIndexRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(idx.index_descriptions.len(), 1);
    let i = &idx.index_descriptions[0];
    assert_eq!(i.index_name, "_default_idx_102");
    assert_eq!(i.field_name, "metrics");
    assert_eq!(
        i.params,
        vec![
            kv("index_type", "IVF_FLAT"),
            kv("metric_type", "L2"),
            kv("params", "{\"nlist\": 128}")
        ]
    );
    assert_eq!((i.total_rows, i.indexed_rows), (6, 6));
    let ls = c
        .get_load_state(GetLoadStateRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ls.state, 3); // Loaded
    let r = c
        .search(search_req("10", &[], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![2, 5, 1, 6, 4, 3]);
    let stats = c
        .get_collection_statistics(GetCollectionStatisticsRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.stats, vec![kv("row_count", "6")]);
    let show = c
        .show_collections(ShowCollectionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(show.collection_names, vec!["people".to_string()]);
    assert_eq!(show.collection_ids, vec![described_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    let mut c = client(&server).await;
    seed(&mut c, "L2").await;
    // squared L2 from Q: 2:4, 5:5, 1:10.0025, 6:41.0025, 4:72.0009, 3:80.0025
    let r = c
        .search(search_req("10", &[], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    let res = r.results.clone().unwrap();
    assert_eq!(res.scores[..2], [4.0, 5.0]);
    assert!((res.scores[2] - 10.0025).abs() < 1e-4);
    assert_eq!(res.topks, vec![6]);
    assert_eq!((res.num_queries, res.top_k), (1, 10));
    assert_eq!(res.output_fields, vec!["name".to_string()]);
    match &res.fields_data[0].field {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::StringData(s)),
            ..
        })) => assert_eq!(s.data[0], "xiaoyue"),
        other => panic!("{other:?}"),
    }
    // offset skips, round_decimal rounds
    let r = c
        .search(search_req(
            "2",
            &[("offset", "1"), ("round_decimal", "1")],
            &[&Q],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![5, 1]);
    assert_eq!(r.results.unwrap().scores, vec![5.0, 10.0]);
    // range search: 5 <= d < 41 for L2
    let r = c
        .search(search_req(
            "10",
            &[("params", "{\"radius\": 41.0, \"range_filter\": 5.0}")],
            &[&Q],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![5, 1], "{:?}", r.status);
    // two queries, topks per query
    let r = c
        .search(search_req("2", &[], &[&Q, &METRICS[2]]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![2, 5, 3, 4]);
    assert_eq!(r.results.unwrap().topks, vec![2, 2]);
    // the index's metric is used when none is asked
    let r = c
        .search(search_req("1", &[("metric_type", "")], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![2]);
    // query: count(*), pk list, limit/offset, '*' returns the vector too
    let q = |expr: &str, out: &[&str], params: &[(&str, &str)]| QueryRequest {
        collection_name: "people".into(),
        expr: expr.into(),
        output_fields: out.iter().map(|s| s.to_string()).collect(),
        query_params: params.iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    };
    let r = c
        .query(q("", &["count(*)"], &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.fields_data[0].field_name, "count(*)");
    match &r.fields_data[0].field {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::LongData(a)),
            ..
        })) => assert_eq!(a.data, vec![6]),
        other => panic!("{other:?}"),
    }
    let r = c
        .query(q("id in [4, 2, 99]", &["name"], &[]))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = r.fields_data.iter().map(|f| f.field_name.clone()).collect();
    assert_eq!(names, vec!["name", "id"]);
    let mut rows: Vec<(i64, String)> = match (&r.fields_data[1].field, &r.fields_data[0].field) {
        (
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(ids)),
                ..
            })),
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::StringData(names)),
                ..
            })),
        ) => ids
            .data
            .iter()
            .copied()
            .zip(names.data.iter().cloned())
            .collect(),
        other => panic!("{other:?}"),
    };
    rows.sort();
    assert_eq!(rows, vec![(2, "xiaoyue".into()), (4, "xiaoli".into())]);
    // filtered search and count
    let mut req = search_req("10", &[], &[&Q]);
    req.dsl = "id > 2".into();
    let r = c.search(req).await.unwrap().into_inner();
    assert_eq!(hit_ids(&r), vec![5, 6, 4, 3], "{:?}", r.status);
    let r = c
        .query(q("name like 'xiaoz%'", &["count(*)"], &[]))
        .await
        .unwrap()
        .into_inner();
    match &r.fields_data[0].field {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::LongData(a)),
            ..
        })) => assert_eq!(a.data, vec![2]),
        other => panic!("{other:?} {:?}", r.status),
    }
    // malformed and unknown-field expressions: Milvus's message shape
    let mut req = search_req("10", &[], &[&Q]);
    req.dsl = "id >> 2".into();
    let r = c.search(req).await.unwrap().into_inner();
    let (ec, code, reason) = codes(&r.status);
    assert_eq!((ec, code), (1, 65535));
    assert!(
        reason
            .starts_with("failed to create query plan: cannot parse expression: id >> 2, error: "),
        "{reason}"
    );
    let r = c
        .query(q("age > 2", &["id"], &[]))
        .await
        .unwrap()
        .into_inner();
    let (_, code, reason) = codes(&r.status);
    assert_eq!(code, 65535);
    assert!(
        reason.contains("cannot parse expression: age > 2, error: field age not exist"),
        "{reason}"
    );
    let r = c
        .query(q("", &["*"], &[("limit", "2"), ("offset", "1")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&r.status).1, 0, "{:?}", r.status);
    let names: Vec<_> = r.fields_data.iter().map(|f| f.field_name.clone()).collect();
    assert_eq!(names, vec!["id", "name", "metrics"]);
    match &r.fields_data[2].field {
        Some(field_data::Field::Vectors(v)) => {
            assert_eq!(v.dim, 3);
            assert_eq!(
                v.data,
                Some(vector_field::Data::FloatVector(FloatArray {
                    data: [METRICS[1], METRICS[2]].concat()
                }))
            );
        }
        other => panic!("{other:?}"),
    }
    // empty result still carries the columns (pymilvus needs them)
    let r = c
        .query(q("id in [99]", &["name"], &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&r.status).1, 0);
    assert_eq!(r.fields_data.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_upsert_delete_flush() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    let mut c = client(&server).await;
    seed(&mut c, "IP").await;
    let r = c
        .upsert(UpsertRequest {
            collection_name: "people".into(),
            num_rows: 1,
            fields_data: vec![
                long("id", vec![2]),
                strings("name", vec!["moved".into()]),
                floats("metrics", 3, vec![100.0, 100.0, 100.0]),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((codes(&r.status).1, r.upsert_cnt), (0, 1));
    let r = c
        .delete(DeleteRequest {
            collection_name: "people".into(),
            expr: "id in [1, 3, 77]".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((codes(&r.status).1, r.delete_cnt), (0, 2));
    let f = c
        .flush(FlushRequest {
            collection_names: vec!["people".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&f.status).1, 0);
    assert!(f.coll_flush_ts["people"] > 0);
    // IP from Q: 2 is now [100,100,100] -> 9775, the best
    let r = c
        .search(search_req("10", &[], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![2, 4, 6, 5]);
    // compaction (by collection id, as pymilvus sends it) keeps exactly the live rows
    let id = c
        .describe_collection(DescribeCollectionRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .collection_id;
    let m = c
        .manual_compaction(ManualCompactionRequest {
            collection_id: id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&m.status).1, 0, "{:?}", m.status);
    assert!(m.compaction_id > 0);
    let r = c
        .search(search_req("10", &[], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![2, 4, 6, 5]);
    let r = c
        .delete(DeleteRequest {
            collection_name: "people".into(),
            expr: "name like 'x%'".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // a filter expression: every remaining "x..." name goes, the moved row 2 stays
    assert_eq!((codes(&r.status).1, r.delete_cnt), (0, 3), "{:?}", r.status);
    let r = c
        .search(search_req("10", &[], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_errors_are_milvus_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    let mut c = client(&server).await;
    seed(&mut c, "L2").await;
    // raw_grpc_errors.txt: topk outside 1..=16384
    for k in ["0", "-1", "16385"] {
        let r = c
            .search(search_req(k, &[], &[&Q]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            codes(&r.status),
            (
                1,
                65535,
                format!("topk [{k}] is invalid, top k should be in range [1, 16384], but got {k}")
            )
        );
    }
    let r = c
        .search(search_req("16384", &[], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hit_ids(&r), vec![2, 5, 1, 6, 4, 3]);
    // inserts of the wrong dimension
    let r = c
        .insert(insert_req(
            vec![100],
            vec!["bad"],
            vec![1.0, 2.0, 3.0, 4.0],
            4,
        ))
        .await
        .unwrap()
        .into_inner();
    let (ec, code, reason) = codes(&r.status);
    assert_eq!((ec, code), (1, 65535));
    assert!(reason.contains("dim"), "{reason}");
    let r = c
        .insert(insert_req(vec![101], vec!["bad"], vec![1.0, 2.0], 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        codes(&r.status),
        (
            1,
            65535,
            "the length(2) of float data should divide the dim(3)".into()
        )
    );
    let r = c
        .insert(insert_req(vec![102, 103], vec!["x", "y"], vec![1.0; 12], 3))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        codes(&r.status),
        (
            5,
            1100,
            "the num_rows (4) of field (metrics) is not equal to passed num_rows (2): invalid parameter[expected=2][actual=4]"
                .into()
        )
    );
    // a duplicate key within one batch: rejected, nothing written
    let r = c
        .insert(insert_req(vec![7, 7], vec!["p", "q"], vec![1.0; 6], 3))
        .await
        .unwrap()
        .into_inner();
    let (ec, code, reason) = codes(&r.status);
    assert_eq!((ec, code), (5, 1100));
    assert!(reason.starts_with("duplicate primary key 7"), "{reason}");
    // unknown collection on a data RPC: CollectionNotExists / 100
    let mut req = search_req("3", &[], &[&Q]);
    req.collection_name = "nope".into();
    let r = c.search(req).await.unwrap().into_inner();
    assert_eq!(
        codes(&r.status),
        (
            4,
            100,
            "collection not found[database=default][collection=nope]".into()
        )
    );
    // garbage placeholder bytes
    let mut req = search_req("3", &[], &[&Q]);
    req.search_input = Some(SearchInput::PlaceholderGroup(vec![0xff, 0xff, 0xff]));
    let r = c.search(req).await.unwrap().into_inner();
    assert_eq!(codes(&r.status).1, 65535);
    // bad schema bytes
    let st = c
        .create_collection(CreateCollectionRequest {
            collection_name: "garbage".into(),
            schema: vec![0xff, 0x01, 0x02],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(st)).1, 1100);
    // creating again with the same schema succeeds, with another fails
    let same = c
        .create_collection(CreateCollectionRequest {
            collection_name: "people".into(),
            schema: people_schema().encode_to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(same)).1, 0);
    let mut other = people_schema();
    other.description = "other".into();
    let st = c
        .create_collection(CreateCollectionRequest {
            collection_name: "people".into(),
            schema: other.encode_to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(codes(&Some(st)).2.contains("create duplicate collection"));
    // drop index while loaded
    let st = c
        .drop_index(DropIndexRequest {
            collection_name: "people".into(),
            field_name: "metrics".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        codes(&Some(st)).2,
        "index cannot be dropped, collection is loaded, please release it first"
    );
    // after release: search fails with 101, the server still answers
    c.release_collection(ReleaseCollectionRequest {
        collection_name: "people".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = c
        .search(search_req("3", &[], &[&Q]))
        .await
        .unwrap()
        .into_inner();
    let (ec, code, reason) = codes(&r.status);
    assert_eq!((ec, code), (1, 101));
    assert!(reason.starts_with("failed to search: collection not loaded[collection="));
    let v = c
        .get_version(GetVersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(v.version.starts_with("v2.3.5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::result_large_err)] // tonic's interceptor signature
async fn authentication() {
    let dir = tempfile::tempdir().unwrap();
    let creds = Credentials::parse("secret").unwrap();
    assert_eq!(creds.user, "root");
    let server = TestServer::start(dir.path(), Some(creds));
    let ch = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut plain = MilvusServiceClient::new(ch.clone());
    let err = plain
        .has_collection(HasCollectionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // Insert and Upsert have their own decoding path (crate::bulk): behind the same check.
    let err = plain.insert(InsertRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = plain.upsert(UpsertRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    for (header, ok) in [
        ("root:secret", true),
        ("root:wrong", false),
        ("admin:secret", false),
    ] {
        let value = base64::engine::general_purpose::STANDARD.encode(header);
        let mut c =
            MilvusServiceClient::with_interceptor(ch.clone(), move |mut r: tonic::Request<()>| {
                r.metadata_mut()
                    .insert("authorization", value.parse().unwrap());
                Ok(r)
            });
        let r = c
            .has_collection(HasCollectionRequest {
                collection_name: "x".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(r.is_ok(), ok, "{header}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::result_large_err)] // tonic's interceptor signature
async fn only_the_default_database_exists() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    let ch = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for (db, ok) in [("default", true), ("", true), ("other", false)] {
        let mut c =
            MilvusServiceClient::with_interceptor(ch.clone(), move |mut r: tonic::Request<()>| {
                r.metadata_mut().insert("dbname", db.parse().unwrap());
                Ok(r)
            });
        let r = c
            .has_collection(HasCollectionRequest {
                collection_name: "x".into(),
                ..Default::default()
            })
            .await;
        match r {
            Ok(v) => assert!(ok && !v.into_inner().value, "{db}"),
            Err(e) => {
                assert!(!ok, "{db}: {e:?}");
                assert_eq!(e.code(), tonic::Code::NotFound);
                assert!(e.message().contains("database not found[database=other]"));
            }
        }
    }
}

/// `CreateIndex` builds the store's index in the background: `DescribeIndex` reports
/// progress until every sealed row is indexed, `nprobe` reaches the index, and build
/// parameters outside Milvus's ranges are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivf_index_is_built_and_searched_through_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    let mut c = client(&server).await;
    let st = c
        .create_collection(CreateCollectionRequest {
            collection_name: "people".into(),
            schema: people_schema().encode_to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(st)).1, 0);
    // 5000 rows on a 3-d grid-like pattern, distinct distances to the query.
    let n = 5000;
    let ids: Vec<i64> = (1..=n).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("p{i}")).collect();
    let vecs: Vec<f32> = ids
        .iter()
        .flat_map(|&i| {
            let x = i as f32;
            [
                (x * 0.618).fract() * 2.0,
                70.0 + (x * 0.414).fract() * 10.0,
                20.0 + (x * 0.732).fract() * 10.0,
            ]
        })
        .collect();
    let r = c
        .insert(insert_req(
            ids.clone(),
            names.iter().map(String::as_str).collect(),
            vecs.clone(),
            3,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&r.status).1, 0);
    let f = c
        .flush(FlushRequest {
            collection_names: vec!["people".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&f.status).1, 0);
    let bad = c
        .create_index(CreateIndexRequest {
            collection_name: "people".into(),
            field_name: "metrics".into(),
            extra_params: vec![
                kv("index_type", "HNSW"),
                kv("metric_type", "L2"),
                kv("params", "{\"M\": 100, \"efConstruction\": 200}"),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (_, code, reason) = codes(&Some(bad));
    assert_ne!(code, 0);
    assert!(
        reason.contains("param 'M' (100) should be in range [4, 64]"),
        "{reason}"
    );
    let st = c
        .create_index(CreateIndexRequest {
            collection_name: "people".into(),
            field_name: "metrics".into(),
            extra_params: vec![
                kv("index_type", "IVF_FLAT"),
                kv("metric_type", "L2"),
                kv("params", "{\"nlist\": 16}"),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(st)).1, 0);
    let mut finished = false;
    for _ in 0..600 {
        let d = c
            .describe_index(DescribeIndexRequest {
                collection_name: "people".into(),
                field_name: "metrics".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let i = &d.index_descriptions[0];
        assert_eq!(i.total_rows, n);
        if i.state == facedb_milvus::proto::common::IndexState::Finished as i32 {
            assert_eq!(i.indexed_rows, n, "{i:?}");
            assert_eq!(i.pending_index_rows, 0);
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(finished, "index never finished");
    let st = c
        .load_collection(LoadCollectionRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&Some(st)).1, 0);
    // pymilvus's utility.get_query_segment_info / get_persistent_segment_info: the one sealed
    // segment, with all its rows and the index built for it.
    let q = c
        .get_query_segment_info(GetQuerySegmentInfoRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&q.status).1, 0);
    assert_eq!(q.infos.len(), 1, "{:?}", q.infos);
    assert_eq!(q.infos[0].num_rows, n);
    assert_eq!(q.infos[0].state, SegmentState::Sealed as i32);
    assert_eq!(q.infos[0].index_name, "_default_idx_102");
    let p = c
        .get_persistent_segment_info(GetPersistentSegmentInfoRequest {
            collection_name: "people".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&p.status).1, 0);
    assert_eq!(p.infos.len(), 1);
    assert_eq!(
        (p.infos[0].segment_id, p.infos[0].num_rows),
        (q.infos[0].segment_id, n)
    );
    assert_eq!(p.infos[0].state, SegmentState::Flushed as i32);
    // Every list probed: exactly the brute-force answer.
    let mut want: Vec<(f32, i64)> = vecs
        .chunks(3)
        .zip(&ids)
        .map(|(v, &id)| {
            let d: f32 = v.iter().zip(&Q).map(|(a, b)| (a - b) * (a - b)).sum();
            (d, id)
        })
        .collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let want: Vec<i64> = want[..10].iter().map(|x| x.1).collect();
    let r = c
        .search(search_req(
            "10",
            &[("metric_type", "L2"), ("params", "{\"nprobe\": 16}")],
            &[&Q],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(codes(&r.status).1, 0, "{:?}", r.status);
    assert_eq!(hit_ids(&r), want);
    // nprobe beyond nlist: refused with the index's range.
    let r = c
        .search(search_req(
            "10",
            &[("metric_type", "L2"), ("params", "{\"nprobe\": 17}")],
            &[&Q],
        ))
        .await
        .unwrap()
        .into_inner();
    let (_, code, reason) = codes(&r.status);
    assert_ne!(code, 0);
    assert!(
        reason.contains("param 'nprobe' (17) should be in range [1, 16]"),
        "{reason}"
    );
}
