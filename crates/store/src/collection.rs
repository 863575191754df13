//! A collection: schema, segments, WAL, manifest; every read and write operation.

use crate::codec::{Reader, Writer};
use crate::data::{validate_batch, Batch, ColumnData, PkColumn, PrimaryKey, Rows, Value};
use crate::error::{IoContext, Result, StoreError};
use crate::schema::{CollectionSchema, MAX_NQ, MAX_TOPK};
use crate::segment::{idx_path, seg_path, Segment, Vectors};
use crate::vindex::{self, IndexConfig, IndexProgress};
use crate::wal::{sync_dir, Wal, WalRecovery};
use crate::Options;
use facedb_index::{
    flat_search, AnnParams, FlatParams, FlatSketch, IndexSpec, Metric, SearchKnobs,
};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const OP_INSERT: u8 = 1;
const OP_UPSERT: u8 = 2;
const OP_DELETE: u8 = 3;
/// Where a live key's row is: its segment's position in [`State::segments`] order (the
/// growing segment's is the number of sealed segments, and stays the same when it seals and
/// joins them), and its row there.
#[derive(Clone, Copy, Debug)]
struct Loc {
    seg: u32,
    row: u32,
}

enum PkIndex {
    Int(HashMap<i64, Loc>),
    Str(HashMap<String, Loc>),
}

impl PkIndex {
    fn get(&self, pk: &PrimaryKey) -> Option<Loc> {
        match (self, pk) {
            (PkIndex::Int(m), PrimaryKey::Int(k)) => m.get(k).copied(),
            (PkIndex::Str(m), PrimaryKey::Str(k)) => m.get(k).copied(),
            _ => None,
        }
    }
    fn insert(&mut self, pk: &PrimaryKey, loc: Loc) {
        match (self, pk) {
            (PkIndex::Int(m), PrimaryKey::Int(k)) => {
                m.insert(*k, loc);
            }
            (PkIndex::Str(m), PrimaryKey::Str(k)) => {
                m.insert(k.clone(), loc);
            }
            _ => {}
        }
    }
    fn remove(&mut self, pk: &PrimaryKey) -> Option<Loc> {
        match (self, pk) {
            (PkIndex::Int(m), PrimaryKey::Int(k)) => m.remove(k),
            (PkIndex::Str(m), PrimaryKey::Str(k)) => m.remove(k),
            _ => None,
        }
    }
    fn clear(&mut self) {
        match self {
            PkIndex::Int(m) => m.clear(),
            PkIndex::Str(m) => m.clear(),
        }
    }
}

pub(crate) struct State {
    sealed: Vec<Segment>,
    growing: Segment,
    pk_index: PkIndex,
    next_segment_id: u64,
    generation: u64,
    /// At least every integer key in `pk_index` (keys above it are new).
    max_int_pk: i64,
}

impl State {
    /// Sealed segments in order, then the growing one.
    pub(crate) fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.iter().chain([&self.growing])
    }

    /// Number of sealed segments (they come first in [`State::segments`]).
    pub(crate) fn sealed_count(&self) -> usize {
        self.sealed.len()
    }

    /// Position of a live key in [`State::segments`] order, and its row.
    pub(crate) fn locate(&self, pk: &PrimaryKey) -> Option<(usize, usize)> {
        self.pk_index
            .get(pk)
            .map(|l| (l.seg as usize, l.row as usize))
    }

    fn seg(&self, i: u32) -> &Segment {
        self.sealed.get(i as usize).unwrap_or(&self.growing)
    }
    fn seg_mut(&mut self, i: u32) -> &mut Segment {
        match self.sealed.get_mut(i as usize) {
            Some(s) => s,
            None => &mut self.growing,
        }
    }

    fn delete_pk(&mut self, pk: &PrimaryKey) -> bool {
        match self.pk_index.remove(pk) {
            Some(loc) => self.seg_mut(loc.seg).mark_deleted(loc.row as usize),
            None => false,
        }
    }

    /// Appends rows to the growing segment; with `replace` an existing key is replaced
    /// (upsert semantics; insert checks for duplicates before it gets here). `staged`: the
    /// rows' vectors were written into the segment's spare room already
    /// ([`Segment::spare_vectors`], whose contract the caller keeps).
    fn apply_rows(&mut self, rows: &Rows, replace: bool, staged: bool) {
        if replace {
            for pk in &rows.pks {
                self.delete_pk(pk);
            }
        }
        let base = self.growing.rows();
        if staged {
            // SAFETY: the caller filled the spare room taken since the last change.
            unsafe { self.growing.append_staged(rows) };
        } else {
            self.growing.append(rows);
        }
        for (i, pk) in rows.pks.iter().enumerate() {
            self.pk_index.insert(
                pk,
                Loc {
                    seg: self.sealed.len() as u32,
                    row: (base + i) as u32,
                },
            );
            if let PrimaryKey::Int(k) = pk {
                self.max_int_pk = self.max_int_pk.max(*k);
            }
        }
    }

    /// Seals the growing segment: it joins the sealed segments (frozen, at the position it
    /// had, so its keys' locations stay valid) and `fresh`, given the next segment id, grows
    /// instead. A growing segment without live rows is replaced and dropped (its records and
    /// their deletes replay to nothing). Returns the sealed segment's id, if one was sealed.
    fn seal_growing(&mut self, fresh: impl FnOnce(u64) -> Segment) -> Option<u64> {
        if self.growing.rows() == 0 {
            return None;
        }
        let mut old = std::mem::replace(&mut self.growing, fresh(self.next_segment_id));
        self.next_segment_id += 1;
        if old.live_rows() == 0 {
            return None;
        }
        old.freeze();
        let id = old.id;
        self.sealed.push(old);
        Some(id)
    }

    fn apply_delete(&mut self, pks: &[PrimaryKey]) -> usize {
        pks.iter().filter(|pk| self.delete_pk(pk)).count()
    }

    fn rebuild_pk_index(&mut self) {
        self.pk_index.clear();
        let mut entries: Vec<(PrimaryKey, Loc)> = Vec::new();
        let segs = self
            .sealed
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, s))
            .chain([(self.sealed.len() as u32, &self.growing)]);
        for (si, s) in segs {
            for row in 0..s.rows() {
                if !s.is_deleted(row) {
                    entries.push((
                        s.pks.get(row),
                        Loc {
                            seg: si,
                            row: row as u32,
                        },
                    ));
                }
            }
        }
        if let PkIndex::Int(m) = &mut self.pk_index {
            m.reserve(entries.len());
        }
        for (pk, loc) in entries {
            self.pk_index.insert(&pk, loc);
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Manifest {
    version: u32,
    generation: u64,
    checkpoint_lsn: u64,
    wal_seq: u64,
    next_segment_id: u64,
    next_auto_id: i64,
    segments: Vec<ManifestSegment>,
}

#[derive(Serialize, Deserialize)]
struct ManifestSegment {
    id: u64,
    rows: u64,
    deleted: Vec<u32>,
}

/// Range-search bounds, as Milvus's `radius` and `range_filter` search parameters.
///
/// L2 (squared): `range_filter <= d < radius`. IP / COSINE: `radius < s <= range_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RangeParams {
    /// Outer bound (exclusive): the worst score a result may have.
    pub radius: Option<f32>,
    /// Inner bound (inclusive): the best score a result may have.
    pub range_filter: Option<f32>,
}

/// What [`Collection::segments`] tells of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Segment id (file `segments/<id>.seg` once sealed).
    pub id: u64,
    /// Rows stored, deleted ones included.
    pub rows: usize,
    /// Rows not deleted.
    pub live_rows: usize,
    /// False for the growing segment (in memory and the WAL).
    pub sealed: bool,
    /// The segment's file is written (a sealed segment is written in the background after
    /// it seals; until then its rows are durable in the WAL).
    pub persisted: bool,
    /// The collection's vector index is built for this segment.
    pub indexed: bool,
    /// Without an index: the segment's 8-bit sketch is built, and exact searches read it
    /// (a quarter of the bytes) before scoring the few rows near the top on their `f32`
    /// vectors ([`facedb_index::FlatSketch`]).
    pub sketched: bool,
    /// Bytes of `f32` vectors (`rows × dim × 4`).
    pub vector_bytes: usize,
}

/// A search request (Milvus `Search`).
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Query vectors, `nq` of them (`1..=16384`), each of the collection's dimension.
    pub vectors: Vec<Vec<f32>>,
    /// Metric to score with.
    pub metric: Metric,
    /// Results per query, `1..=16384`.
    pub topk: usize,
    /// Results skipped before the `topk` returned (pagination); `topk + offset <= 16384`.
    pub offset: usize,
    /// Fields returned with each hit (`"*"` = every scalar field).
    pub output_fields: Vec<String>,
    /// Range search bounds; `None` for plain top-k search.
    pub range: Option<RangeParams>,
    /// Boolean filter expression (Milvus grammar).
    pub filter: Option<String>,
    /// Index search parameters (`nprobe`, `ef`, `rerank`); `None` fields take the index's
    /// defaults. Ignored by segments searched exactly.
    pub knobs: SearchKnobs,
}

impl SearchRequest {
    /// A plain top-k search of the given vectors.
    pub fn new(vectors: Vec<Vec<f32>>, metric: Metric, topk: usize) -> Self {
        SearchRequest {
            vectors,
            metric,
            topk,
            offset: 0,
            output_fields: vec![],
            range: None,
            filter: None,
            knobs: SearchKnobs::default(),
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Primary key of the row.
    pub pk: PrimaryKey,
    /// Score in metric units: squared L2 (smaller is better), IP or cosine (larger is better).
    pub distance: f32,
    /// Requested output fields, in request order.
    pub fields: Vec<(String, Value)>,
}

/// A row as `(field, value)` pairs.
pub type Row = Vec<(String, Value)>;

#[derive(Clone, Copy)]
enum FieldRef {
    Pk,
    Scalar(usize),
    Vector,
}

/// One collection of the embedded database. Cheap to share (`Arc<Collection>`); all
/// methods take `&self` and are safe to call from many threads.
///
/// Writes are serialised (WAL order); reads run concurrently on the current segments.
pub struct Collection {
    schema: CollectionSchema,
    dir: PathBuf,
    opts: Options,
    state: RwLock<State>,
    wal: Wal,
    write_lock: Mutex<()>,
    next_auto_id: AtomicI64,
    poisoned: Mutex<Option<String>>,
    recovery: WalRecovery,
    /// This collection, for the background index builder.
    me: Weak<Collection>,
    /// The vector index configuration; its write lock orders configuration changes against
    /// index files being written.
    vindex: RwLock<Option<IndexConfig>>,
    /// Bumped on every index configuration change: a build started under an older one is
    /// discarded.
    vindex_gen: AtomicU64,
    builder: Mutex<Builder>,
    builder_done: parking_lot::Condvar,
    /// Sealed segments waiting for their files, and the background writer's state.
    persist: Mutex<Persist>,
    /// Signalled when a pending segment's file is committed or the writer stops.
    persist_done: parking_lot::Condvar,
    /// Held while a segment file is written and committed (by the background writer, or by
    /// `flush` / `compact`, which write what is pending themselves): one at a time, in order.
    persist_lock: Mutex<()>,
    /// Set when the database closes: the background writer stops after its current file.
    closing: std::sync::atomic::AtomicBool,
}

/// An empty growing segment for `schema`'s fields.
fn empty_growing(schema: &CollectionSchema, id: u64) -> Segment {
    let scalars = schema
        .scalar_fields()
        .map(|f| ColumnData::empty(&f.data_type))
        .collect();
    Segment::new_growing(
        id,
        PkColumn::empty_for(&schema.primary_field().data_type),
        scalars,
        schema.dim(),
    )
}

/// Whether a growing segment's vectors reached the size at which it seals.
fn reached_seal_size(growing: &Segment, opts: &Options) -> bool {
    growing.rows() * growing.dim * 4 >= opts.seal_bytes
}

/// A sealed segment whose file is not written yet.
#[derive(Clone, Copy)]
struct PendingSeal {
    /// The segment.
    id: u64,
    /// LSN of the last WAL record in it (or before it).
    checkpoint: u64,
    /// WAL file to replay from once it is written: the first after its seal, or for a
    /// segment sealed while the WAL was replayed, the file of the first record after it
    /// (records after `checkpoint` are there or later).
    wal_seq: u64,
}

/// State of the background segment writer.
#[derive(Default)]
struct Persist {
    running: bool,
    queue: std::collections::VecDeque<PendingSeal>,
}

/// State of the background index builder.
#[derive(Default)]
struct Builder {
    running: bool,
    /// Segments whose build failed under the current configuration (not retried until
    /// the configuration changes or the collection is reopened).
    failed: Vec<u64>,
    last_error: Option<String>,
}

/// Inserts whose vectors take at least this many bytes wait for their WAL fsync on a second
/// thread while their rows are applied.
const PARALLEL_SYNC_BYTES: usize = 1 << 20;

/// Segments with fewer rows than this are always searched exactly, on their `f32` rows (no
/// index, no sketch).
const MIN_INDEXED_SEARCH_ROWS: usize = 2048;
/// A filter letting through fewer than 1/32 of a segment's rows is answered by an exact scan
/// of the matching rows instead of the index.
const SELECTIVE_FILTER_RATIO: usize = 32;

/// Deletes every file in `segdir` that belongs to no live segment: segment files left by a
/// crash between writing and committing, temporary files, replaced segments.
fn remove_unlisted_segments(segdir: &Path, live: impl Iterator<Item = u64>) -> Result<()> {
    let live: std::collections::HashSet<u64> = live.collect();
    for e in fs::read_dir(segdir).ctx(segdir)? {
        let e = e.ctx(segdir)?;
        let name = e.file_name().to_string_lossy().to_string();
        let id = name.split('.').next().and_then(|s| s.parse::<u64>().ok());
        if id.is_none_or(|id| !live.contains(&id)) {
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(())
}

pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = fs::File::create(&tmp).ctx(&tmp)?;
        f.write_all(bytes).ctx(&tmp)?;
        f.sync_all().ctx(&tmp)?;
    }
    fs::rename(&tmp, path).ctx(path)?;
    sync_dir(dir)
}

impl Collection {
    /// Opens (or creates) the collection stored in `dir`: loads the MANIFEST, maps sealed
    /// segments, replays the WAL past the checkpoint.
    pub(crate) fn open(
        dir: &Path,
        schema: CollectionSchema,
        opts: Options,
    ) -> Result<Arc<Collection>> {
        fs::create_dir_all(dir.join("segments")).ctx(dir)?;
        let mpath = dir.join("MANIFEST");
        let manifest: Manifest = if mpath.exists() {
            let b = fs::read(&mpath).ctx(&mpath)?;
            serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
                path: mpath.display().to_string(),
                reason: e.to_string(),
            })?
        } else {
            Manifest {
                version: 1,
                next_segment_id: 1,
                next_auto_id: 1,
                ..Default::default()
            }
        };
        let segdir = dir.join("segments");
        let mut sealed = Vec::new();
        for ms in &manifest.segments {
            let mut s = Segment::open(&segdir, ms.id)?;
            if s.rows() as u64 != ms.rows {
                return Err(StoreError::Corrupt {
                    path: seg_path(&segdir, ms.id).display().to_string(),
                    reason: "row count differs from MANIFEST".into(),
                });
            }
            for r in &ms.deleted {
                if (*r as usize) < s.rows() {
                    s.mark_deleted(*r as usize);
                }
            }
            sealed.push(s);
        }
        // Remove files the manifest does not name (a crash between writing and committing).
        remove_unlisted_segments(&segdir, manifest.segments.iter().map(|s| s.id))?;
        let pk_index = match schema.primary_field().data_type {
            crate::schema::DataType::Int64 => PkIndex::Int(HashMap::default()),
            _ => PkIndex::Str(HashMap::default()),
        };
        let mut st = State {
            sealed,
            growing: empty_growing(&schema, manifest.next_segment_id),
            pk_index,
            next_segment_id: manifest.next_segment_id + 1,
            generation: manifest.generation,
            max_int_pk: 0,
        };
        st.rebuild_pk_index();
        if let PkIndex::Int(m) = &st.pk_index {
            st.max_int_pk = m.keys().copied().max().unwrap_or(0);
        }
        // Replayed rows seal where the writes sealed them (at `seal_bytes`): the segments that
        // were waiting for their files before a crash are queued for the writer again, with
        // their last record as checkpoint, instead of growing one segment replayed at every
        // open. Once one is written, the WAL files before the file holding the first record
        // after it (the tail file when none follows) are removed: the writes rotated the log
        // at their seals, so a segment's records end a file, which then goes.
        let mut replay_seals = std::collections::VecDeque::<PendingSeal>::new();
        let mut seal_without_next = false;
        let (wal, recovery) = Wal::open(
            &dir.join("wal"),
            manifest.wal_seq,
            manifest.checkpoint_lsn,
            opts.fsync,
            |seq, lsn, payload| {
                if std::mem::take(&mut seal_without_next) {
                    if let Some(last) = replay_seals.back_mut() {
                        last.wal_seq = seq;
                    }
                }
                let mut r = Reader::new(payload);
                let bad = |e: String| StoreError::Corrupt {
                    path: dir.join("wal").display().to_string(),
                    reason: e,
                };
                match r.u8().map_err(bad)? {
                    OP_INSERT | OP_UPSERT => {
                        // Replay replaces on both: a key can never be live twice.
                        let rows = r.rows().map_err(bad)?;
                        st.apply_rows(&rows, true, false);
                        if reached_seal_size(&st.growing, &opts) {
                            if let Some(id) = st.seal_growing(|id| empty_growing(&schema, id)) {
                                replay_seals.push_back(PendingSeal {
                                    id,
                                    checkpoint: lsn,
                                    wal_seq: seq,
                                });
                                seal_without_next = true;
                            }
                        }
                    }
                    OP_DELETE => {
                        let pks = r.pks().map_err(bad)?;
                        st.apply_delete(&pks);
                    }
                    op => return Err(bad(format!("unknown operation {op}"))),
                }
                Ok(())
            },
        )?;
        if seal_without_next {
            if let Some(last) = replay_seals.back_mut() {
                last.wal_seq = wal.tail_seq();
            }
        }
        for w in &recovery.warnings {
            log::warn!("collection {}: {w}", schema.name);
        }
        let next_auto = manifest
            .next_auto_id
            .max(st.max_int_pk.saturating_add(1))
            .max(1);
        let cfg = vindex::read_config(dir)?;
        if let Some(cfg) = &cfg {
            for seg in &mut st.sealed {
                let p = idx_path(&segdir, seg.id);
                if !p.exists() {
                    continue;
                }
                match vindex::load_file(&p) {
                    Some(idx) if vindex::matches(idx.as_ref(), cfg, seg.rows()) => {
                        seg.ann = Some(idx)
                    }
                    _ => {
                        let _ = fs::remove_file(&p);
                    }
                }
            }
        }
        let coll = Arc::new_cyclic(|me| Collection {
            schema,
            dir: dir.to_path_buf(),
            opts,
            state: RwLock::new(st),
            wal,
            write_lock: Mutex::new(()),
            next_auto_id: AtomicI64::new(next_auto),
            poisoned: Mutex::new(None),
            recovery,
            me: me.clone(),
            vindex: RwLock::new(cfg),
            vindex_gen: AtomicU64::new(0),
            builder: Mutex::new(Builder::default()),
            builder_done: parking_lot::Condvar::new(),
            persist: Mutex::new(Persist {
                running: false,
                queue: replay_seals,
            }),
            persist_done: parking_lot::Condvar::new(),
            persist_lock: Mutex::new(()),
            closing: std::sync::atomic::AtomicBool::new(false),
        });
        coll.kick_persister();
        coll.kick_builder();
        Ok(coll)
    }

    /// The collection's schema.
    pub fn schema(&self) -> &CollectionSchema {
        &self.schema
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// What WAL recovery did when this collection was opened (records replayed, torn or
    /// corrupt tail records dropped).
    pub fn recovery(&self) -> &WalRecovery {
        &self.recovery
    }

    fn check_poisoned(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(reason) => Err(StoreError::Poisoned {
                name: self.schema.name.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            let mut p = self.poisoned.lock();
            if p.is_none() {
                *p = Some(e.to_string());
            }
        }
        r
    }

    /// Inserts a batch of rows. Returns their primary keys (assigned ones for `auto_id`).
    ///
    /// The batch is durable (WAL fsynced) when this returns, and visible to searches.
    ///
    /// # Errors
    /// Validation errors ([`StoreError::DimensionMismatch`], [`StoreError::NonFinite`],
    /// [`StoreError::VarCharTooLong`], [`StoreError::MissingField`],
    /// [`StoreError::UnknownField`], [`StoreError::InvalidValue`],
    /// [`StoreError::RowCountMismatch`]), [`StoreError::DuplicatePrimaryKey`] when a key exists
    /// already or twice in the batch; in every case nothing of the batch is written.
    pub fn insert(&self, batch: Batch) -> Result<Vec<PrimaryKey>> {
        self.write_rows(batch, false)
    }

    /// Inserts rows, replacing rows with the same primary keys (the key must be given, also
    /// with `auto_id`). Returns the keys.
    ///
    /// # Errors
    /// As [`Collection::insert`], except that existing keys are replaced, not refused.
    pub fn upsert(&self, batch: Batch) -> Result<Vec<PrimaryKey>> {
        self.write_rows(batch, true)
    }

    fn write_rows(&self, batch: Batch, upsert: bool) -> Result<Vec<PrimaryKey>> {
        self.check_poisoned()?;
        let (mut rows, n) = validate_batch(&self.schema, batch, upsert)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let write_lock = self.write_lock.lock();
        self.check_poisoned()?;
        if rows.pks.is_empty() {
            let first = self.next_auto_id.fetch_add(n as i64, Ordering::SeqCst);
            rows.pks = (first..first + n as i64).map(PrimaryKey::Int).collect();
        } else if !upsert {
            let st = self.state.read();
            // Every key in the index is at most `max_int_pk`: integer keys above it are new
            // without a lookup.
            let above = |pk: &PrimaryKey| matches!(pk, PrimaryKey::Int(k) if *k > st.max_int_pk);
            if !rows.pks.iter().all(above) {
                if let Some(pk) = rows.pks.iter().find(|pk| st.pk_index.get(pk).is_some()) {
                    return Err(StoreError::DuplicatePrimaryKey { key: pk.clone() });
                }
            }
        }
        let mut head = Writer::default();
        head.u8(if upsert { OP_UPSERT } else { OP_INSERT });
        head.rows_head(&rows);
        let vector_bytes: &[u8] = bytemuck::cast_slice(&rows.vectors);
        if vector_bytes.len() < PARALLEL_SYNC_BYTES {
            let lsn = self.poison(self.wal.append_parts(&[&head.buf, vector_bytes]))?;
            let applied = self.apply_rows_locked(&rows, upsert, false);
            drop(write_lock);
            self.poison(applied)?;
            self.poison(self.wal.sync(lsn))?;
            return Ok(rows.pks);
        }
        // A large batch: a second thread writes the WAL record, then waits for its fsync,
        // while this one copies the vectors into the growing segment's spare room (not
        // visible yet). The rows are applied once the record is written (a failed write
        // leaves the segment as it was), and acknowledged once it is durable.
        // The segment is sealed once it holds `seal_bytes`: it may take one batch more
        // before, and keeps room for one after.
        let n_values = rows.vectors.len();
        let up_to = (self.opts.seal_bytes / 4).saturating_add(n_values.saturating_mul(2));
        let spare = self.state.write().growing.spare_vectors(n_values, up_to);
        let io_error = |what: &str| StoreError::Io {
            path: self.dir.join("wal").display().to_string(),
            source: std::io::Error::other(format!("the WAL {what} thread panicked")),
        };
        let (written_tx, written_rx) = std::sync::mpsc::sync_channel::<Result<u64>>(1);
        let (applied, synced) = std::thread::scope(|s| {
            let log = s.spawn(move || {
                let lsn = self.wal.append_parts(&[&head.buf, vector_bytes]);
                let sync = lsn.as_ref().ok().copied();
                let _ = written_tx.send(lsn);
                sync.map_or(Ok(()), |l| self.wal.sync(l))
            });
            spare.fill(&rows.vectors);
            let applied = match written_rx.recv() {
                Ok(Ok(_)) => self.apply_rows_locked(&rows, upsert, true),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io_error("write")),
            };
            drop(write_lock);
            let synced = log.join().unwrap_or_else(|_| Err(io_error("fsync")));
            (applied, synced)
        });
        self.poison(applied)?;
        self.poison(synced)?;
        if let Some((addr, bytes)) = self.state.read().growing.room_after(n_values) {
            crate::segment::fault_in_background(addr, bytes);
        }
        Ok(rows.pks)
    }

    /// Applies logged rows to the state (under the write lock); seals the growing segment
    /// when it has reached `seal_bytes`.
    fn apply_rows_locked(&self, rows: &Rows, upsert: bool, staged: bool) -> Result<()> {
        let mut st = self.state.write();
        st.apply_rows(rows, upsert, staged);
        if let Some(PrimaryKey::Int(k)) = rows.pks.iter().max() {
            self.next_auto_id
                .fetch_max(k.saturating_add(1), Ordering::SeqCst);
        }
        if reached_seal_size(&st.growing, &self.opts) {
            self.seal_growing(&mut st)?;
            drop(st);
            self.kick_persister();
        }
        Ok(())
    }

    /// Deletes rows by primary key; unknown keys are ignored. Returns how many rows were
    /// deleted. Durable when it returns; deleted rows never come back.
    ///
    /// # Errors
    /// [`StoreError::InvalidValue`] when a key has the wrong type; I/O errors.
    pub fn delete(&self, pks: &[PrimaryKey]) -> Result<usize> {
        self.check_poisoned()?;
        let int_pk = matches!(
            self.schema.primary_field().data_type,
            crate::schema::DataType::Int64
        );
        if let Some(pk) = pks
            .iter()
            .find(|pk| matches!(pk, PrimaryKey::Int(_)) != int_pk)
        {
            return Err(StoreError::InvalidValue {
                field: self.schema.primary_field().name.clone(),
                row: 0,
                reason: format!("primary key {pk} has the wrong type"),
            });
        }
        if pks.is_empty() {
            return Ok(0);
        }
        let w = self.write_lock.lock();
        self.check_poisoned()?;
        self.log_delete(w, pks)
    }

    /// Logs and applies a delete of `pks` under the held write lock, releases the lock, then
    /// waits for the record to be durable (group commit). Returns the rows deleted.
    fn log_delete(
        &self,
        write_lock: parking_lot::MutexGuard<'_, ()>,
        pks: &[PrimaryKey],
    ) -> Result<usize> {
        let mut w = Writer::default();
        w.u8(OP_DELETE);
        w.pks(pks);
        let lsn = self.poison(self.wal.append(&w.buf))?;
        let n = self.state.write().apply_delete(pks);
        drop(write_lock);
        self.poison(self.wal.sync(lsn))?;
        Ok(n)
    }

    /// Number of live (not deleted) rows.
    pub fn count(&self) -> usize {
        let st = self.state.read();
        st.sealed.iter().map(|s| s.live_rows()).sum::<usize>() + st.growing.live_rows()
    }

    /// Number of sealed segments (for statistics and tests).
    pub fn sealed_segments(&self) -> usize {
        self.state.read().sealed.len()
    }

    /// One entry per segment, sealed segments first (oldest first), then the growing one
    /// (Milvus's `GetQuerySegmentInfo` / `GetPersistentSegmentInfo`).
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let st = self.state.read();
        let dim = self.schema.dim();
        let info = |s: &Segment, sealed: bool| SegmentInfo {
            id: s.id,
            rows: s.rows(),
            live_rows: s.live_rows(),
            sealed,
            persisted: s.is_persisted(),
            indexed: s.ann.is_some(),
            sketched: s.sketch.is_some(),
            vector_bytes: s.rows() * dim * 4,
        };
        st.sealed
            .iter()
            .map(|s| info(s, true))
            .chain(std::iter::once(info(&st.growing, false)))
            .collect()
    }

    /// Seals the growing segment, writes every sealed segment whose file is pending, writes
    /// the MANIFEST (with delete lists and the WAL checkpoint) atomically, and drops WAL files
    /// it covers. Everything acknowledged before the call is in segment files and the
    /// MANIFEST when it returns.
    ///
    /// # Errors
    /// I/O errors; the collection then refuses writes until reopened.
    pub fn flush(&self) -> Result<()> {
        self.check_poisoned()?;
        let _w = self.write_lock.lock();
        let r = self.flush_locked();
        self.kick_builder();
        self.poison(r)
    }

    /// [`Collection::flush`] under the held write lock.
    fn flush_locked(&self) -> Result<()> {
        self.seal_growing(&mut self.state.write())?;
        let p = self.persist_lock.lock();
        while self.persist_one(&p)? {}
        self.commit_manifest(&mut self.state.write())
    }

    /// Seals the growing segment in memory (under the write lock): it joins the sealed
    /// segments, searchable as before, and its file is queued for the background writer
    /// ([`Collection::kick_persister`]). The WAL rotates first, so the segment's records
    /// are exactly those before the new file. A growing segment without live rows is
    /// emptied instead (its records and their deletes replay to nothing).
    fn seal_growing(&self, st: &mut State) -> Result<()> {
        // The WAL rotates first (only when there is something to seal), so a failed rotate
        // changes nothing.
        let logged = if st.growing.live_rows() > 0 {
            Some((self.wal.last_lsn(), self.wal.rotate()?))
        } else {
            None
        };
        if let (Some(id), Some((checkpoint, wal_seq))) = (
            st.seal_growing(|id| empty_growing(&self.schema, id)),
            logged,
        ) {
            self.persist.lock().queue.push_back(PendingSeal {
                id,
                checkpoint,
                wal_seq,
            });
        }
        Ok(())
    }

    /// Writes the oldest pending segment's file and commits a MANIFEST that lists it, with
    /// the checkpoint of its seal. Returns false when nothing is pending. Searches and
    /// writes go on meanwhile: the state is locked only to copy the keys and scalar columns
    /// out and, at the end, to swap the segment's vectors for the mapped file's.
    fn persist_one(&self, _persisting: &parking_lot::MutexGuard<'_, ()>) -> Result<bool> {
        let Some(job) = self.persist.lock().queue.front().copied() else {
            return Ok(false);
        };
        let segdir = self.dir.join("segments");
        let lost = || StoreError::Corrupt {
            path: seg_path(&segdir, job.id).display().to_string(),
            reason: "a segment waiting to be written is gone".into(),
        };
        let pending = |st: &State| {
            let seg = st.sealed.iter().position(|s| s.id == job.id);
            seg.ok_or_else(lost)
        };
        let vectors = {
            let st = self.state.read();
            st.sealed[pending(&st)?].frozen_vectors().ok_or_else(lost)?
        };
        // The vectors' CRC is computed without the lock, then the head under a read lock.
        let crc = crc32fast::hash(bytemuck::cast_slice(vectors.as_slice()));
        let head = {
            let st = self.state.read();
            st.sealed[pending(&st)?].file_head(crc)?
        };
        crate::segment::write_file(&segdir, job.id, &head, &vectors)?;
        drop(vectors);
        let file = Segment::open(&segdir, job.id)?;
        let manifest = {
            let mut st = self.state.write();
            let i = pending(&st)?;
            st.sealed[i].use_file_vectors(file);
            self.manifest(&mut st, job.checkpoint, job.wal_seq)
        };
        self.write_manifest(&manifest)?;
        self.wal.remove_before(job.wal_seq)?;
        self.persist.lock().queue.pop_front();
        self.persist_done.notify_all();
        self.kick_builder();
        Ok(true)
    }

    /// Starts the background segment writer when files are pending and it is not running.
    fn kick_persister(&self) {
        let mut p = self.persist.lock();
        if p.running || p.queue.is_empty() {
            return;
        }
        p.running = true;
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("facedb-seal-{}", self.schema.name))
            .spawn(move || persist_loop(me));
        if spawned.is_err() {
            // Not fatal: the files are written by the next flush, and the rows are in the WAL.
            p.running = false;
            log::warn!(
                "collection {}: cannot start the segment writer",
                self.schema.name
            );
        }
    }

    /// Stops background work on this collection (the database is closing or dropping it):
    /// returns once the segment file being written, if any, is committed. Pending segments
    /// stay in the WAL and are replayed on the next open.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        drop(self.persist_lock.lock());
    }

    /// The MANIFEST for the current state: the segments whose files are written, with their
    /// delete lists, WAL records after `checkpoint` to replay from file `wal_seq` on.
    fn manifest(&self, st: &mut State, checkpoint: u64, wal_seq: u64) -> Manifest {
        st.generation += 1;
        Manifest {
            version: 1,
            generation: st.generation,
            checkpoint_lsn: checkpoint,
            wal_seq,
            next_segment_id: st.growing.id,
            next_auto_id: self.next_auto_id.load(Ordering::SeqCst),
            segments: st
                .sealed
                .iter()
                .take_while(|s| s.is_persisted())
                .map(|s| ManifestSegment {
                    id: s.id,
                    rows: s.rows() as u64,
                    deleted: (0..s.rows())
                        .filter(|r| s.is_deleted(*r))
                        .map(|r| r as u32)
                        .collect(),
                })
                .collect(),
        }
    }

    fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec(m).map_err(|e| StoreError::Corrupt {
            path: "MANIFEST".into(),
            reason: e.to_string(),
        })?;
        write_file_atomic(&self.dir.join("MANIFEST"), &bytes)
    }

    /// Checkpoints everything: rotates the WAL and commits a MANIFEST whose checkpoint is
    /// the last record. Only with no segment pending (under the write lock, after
    /// [`Collection::persist_one`] drained the queue): pending rows would be lost otherwise.
    fn commit_manifest(&self, st: &mut State) -> Result<()> {
        if st.sealed.iter().any(|s| !s.is_persisted()) {
            return Err(StoreError::Corrupt {
                path: self.dir.join("MANIFEST").display().to_string(),
                reason: "a checkpoint was asked with segment files still pending".into(),
            });
        }
        let checkpoint = self.wal.last_lsn();
        let seq = self.wal.rotate()?;
        let m = self.manifest(st, checkpoint, seq);
        self.write_manifest(&m)?;
        self.wal.remove_before(seq)?;
        let segdir = self.dir.join("segments");
        remove_unlisted_segments(&segdir, st.sealed.iter().map(|s| s.id))?;
        Ok(())
    }

    /// Flushes, then rewrites every sealed segment that has deleted rows without them
    /// (segments left empty disappear), and commits the new segment list atomically.
    ///
    /// # Errors
    /// I/O errors; the collection then refuses writes until reopened.
    pub fn compact(&self) -> Result<()> {
        self.check_poisoned()?;
        let _w = self.write_lock.lock();
        let r = (|| {
            self.flush_locked()?;
            let _p = self.persist_lock.lock();
            let mut st = self.state.write();
            let segdir = self.dir.join("segments");
            let old = std::mem::take(&mut st.sealed);
            let mut new = Vec::with_capacity(old.len());
            for s in old {
                if s.deleted_count == 0 {
                    new.push(s);
                    continue;
                }
                if s.live_rows() == 0 {
                    continue;
                }
                let keep: Vec<usize> = (0..s.rows()).filter(|r| !s.is_deleted(*r)).collect();
                let mut pks = match &s.pks {
                    PkColumn::Int(_) => PkColumn::Int(Vec::with_capacity(keep.len())),
                    PkColumn::Str(_) => PkColumn::Str(Vec::with_capacity(keep.len())),
                };
                for &r in &keep {
                    pks.push(&s.pks.get(r));
                }
                let scalars = s
                    .scalars
                    .iter()
                    .map(|c| {
                        let mut out = c.empty_like();
                        out.extend_rows(c, keep.iter().copied());
                        out
                    })
                    .collect();
                let mut vectors = Vec::with_capacity(keep.len() * s.dim);
                for &r in &keep {
                    vectors.extend_from_slice(s.vector(r));
                }
                let id = st.next_segment_id;
                st.next_segment_id += 1;
                let fresh = Segment {
                    id,
                    pks,
                    scalars,
                    vectors: Vectors::Owned(vectors),
                    dim: s.dim,
                    deleted: vec![],
                    deleted_count: 0,
                    indexes: Default::default(),
                    ann: None,
                    sketch: None,
                };
                new.push(fresh.seal(&segdir)?);
            }
            st.sealed = new;
            // The growing segment id must stay above every sealed id.
            st.growing.id = st.next_segment_id;
            st.next_segment_id += 1;
            st.rebuild_pk_index();
            self.commit_manifest(&mut st)
        })();
        self.kick_builder();
        self.poison(r)
    }

    fn resolve_fields(&self, names: &[String]) -> Result<Vec<(String, FieldRef)>> {
        let mut out: Vec<(String, FieldRef)> = Vec::new();
        let add = |name: &str, r: FieldRef, out: &mut Vec<(String, FieldRef)>| {
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_string(), r));
            }
        };
        for name in names {
            if name == "*" {
                add(&self.schema.primary_field().name, FieldRef::Pk, &mut out);
                for (i, f) in self.schema.scalar_fields().enumerate() {
                    add(&f.name, FieldRef::Scalar(i), &mut out);
                }
                continue;
            }
            let f = self
                .schema
                .field(name)
                .ok_or_else(|| StoreError::UnknownField { name: name.clone() })?;
            let r = if f.is_primary {
                FieldRef::Pk
            } else if f.data_type.is_vector() {
                FieldRef::Vector
            } else {
                FieldRef::Scalar(
                    self.schema
                        .scalar_fields()
                        .position(|g| g.name == *name)
                        .unwrap_or(0),
                )
            };
            add(name, r, &mut out);
        }
        Ok(out)
    }

    fn row_values(seg: &Segment, row: usize, fields: &[(String, FieldRef)]) -> Row {
        fields
            .iter()
            .map(|(name, r)| {
                let v = match r {
                    FieldRef::Pk => match seg.pks.get(row) {
                        PrimaryKey::Int(k) => Value::Int(k),
                        PrimaryKey::Str(s) => Value::String(s),
                    },
                    FieldRef::Scalar(i) => seg.scalars[*i].value(row),
                    FieldRef::Vector => Value::FloatVector(seg.vector(row).to_vec()),
                };
                (name.clone(), v)
            })
            .collect()
    }

    /// Rows by primary key, in the order asked; missing keys are skipped.
    ///
    /// # Errors
    /// [`StoreError::UnknownField`] for an output field not in the schema.
    pub fn get(&self, pks: &[PrimaryKey], output_fields: &[String]) -> Result<Vec<Row>> {
        let fields = self.resolve_fields(output_fields)?;
        let st = self.state.read();
        Ok(pks
            .iter()
            .filter_map(|pk| st.pk_index.get(pk))
            .map(|loc| Self::row_values(st.seg(loc.seg), loc.row as usize, &fields))
            .collect())
    }

    /// Live rows matching `filter` (Milvus boolean expression; `None` or blank = all rows),
    /// in storage order, `offset` skipped, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::InvalidExpr`] (with the byte offset), [`StoreError::UnknownField`].
    pub fn query(
        &self,
        filter: Option<&str>,
        output_fields: &[String],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<Row>> {
        let expr = crate::filter::compile(&self.schema, filter)?;
        let fields = self.resolve_fields(output_fields)?;
        let st = self.state.read();
        let allowed = crate::filter::allowed_rows(&self.schema, &st, expr.as_ref())?;
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut skipped = 0;
        for (seg, allowed) in st.segments().zip(&allowed) {
            let rows: Box<dyn Iterator<Item = usize>> = match allowed {
                Some(b) => Box::new(b.iter_ones()),
                None => Box::new(0..seg.rows()),
            };
            for row in rows {
                if skipped < offset {
                    skipped += 1;
                    continue;
                }
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(Self::row_values(seg, row, &fields));
            }
        }
        Ok(out)
    }

    /// Number of live rows matching `filter` (`None` or blank = all rows): Milvus's
    /// `count(*)`.
    ///
    /// # Errors
    /// [`StoreError::InvalidExpr`].
    pub fn count_where(&self, filter: Option<&str>) -> Result<usize> {
        let expr = crate::filter::compile(&self.schema, filter)?;
        let st = self.state.read();
        let allowed = crate::filter::allowed_rows(&self.schema, &st, expr.as_ref())?;
        Ok(st
            .segments()
            .zip(&allowed)
            .map(|(s, a)| a.as_ref().map_or(s.rows(), |b| b.count_ones()))
            .sum())
    }

    /// Deletes every live row matching `filter` (Milvus `delete(expr)`); the matching keys
    /// are logged, so replay deletes exactly these rows. Returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError::InvalidExpr`]; [`StoreError::InvalidParameter`] for a blank filter
    /// (deleting everything needs an explicit expression, as in Milvus); I/O errors.
    pub fn delete_where(&self, filter: &str) -> Result<usize> {
        self.check_poisoned()?;
        let expr = crate::filter::compile(&self.schema, Some(filter))?.ok_or_else(|| {
            StoreError::InvalidParameter("delete needs a filter expression".into())
        })?;
        let w = self.write_lock.lock();
        self.check_poisoned()?;
        let pks: Vec<PrimaryKey> = {
            let st = self.state.read();
            let allowed = crate::filter::allowed_rows(&self.schema, &st, Some(&expr))?;
            st.segments()
                .zip(&allowed)
                .flat_map(|(seg, a)| {
                    let rows: Vec<usize> = match a {
                        Some(b) => b.iter_ones().collect(),
                        None => (0..seg.rows()).collect(),
                    };
                    rows.into_iter().map(move |r| seg.pks.get(r))
                })
                .collect()
        };
        if pks.is_empty() {
            return Ok(0);
        }
        self.log_delete(w, &pks)
    }

    /// k-nearest-neighbour search over every live row: exact (FLAT) on the growing segment
    /// and on sealed segments without an index; through the segment's index (candidates
    /// re-scored exactly, see `facedb_index::ann`) when the collection has one for
    /// `req.metric`, unless the filter lets fewer than 1/32 of a segment's rows through (then
    /// those rows are scanned exactly).
    ///
    /// Returns one list per query vector, best first (ties broken by primary key), with at
    /// most `topk` hits: fewer when fewer rows exist or fall in the range. Distances are in
    /// metric units (L2 squared).
    ///
    /// # Errors
    /// [`StoreError::NqOutOfRange`], [`StoreError::TopkOutOfRange`],
    /// [`StoreError::DimensionMismatch`], [`StoreError::NonFinite`],
    /// [`StoreError::UnknownField`], [`StoreError::InvalidParameter`] for inconsistent range
    /// bounds, [`StoreError::InvalidExpr`] for a bad filter.
    ///
    /// A filter is applied before ranking (pre-filtering): a search returns
    /// `min(topk, matching rows)` hits, the same as an exact search over the matching rows.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<Vec<Hit>>> {
        let dim = self.schema.dim();
        let nq = req.vectors.len();
        if nq == 0 || nq > MAX_NQ {
            return Err(StoreError::NqOutOfRange { nq });
        }
        if req.topk == 0 || req.topk > MAX_TOPK {
            return Err(StoreError::TopkOutOfRange { topk: req.topk });
        }
        if req.topk + req.offset > MAX_TOPK {
            return Err(StoreError::InvalidParameter(format!(
                "topk + offset should be in range [1, {MAX_TOPK}], but got {}",
                req.topk + req.offset
            )));
        }
        let mut flat = Vec::with_capacity(nq * dim);
        for (i, v) in req.vectors.iter().enumerate() {
            if v.len() != dim {
                return Err(StoreError::DimensionMismatch {
                    expected: dim,
                    got: v.len(),
                    row: i,
                });
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(StoreError::NonFinite {
                    field: self.schema.vector_field().name.clone(),
                    row: i,
                });
            }
            flat.extend_from_slice(v);
        }
        let expr = crate::filter::compile(&self.schema, req.filter.as_deref())?;
        let range = match req.range {
            None => facedb_index::KeyRange::ALL,
            Some(r) => {
                if let (Some(radius), Some(filter)) = (r.radius, r.range_filter) {
                    let ok = if req.metric.higher_is_better() {
                        filter > radius
                    } else {
                        filter < radius
                    };
                    if !ok {
                        return Err(StoreError::InvalidParameter(format!(
                            "range_filter must be {} than radius for {}",
                            if req.metric.higher_is_better() {
                                "greater"
                            } else {
                                "less"
                            },
                            req.metric.name()
                        )));
                    }
                }
                req.metric.key_range(r.radius, r.range_filter)
            }
        };
        let fields = self.resolve_fields(&req.output_fields)?;
        let k = req.topk + req.offset;
        // Index knobs are checked against the index the search will use (same metric).
        let index = self.index_config().filter(|c| c.metric == req.metric);
        if let Some(cfg) = &index {
            req.knobs
                .validate(&cfg.spec, k)
                .map_err(|e| StoreError::InvalidParameter(e.to_string()))?;
        }
        let st = self.state.read();
        // Pre-filtering: the rows each segment may return (live and matching the filter).
        let allowed = crate::filter::allowed_rows(&self.schema, &st, expr.as_ref())?;
        let segs: Vec<&Segment> = st.segments().collect();
        // Per query: (key, segment position, row) candidates from every segment.
        let mut cands: Vec<Vec<(f32, u32, u32)>> = vec![Vec::new(); nq];
        for (si, (seg, allowed)) in segs.iter().zip(&allowed).enumerate() {
            if seg.rows() == 0 || allowed.as_ref().is_some_and(|b| b.none()) {
                continue;
            }
            let tb = |a: u32, b: u32| seg.pks.cmp_rows(a as usize, b as usize);
            let words = allowed.as_ref().map(|b| b.words());
            // Planner: the segment's index unless the metric differs, the segment is small,
            // or the filter is so selective that scanning the matching rows is cheaper.
            let ann = seg.ann.as_ref().filter(|_| {
                index.is_some()
                    && seg.rows() >= MIN_INDEXED_SEARCH_ROWS
                    && allowed
                        .as_ref()
                        .is_none_or(|b| b.count_ones() * SELECTIVE_FILTER_RATIO >= seg.rows())
            });
            let res = match ann {
                Some(idx) => idx.search(
                    seg.vectors.as_slice(),
                    &flat,
                    &AnnParams {
                        k,
                        range,
                        allowed: words,
                        tiebreak: &tb,
                        knobs: req.knobs,
                    },
                ),
                None => {
                    let p = FlatParams {
                        metric: req.metric,
                        k,
                        range,
                        allowed: words,
                        tiebreak: &tb,
                    };
                    match &seg.sketch {
                        Some(sk) => sk.search(seg.vectors.as_slice(), &flat, &p),
                        None => flat_search(seg.vectors.as_slice(), dim, &flat, &p),
                    }
                }
            };
            for (q, hits) in res.into_iter().enumerate() {
                cands[q].extend(
                    hits.into_iter()
                        .map(|h| (req.metric.key(h.score), si as u32, h.row)),
                );
            }
        }
        Ok(cands
            .into_iter()
            .map(|mut c| {
                c.sort_by(|a, b| {
                    a.0.total_cmp(&b.0).then_with(|| {
                        let (sa, sb) = (segs[a.1 as usize], segs[b.1 as usize]);
                        sa.pks.get(a.2 as usize).cmp(&sb.pks.get(b.2 as usize))
                    })
                });
                c.into_iter()
                    .skip(req.offset)
                    .take(req.topk)
                    .map(|(key, si, row)| {
                        let seg = segs[si as usize];
                        Hit {
                            pk: seg.pks.get(row as usize),
                            distance: req.metric.score(key),
                            fields: Self::row_values(seg, row as usize, &fields),
                        }
                    })
                    .collect()
            })
            .collect())
    }

    // ----- vector index -----

    /// Creates (or replaces) the collection's vector index: `spec` built for `metric`.
    ///
    /// Returns at once; every sealed segment gets its index in the background (watch it
    /// with [`Collection::index_progress`] or [`Collection::wait_for_index`]). Searches keep
    /// working meanwhile, exactly, on segments whose index is not ready. [`IndexSpec::Flat`]
    /// removes any index (exact search everywhere). Asking again for the current
    /// configuration changes nothing.
    ///
    /// # Errors
    /// [`StoreError::InvalidParameter`] for parameters out of Milvus's ranges; I/O errors.
    pub fn create_index(&self, spec: IndexSpec, metric: Metric) -> Result<()> {
        spec.validate()
            .map_err(|e| StoreError::InvalidParameter(e.to_string()))?;
        let cfg = (spec != IndexSpec::Flat).then_some(IndexConfig { spec, metric });
        {
            let mut cur = self.vindex.write();
            if *cur == cfg {
                return Ok(());
            }
            self.vindex_gen.fetch_add(1, Ordering::SeqCst);
            let mut st = self.state.write();
            let segdir = self.dir.join("segments");
            for seg in &mut st.sealed {
                seg.ann = None;
                let p = idx_path(&segdir, seg.id);
                if p.exists() {
                    fs::remove_file(&p).ctx(&p)?;
                }
            }
            drop(st);
            vindex::write_config(&self.dir, cfg.as_ref())?;
            *cur = cfg;
            let mut b = self.builder.lock();
            b.failed.clear();
            b.last_error = None;
        }
        self.kick_builder();
        Ok(())
    }

    /// Removes the vector index (searches become exact everywhere) and its files.
    ///
    /// # Errors
    /// I/O errors.
    pub fn drop_index(&self) -> Result<()> {
        self.create_index(IndexSpec::Flat, Metric::L2)
    }

    /// The vector index configuration, `None` when the collection has none.
    pub fn index_config(&self) -> Option<IndexConfig> {
        *self.vindex.read()
    }

    /// How many sealed rows are indexed (zero pending segments when there is no index).
    pub fn index_progress(&self) -> IndexProgress {
        let has = self.vindex.read().is_some();
        let st = self.state.read();
        let mut p = IndexProgress::default();
        for seg in &st.sealed {
            p.total_rows += seg.rows();
            if seg.ann.is_some() {
                p.indexed_rows += seg.rows();
            } else if has {
                p.pending_segments += 1;
            }
        }
        drop(st);
        let b = self.builder.lock();
        p.error = b.last_error.clone();
        if has && !b.failed.is_empty() && !b.running {
            // Failed segments are not retried: report them as not pending.
            p.pending_segments = p.pending_segments.saturating_sub(b.failed.len());
        }
        p
    }

    /// Waits until no index build is pending or running, at most `timeout`. Returns the
    /// progress then (check [`IndexProgress::finished`]). A segment is indexed after its
    /// file is written: this waits for the background segment writer first.
    pub fn wait_for_index(&self, timeout: Duration) -> IndexProgress {
        let deadline = Instant::now() + timeout;
        self.wait_persisted(deadline);
        let mut b = self.builder.lock();
        while b.running {
            if self.builder_done.wait_until(&mut b, deadline).timed_out() {
                break;
            }
        }
        drop(b);
        self.index_progress()
    }

    /// Waits (at most until `deadline`) while sealed segments wait for their files and the
    /// background writer runs.
    fn wait_persisted(&self, deadline: Instant) {
        let mut p = self.persist.lock();
        while !p.queue.is_empty() && p.running {
            if self.persist_done.wait_until(&mut p, deadline).timed_out() {
                break;
            }
        }
    }

    /// Starts the background builder when a sealed segment lacks its index (or, without an
    /// index, its sketch).
    fn kick_builder(&self) {
        if self.vindex.read().is_none() && !self.state.read().sealed.iter().any(needs_sketch) {
            return;
        }
        let mut b = self.builder.lock();
        if b.running {
            return;
        }
        b.running = true;
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("facedb-index-{}", self.schema.name))
            .spawn(move || build_loop(me));
        if let Err(e) = spawned {
            b.running = false;
            b.last_error = Some(format!("cannot start the index builder: {e}"));
        }
    }

    /// The next background job: a sealed segment's index (when the collection has one) or
    /// its sketch (when it has none); `None` after marking the builder stopped.
    fn next_build_job(&self) -> Option<BuildJob> {
        let cfg = *self.vindex.read();
        let gen = self.vindex_gen.load(Ordering::SeqCst);
        let st = self.state.read();
        let mut b = self.builder.lock();
        let mut todo = st
            .sealed
            .iter()
            .filter(|s| s.rows() > 0 && !b.failed.contains(&s.id));
        let job = match cfg {
            Some(cfg) => todo.find_map(|s| {
                let vectors = s.vectors.shared().filter(|_| s.ann.is_none())?;
                Some(BuildJob::Index {
                    id: s.id,
                    vectors,
                    cfg,
                    gen,
                })
            }),
            None => todo.find_map(|s| {
                let vectors = s.vectors.shared().filter(|_| needs_sketch(s))?;
                Some(BuildJob::Sketch {
                    id: s.id,
                    vectors,
                    gen,
                })
            }),
        };
        if job.is_none() {
            b.running = false;
            self.builder_done.notify_all();
        }
        job
    }

    /// Records a failed background build (`what`: "index" or "sketch") of segment `id`:
    /// logged, reported by [`Collection::index_progress`], and not retried until the
    /// configuration changes or the collection is reopened.
    fn build_failed(&self, id: u64, what: &str, why: String) {
        log::warn!(
            "collection {}: {what} of segment {id}: {why}",
            self.schema.name
        );
        let mut b = self.builder.lock();
        b.failed.push(id);
        b.last_error = Some(why);
    }

    /// Makes searches of segment `id` read its sketch, unless an index was configured or
    /// the segment was compacted away meanwhile.
    fn install_sketch(&self, id: u64, gen: u64, built: std::result::Result<FlatSketch, String>) {
        let sketch = match built {
            Ok(s) => Arc::new(s),
            Err(why) => return self.build_failed(id, "sketch", why),
        };
        let cfg_guard = self.vindex.read();
        if self.vindex_gen.load(Ordering::SeqCst) != gen || cfg_guard.is_some() {
            return;
        }
        let mut st = self.state.write();
        if let Some(seg) = st.sealed.iter_mut().find(|s| s.id == id) {
            if seg.rows() == sketch.rows() && seg.ann.is_none() {
                seg.sketch = Some(sketch);
            }
        }
    }

    /// Percent of the sealed rows that are ready for search: 100 unless segments without
    /// an index are still waiting for their sketch (they are searched exactly meanwhile,
    /// only slower). Milvus's `GetLoadingProgress` reports this.
    pub fn search_ready_percent(&self) -> u8 {
        if self.vindex.read().is_some() || !self.builder.lock().running {
            return 100;
        }
        let st = self.state.read();
        let (mut ready, mut total) = (0usize, 0usize);
        for s in &st.sealed {
            total += s.rows();
            if !needs_sketch(s) {
                ready += s.rows();
            }
        }
        if ready == total {
            100
        } else {
            (ready * 100 / total).min(99) as u8
        }
    }

    /// Writes a built index next to its segment and makes searches use it, unless the
    /// configuration changed or the segment was compacted away meanwhile.
    fn install_index(
        &self,
        id: u64,
        gen: u64,
        built: std::result::Result<Box<dyn facedb_index::VectorIndex>, String>,
    ) {
        let fail = |why: String| self.build_failed(id, "index", why);
        let idx = match built {
            Ok(i) => i,
            Err(e) => return fail(e),
        };
        let cfg_guard = self.vindex.read();
        if self.vindex_gen.load(Ordering::SeqCst) != gen || cfg_guard.is_none() {
            return;
        }
        if !self.state.read().sealed.iter().any(|s| s.id == id) {
            return;
        }
        let path = idx_path(&self.dir.join("segments"), id);
        if let Err(e) = vindex::write_file(&path, &idx.to_blob()) {
            return fail(e.to_string());
        }
        // Serve from the file just written (memory-mapped), as after a reopen.
        let idx: Arc<dyn facedb_index::VectorIndex> =
            vindex::load_file(&path).unwrap_or_else(|| Arc::from(idx));
        let mut st = self.state.write();
        if let Some(seg) = st.sealed.iter_mut().find(|s| s.id == id) {
            seg.ann = Some(idx);
            seg.sketch = None;
        }
    }

    /// Checks every sealed segment's vector checksum (reads all vector data).
    pub fn verify(&self) -> bool {
        self.state.read().sealed.iter().all(|s| s.verify())
    }
}

/// The thread pool index builds run on, shared by every collection of the process: one
/// thread per core, at a lower scheduling priority (nice 10 on Linux). Builds must not run
/// on rayon's global pool: searches fan out on that pool, and a search queued behind the
/// tasks of a build waited for the whole build (9.5 s for a 1M-row HNSW). `None` when the
/// pool cannot be created (the build then runs on the global pool).
fn build_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("facedb-build-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .map_err(|e| log::warn!("index build pool: {e}"))
            .ok()
    })
    .as_ref()
}

/// Lowers the calling thread's scheduling priority (nice +10; Linux only, where
/// `setpriority` with `PRIO_PROCESS` and a thread id applies to that thread alone).
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; failure only leaves the priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// The background segment writer (at nice +10): writes pending segment files in seal order
/// until none is left, the collection is dropped or closing, or a write fails (the collection is then
/// poisoned: it refuses writes until reopened, and the WAL still holds every row).
fn persist_loop(me: Weak<Collection>) {
    // Background work: it yields to the writes and searches it runs beside.
    lower_priority();
    while let Some(coll) = me.upgrade() {
        let stop = |mut p: parking_lot::MutexGuard<'_, Persist>| {
            p.running = false;
            drop(p);
            coll.persist_done.notify_all();
        };
        {
            // Checked and marked stopped under one lock: a seal queued after this starts
            // a new writer (kick_persister).
            let p = coll.persist.lock();
            if p.queue.is_empty() || coll.closing.load(Ordering::SeqCst) {
                return stop(p);
            }
        }
        let guard = coll.persist_lock.lock();
        // While this waited for the lock, a flush may have written the queue (persist_one
        // then finds nothing) or the database may have begun to close: the check above
        // ends the loop.
        if coll.closing.load(Ordering::SeqCst) {
            continue;
        }
        if let Err(e) = coll.persist_one(&guard) {
            log::error!(
                "collection {}: writing a sealed segment failed: {e}",
                coll.schema.name
            );
            let _ = coll.poison::<()>(Err(e));
            return stop(coll.persist.lock());
        }
    }
}

/// The background builder: indexes sealed segments one at a time until none is left. Holds
/// only a weak reference while building, so dropping the collection is never delayed by
/// more than one build.
fn build_loop(me: Weak<Collection>) {
    loop {
        let Some(coll) = me.upgrade() else { return };
        let Some(job) = coll.next_build_job() else {
            return;
        };
        let dim = coll.schema.dim();
        drop(coll);
        match job {
            BuildJob::Index {
                id,
                vectors,
                cfg,
                gen,
            } => {
                let built = on_build_pool(|| {
                    facedb_index::build_index(&cfg.spec, cfg.metric, vectors.as_slice(), dim, id)
                        .map_err(|e| e.to_string())
                });
                drop(vectors);
                let Some(coll) = me.upgrade() else { return };
                coll.install_index(id, gen, built);
            }
            BuildJob::Sketch { id, vectors, gen } => {
                let built = on_build_pool(|| {
                    FlatSketch::build(vectors.as_slice(), dim).map_err(|e| e.to_string())
                });
                drop(vectors);
                let Some(coll) = me.upgrade() else { return };
                coll.install_sketch(id, gen, built);
            }
        }
    }
}

/// Runs `f` on the build pool ([`build_pool`]), or here when there is none.
fn on_build_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match build_pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Work of the background builder.
enum BuildJob {
    /// Build segment `id`'s index under configuration generation `gen`.
    Index {
        id: u64,
        vectors: crate::segment::SharedVectors,
        cfg: IndexConfig,
        gen: u64,
    },
    /// Sketch segment `id` (the collection has no index, generation `gen`).
    Sketch {
        id: u64,
        vectors: crate::segment::SharedVectors,
        gen: u64,
    },
}

/// True when a sealed segment is searched exactly and should get a sketch
/// (`FACEDB_SKETCH=0` turns sketches off, for side-by-side measurements).
fn needs_sketch(s: &Segment) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| std::env::var("FACEDB_SKETCH").map_or(true, |v| v != "0"));
    on && s.ann.is_none() && s.sketch.is_none() && s.rows() >= MIN_INDEXED_SEARCH_ROWS
}
