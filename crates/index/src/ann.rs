//! Approximate (and exact) vector indexes behind one interface, with Milvus's index types,
//! parameter names and ranges.
//!
//! | `index_type` | build parameters | search parameters | source |
//! |---|---|---|---|
//! | `FLAT` | - | - | exact scan ([`crate::flat_search`]) |
//! | `IVF_FLAT` | `nlist` 1..=65536 | `nprobe` 1..=nlist | Milvus "In-memory Index"; Jégou et al., *Product quantization for nearest neighbor search*, TPAMI 2011 (inverted file) |
//! | `IVF_SQ8` | `nlist` 1..=65536 | `nprobe` 1..=nlist | Milvus; 8-bit scalar quantisation per dimension (Faiss `QT_8bit`) |
//! | `SQ8` | - | - | facedb: int8 exact scan of every row (IVF_SQ8 without the inverted file) |
//! | `HNSW` | `M` 4..=64, `efConstruction` 8..=512 | `ef` topk..=32768 (default `max(topk, 192)`, [`crate::hnsw::DEFAULT_EF`]) | Malkov & Yashunin, *Efficient and robust approximate nearest neighbor search using Hierarchical Navigable Small World graphs*, TPAMI 2018 |
//!
//! Every index returns **exact** scores: candidates (`k × rerank`, at least `k`) are
//! re-scored with the segment's stored `f32` vectors, so the top-1 equals FLAT's whenever
//! the true neighbour is among the candidates. Rows not set in `allowed` (deleted,
//! filtered out) are never returned. Range search checks every candidate exactly; it is
//! approximate beyond the candidates the index visits.
//!
//! IVF_FLAT, IVF_SQ8 and SQ8 defaults (details and measurements in [`crate::ivf`] and
//! [`crate::sq8`]):
//! - a segment's IVF index has `min(nlist, rows)` lists (at least 1), which
//!   [`VectorIndex::spec`] reports;
//! - `nprobe`: `ceil(3 × nlist / 8)` of the segment's lists
//!   ([`crate::ivf::default_nprobe`]), chosen for recall@10 >= 0.99 on dlib-like data at
//!   100k rows and `nlist = 1024`; genuine mates are found as by FLAT from `nlist / 16`;
//! - `rerank`: 2 for SQ8 and IVF_SQ8 (`k × 2` candidates, at least `k + 16`); IVF_FLAT
//!   scores exactly and ignores it;
//! - with a filter letting through a fraction `f` of the rows, `nprobe` grows by `1 / f`
//!   (up to `nlist`) and further lists are probed until `k` allowed rows are found (not for
//!   range searches).

use std::fmt;

use crate::blob::{Blob, BlobReader};
use crate::flat::{KeyRange, Neighbor};
use crate::topk::TieBreak;
use crate::Metric;

/// Errors of index parameters, builds and index files.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    /// A build or search parameter outside its documented range (message as Milvus words it).
    #[error("{0}")]
    InvalidParameter(String),
    /// An index blob that cannot be read (bad magic, CRC mismatch, truncated).
    #[error("corrupt index: {0}")]
    Corrupt(String),
}

/// Largest `nlist` (Milvus: `[1, 65536]`).
pub const MAX_NLIST: usize = 65536;
/// Largest HNSW search `ef` (Milvus: `[topk, 32768]`).
pub const MAX_EF: usize = 32768;
/// Largest re-ranking factor.
pub const MAX_RERANK: usize = 64;

/// Default IVF `nlist` when a request gives none.
pub const DEFAULT_NLIST: usize = 1024;
/// Default HNSW `M`.
pub const DEFAULT_M: usize = 16;
/// Default HNSW `efConstruction`.
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;

/// An index type with its build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexSpec {
    /// Exact scan; nothing is built.
    Flat,
    /// Inverted file over `nlist` k-means lists, `f32` vectors in the lists.
    IvfFlat {
        /// Number of lists (k-means centroids), `1..=65536`; a segment with fewer rows gets
        /// one list per row at most.
        nlist: usize,
    },
    /// Inverted file with 8-bit scalar-quantised codes in the lists.
    IvfSq8 {
        /// Number of lists, `1..=65536`.
        nlist: usize,
    },
    /// 8-bit scalar-quantised codes of every row, scanned exhaustively (a quarter of FLAT's
    /// memory traffic), then re-ranked exactly.
    Sq8,
    /// Hierarchical navigable small-world graph.
    Hnsw {
        /// Links per node on the upper layers (`2 × M` on layer 0), `4..=64`.
        m: usize,
        /// Candidate list size while building, `8..=512`.
        ef_construction: usize,
    },
}

impl IndexSpec {
    /// Milvus's `index_type` name.
    pub fn name(&self) -> &'static str {
        match self {
            IndexSpec::Flat => "FLAT",
            IndexSpec::IvfFlat { .. } => "IVF_FLAT",
            IndexSpec::IvfSq8 { .. } => "IVF_SQ8",
            IndexSpec::Sq8 => "SQ8",
            IndexSpec::Hnsw { .. } => "HNSW",
        }
    }

    /// Builds a spec from Milvus's `index_type` and its `params` (`nlist`, `M`,
    /// `efConstruction`); missing parameters take the defaults above.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for an unknown type or a value out of range.
    pub fn from_milvus(
        index_type: &str,
        get: impl Fn(&str) -> Option<i64>,
    ) -> Result<IndexSpec, IndexError> {
        // Checked as given (a negative value is reported as such, not as 0).
        let param = |name: &str, default: usize, lo: usize, hi: usize| {
            let v = get(name).unwrap_or(default as i64);
            if v < lo as i64 || v > hi as i64 {
                return Err(IndexError::InvalidParameter(format!(
                    "param '{name}' ({v}) should be in range [{lo}, {hi}]"
                )));
            }
            Ok(v as usize)
        };
        let spec = match index_type.to_ascii_uppercase().as_str() {
            "FLAT" => IndexSpec::Flat,
            "IVF_FLAT" => IndexSpec::IvfFlat {
                nlist: param("nlist", DEFAULT_NLIST, 1, MAX_NLIST)?,
            },
            "IVF_SQ8" => IndexSpec::IvfSq8 {
                nlist: param("nlist", DEFAULT_NLIST, 1, MAX_NLIST)?,
            },
            "SQ8" => IndexSpec::Sq8,
            "HNSW" => IndexSpec::Hnsw {
                m: param("M", DEFAULT_M, 4, 64)?,
                ef_construction: param("efConstruction", DEFAULT_EF_CONSTRUCTION, 8, 512)?,
            },
            other => {
                return Err(IndexError::InvalidParameter(format!(
                    "invalid index type: {other}"
                )))
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks build parameters against Milvus's ranges.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`], worded as Milvus:
    /// `param 'nlist' (0) should be in range [1, 65536]`.
    pub fn validate(&self) -> Result<(), IndexError> {
        let check = |name: &str, v: usize, lo: usize, hi: usize| {
            if v < lo || v > hi {
                Err(IndexError::InvalidParameter(format!(
                    "param '{name}' ({v}) should be in range [{lo}, {hi}]"
                )))
            } else {
                Ok(())
            }
        };
        match *self {
            IndexSpec::Flat | IndexSpec::Sq8 => Ok(()),
            IndexSpec::IvfFlat { nlist } | IndexSpec::IvfSq8 { nlist } => {
                check("nlist", nlist, 1, MAX_NLIST)
            }
            IndexSpec::Hnsw { m, ef_construction } => {
                check("M", m, 4, 64)?;
                check("efConstruction", ef_construction, 8, 512)
            }
        }
    }

    /// The default search knobs of this index type (see [`SearchKnobs`]).
    pub fn default_knobs(&self) -> SearchKnobs {
        SearchKnobs::default()
    }
}

impl fmt::Display for IndexSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IndexSpec::IvfFlat { nlist } | IndexSpec::IvfSq8 { nlist } => {
                write!(f, "{}(nlist={nlist})", self.name())
            }
            IndexSpec::Hnsw { m, ef_construction } => {
                write!(f, "HNSW(M={m}, efConstruction={ef_construction})")
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// Search-time parameters; `None` takes the index's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchKnobs {
    /// IVF lists probed per query, `1..=nlist` (default: `ceil(3 × nlist / 8)` of the
    /// segment's lists, see [`crate::ivf::default_nprobe`]).
    pub nprobe: Option<usize>,
    /// HNSW candidate list size, `topk..=32768`.
    pub ef: Option<usize>,
    /// Re-ranking factor: `k × rerank` candidates are re-scored exactly, `1..=64` (SQ8 and
    /// IVF_SQ8: default 2 and at least `k + 16` candidates, see
    /// [`crate::sq8::DEFAULT_RERANK`]).
    pub rerank: Option<usize>,
}

impl SearchKnobs {
    /// Checks the knobs against an index spec and `topk`, as Milvus does at search time.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`]: `nprobe` outside `[1, nlist]`, `ef` outside
    /// `[topk, 32768]`, `rerank` outside `[1, 64]`.
    pub fn validate(&self, spec: &IndexSpec, topk: usize) -> Result<(), IndexError> {
        if let (Some(np), IndexSpec::IvfFlat { nlist } | IndexSpec::IvfSq8 { nlist }) =
            (self.nprobe, spec)
        {
            if np < 1 || np > *nlist {
                return Err(IndexError::InvalidParameter(format!(
                    "param 'nprobe' ({np}) should be in range [1, {nlist}]"
                )));
            }
        }
        if let (Some(ef), IndexSpec::Hnsw { .. }) = (self.ef, spec) {
            if ef < topk || ef > MAX_EF {
                return Err(IndexError::InvalidParameter(format!(
                    "param 'ef' ({ef}) should be in range [k, {MAX_EF}], k = {topk}"
                )));
            }
        }
        if let Some(r) = self.rerank {
            if !(1..=MAX_RERANK).contains(&r) {
                return Err(IndexError::InvalidParameter(format!(
                    "param 'rerank' ({r}) should be in range [1, {MAX_RERANK}]"
                )));
            }
        }
        Ok(())
    }
}

/// One index search.
#[derive(Clone, Copy)]
pub struct AnnParams<'a> {
    /// Neighbours per query (`topk + offset`).
    pub k: usize,
    /// Only keys in this range qualify (range search); [`KeyRange::ALL`] otherwise.
    pub range: KeyRange,
    /// Allowed rows (`bit i` of `words[i / 64]`), `None` = all. Disallowed rows are never
    /// returned (they may still be traversed by a graph).
    pub allowed: Option<&'a [u64]>,
    /// Order of rows with equal scores.
    pub tiebreak: TieBreak<'a>,
    /// Search-time parameters.
    pub knobs: SearchKnobs,
}

/// A built index over the `rows × dim` vectors of one sealed segment.
///
/// The index does not own the `f32` vectors: they stay in the segment (memory-mapped) and
/// are passed to [`VectorIndex::search`] for exact re-ranking. `Send + Sync`: one index is
/// searched from many threads at once.
pub trait VectorIndex: Send + Sync {
    /// The index type with the parameters it was built with (`nlist` as used for this
    /// segment, which is at most its row count).
    fn spec(&self) -> IndexSpec;
    /// The metric the index was built for.
    fn metric(&self) -> Metric;
    /// Rows indexed.
    fn rows(&self) -> usize;
    /// Dimension.
    fn dim(&self) -> usize;
    /// k-NN of `nq` queries (`nq × dim`, row-major). `vectors` are the `rows × dim`
    /// vectors the index was built from. Returns one list per query, best first, with exact
    /// scores in metric units (as [`crate::flat_search`]).
    fn search(&self, vectors: &[f32], queries: &[f32], p: &AnnParams<'_>) -> Vec<Vec<Neighbor>>;
    /// Serialises the index (see [`crate::blob`]); [`load_index`] reads it back.
    fn to_blob(&self) -> Vec<u8>;
    /// Bytes of memory (or mapping) the index itself uses, excluding the segment's vectors.
    fn bytes(&self) -> usize;
}

/// Builds an index of `spec` over `vectors` (`rows × dim`, row-major) for `metric`.
/// Deterministic for a given `seed`. Uses the rayon thread pool.
///
/// # Errors
/// [`IndexError::InvalidParameter`] for parameters out of range, or `FLAT` (nothing to build).
pub fn build_index(
    spec: &IndexSpec,
    metric: Metric,
    vectors: &[f32],
    dim: usize,
    seed: u64,
) -> Result<Box<dyn VectorIndex>, IndexError> {
    spec.validate()?;
    match *spec {
        IndexSpec::Flat => Err(IndexError::InvalidParameter(
            "FLAT has no index to build".into(),
        )),
        IndexSpec::IvfFlat { nlist } => Ok(Box::new(crate::ivf::IvfFlatIndex::build(
            metric, vectors, dim, nlist, seed,
        )?)),
        IndexSpec::IvfSq8 { nlist } => Ok(Box::new(crate::ivf::IvfSq8Index::build(
            metric, vectors, dim, nlist, seed,
        )?)),
        IndexSpec::Sq8 => Ok(Box::new(crate::sq8::Sq8Index::build(metric, vectors, dim)?)),
        IndexSpec::Hnsw { m, ef_construction } => Ok(Box::new(crate::hnsw::Hnsw::build(
            metric,
            vectors,
            dim,
            m,
            ef_construction,
            seed,
        )?)),
    }
}

/// Opens an index from its blob (an owned buffer or a memory map), in place.
///
/// # Errors
/// [`IndexError::Corrupt`] for a damaged blob or an unknown kind.
pub fn load_index(blob: Blob) -> Result<Box<dyn VectorIndex>, IndexError> {
    let r = BlobReader::open(blob)?;
    match r.kind() {
        "IVF_FLAT" => Ok(Box::new(crate::ivf::IvfFlatIndex::load(&r)?)),
        "IVF_SQ8" => Ok(Box::new(crate::ivf::IvfSq8Index::load(&r)?)),
        "SQ8" => Ok(Box::new(crate::sq8::Sq8Index::load(&r)?)),
        crate::hnsw::KIND => Ok(Box::new(crate::hnsw::Hnsw::load(&r)?)),
        _ => Err(IndexError::Corrupt(format!(
            "unknown index kind {}",
            r.kind()
        ))),
    }
}
