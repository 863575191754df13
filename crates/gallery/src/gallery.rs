//! Identities over a [`GalleryStore`]: enroll, identify (1:N, open-set), verify (1:1).

use std::collections::HashSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use facedb_face::{face_distance, Encoding, Face, FaceBox};
use facedb_store::{Database, MAX_TOPK};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{GalleryError, Result};
use crate::store::{
    EmbeddedStore, GalleryStore, PersonCount, Sample, SampleKind, DEFAULT_COLLECTION,
    MAX_IMAGE_LEN, MAX_PERSON_LEN, MEAN_IMAGE,
};

/// The default tolerance of `identify` and `verify`, in dlib units (true Euclidean
/// distance). Chosen from `facedb eval` on the dev set (README, "Choosing the tolerance"):
/// at 0.6 (face_recognition's default) about a quarter of people who are not enrolled are
/// taken for someone who is; at 0.55 about 1% are, for a few more misses of enrolled
/// people. 0.6 stays available with `--tolerance 0.6`.
pub const DEFAULT_TOLERANCE: f64 = 0.55;

/// face_recognition's default tolerance (`compare_faces`, its CLI): 0.6.
pub const FACE_RECOGNITION_TOLERANCE: f64 = 0.6;

/// The answer of an identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The best person is within the tolerance: the face is theirs.
    Known,
    /// Nobody is within the tolerance (or the gallery is empty).
    Unknown,
}

/// One candidate person of an identification: their best (nearest) sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonMatch {
    /// The person.
    pub person: String,
    /// True Euclidean distance from the query to the person's nearest row.
    pub distance: f64,
    /// That row's `face_id`.
    pub face_id: i64,
    /// That row's `image` key.
    pub image: String,
}

/// The result of [`Gallery::identify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identification {
    /// `known` when [`Identification::distance`] `<= tolerance`, else `unknown`.
    pub verdict: Verdict,
    /// The nearest person (also when the verdict is `unknown`); `None` for an empty gallery.
    pub person: Option<String>,
    /// True Euclidean distance to the nearest person's nearest row.
    pub distance: Option<f64>,
    /// Distance of the runner-up person minus the best person's (how clear the answer is);
    /// `None` with fewer than two persons.
    pub margin: Option<f64>,
    /// The tolerance applied.
    pub tolerance: f64,
    /// The `top` nearest persons, best first, each by their nearest row.
    pub top: Vec<PersonMatch>,
}

/// Options of [`Gallery::identify`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdentifyOptions {
    /// How many persons to return in [`Identification::top`] (>= 1).
    pub top: usize,
    /// Known at or under this true Euclidean distance (dlib units, >= 0).
    pub tolerance: f64,
    /// Compare against the per-person mean rows instead of the samples.
    pub against: SampleKind,
}

impl Default for IdentifyOptions {
    fn default() -> Self {
        IdentifyOptions {
            top: 1,
            tolerance: DEFAULT_TOLERANCE,
            against: SampleKind::Sample,
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Verification {
    /// True Euclidean distance between the two descriptors.
    pub distance: f64,
    /// `distance <= tolerance`.
    pub same_person: bool,
    /// The tolerance applied.
    pub tolerance: f64,
}

/// What [`Gallery::enroll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollOutcome {
    /// A new row was written, with this `face_id`.
    Enrolled(i64),
    /// A row with the same `image` key already exists; nothing was written.
    AlreadyEnrolled,
}

/// 1:1 verification: are two descriptors the same person at `tolerance` (true Euclidean
/// distance, dlib units; face_recognition's `compare_faces`)?
pub fn verify(a: &Encoding, b: &Encoding, tolerance: f64) -> Verification {
    let distance = face_distance(a, b);
    Verification {
        distance,
        same_person: distance <= tolerance,
        tolerance,
    }
}

/// The key stored in the `image` field for a file: `"<name>#sha256=<64 hex>"`, the name
/// (usually `person/file`) plus the SHA-256 of the file's bytes. Enrolling the same
/// bytes under the same name again is recognised ([`Gallery::has_image`]); a changed file
/// under the same name is a new sample.
pub fn image_key(name: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("{name}#sha256={hex}")
}

/// The face with the largest (clipped) box, the first (most confident) on ties; `None` for
/// no face.
pub fn largest_face(faces: &[Face]) -> Option<&Face> {
    let mut best: Option<&Face> = None;
    for f in faces {
        if best.is_none_or(|b| f.bbox.area() > b.bbox.area()) {
            best = Some(f);
        }
    }
    best
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn check_person(person: &str) -> Result<()> {
    let bad = |reason| {
        Err(GalleryError::InvalidPerson {
            name: person.into(),
            reason,
        })
    };
    if person.is_empty() {
        return bad("empty");
    }
    if person.len() > MAX_PERSON_LEN {
        return bad("longer than 255 bytes");
    }
    Ok(())
}

fn check_image(image: &str) -> Result<()> {
    let bad = |reason| {
        Err(GalleryError::InvalidImage {
            len: image.len(),
            reason,
        })
    };
    if image.is_empty() {
        return bad("empty");
    }
    if image.len() > MAX_IMAGE_LEN {
        return bad("longer than 1024 bytes");
    }
    if image == MEAN_IMAGE {
        return bad("\"<mean>\" is reserved for mean rows");
    }
    Ok(())
}

fn check_encoding(e: &Encoding) -> Result<()> {
    if e.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(GalleryError::NonFinite)
    }
}

/// A face gallery: persons, each with face samples (and optionally a mean descriptor), in
/// a [`GalleryStore`]. Cheap to share between threads (`&Gallery` is `Sync`).
pub struct Gallery {
    store: Box<dyn GalleryStore>,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery").finish_non_exhaustive()
    }
}

impl Gallery {
    /// A gallery over any store.
    pub fn new(store: Box<dyn GalleryStore>) -> Gallery {
        Gallery { store }
    }

    /// Opens (creating if needed) the embedded database in `dir` and its `faces`
    /// collection.
    ///
    /// # Errors
    /// As [`Database::open`] and [`EmbeddedStore::open`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Gallery> {
        let db = Database::open(dir)?;
        Ok(Gallery::new(Box::new(EmbeddedStore::open(
            &db,
            DEFAULT_COLLECTION,
        )?)))
    }

    /// The store behind the gallery.
    pub fn store(&self) -> &dyn GalleryStore {
        self.store.as_ref()
    }

    /// Whether a sample with this `image` key exists (see [`image_key`]).
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    pub fn has_image(&self, image: &str) -> Result<bool> {
        self.store.has_image(image)
    }

    /// Enrolls one face sample of `person` found in `image` (a key such as [`image_key`]
    /// gives). Idempotent on `image`: if a row with that key exists, nothing is written and
    /// [`EnrollOutcome::AlreadyEnrolled`] is returned. Does not update the mean row (call
    /// [`Gallery::update_means`]).
    ///
    /// # Errors
    /// [`GalleryError::InvalidPerson`], [`GalleryError::InvalidImage`],
    /// [`GalleryError::NonFinite`], [`GalleryError::Store`].
    pub fn enroll(
        &self,
        person: &str,
        image: &str,
        bbox: FaceBox,
        encoding: &Encoding,
    ) -> Result<EnrollOutcome> {
        check_person(person)?;
        check_image(image)?;
        check_encoding(encoding)?;
        if self.store.has_image(image)? {
            return Ok(EnrollOutcome::AlreadyEnrolled);
        }
        let ids = self.store.insert(&[Sample {
            person: person.into(),
            image: image.into(),
            bbox,
            encoding: *encoding,
            enrolled_at: now_ms(),
        }])?;
        Ok(EnrollOutcome::Enrolled(ids.first().copied().unwrap_or(-1)))
    }

    /// Replaces the mean descriptor row of each of `persons` by the element-wise mean of
    /// their current samples (image [`MEAN_IMAGE`], box all zero); a person without samples
    /// loses their mean row. Returns how many mean rows were written. Not atomic per
    /// person: the old row is deleted, then the new one inserted.
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    pub fn update_means(&self, persons: &[String]) -> Result<usize> {
        let mut written = 0;
        let unique: HashSet<&String> = persons.iter().collect();
        let mut sorted: Vec<&String> = unique.into_iter().collect();
        sorted.sort();
        for person in sorted {
            check_person(person)?;
            let encs = self.store.encodings_of(person)?;
            self.store.delete_person(person, Some(SampleKind::Mean))?;
            if encs.is_empty() {
                continue;
            }
            let mut sum = [0f64; facedb_face::ENCODING_DIM];
            for e in &encs {
                for (s, x) in sum.iter_mut().zip(e) {
                    *s += f64::from(*x);
                }
            }
            let n = encs.len() as f64;
            let mean: Encoding = std::array::from_fn(|i| (sum[i] / n) as f32);
            self.store.insert(&[Sample {
                person: person.clone(),
                image: MEAN_IMAGE.into(),
                bbox: FaceBox {
                    left: 0,
                    top: 0,
                    right: 0,
                    bottom: 0,
                },
                encoding: mean,
                enrolled_at: now_ms(),
            }])?;
            written += 1;
        }
        Ok(written)
    }

    /// 1:N open-set identification of one face descriptor: the nearest persons (each by
    /// their nearest row of kind `options.against`), the verdict at `options.tolerance`,
    /// and the margin to the runner-up. Mean rows are never mixed with samples.
    ///
    /// Searches the `k` nearest rows (starting at `max(64, 8·top)`) and widens `k` until
    /// `max(top, 2)` distinct persons are found or every row was seen, so the answer is
    /// exact (the store's search is exact).
    ///
    /// # Errors
    /// [`GalleryError::InvalidParameter`] for `top == 0` or a tolerance that is negative or
    /// not finite; [`GalleryError::NonFinite`]; [`GalleryError::Store`].
    pub fn identify(
        &self,
        encoding: &Encoding,
        options: &IdentifyOptions,
    ) -> Result<Identification> {
        if options.top == 0 {
            return Err(GalleryError::InvalidParameter("top must be >= 1".into()));
        }
        if !options.tolerance.is_finite() || options.tolerance < 0.0 {
            return Err(GalleryError::InvalidParameter(format!(
                "tolerance must be a finite number >= 0, got {}",
                options.tolerance
            )));
        }
        check_encoding(encoding)?;
        let want = options.top.max(2);
        let mut k = (8 * want).clamp(64, MAX_TOPK);
        let mut persons: Vec<PersonMatch>;
        loop {
            let hits = self.store.search(encoding, k, None, options.against)?;
            let n_hits = hits.len();
            persons = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            for h in hits {
                if seen.insert(h.person.clone()) {
                    persons.push(PersonMatch {
                        person: h.person,
                        distance: h.distance,
                        face_id: h.face_id,
                        image: h.image,
                    });
                }
            }
            if persons.len() >= want || n_hits < k || k >= MAX_TOPK {
                break;
            }
            k = (k * 4).min(MAX_TOPK);
        }
        let best = persons.first();
        let verdict = match best {
            Some(b) if b.distance <= options.tolerance => Verdict::Known,
            _ => Verdict::Unknown,
        };
        let margin = match (persons.first(), persons.get(1)) {
            (Some(a), Some(b)) => Some(b.distance - a.distance),
            _ => None,
        };
        let person = best.map(|b| b.person.clone());
        let distance = best.map(|b| b.distance);
        persons.truncate(options.top);
        Ok(Identification {
            verdict,
            person,
            distance,
            margin,
            tolerance: options.tolerance,
            top: persons,
        })
    }

    /// Every person with their sample counts, sorted by name.
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    pub fn people(&self) -> Result<Vec<PersonCount>> {
        self.store.persons()
    }

    /// Deletes every row of `person` (samples and mean); returns how many.
    ///
    /// # Errors
    /// [`GalleryError::InvalidPerson`], [`GalleryError::Store`].
    pub fn forget(&self, person: &str) -> Result<usize> {
        check_person(person)?;
        self.store.delete_person(person, None)
    }

    /// Number of face samples (mean rows not counted).
    ///
    /// # Errors
    /// [`GalleryError::Store`].
    pub fn samples(&self) -> Result<usize> {
        self.store.count(SampleKind::Sample)
    }
}
