//! Gallery logic on synthetic descriptors (no models needed): exact verdicts, distances,
//! margins, grouping by person, forget, idempotent enrolment, mean rows.

use facedb_face::{Encoding, FaceBox};
use facedb_gallery::*;

const BOX: FaceBox = FaceBox {
    left: 1,
    top: 2,
    right: 3,
    bottom: 4,
};

/// A descriptor with the given leading values, zeros after.
fn enc(v: &[f32]) -> Encoding {
    let mut e = [0f32; 128];
    e[..v.len()].copy_from_slice(v);
    e
}

fn opts(top: usize, tolerance: f64) -> IdentifyOptions {
    IdentifyOptions {
        top,
        tolerance,
        against: SampleKind::Sample,
    }
}

fn gallery() -> (tempfile::TempDir, Gallery) {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gallery::open(dir.path()).expect("open");
    (dir, g)
}

#[test]
fn empty_gallery_is_unknown_with_no_person() {
    let (_d, g) = gallery();
    let id = g.identify(&enc(&[1.0]), &opts(3, 0.6)).unwrap();
    assert_eq!(id.verdict, Verdict::Unknown);
    assert_eq!(id.person, None);
    assert_eq!(id.distance, None);
    assert_eq!(id.margin, None);
    assert!(id.top.is_empty());
}

#[test]
fn verdicts_distances_and_margin_are_exact() {
    let (_d, g) = gallery();
    g.enroll("ada", "ada/1", BOX, &enc(&[0.0])).unwrap();
    g.enroll("bob", "bob/1", BOX, &enc(&[1.0])).unwrap();
    g.enroll("cy", "cy/1", BOX, &enc(&[0.0, 2.0])).unwrap();
    // Query at x=0.25: ada 0.25, bob 0.75, cy sqrt(0.0625 + 4).
    let q = enc(&[0.25]);
    let id = g.identify(&q, &opts(3, 0.6)).unwrap();
    assert_eq!(id.verdict, Verdict::Known);
    assert_eq!(id.person.as_deref(), Some("ada"));
    assert_eq!(id.distance, Some(0.25));
    assert_eq!(id.margin, Some(0.5));
    let names: Vec<&str> = id.top.iter().map(|p| p.person.as_str()).collect();
    assert_eq!(names, ["ada", "bob", "cy"]);
    assert_eq!(id.top[1].distance, 0.75);
    assert!((id.top[2].distance - 4.0625f64.sqrt()).abs() < 1e-12);
    assert_eq!(id.top[0].image, "ada/1");
    // The same face at a tighter tolerance: still the nearest person, but unknown.
    let id = g.identify(&q, &opts(1, 0.2)).unwrap();
    assert_eq!(id.verdict, Verdict::Unknown);
    assert_eq!(id.person.as_deref(), Some("ada"));
    assert_eq!(id.top.len(), 1);
    assert_eq!(
        id.margin,
        Some(0.5),
        "the margin needs the runner-up even with top 1"
    );
    // The tolerance is inclusive: distance exactly 0.25 at tolerance 0.25 is known.
    assert_eq!(
        g.identify(&q, &opts(1, 0.25)).unwrap().verdict,
        Verdict::Known
    );
}

#[test]
fn store_radius_is_tolerance_squared_and_inclusive() {
    let (_d, g) = gallery();
    g.enroll("ada", "ada/1", BOX, &enc(&[0.0])).unwrap();
    g.enroll("bob", "bob/1", BOX, &enc(&[0.5])).unwrap();
    g.enroll("cy", "cy/1", BOX, &enc(&[0.75])).unwrap();
    let hits = g
        .store()
        .search(&enc(&[0.0]), 10, Some(0.5), SampleKind::Sample)
        .unwrap();
    let names: Vec<&str> = hits.iter().map(|h| h.person.as_str()).collect();
    assert_eq!(
        names,
        ["ada", "bob"],
        "0.5 is inside a 0.5 radius, 0.75 is not"
    );
    assert_eq!(hits[1].distance, 0.5);
}

#[test]
fn best_sample_per_person_even_when_one_person_has_many_samples() {
    let (_d, g) = gallery();
    // 200 samples of ada, all nearer the query than bob's single sample.
    for i in 0..200 {
        let x = 0.001 * i as f32;
        g.enroll("ada", &format!("ada/{i}"), BOX, &enc(&[x]))
            .unwrap();
    }
    g.enroll("bob", "bob/1", BOX, &enc(&[0.9])).unwrap();
    let id = g.identify(&enc(&[0.0]), &opts(5, 0.6)).unwrap();
    let names: Vec<&str> = id.top.iter().map(|p| p.person.as_str()).collect();
    assert_eq!(
        names,
        ["ada", "bob"],
        "one entry per person, bob found beyond k=64"
    );
    assert_eq!(id.distance, Some(0.0));
    assert!((id.margin.unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(id.top[0].image, "ada/0");
}

#[test]
fn reenrolling_the_same_image_key_writes_nothing() {
    let (_d, g) = gallery();
    let k1 = image_key("ada/1.jpg", b"bytes one");
    let k2 = image_key("ada/1.jpg", b"bytes two");
    assert_ne!(k1, k2, "the content hash is part of the key");
    assert!(k1.starts_with("ada/1.jpg#sha256="));
    assert_eq!(k1.len(), "ada/1.jpg#sha256=".len() + 64);
    let first = g.enroll("ada", &k1, BOX, &enc(&[0.1])).unwrap();
    assert!(matches!(first, EnrollOutcome::Enrolled(_)));
    assert_eq!(
        g.enroll("ada", &k1, BOX, &enc(&[0.1])).unwrap(),
        EnrollOutcome::AlreadyEnrolled
    );
    assert!(matches!(
        g.enroll("ada", &k2, BOX, &enc(&[0.2])).unwrap(),
        EnrollOutcome::Enrolled(_)
    ));
    assert_eq!(g.samples().unwrap(), 2);
    assert!(g.has_image(&k1).unwrap());
    assert!(!g.has_image("ada/1.jpg").unwrap());
}

#[test]
fn forget_removes_every_row_of_the_person_only() {
    let (_d, g) = gallery();
    // A name that needs escaping in a filter expression.
    let odd = "o'neil \"the\" \\ man\n";
    g.enroll(odd, "o/1", BOX, &enc(&[0.0])).unwrap();
    g.enroll(odd, "o/2", BOX, &enc(&[0.1])).unwrap();
    g.enroll("bob", "bob/1", BOX, &enc(&[1.0])).unwrap();
    g.update_means(&[odd.to_string()]).unwrap();
    assert_eq!(g.forget(odd).unwrap(), 3, "two samples and the mean");
    assert_eq!(g.forget(odd).unwrap(), 0);
    let people = g.people().unwrap();
    assert_eq!(people.len(), 1);
    assert_eq!(people[0].person, "bob");
    let id = g.identify(&enc(&[0.0]), &opts(3, 0.6)).unwrap();
    assert_eq!(id.person.as_deref(), Some("bob"));
    assert_eq!(id.verdict, Verdict::Unknown);
    assert_eq!(id.distance, Some(1.0));
}

#[test]
fn mean_rows_are_separate_from_samples() {
    let (_d, g) = gallery();
    g.enroll("ada", "ada/1", BOX, &enc(&[0.0, 0.4])).unwrap();
    g.enroll("ada", "ada/2", BOX, &enc(&[0.0, -0.4])).unwrap();
    g.enroll("bob", "bob/1", BOX, &enc(&[1.0])).unwrap();
    assert_eq!(
        g.update_means(&["ada".into(), "bob".into(), "ada".into()])
            .unwrap(),
        2
    );
    let people = g.people().unwrap();
    assert_eq!(
        people,
        vec![
            PersonCount {
                person: "ada".into(),
                samples: 2,
                mean: true
            },
            PersonCount {
                person: "bob".into(),
                samples: 1,
                mean: true
            },
        ]
    );
    assert_eq!(g.samples().unwrap(), 3, "mean rows are not samples");
    // ada's mean is the origin; samples are 0.4 away from it.
    let q = enc(&[0.0]);
    let id = g.identify(&q, &opts(2, 0.6)).unwrap();
    assert_eq!(
        id.distance,
        Some(0.4000000059604645),
        "nearest sample, not the mean"
    );
    assert!(id.top.iter().all(|p| p.image != MEAN_IMAGE));
    let means = IdentifyOptions {
        top: 2,
        tolerance: 0.6,
        against: SampleKind::Mean,
    };
    let id = g.identify(&q, &means).unwrap();
    assert_eq!(id.person.as_deref(), Some("ada"));
    assert_eq!(id.distance, Some(0.0));
    assert_eq!(id.top[0].image, MEAN_IMAGE);
    assert_eq!(id.top[1].person, "bob");
    // Updating again replaces the mean row, it does not add one.
    g.enroll("ada", "ada/3", BOX, &enc(&[0.3])).unwrap();
    g.update_means(&["ada".into()]).unwrap();
    assert_eq!(g.store().count(SampleKind::Mean).unwrap(), 2);
    let id = g.identify(&q, &means).unwrap();
    assert!(
        (id.distance.unwrap() - 0.1).abs() < 1e-7,
        "mean of the 3 samples"
    );
    // "<mean>" cannot be used as an ordinary image key.
    assert!(matches!(
        g.enroll("ada", MEAN_IMAGE, BOX, &q),
        Err(GalleryError::InvalidImage { .. })
    ));
}

#[test]
fn bad_arguments_are_typed_errors() {
    let (_d, g) = gallery();
    assert!(matches!(
        g.enroll("", "x", BOX, &enc(&[0.0])),
        Err(GalleryError::InvalidPerson { .. })
    ));
    assert!(matches!(
        g.enroll(&"p".repeat(256), "x", BOX, &enc(&[0.0])),
        Err(GalleryError::InvalidPerson { .. })
    ));
    assert!(matches!(
        g.enroll("p", &"i".repeat(1025), BOX, &enc(&[0.0])),
        Err(GalleryError::InvalidImage { .. })
    ));
    assert!(matches!(
        g.enroll("p", "x", BOX, &enc(&[f32::NAN])),
        Err(GalleryError::NonFinite)
    ));
    assert!(matches!(
        g.identify(&enc(&[0.0]), &opts(0, 0.6)),
        Err(GalleryError::InvalidParameter(_))
    ));
    assert!(matches!(
        g.identify(&enc(&[0.0]), &opts(1, f64::NAN)),
        Err(GalleryError::InvalidParameter(_))
    ));
    assert_eq!(g.samples().unwrap(), 0, "nothing written");
}

#[test]
fn the_gallery_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let g = Gallery::open(dir.path()).unwrap();
        g.enroll("ada", "ada/1", BOX, &enc(&[0.0])).unwrap();
    }
    let g = Gallery::open(dir.path()).unwrap();
    assert_eq!(g.people().unwrap()[0].samples, 1);
    assert_eq!(
        g.enroll("ada", "ada/1", BOX, &enc(&[0.0])).unwrap(),
        EnrollOutcome::AlreadyEnrolled
    );
}

#[test]
fn verify_is_face_distance_against_the_tolerance() {
    let v = verify(&enc(&[0.0]), &enc(&[0.6]), 0.6);
    assert!((v.distance - 0.6).abs() < 1e-7);
    assert_eq!(v.same_person, v.distance <= 0.6);
    let v = verify(&enc(&[0.0]), &enc(&[0.0, 0.5]), DEFAULT_TOLERANCE);
    assert_eq!(v.distance, 0.5);
    assert!(v.same_person);
    assert!(!verify(&enc(&[0.0]), &enc(&[0.7]), 0.6).same_person);
}

#[test]
fn quote_escapes_for_the_filter_grammar() {
    assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    assert_eq!(quote("x\u{1}"), "\"x\\u0001\"");
}

#[test]
fn an_existing_collection_with_another_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = facedb_store::Database::open(dir.path()).unwrap();
    let mut schema = gallery_schema("faces");
    schema.fields.retain(|f| f.name != "enrolled_at");
    db.create_collection(schema).unwrap();
    assert!(matches!(
        EmbeddedStore::open(&db, "faces"),
        Err(GalleryError::SchemaMismatch { .. })
    ));
}
