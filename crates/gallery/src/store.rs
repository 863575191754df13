//! Where the samples live: the [`GalleryStore`] trait and its embedded implementation.

use std::collections::BTreeMap;
use std::sync::Arc;

use facedb_face::{face_distance, Encoding, FaceBox, ENCODING_DIM};
use facedb_store::{
    Batch, Collection, CollectionSchema, ColumnData, DataType, Database, FieldSchema, Metric,
    PrimaryKey, RangeParams, SearchRequest, Value, MAX_TOPK,
};
use serde::Serialize;

use crate::error::{GalleryError, Result};

/// Default name of the gallery collection (DESIGN.md, "The gallery collection").
pub const DEFAULT_COLLECTION: &str = "faces";
/// The `image` value that marks a per-person mean descriptor row (written by
/// [`crate::Gallery::update_means`]); such rows are never counted as samples.
pub const MEAN_IMAGE: &str = "<mean>";
/// Longest person name, in bytes (the `person` field is VARCHAR(255)).
pub const MAX_PERSON_LEN: usize = 255;
/// Longest image key, in bytes (the `image` field is VARCHAR(1024)).
pub const MAX_IMAGE_LEN: usize = 1024;

/// Which rows a search or count looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// Face samples, one per enrolled image (`image` is not [`MEAN_IMAGE`]).
    Sample,
    /// The per-person mean descriptors (`image` is [`MEAN_IMAGE`]).
    Mean,
}

/// One row to insert: a face of `person` found in `image`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Who it is (1..=255 bytes).
    pub person: String,
    /// Where the face came from (1..=1024 bytes); [`MEAN_IMAGE`] for a mean row. The CLI
    /// stores `"<person>/<file>#sha256=<hex>"` (see [`crate::image_key`]).
    pub image: String,
    /// The face box in the oriented image, clipped as face_recognition's `face_locations`
    /// (all zero for a mean row).
    pub bbox: FaceBox,
    /// The 128-d dlib descriptor.
    pub encoding: Encoding,
    /// Enrolment time, unix milliseconds.
    pub enrolled_at: i64,
}

/// One search result: a stored row and its distance to the query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleHit {
    /// The row's primary key (`face_id`).
    pub face_id: i64,
    /// Who the row belongs to.
    pub person: String,
    /// Where the face came from.
    pub image: String,
    /// True Euclidean distance to the query (dlib units, computed in f64 from the stored
    /// descriptor, as face_recognition's `face_distance`).
    pub distance: f64,
}

/// A person and how many rows they have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonCount {
    /// The person's name.
    pub person: String,
    /// Number of face samples (mean rows not counted).
    pub samples: usize,
    /// Whether a mean descriptor row exists.
    pub mean: bool,
}

/// The storage a [`crate::Gallery`] needs. The embedded store implements it
/// ([`EmbeddedStore`]); a remote Milvus holding the same collection schema can implement it
/// the same way (search with `metric_type=L2`, `radius = distance²`, the same filters).
///
/// Distances crossing this trait are true Euclidean distances (dlib's units); an
/// implementation over a squared-L2 store converts (radius = tolerance²).
pub trait GalleryStore: Send + Sync {
    /// Inserts the rows in one batch (all or nothing) and returns their new `face_id`s, in
    /// order.
    ///
    /// # Errors
    /// [`GalleryError::Store`] (validation, I/O).
    fn insert(&self, samples: &[Sample]) -> Result<Vec<i64>>;

    /// The `k` rows of `kind` nearest to `query`, best first (ties by `face_id`); with
    /// `max_distance`, only rows at Euclidean distance `<= max_distance`.
    ///
    /// # Errors
    /// [`GalleryError::Store`]; `k` must be in `1..=16384`.
    fn search(
        &self,
        query: &Encoding,
        k: usize,
        max_distance: Option<f64>,
        kind: SampleKind,
    ) -> Result<Vec<SampleHit>>;

    /// The descriptors of every face sample (not mean) of `person`, in storage order.
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    fn encodings_of(&self, person: &str) -> Result<Vec<Encoding>>;

    /// Deletes the rows of `person` (of `kind`, or all kinds for `None`); returns how many.
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    fn delete_person(&self, person: &str, kind: Option<SampleKind>) -> Result<usize>;

    /// Every person with at least one row, sorted by name.
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    fn persons(&self) -> Result<Vec<PersonCount>>;

    /// Whether a row with exactly this `image` key exists.
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    fn has_image(&self, image: &str) -> Result<bool>;

    /// Number of rows of `kind`.
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    fn count(&self, kind: SampleKind) -> Result<usize>;
}

/// A Milvus string literal for a filter expression: double quotes, with `\`, `"` and
/// control characters escaped (Go `strconv.Unquote` rules, as the expression parser).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn kind_filter(kind: SampleKind) -> String {
    match kind {
        SampleKind::Sample => format!("image != {}", quote(MEAN_IMAGE)),
        SampleKind::Mean => format!("image == {}", quote(MEAN_IMAGE)),
    }
}

/// The gallery collection's schema (DESIGN.md): `face_id` INT64 primary key (auto id),
/// `person` VARCHAR(255), `image` VARCHAR(1024), `bbox_left/top/right/bottom` INT32,
/// `embedding` FLOAT_VECTOR(128), `enrolled_at` INT64 (unix ms).
pub fn gallery_schema(name: &str) -> CollectionSchema {
    CollectionSchema {
        name: name.into(),
        description: "facedb face gallery: one row per enrolled face".into(),
        fields: vec![
            FieldSchema::primary("face_id", DataType::Int64, true),
            FieldSchema::new(
                "person",
                DataType::VarChar {
                    max_length: MAX_PERSON_LEN as u32,
                },
            ),
            FieldSchema::new(
                "image",
                DataType::VarChar {
                    max_length: MAX_IMAGE_LEN as u32,
                },
            ),
            FieldSchema::new("bbox_left", DataType::Int32),
            FieldSchema::new("bbox_top", DataType::Int32),
            FieldSchema::new("bbox_right", DataType::Int32),
            FieldSchema::new("bbox_bottom", DataType::Int32),
            FieldSchema::new(
                "embedding",
                DataType::FloatVector {
                    dim: ENCODING_DIM as u32,
                },
            ),
            FieldSchema::new("enrolled_at", DataType::Int64),
        ],
    }
}

/// [`GalleryStore`] over a collection of the embedded database (`facedb-store`), exact
/// (FLAT) squared-L2 search.
#[derive(Clone)]
pub struct EmbeddedStore {
    coll: Arc<Collection>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("collection", &self.coll.name())
            .finish()
    }
}

impl EmbeddedStore {
    /// Opens the gallery collection `name` of `db`, creating it with [`gallery_schema`] if
    /// absent.
    ///
    /// # Errors
    /// [`GalleryError::SchemaMismatch`] if a collection of that name exists with another
    /// schema; [`GalleryError::Store`] (a bad name, I/O).
    pub fn open(db: &Database, name: &str) -> Result<EmbeddedStore> {
        let want = gallery_schema(name);
        let coll = if db.has_collection(name) {
            let coll = db.collection(name)?;
            let have = coll.schema();
            for f in &want.fields {
                match have.field(&f.name) {
                    None => {
                        return Err(GalleryError::SchemaMismatch {
                            name: name.into(),
                            reason: format!("no field {}", f.name),
                        })
                    }
                    Some(h) if h.data_type != f.data_type || h.is_primary != f.is_primary => {
                        return Err(GalleryError::SchemaMismatch {
                            name: name.into(),
                            reason: format!("field {} is {}", f.name, h.data_type.name()),
                        })
                    }
                    Some(_) => {}
                }
            }
            coll
        } else {
            db.create_collection(want)?
        };
        Ok(EmbeddedStore { coll })
    }

    /// The underlying collection.
    pub fn collection(&self) -> &Arc<Collection> {
        &self.coll
    }
}

fn string_field(fields: &[(String, Value)], name: &str) -> String {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| match v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn vector_field(fields: &[(String, Value)], name: &str) -> Option<Encoding> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| match v {
            Value::FloatVector(x) => Encoding::try_from(x.as_slice()).ok(),
            _ => None,
        })
}

impl GalleryStore for EmbeddedStore {
    fn insert(&self, samples: &[Sample]) -> Result<Vec<i64>> {
        if samples.is_empty() {
            return Ok(vec![]);
        }
        let mut person = Vec::with_capacity(samples.len());
        let mut image = Vec::with_capacity(samples.len());
        let (mut l, mut t, mut r, mut b) = (vec![], vec![], vec![], vec![]);
        let mut emb = Vec::with_capacity(samples.len() * ENCODING_DIM);
        let mut at = Vec::with_capacity(samples.len());
        for s in samples {
            person.push(s.person.clone());
            image.push(s.image.clone());
            l.push(s.bbox.left);
            t.push(s.bbox.top);
            r.push(s.bbox.right);
            b.push(s.bbox.bottom);
            emb.extend_from_slice(&s.encoding);
            at.push(s.enrolled_at);
        }
        let batch = Batch::new()
            .with("person", ColumnData::VarChar(person))
            .with("image", ColumnData::VarChar(image))
            .with("bbox_left", ColumnData::Int32(l))
            .with("bbox_top", ColumnData::Int32(t))
            .with("bbox_right", ColumnData::Int32(r))
            .with("bbox_bottom", ColumnData::Int32(b))
            .with(
                "embedding",
                ColumnData::FloatVector {
                    dim: ENCODING_DIM,
                    data: emb,
                },
            )
            .with("enrolled_at", ColumnData::Int64(at));
        let keys = self.coll.insert(batch)?;
        Ok(keys
            .into_iter()
            .map(|k| match k {
                PrimaryKey::Int(v) => v,
                PrimaryKey::Str(_) => -1,
            })
            .collect())
    }

    fn search(
        &self,
        query: &Encoding,
        k: usize,
        max_distance: Option<f64>,
        kind: SampleKind,
    ) -> Result<Vec<SampleHit>> {
        let mut req = SearchRequest::new(vec![query.to_vec()], Metric::L2, k.min(MAX_TOPK));
        req.filter = Some(kind_filter(kind));
        req.output_fields = vec!["person".into(), "image".into(), "embedding".into()];
        if let Some(t) = max_distance {
            // The store's L2 is squared and its radius exclusive (Milvus: d < radius); the
            // gallery's bound is inclusive, so the radius is widened by a few ulps and the
            // exact f64 distance decides below.
            let r = (t * t) as f32;
            req.range = Some(RangeParams {
                radius: Some(r * (1.0 + 4.0 * f32::EPSILON) + f32::MIN_POSITIVE),
                range_filter: None,
            });
        }
        let hits = self
            .coll
            .search(&req)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut out: Vec<SampleHit> = hits
            .into_iter()
            .map(|h| {
                let distance = match vector_field(&h.fields, "embedding") {
                    Some(e) => face_distance(query, &e),
                    None => f64::from(h.distance.max(0.0)).sqrt(),
                };
                SampleHit {
                    face_id: match h.pk {
                        PrimaryKey::Int(v) => v,
                        PrimaryKey::Str(_) => -1,
                    },
                    person: string_field(&h.fields, "person"),
                    image: string_field(&h.fields, "image"),
                    distance,
                }
            })
            .filter(|h| max_distance.is_none_or(|t| h.distance <= t))
            .collect();
        // The f64 distances may order near-ties differently from the store's f32 keys.
        out.sort_by(|a, b| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.face_id.cmp(&b.face_id))
        });
        Ok(out)
    }

    fn encodings_of(&self, person: &str) -> Result<Vec<Encoding>> {
        let filter = format!(
            "person == {} && {}",
            quote(person),
            kind_filter(SampleKind::Sample)
        );
        let rows = self
            .coll
            .query(Some(&filter), &["embedding".to_string()], None, 0)?;
        Ok(rows
            .iter()
            .filter_map(|r| vector_field(r, "embedding"))
            .collect())
    }

    fn delete_person(&self, person: &str, kind: Option<SampleKind>) -> Result<usize> {
        let mut filter = format!("person == {}", quote(person));
        if let Some(k) = kind {
            filter = format!("{filter} && {}", kind_filter(k));
        }
        Ok(self.coll.delete_where(&filter)?)
    }

    fn persons(&self) -> Result<Vec<PersonCount>> {
        let rows = self
            .coll
            .query(None, &["person".to_string(), "image".to_string()], None, 0)?;
        let mut by: BTreeMap<String, PersonCount> = BTreeMap::new();
        for r in &rows {
            let person = string_field(r, "person");
            let is_mean = string_field(r, "image") == MEAN_IMAGE;
            let e = by.entry(person.clone()).or_insert(PersonCount {
                person,
                samples: 0,
                mean: false,
            });
            if is_mean {
                e.mean = true;
            } else {
                e.samples += 1;
            }
        }
        Ok(by.into_values().collect())
    }

    fn has_image(&self, image: &str) -> Result<bool> {
        let filter = format!("image == {}", quote(image));
        Ok(self.coll.count_where(Some(&filter))? > 0)
    }

    fn count(&self, kind: SampleKind) -> Result<usize> {
        Ok(self.coll.count_where(Some(&kind_filter(kind)))?)
    }
}
