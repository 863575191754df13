//! The blocking work behind each RPC: store calls and Milvus metadata, one method per request.
//! [`crate::service`] runs these on tokio's blocking pool.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use facedb_store::{Database, IndexSpec, Metric, RangeParams, SearchRequest as StoreSearch, Value};
use milvus::proto::common::{IndexState, KeyValuePair, LoadState, SegmentState};
use milvus::proto::milvus::{
    CreateCollectionRequest, CreateIndexRequest, DeleteRequest, DescribeCollectionResponse,
    DescribeIndexRequest, DescribeIndexResponse, DropIndexRequest, FlushResponse, IndexDescription,
    InsertRequest, MutationResult, PersistentSegmentInfo, QueryRequest, QueryResults,
    QuerySegmentInfo, SearchRequest, SearchResults, ShowCollectionsResponse, ShowType,
    UpsertRequest,
};
use milvus::proto::schema::{
    field_data, scalar_field, CollectionSchema, FieldData, LongArray, ScalarField, SearchResultData,
};
use prost::Message;

use crate::catalog::{store_schema, CollInfo};
use crate::data::{
    batch_from_fields_data, field_data as build_field_data, ids, resolve_output_fields,
    OutputFields, DYNAMIC_COLUMN,
};
use crate::meta::{unix_ms, Clock, CollectionMeta, IndexMeta, MetaStore, LOGICAL_BITS};
use crate::params::{
    decode_placeholders, kv_map, parse_query_params, parse_search_params, round_score, MetricKind,
};
use crate::schema::{described_schema, validate_new_schema, Fields};
use crate::status::{success, Error, Result};

/// Name of the one partition every collection has.
pub const DEFAULT_PARTITION: &str = "_default";

/// Shared state of the service.
pub struct Core {
    db: Database,
    meta: Mutex<MetaStore>,
    /// Serialises schema and metadata changes (create/drop collection, index, load).
    ddl: Mutex<()>,
    clock: Clock,
    next_identifier: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data as consistent as the last persisted state.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_partition(name: &str) -> Result<()> {
    if name.is_empty() || name == DEFAULT_PARTITION {
        Ok(())
    } else {
        Err(Error::Rejected(format!(
            "partition not found[partition={name}]"
        )))
    }
}

/// A filter expression as the store reads it: Milvus's name of the dynamic field, `$meta`,
/// becomes the store's column [`DYNAMIC_COLUMN`] (outside string literals).
pub fn store_expr(expr: &str) -> Cow<'_, str> {
    if !expr.contains("$meta") {
        return Cow::Borrowed(expr);
    }
    let mut out = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if quote.is_none() && rest.starts_with("$meta") {
            out.push_str(DYNAMIC_COLUMN);
            rest = &rest["$meta".len()..];
            continue;
        }
        if escaped {
            escaped = false;
        } else if quote.is_some() && c == '\\' {
            escaped = true;
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == '"' || c == '\'') {
            quote = Some(c);
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The store's index for a `CreateIndex` request's `index_type` and `params` JSON
/// (`nlist`, `M`, `efConstruction`, as numbers or strings). `Ok(None)` for an index type
/// the store does not have (served exactly).
///
/// # Errors
/// [`Error::Rejected`] for parameters outside Milvus's ranges or not integers.
fn store_index_spec(m: &std::collections::HashMap<&str, &str>) -> Result<Option<IndexSpec>> {
    let index_type = m
        .get("index_type")
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let params: serde_json::Map<String, serde_json::Value> =
        match m.get("params").map(|s| s.trim()).filter(|s| !s.is_empty()) {
            Some(p) => match serde_json::from_str(p) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => {
                    return Err(Error::Rejected(format!(
                        "index params {p} are not a JSON object"
                    )))
                }
            },
            None => Default::default(),
        };
    if !matches!(
        index_type.as_str(),
        "FLAT" | "IVF_FLAT" | "IVF_SQ8" | "SQ8" | "HNSW"
    ) {
        return Ok(None);
    }
    let mut bad = None;
    let get = |key: &str| -> Option<i64> {
        params.get(key).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
    };
    for key in ["nlist", "M", "efConstruction"] {
        if params.contains_key(key) && get(key).is_none() {
            bad = Some(key);
        }
    }
    if let Some(key) = bad {
        return Err(Error::Rejected(format!(
            "param '{key}' ({}) should be an integer",
            params[key]
        )));
    }
    // Parameter names are case-sensitive (knowhere's): `{"m": 16}` would otherwise be
    // ignored silently and the default used.
    for given in params.keys() {
        if let Some(known) = ["nlist", "M", "efConstruction"]
            .into_iter()
            .find(|k| *k != given && k.eq_ignore_ascii_case(given))
        {
            return Err(Error::Rejected(format!(
                "index param '{given}' is not known: did you mean '{known}'? (names are case-sensitive)"
            )));
        }
    }
    IndexSpec::from_milvus(&index_type, get)
        .map(Some)
        .map_err(|e| Error::Rejected(e.to_string()))
}

fn store_metric(m: MetricKind) -> Metric {
    match m {
        MetricKind::L2 => Metric::L2,
        MetricKind::Ip => Metric::Ip,
        MetricKind::Cosine => Metric::Cosine,
    }
}

impl Core {
    /// Opens the store in `dir` (created if needed) and the Milvus metadata beside it.
    ///
    /// # Errors
    /// [`Error::Internal`] when the store or the metadata file cannot be opened.
    pub fn open(dir: &Path, opts: facedb_store::Options) -> Result<Self> {
        let db = Database::open_with(dir, opts).map_err(Error::from_store)?;
        let meta = MetaStore::open(Some(dir))?;
        Ok(Self {
            db,
            meta: Mutex::new(meta),
            ddl: Mutex::new(()),
            clock: Clock::default(),
            next_identifier: AtomicI64::new(1),
        })
    }

    /// A new hybrid timestamp.
    pub fn timestamp(&self) -> u64 {
        self.clock.now()
    }

    /// A new connection identifier (for `Connect`).
    pub fn identifier(&self) -> i64 {
        self.next_identifier.fetch_add(1, Ordering::Relaxed)
    }

    /// The collection `name` with its metadata.
    ///
    /// # Errors
    /// [`Error::CollectionNotFound`].
    pub fn info(&self, name: &str) -> Result<CollInfo> {
        if !self.db.has_collection(name) {
            return Err(Error::collection_not_found(name));
        }
        let coll = self.db.collection(name).map_err(Error::from_store)?;
        let meta = lock(&self.meta).get(name).cloned();
        CollInfo::new(name, coll, meta.as_ref())
    }

    fn put_meta(&self, name: &str, meta: CollectionMeta) -> Result<()> {
        lock(&self.meta).put(name, meta)
    }

    // ----- collections -----

    /// `CreateCollection`: validates the serialized schema, creates the store collection and
    /// records the Milvus metadata. Creating an existing collection with the same schema
    /// succeeds (as Milvus); with another schema it fails.
    pub fn create_collection(&self, req: CreateCollectionRequest) -> Result<()> {
        let schema = CollectionSchema::decode(req.schema.as_slice()).map_err(|e| {
            Error::InvalidParameter(format!("invalid collection schema: {e}: invalid parameter"))
        })?;
        let schema = validate_new_schema(&req.collection_name, schema)?;
        let fields = Fields::from_proto(&schema)?;
        let sschema = store_schema(&schema, &fields)?;
        let _g = lock(&self.ddl);
        if self.db.has_collection(&req.collection_name) {
            let existing = self.info(&req.collection_name)?;
            if described_schema(&existing.schema) == described_schema(&schema) {
                return Ok(());
            }
            return Err(Error::Rejected(format!(
                "create duplicate collection with different parameters, collection: {}",
                req.collection_name
            )));
        }
        let created_ts = self.timestamp();
        self.db
            .create_collection(sschema)
            .map_err(Error::from_store)?;
        let meta = CollectionMeta {
            id: created_ts as i64,
            created_ts,
            created_utc_ms: created_ts >> LOGICAL_BITS,
            schema: schema.encode_to_vec(),
            consistency_level: req.consistency_level,
            shards_num: if req.shards_num <= 0 {
                1
            } else {
                req.shards_num
            },
            properties: req
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            loaded: false,
            indexes: vec![],
        };
        self.put_meta(&req.collection_name, meta)
    }

    /// `DropCollection` (dropping a missing collection succeeds, as in Milvus 2.3).
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let _g = lock(&self.ddl);
        if self.db.has_collection(name) {
            self.db.drop_collection(name).map_err(Error::from_store)?;
        }
        lock(&self.meta).remove(name)
    }

    /// `HasCollection`.
    pub fn has_collection(&self, name: &str) -> bool {
        self.db.has_collection(name)
    }

    /// The name of the collection whose Milvus id is `id`.
    fn name_of_id(&self, id: i64) -> Result<String> {
        self.db
            .list_collections()
            .into_iter()
            .find(|n| self.info(n).map(|i| i.meta.id == id).unwrap_or(false))
            .ok_or_else(|| Error::collection_not_found(&id.to_string()))
    }

    /// `DescribeCollection` (by name, or by id when the name is empty).
    pub fn describe_collection(&self, name: &str, id: i64) -> Result<DescribeCollectionResponse> {
        let name = if name.is_empty() && id != 0 {
            self.name_of_id(id)?
        } else {
            name.to_string()
        };
        let info = self.info(&name)?;
        let m = &info.meta;
        Ok(DescribeCollectionResponse {
            status: Some(success()),
            schema: Some(described_schema(&info.schema)),
            collection_id: m.id,
            virtual_channel_names: (0..m.shards_num)
                .map(|i| format!("facedb-dml_{i}_{}v{i}", m.id))
                .collect(),
            physical_channel_names: (0..m.shards_num)
                .map(|i| format!("facedb-dml_{i}"))
                .collect(),
            created_timestamp: m.created_ts,
            created_utc_timestamp: m.created_utc_ms,
            shards_num: m.shards_num,
            consistency_level: m.consistency_level,
            collection_name: name.clone(),
            properties: m
                .properties
                .iter()
                .map(|(k, v)| KeyValuePair {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            db_name: "default".into(),
            num_partitions: 1,
            ..Default::default()
        })
    }

    /// `ShowCollections` (`InMemory` lists loaded collections only).
    #[allow(deprecated)] // inMemory_percentages is deprecated yet still read by old clients
    pub fn show_collections(&self, show_type: i32) -> Result<ShowCollectionsResponse> {
        let mut r = ShowCollectionsResponse {
            status: Some(success()),
            ..Default::default()
        };
        let only_loaded = show_type == ShowType::InMemory as i32;
        let mut names = self.db.list_collections();
        names.sort();
        for name in names {
            let Ok(info) = self.info(&name) else { continue };
            if only_loaded && !info.meta.loaded {
                continue;
            }
            r.collection_names.push(name);
            r.collection_ids.push(info.meta.id);
            r.created_timestamps.push(info.meta.created_ts);
            r.created_utc_timestamps.push(info.meta.created_utc_ms);
            r.in_memory_percentages
                .push(if info.meta.loaded { 100 } else { 0 });
            r.query_service_available.push(info.meta.loaded);
            r.shards_num.push(info.meta.shards_num);
        }
        Ok(r)
    }

    /// `GetCollectionStatistics`: `row_count` = live rows.
    pub fn collection_statistics(&self, name: &str) -> Result<Vec<KeyValuePair>> {
        let info = self.info(name)?;
        Ok(vec![KeyValuePair {
            key: "row_count".into(),
            value: info.coll.count().to_string(),
        }])
    }

    // ----- writes -----

    fn mutation(&self) -> MutationResult {
        MutationResult {
            status: Some(success()),
            timestamp: self.timestamp(),
            ..Default::default()
        }
    }

    /// `Insert`.
    pub fn insert(&self, req: InsertRequest) -> Result<MutationResult> {
        check_partition(&req.partition_name)?;
        let info = self.info(&req.collection_name)?;
        let (batch, n) = batch_from_fields_data(&info.fields, req.fields_data, req.num_rows)?;
        let keys = info.coll.insert(batch).map_err(Error::from_store)?;
        Ok(MutationResult {
            i_ds: Some(ids(info.fields.pk(), &keys)),
            succ_index: (0..n as u32).collect(),
            insert_cnt: keys.len() as i64,
            ..self.mutation()
        })
    }

    /// `Upsert` (rows with an existing key replace it).
    pub fn upsert(&self, req: UpsertRequest) -> Result<MutationResult> {
        check_partition(&req.partition_name)?;
        let info = self.info(&req.collection_name)?;
        if info.fields.pk().auto_id {
            return Err(Error::Rejected(
                "upsert can not be used on a collection whose primary key is auto_id".into(),
            ));
        }
        let (batch, n) = batch_from_fields_data(&info.fields, req.fields_data, req.num_rows)?;
        let keys = info.coll.upsert(batch).map_err(Error::from_store)?;
        Ok(MutationResult {
            i_ds: Some(ids(info.fields.pk(), &keys)),
            succ_index: (0..n as u32).collect(),
            upsert_cnt: keys.len() as i64,
            ..self.mutation()
        })
    }

    /// `Delete` by filter expression (the store evaluates it and deletes the matches
    /// atomically).
    pub fn delete(&self, req: DeleteRequest) -> Result<MutationResult> {
        check_partition(&req.partition_name)?;
        let info = self.info(&req.collection_name)?;
        let expr = store_expr(req.expr.trim());
        if expr.is_empty() {
            return Err(Error::Rejected("delete expression cannot be empty".into()));
        }
        let deleted = info
            .coll
            .delete_where(&expr)
            .map_err(|e| Error::from_store_expr(e, req.expr.trim()))?;
        Ok(MutationResult {
            delete_cnt: deleted as i64,
            i_ds: Some(ids(info.fields.pk(), &[])),
            ..self.mutation()
        })
    }

    /// `Flush`: seals and persists each collection (synchronously).
    pub fn flush(&self, names: &[String]) -> Result<FlushResponse> {
        let mut r = FlushResponse {
            status: Some(success()),
            db_name: "default".into(),
            ..Default::default()
        };
        for name in names {
            let info = self.info(name)?;
            info.coll.flush().map_err(Error::from_store)?;
            let ts = self.timestamp();
            r.coll_seg_i_ds
                .insert(name.clone(), LongArray { data: vec![] });
            r.flush_coll_seg_i_ds
                .insert(name.clone(), LongArray { data: vec![] });
            r.coll_seal_times
                .insert(name.clone(), (unix_ms() / 1000) as i64);
            r.coll_flush_ts.insert(name.clone(), ts);
        }
        Ok(r)
    }

    /// `GetPersistentSegmentInfo`: the collection's sealed segments (state `Flushed` once
    /// the segment's file is written, `Sealed` while it is written in the background).
    pub fn persistent_segments(&self, name: &str) -> Result<Vec<PersistentSegmentInfo>> {
        let info = self.info(name)?;
        let id = info.meta.id;
        Ok(info
            .coll
            .segments()
            .into_iter()
            .filter(|s| s.sealed)
            .map(|s| PersistentSegmentInfo {
                segment_id: s.id as i64,
                collection_id: id,
                partition_id: id,
                num_rows: s.live_rows as i64,
                state: if s.persisted {
                    SegmentState::Flushed
                } else {
                    SegmentState::Sealed
                } as i32,
                ..Default::default()
            })
            .collect())
    }

    /// `GetQuerySegmentInfo`: the segments a search reads (none until `LoadCollection`):
    /// sealed ones (state `Sealed`, with the vector index's name and id once it is built for
    /// them) and the growing one when it holds rows (state `Growing`).
    pub fn query_segments(&self, name: &str) -> Result<Vec<QuerySegmentInfo>> {
        let info = self.info(name)?;
        if !info.meta.loaded {
            return Ok(Vec::new());
        }
        let id = info.meta.id;
        let vindex = info.meta.indexes.iter().find(|i| {
            info.fields
                .get(&i.field_name)
                .is_some_and(|f| f.kind.is_vector())
        });
        Ok(info
            .coll
            .segments()
            .into_iter()
            .filter(|s| s.sealed || s.rows > 0)
            .map(|s| {
                let (index_name, index_id) = match vindex {
                    Some(i) if s.indexed => (i.index_name.clone(), i.index_id),
                    _ => (String::new(), 0),
                };
                QuerySegmentInfo {
                    segment_id: s.id as i64,
                    collection_id: id,
                    partition_id: id,
                    mem_size: s.vector_bytes as i64,
                    num_rows: s.live_rows as i64,
                    index_name,
                    index_id,
                    state: if s.sealed {
                        SegmentState::Sealed
                    } else {
                        SegmentState::Growing
                    } as i32,
                    node_ids: vec![1],
                    ..Default::default()
                }
            })
            .collect())
    }

    /// `ManualCompaction` (by collection id, or name when given): compacts synchronously and
    /// answers the compaction id (a timestamp).
    pub fn compact(&self, collection_id: i64, name: &str) -> Result<i64> {
        let name = if name.is_empty() {
            self.name_of_id(collection_id)?
        } else {
            name.to_string()
        };
        let info = self.info(&name)?;
        info.coll.compact().map_err(Error::from_store)?;
        Ok(self.timestamp() as i64)
    }

    // ----- indexes and loading -----

    /// `CreateIndex`: records the index as asked (served by exact search). Asking again with
    /// the same parameters succeeds; other parameters on an indexed field fail, as Milvus.
    pub fn create_index(&self, req: CreateIndexRequest) -> Result<()> {
        let _g = lock(&self.ddl);
        let mut info = self.info(&req.collection_name)?;
        let field = info
            .fields
            .get(&req.field_name)
            .filter(|f| !f.is_dynamic)
            .cloned()
            .ok_or_else(|| {
                Error::Rejected(format!(
                    "cannot create index on non-exist field: {}",
                    req.field_name
                ))
            })?;
        let params: Vec<(String, String)> = req
            .extra_params
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        if field.kind.is_vector() {
            let m = kv_map(&req.extra_params);
            if let Some(metric) = m.get("metric_type").filter(|s| !s.trim().is_empty()) {
                MetricKind::parse(metric)?;
            }
            if let Some(p) = m.get("params").filter(|s| !s.trim().is_empty()) {
                serde_json::from_str::<serde_json::Value>(p).map_err(|e| {
                    Error::Rejected(format!("index params {p} are not valid JSON: {e}"))
                })?;
            }
        }
        let index_name = if req.index_name.is_empty() {
            format!("_default_idx_{}", field.id)
        } else {
            req.index_name.clone()
        };
        if let Some(old) = info
            .meta
            .indexes
            .iter()
            .find(|i| i.field_name == field.name)
        {
            if old.params == params && old.index_name == index_name {
                return Ok(());
            }
            return Err(Error::Rejected(
                "CreateIndex failed: at most one distinct index is allowed per field".into(),
            ));
        }
        if info.meta.indexes.iter().any(|i| i.index_name == index_name) {
            return Err(Error::Rejected(format!(
                "CreateIndex failed: index already exist, but parameters are inconsistent: index name {index_name}"
            )));
        }
        let vector_index = if field.kind.is_vector() {
            Some(store_index_spec(&kv_map(&req.extra_params))?)
        } else {
            None
        };
        info.meta.indexes.push(IndexMeta {
            index_name,
            index_id: self.timestamp() as i64,
            field_name: field.name.clone(),
            params,
        });
        if let Some(spec) = vector_index {
            let metric = match info.index_metric(&field.name).transpose()? {
                Some(m) => store_metric(m),
                None => Metric::L2,
            };
            // Unknown index types are served exactly (FLAT), as the issue asks.
            info.coll
                .create_index(spec.unwrap_or(IndexSpec::Flat), metric)
                .map_err(Error::from_store)?;
        }
        self.put_meta(&info.name, info.meta.clone())
    }

    fn matching_indexes<'a>(
        info: &'a CollInfo,
        field_name: &str,
        index_name: &str,
    ) -> Vec<&'a IndexMeta> {
        info.meta
            .indexes
            .iter()
            .filter(|i| {
                (field_name.is_empty() || i.field_name == field_name)
                    && (index_name.is_empty() || i.index_name == index_name)
            })
            .collect()
    }

    /// `DescribeIndex`: every index matching the field and index names (empty = any).
    pub fn describe_index(&self, req: DescribeIndexRequest) -> Result<DescribeIndexResponse> {
        let info = self.info(&req.collection_name)?;
        let found = Self::matching_indexes(&info, &req.field_name, &req.index_name);
        if found.is_empty() {
            return Err(Error::IndexNotFound {
                collection: info.name.clone(),
            });
        }
        let rows = info.coll.count() as i64;
        let progress = info.coll.index_progress();
        let has_vector_index = info.coll.index_config().is_some();
        let pending_rows = |field: &str| -> i64 {
            if has_vector_index && info.fields.is_vector(field) {
                ((progress.total_rows - progress.indexed_rows) as i64).min(rows)
            } else {
                0
            }
        };
        Ok(DescribeIndexResponse {
            status: Some(success()),
            index_descriptions: found
                .into_iter()
                .map(|i| IndexDescription {
                    index_name: i.index_name.clone(),
                    index_id: i.index_id,
                    params: i
                        .params
                        .iter()
                        .map(|(k, v)| KeyValuePair {
                            key: k.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                    field_name: i.field_name.clone(),
                    // Rows of sealed segments still waiting for their index are pending;
                    // the growing segment is never indexed (searched exactly by design),
                    // so its rows count as served.
                    indexed_rows: rows - pending_rows(&i.field_name),
                    total_rows: rows,
                    pending_index_rows: pending_rows(&i.field_name),
                    state: if !has_vector_index
                        || !info.fields.is_vector(&i.field_name)
                        || progress.finished()
                    {
                        IndexState::Finished as i32
                    } else {
                        IndexState::InProgress as i32
                    },
                    index_state_fail_reason: progress.error.clone().unwrap_or_default(),
                    ..Default::default()
                })
                .collect(),
        })
    }

    /// `DropIndex` (refused while loaded, as Milvus; dropping a missing index succeeds).
    pub fn drop_index(&self, req: DropIndexRequest) -> Result<()> {
        let _g = lock(&self.ddl);
        let mut info = self.info(&req.collection_name)?;
        if info.meta.loaded {
            return Err(Error::Rejected(
                "index cannot be dropped, collection is loaded, please release it first".into(),
            ));
        }
        let before = info.meta.indexes.len();
        info.meta.indexes.retain(|i| {
            !((req.field_name.is_empty() || i.field_name == req.field_name)
                && (req.index_name.is_empty() || i.index_name == req.index_name))
        });
        if info.meta.indexes.len() != before {
            if !info
                .fields
                .vectors()
                .any(|v| info.meta.indexes.iter().any(|i| i.field_name == v.name))
            {
                info.coll.drop_index().map_err(Error::from_store)?;
            }
            self.put_meta(&info.name, info.meta.clone())?;
        }
        Ok(())
    }

    /// `LoadCollection`: the vector field needs an index first, as in Milvus.
    pub fn load_collection(&self, name: &str) -> Result<()> {
        let _g = lock(&self.ddl);
        let mut info = self.info(name)?;
        for v in info.fields.vectors() {
            if !info.meta.indexes.iter().any(|i| i.field_name == v.name) {
                return Err(Error::IndexNotFound {
                    collection: info.name.clone(),
                });
            }
        }
        if !info.meta.loaded {
            info.meta.loaded = true;
            self.put_meta(&info.name, info.meta.clone())?;
        }
        Ok(())
    }

    /// `ReleaseCollection`.
    pub fn release_collection(&self, name: &str) -> Result<()> {
        let _g = lock(&self.ddl);
        let mut info = self.info(name)?;
        if info.meta.loaded {
            info.meta.loaded = false;
            self.put_meta(&info.name, info.meta.clone())?;
        }
        Ok(())
    }

    /// `GetLoadingProgress`: once loaded, the percent of sealed rows ready for search
    /// (100 unless segments without an index still wait for their sketch, see
    /// [`facedb_store::Collection::search_ready_percent`]; they are searched exactly
    /// meanwhile).
    pub fn loading_progress(&self, name: &str) -> Result<i64> {
        let info = self.info(name)?;
        if info.meta.loaded {
            Ok(info.coll.search_ready_percent() as i64)
        } else {
            Err(Error::CollectionNotLoaded {
                op: "get loading progress",
                collection_id: info.meta.id,
            })
        }
    }

    /// `GetLoadState`.
    pub fn load_state(&self, name: &str) -> LoadState {
        match self.info(name) {
            Ok(i) if i.meta.loaded => LoadState::Loaded,
            Ok(_) => LoadState::NotLoad,
            Err(_) => LoadState::NotExist,
        }
    }

    // ----- reads -----

    /// `Search`.
    pub fn search(&self, req: SearchRequest) -> Result<SearchResults> {
        let info = self.info(&req.collection_name)?;
        for p in &req.partition_names {
            check_partition(p)?;
        }
        if !info.meta.loaded {
            return Err(Error::CollectionNotLoaded {
                op: "search",
                collection_id: info.meta.id,
            });
        }
        let sp = parse_search_params(&req.search_params, &info.fields)?;
        let field = info
            .fields
            .get(&sp.anns_field)
            .cloned()
            .ok_or_else(|| Error::Rejected(format!("field {} not exist", sp.anns_field)))?;
        let placeholder = match &req.search_input {
            Some(milvus::proto::milvus::search_request::SearchInput::PlaceholderGroup(b)) => {
                b.as_slice()
            }
            Some(_) => return Err(Error::Unsupported("search by primary keys".into())),
            None => &[],
        };
        let (nq, vectors) = decode_placeholders(placeholder, &field)?;
        let metric = match info.index_metric(&field.name).transpose()? {
            Some(index_metric) => match sp.metric {
                Some(asked) if asked != index_metric => {
                    return Err(Error::Rejected(format!(
                        "metric type not match: invalid parameter[expected={}][actual={}]",
                        index_metric.name(),
                        asked.name()
                    )))
                }
                _ => index_metric,
            },
            None => sp.metric.unwrap_or(MetricKind::L2),
        };
        let out = resolve_output_fields(&info.fields, &req.output_fields, false)?;
        let expr = store_expr(req.dsl.trim());
        let range = sp.radius.map(|radius| RangeParams {
            radius: Some(radius),
            range_filter: sp.range_filter,
        });
        let dim = vectors.len() / nq;
        let hits = info
            .coll
            .search(&StoreSearch {
                vectors: vectors.chunks_exact(dim).map(<[f32]>::to_vec).collect(),
                metric: store_metric(metric),
                topk: sp.topk,
                offset: sp.offset,
                output_fields: out.store_names(),
                range,
                filter: (!expr.is_empty()).then(|| expr.to_string()),
                knobs: sp.knobs,
            })
            .map_err(|e| Error::from_store_expr(e, req.dsl.trim()))?;
        let mut keys = Vec::new();
        let mut scores = Vec::new();
        let mut topks = Vec::with_capacity(nq);
        let mut rows: Vec<&[(String, Value)]> = Vec::new();
        for q in &hits {
            topks.push(q.len() as i64);
            for h in q {
                keys.push(h.pk.clone());
                scores.push(round_score(h.distance, sp.round_decimal));
                rows.push(h.fields.as_slice());
            }
        }
        let OutputFields { columns, names } = out;
        Ok(SearchResults {
            status: Some(success()),
            results: Some(SearchResultData {
                num_queries: nq as i64,
                top_k: sp.topk as i64,
                fields_data: build_field_data(&columns, rows.iter().copied()),
                scores,
                ids: Some(ids(info.fields.pk(), &keys)),
                topks,
                output_fields: names,
                primary_field_name: info.fields.pk().name.clone(),
                ..Default::default()
            }),
            collection_name: info.name.clone(),
            ..Default::default()
        })
    }

    /// `Query`: expression, output fields, `limit` / `offset`, and `count(*)`.
    pub fn query(&self, req: QueryRequest) -> Result<QueryResults> {
        let info = self.info(&req.collection_name)?;
        for p in &req.partition_names {
            check_partition(p)?;
        }
        if !info.meta.loaded {
            return Err(Error::CollectionNotLoaded {
                op: "query",
                collection_id: info.meta.id,
            });
        }
        let qp = parse_query_params(&req.query_params)?;
        let expr = store_expr(req.expr.trim());
        let pk = info.fields.pk().clone();
        let is_count = req.output_fields.len() == 1
            && req.output_fields[0]
                .replace(' ', "")
                .eq_ignore_ascii_case("count(*)");
        if req
            .output_fields
            .iter()
            .any(|f| f.replace(' ', "").eq_ignore_ascii_case("count(*)"))
            && !is_count
        {
            return Err(Error::Rejected(
                "count entities with pagination or other output fields is not allowed".into(),
            ));
        }
        if is_count {
            let n = info
                .coll
                .count_where((!expr.is_empty()).then_some(expr.as_ref()))
                .map_err(|e| Error::from_store_expr(e, req.expr.trim()))?;
            return Ok(QueryResults {
                status: Some(success()),
                fields_data: vec![FieldData {
                    r#type: milvus::proto::schema::DataType::Int64 as i32,
                    field_name: "count(*)".into(),
                    field: Some(field_data::Field::Scalars(ScalarField {
                        data: Some(scalar_field::Data::LongData(LongArray {
                            data: vec![n as i64],
                        })),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                collection_name: info.name.clone(),
                output_fields: vec!["count(*)".into()],
                primary_field_name: pk.name.clone(),
                ..Default::default()
            });
        }
        if expr.is_empty() && qp.limit.is_none() {
            return Err(Error::Rejected(
                "empty expression should be used with limit".into(),
            ));
        }
        let out = resolve_output_fields(&info.fields, &req.output_fields, true)?;
        let names = out.store_names();
        let rows = info
            .coll
            .query(
                (!expr.is_empty()).then_some(expr.as_ref()),
                &names,
                qp.limit,
                qp.offset,
            )
            .map_err(|e| Error::from_store_expr(e, req.expr.trim()))?;
        let OutputFields { columns, names } = out;
        Ok(QueryResults {
            status: Some(success()),
            fields_data: build_field_data(&columns, rows.iter().map(|r| r.as_slice())),
            collection_name: info.name.clone(),
            output_fields: names,
            primary_field_name: pk.name.clone(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{store_expr, store_index_spec, Error, IndexSpec};

    #[test]
    fn index_params_are_checked_as_given() {
        let spec = |t: &str, p: &str| {
            store_index_spec(&[("index_type", t), ("params", p)].into_iter().collect())
        };
        assert_eq!(
            spec("HNSW", r#"{"M": "32", "efConstruction": 100}"#).unwrap(),
            Some(IndexSpec::Hnsw {
                m: 32,
                ef_construction: 100
            })
        );
        for (t, p, msg) in [
            (
                "IVF_FLAT",
                r#"{"nlist": -5}"#,
                "param 'nlist' (-5) should be in range [1, 65536]",
            ),
            (
                "HNSW",
                r#"{"M": 100}"#,
                "param 'M' (100) should be in range [4, 64]",
            ),
            (
                "HNSW",
                r#"{"m": 16}"#,
                "index param 'm' is not known: did you mean 'M'? (names are case-sensitive)",
            ),
        ] {
            match spec(t, p) {
                Err(Error::Rejected(m)) => assert_eq!(m, msg, "{p}"),
                other => panic!("{p}: {other:?}"),
            }
        }
    }

    #[test]
    fn dynamic_field_name_is_mapped_outside_strings() {
        assert_eq!(store_expr("id > 2"), "id > 2");
        assert_eq!(
            store_expr(r#"$meta["color"] == "$meta" and $meta['a\'$meta'] > 1"#),
            r#"_meta["color"] == "$meta" and _meta['a\'$meta'] > 1"#
        );
    }
}
