//! # facedb-index
//!
//! Vectors only: distance kernels (squared L2, inner product, cosine), bounded top-k
//! selection, exact FLAT search over `n × d` row-major `f32` matrices (directly, or through
//! an 8-bit [`FlatSketch`] that reads a quarter of the bytes for the same results), and the
//! approximate indexes of [`ann`] (IVF_FLAT, IVF_SQ8, SQ8, HNSW) with exact re-ranking. No
//! files, no schema: the store (`facedb-store`) owns those and calls in here per segment.
//!
//! ```
//! use facedb_index::{flat_search, FlatParams, KeyRange, Metric, by_row};
//! // Three 2-d vectors, one query.
//! let vectors = [0.0, 0.0, 3.0, 4.0, 1.0, 1.0];
//! let p = FlatParams { metric: Metric::L2, k: 2, range: KeyRange::ALL, allowed: None, tiebreak: &by_row };
//! let hits = flat_search(&vectors, 2, &[1.0, 1.0], &p);
//! assert_eq!(hits[0][0].row, 2);
//! assert_eq!(hits[0][1].score, 2.0); // squared L2 to (0, 0)
//! ```
#![deny(missing_docs)]

pub mod ann;
pub mod blob;
pub mod distance;
mod flat;
pub mod hnsw;
pub mod ivf;
pub mod kmeans;
pub mod sketch;
pub mod sq8;
pub mod synth;
mod topk;

pub use ann::{
    build_index, load_index, AnnParams, IndexError, IndexSpec, SearchKnobs, VectorIndex,
};
pub use flat::{count_allowed, flat_search, FlatParams, KeyRange, Neighbor};
pub use sketch::FlatSketch;
pub use topk::{by_row, Candidate, TieBreak, TopK};

/// A similarity metric, as Milvus names them (`metric_type`).
///
/// Source: Milvus docs, "Similarity Metrics": L2 is the *squared* Euclidean distance (as in
/// Faiss `METRIC_L2`), smaller is better; IP is the inner product and COSINE the cosine
/// similarity, larger is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance `sum (x_i - q_i)^2`.
    L2,
    /// Inner product `sum x_i q_i`.
    Ip,
    /// Cosine similarity `x·q / (|x| |q|)`, 0 when either is zero.
    Cosine,
}

impl Metric {
    /// Parses Milvus's names `L2`, `IP`, `COSINE` (case-insensitive).
    pub fn parse(s: &str) -> Option<Metric> {
        match s.to_ascii_uppercase().as_str() {
            "L2" => Some(Metric::L2),
            "IP" => Some(Metric::Ip),
            "COSINE" => Some(Metric::Cosine),
            _ => None,
        }
    }

    /// Milvus's name of the metric.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::Ip => "IP",
            Metric::Cosine => "COSINE",
        }
    }

    /// True when larger scores are better (IP, COSINE).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }

    /// The ranking key of a score: smaller key = better result.
    pub fn key(self, score: f32) -> f32 {
        if self.higher_is_better() {
            -score
        } else {
            score
        }
    }

    /// The score of a ranking key (inverse of [`Metric::key`]).
    pub fn score(self, key: f32) -> f32 {
        self.key(key)
    }

    /// f64 version of [`Metric::score`], for reference computations.
    pub fn score_f64(self, key: f64) -> f64 {
        if self.higher_is_better() {
            -key
        } else {
            key
        }
    }

    /// Milvus range-search semantics as a key interval.
    ///
    /// - L2: `range_filter <= d < radius`;
    /// - IP / COSINE: `radius < s <= range_filter`.
    ///
    /// A missing bound leaves that side open.
    pub fn key_range(self, radius: Option<f32>, range_filter: Option<f32>) -> KeyRange {
        if self.higher_is_better() {
            KeyRange {
                lo: range_filter.map_or(f32::NEG_INFINITY, |f| -f),
                hi: radius.map_or(f32::INFINITY, |r| -r),
            }
        } else {
            KeyRange {
                lo: range_filter.unwrap_or(f32::NEG_INFINITY),
                hi: radius.unwrap_or(f32::INFINITY),
            }
        }
    }
}
