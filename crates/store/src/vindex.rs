//! A collection's vector index: its configuration (the `INDEX` file), the per-segment index
//! files (`segments/<id>.idx`) and the build progress reported to callers.
//!
//! One index configuration per collection (as Milvus: one index per vector field). Each
//! sealed segment gets its own index, built in the background when the segment seals, when
//! the index is created, or when compaction rewrites the segment. Until a segment's index is
//! ready it is searched exactly (FLAT); the growing segment is always searched exactly.

use crate::error::{IoContext, Result, StoreError};
use facedb_index::blob::Blob;
use facedb_index::{IndexSpec, Metric, VectorIndex};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::Path;
use std::sync::Arc;

/// A collection's vector index: type and build parameters, and the metric it ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexConfig {
    /// Index type and build parameters (Milvus `index_type` + `params`).
    pub spec: IndexSpec,
    /// Metric the index is built for (Milvus `metric_type`); searches with another metric
    /// are answered exactly.
    pub metric: Metric,
}

/// How far index building has come, as Milvus's `DescribeIndex` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexProgress {
    /// Rows of sealed segments that have their index.
    pub indexed_rows: usize,
    /// Rows of all sealed segments (the growing segment is never indexed).
    pub total_rows: usize,
    /// Sealed segments still waiting for their index.
    pub pending_segments: usize,
    /// The last build failure, if any (the segment stays searchable exactly).
    pub error: Option<String>,
}

impl IndexProgress {
    /// True when every sealed segment is indexed.
    pub fn finished(&self) -> bool {
        self.pending_segments == 0
    }
}

#[derive(Serialize, Deserialize)]
struct ConfigFile {
    version: u32,
    index_type: String,
    metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nlist: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "M")]
    m: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "efConstruction"
    )]
    ef_construction: Option<usize>,
}

const CONFIG: &str = "INDEX";

/// Reads `<dir>/INDEX` (`None` when the collection has no index).
pub(crate) fn read_config(dir: &Path) -> Result<Option<IndexConfig>> {
    let path = dir.join(CONFIG);
    if !path.exists() {
        return Ok(None);
    }
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    let bytes = fs::read(&path).ctx(&path)?;
    let f: ConfigFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let metric = Metric::parse(&f.metric).ok_or_else(|| corrupt(format!("metric {}", f.metric)))?;
    let spec = IndexSpec::from_milvus(&f.index_type, |k| {
        match k {
            "nlist" => f.nlist,
            "M" => f.m,
            "efConstruction" => f.ef_construction,
            _ => None,
        }
        .map(|v| v as i64)
    })
    .map_err(|e| corrupt(e.to_string()))?;
    Ok(Some(IndexConfig { spec, metric }))
}

/// Writes (or with `None` removes) `<dir>/INDEX` atomically.
pub(crate) fn write_config(dir: &Path, cfg: Option<&IndexConfig>) -> Result<()> {
    let path = dir.join(CONFIG);
    let Some(cfg) = cfg else {
        if path.exists() {
            fs::remove_file(&path).ctx(&path)?;
            crate::wal::sync_dir(dir)?;
        }
        return Ok(());
    };
    let (nlist, m, ef_construction) = match cfg.spec {
        IndexSpec::IvfFlat { nlist } | IndexSpec::IvfSq8 { nlist } => (Some(nlist), None, None),
        IndexSpec::Hnsw { m, ef_construction } => (None, Some(m), Some(ef_construction)),
        IndexSpec::Flat | IndexSpec::Sq8 => (None, None, None),
    };
    let f = ConfigFile {
        version: 1,
        index_type: cfg.spec.name().to_string(),
        metric: cfg.metric.name().to_string(),
        nlist,
        m,
        ef_construction,
    };
    let bytes = serde_json::to_vec_pretty(&f).map_err(|e| StoreError::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    crate::collection::write_file_atomic(&path, &bytes)
}

/// True when a built index belongs to `cfg` (same type, build parameters and metric). A
/// segment with fewer rows than `nlist` has fewer lists, so its IVF index reports a smaller
/// `nlist`.
pub(crate) fn matches(idx: &dyn VectorIndex, cfg: &IndexConfig, rows: usize) -> bool {
    if idx.metric() != cfg.metric || idx.rows() != rows {
        return false;
    }
    match (idx.spec(), cfg.spec) {
        (IndexSpec::IvfFlat { nlist: a }, IndexSpec::IvfFlat { nlist: b })
        | (IndexSpec::IvfSq8 { nlist: a }, IndexSpec::IvfSq8 { nlist: b }) => a <= b,
        (a, b) => a == b,
    }
}

/// Memory-maps and opens an index file; `None` (and a warning) when it cannot be used.
pub(crate) fn load_file(path: &Path) -> Option<Arc<dyn VectorIndex>> {
    let file = fs::File::open(path).ok()?;
    // SAFETY: index files are written once to a temporary name and renamed into place;
    // facedb never modifies them afterwards (a new index is a new file).
    let map = match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => m,
        Err(e) => {
            log::warn!("{}: cannot map index file: {e}", path.display());
            return None;
        }
    };
    let blob: Blob = Arc::new(map);
    match facedb_index::load_index(blob) {
        Ok(idx) => Some(Arc::from(idx)),
        Err(e) => {
            log::warn!("{}: {e}; the index will be rebuilt", path.display());
            None
        }
    }
}

/// Writes an index blob to `path` (temporary file, fsync, rename, fsync directory).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::collection::write_file_atomic(path, bytes)
}
