//! # facedb-gallery
//!
//! Identities over face descriptors: a [`Gallery`] of persons, each with face samples
//! (128-d dlib descriptors from [`facedb_face`]), kept in a [`GalleryStore`]. The embedded
//! database ([`EmbeddedStore`], `facedb-store`) is the store here; the trait is what a
//! remote Milvus holding the same collection would implement.
//!
//! - [`Gallery::enroll`]: one face sample of a person, idempotent on its image key
//!   ([`image_key`]: name + SHA-256 of the file's bytes);
//! - [`Gallery::identify`]: 1:N open-set identification: the nearest persons (best sample
//!   per person), the true Euclidean distance, a [`Verdict`] (`known` at or under the
//!   tolerance, else `unknown`) and the margin to the runner-up;
//! - [`verify`]: 1:1, are two faces the same person;
//! - [`Gallery::people`], [`Gallery::forget`], [`Gallery::update_means`] (one mean
//!   descriptor per person, marked by `image == "<mean>"` so it never counts as a sample);
//! - [`eval::evaluate`]: the open-set protocol of `shared/data/faces/README.md`.
//!
//! ## The gallery collection
//! DESIGN.md's schema, default name `faces`: `face_id` INT64 primary key (auto id),
//! `person` VARCHAR(255), `image` VARCHAR(1024), `bbox_left/top/right/bottom` INT32
//! (pixels of the oriented image, the box clipped as face_recognition's `face_locations`),
//! `embedding` FLOAT_VECTOR(128), `enrolled_at` INT64 (unix ms). Mean rows have
//! `image == "<mean>"` and a zero box.
//!
//! ## Units
//! The gallery speaks dlib's units: true Euclidean distance between descriptors (same
//! person: <= ~0.6). The store's L2 is squared (as Milvus and Faiss): a tolerance `t` is a
//! store radius `t²`. Distances reported here are recomputed in f64 from the stored
//! descriptors, as face_recognition's `face_distance`. Never inner product: dlib
//! descriptors are not normalised.
//!
//! ```
//! use facedb_gallery::{Gallery, IdentifyOptions, Verdict};
//! use facedb_face::FaceBox;
//! let dir = tempfile::tempdir().unwrap();
//! let g = Gallery::open(dir.path()).unwrap();
//! let bbox = FaceBox { left: 0, top: 0, right: 10, bottom: 10 };
//! let mut a = [0f32; 128];
//! a[0] = 1.0;
//! g.enroll("ada", "ada/1.jpg", bbox, &a).unwrap();
//! let mut q = a;
//! q[1] = 0.3; // distance 0.3 from ada's sample
//! let id = g.identify(&q, &IdentifyOptions::default()).unwrap();
//! assert_eq!(id.verdict, Verdict::Known);
//! assert_eq!(id.person.as_deref(), Some("ada"));
//! assert!((id.distance.unwrap() - 0.3).abs() < 1e-6);
//! ```
#![deny(missing_docs)]

mod error;
pub mod eval;
mod gallery;
mod store;
mod work;

pub use error::{GalleryError, Result};
pub use gallery::{
    image_key, largest_face, now_ms, verify, EnrollOutcome, Gallery, Identification,
    IdentifyOptions, PersonMatch, Verdict, Verification, DEFAULT_TOLERANCE,
    FACE_RECOGNITION_TOLERANCE,
};
pub use store::{
    gallery_schema, quote, EmbeddedStore, GalleryStore, PersonCount, Sample, SampleHit, SampleKind,
    DEFAULT_COLLECTION, MAX_IMAGE_LEN, MAX_PERSON_LEN, MEAN_IMAGE,
};
pub use work::{default_threads, enroll_plan, for_each_with_engine, image_files, EnrollItem};
