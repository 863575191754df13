//! The whole pipeline on real faces: format variants, EXIF orientation, the small-image
//! retry, several faces in one photo, bad input. Needs the models (scripts/setup-face.sh);
//! skips with a message where they or the dev set are absent.

mod common;

use std::io::Cursor;

use common::{engine, l2, test_image};
use facedb_face::{
    decode_image, face_chip, face_distance, load_image, DetectPass, Engine, FaceError, FaceOptions,
    RgbImage, CHIP_PADDING, CHIP_SIZE,
};
use image::ImageEncoder;

/// face_recognition's default tolerance: same person at or under it.
const TOLERANCE: f64 = 0.6;

fn one_face(engine: &mut Engine, img: &RgbImage, what: &str) -> facedb_face::Face {
    let mut faces = engine.faces(img).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(faces.len(), 1, "{what}: faces {faces:?}");
    faces.remove(0)
}

#[test]
fn format_variants_give_the_same_person() {
    let (Some(mut engine), Some(dev)) = (engine(), common::dev_dir()) else {
        return;
    };
    let mut encodings = Vec::new();
    for entry in std::fs::read_dir(dev.join("_format_variants")).unwrap() {
        let path = entry.unwrap().path();
        let img = load_image(&path).unwrap();
        let face = one_face(&mut engine, &img, &path.display().to_string());
        assert_eq!(face.pass, DetectPass::Standard);
        encodings.push((path, face.encoding));
    }
    assert_eq!(encodings.len(), 6);
    let mut worst = 0f64;
    for (pa, a) in &encodings {
        for (pb, b) in &encodings {
            let d = face_distance(a, b);
            assert!(d < TOLERANCE, "{} vs {}: {d}", pa.display(), pb.display());
            worst = worst.max(d);
        }
    }
    eprintln!("format variants: largest distance {worst:.4}");
}

#[test]
fn obama_rotated_with_exif_orientation_6_is_found_upright() {
    let Some(mut engine) = engine() else { return };
    let path = test_image("obama.jpg");
    let original = load_image(&path).unwrap();
    let reference = one_face(&mut engine, &original, "obama.jpg");

    // The pixels turned 90 degrees counter-clockwise, tagged Orientation=6 ("rotate 90 CW
    // to display"), re-encoded as JPEG quality 95 with an APP1 Exif segment.
    let sideways = image::imageops::rotate270(&original);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .write_image(
            sideways.as_raw(),
            sideways.width(),
            sideways.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let tagged = common::jpeg_with_exif(&jpeg, 6);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("obama_rotated_exif6.jpg");
    std::fs::write(&file, &tagged).unwrap();

    let upright = load_image(&file).unwrap();
    assert_eq!(upright.dimensions(), original.dimensions());
    let face = one_face(&mut engine, &upright, "rotated obama");
    let d = face_distance(&face.encoding, &reference.encoding);
    // Only the JPEG re-encoding (quality 95) differs from the original pixels: it alone
    // moves the descriptor by ~0.05 (a different JPEG decoder moves it ~0.04).
    assert!(d < 0.1, "distance to the original's encoding {d}");
    for (a, b) in [
        (face.bbox.left, reference.bbox.left),
        (face.bbox.top, reference.bbox.top),
        (face.bbox.right, reference.bbox.right),
        (face.bbox.bottom, reference.bbox.bottom),
    ] {
        assert!(
            (a - b).abs() <= 8,
            "box {:?} vs {:?}",
            face.bbox,
            reference.bbox
        );
    }
    eprintln!(
        "rotated + EXIF 6: distance {d:.4}, box {:?} vs {:?}",
        face.bbox, reference.bbox
    );

    // Lossless (PNG with an eXIf chunk): the same pixels, so the same answer exactly.
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(sideways)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let png = common::png_with_exif(&png, 6);
    let face = one_face(
        &mut engine,
        &decode_image(&png).unwrap(),
        "rotated obama png",
    );
    assert_eq!(face.bbox, reference.bbox);
    assert_eq!(face.landmarks, reference.landmarks);
    assert!(l2(&face.encoding, &reference.encoding) < 1e-6);
}

#[test]
fn small_image_retry_finds_tight_crops_of_the_right_person() {
    let (Some(mut engine), Some(dev)) = (engine(), common::dev_dir()) else {
        return;
    };
    // 92x112 grey ORL crop and 320x243 Yale GIF where HOG with upsample 1 finds nothing.
    for (miss, same_person) in [
        (
            "orl_s01/orl__s1_2.pgm",
            ["orl_s01/orl__s1_1.pgm", "orl_s01/orl__s1_3.pgm"],
        ),
        (
            "yale_s01/yale__subject01_rightlight.gif",
            [
                "yale_s01/yale__subject01_normal.gif",
                "yale_s01/yale__subject01_happy.gif",
            ],
        ),
    ] {
        let img = load_image(dev.join(miss)).unwrap();
        let plain = FaceOptions {
            small_image_retry: false,
            ..FaceOptions::default()
        };
        assert!(
            engine.faces_with(&img, &plain).unwrap().is_empty(),
            "{miss}: found without retry"
        );
        let face = one_face(&mut engine, &img, miss);
        assert_ne!(face.pass, DetectPass::Standard);
        let b = face.bbox;
        assert!(
            b.left >= 0
                && b.top >= 0
                && b.right <= img.width() as i32
                && b.bottom <= img.height() as i32
        );
        for other in same_person {
            let o = one_face(&mut engine, &load_image(dev.join(other)).unwrap(), other);
            let d = face_distance(&face.encoding, &o.encoding);
            assert!(d < TOLERANCE, "{miss} vs {other}: {d}");
            eprintln!("{miss} ({:?}) vs {other}: {d:.3}", face.pass);
        }
    }
}

#[test]
fn two_people_in_one_photo() {
    let (Some(mut engine), Some(dev)) = (engine(), common::dev_dir()) else {
        return;
    };
    let obama = test_image("obama.jpg");
    let biden = test_image("biden.jpg");
    let obama = one_face(&mut engine, &load_image(obama).unwrap(), "obama").encoding;
    let biden = one_face(&mut engine, &load_image(biden).unwrap(), "biden").encoding;
    let img = load_image(dev.join("_multi_face/facerec__obama_and_biden.jpg")).unwrap();
    let faces = engine.faces(&img).unwrap();
    // The manifest names two people; a child below them is a third, real, face.
    assert_eq!(faces.len(), 3, "{faces:?}");
    let (mut obamas, mut bidens, mut others) = (0, 0, 0);
    for f in &faces {
        let (to_o, to_b) = (
            face_distance(&f.encoding, &obama),
            face_distance(&f.encoding, &biden),
        );
        eprintln!(
            "face {:?} ({:.2}): obama {to_o:.3} biden {to_b:.3}",
            f.bbox, f.confidence
        );
        if to_o < TOLERANCE && to_o < to_b {
            obamas += 1;
        } else if to_b < TOLERANCE {
            bidens += 1;
        } else {
            others += 1;
        }
    }
    assert_eq!((obamas, bidens, others), (1, 1, 1));
    assert!(
        faces.windows(2).all(|w| w[0].confidence >= w[1].confidence),
        "most confident first"
    );
}

#[test]
fn jitters_average_nearby_descriptors() {
    let Some(mut engine) = engine() else { return };
    let path = test_image("obama.jpg");
    let img = load_image(path).unwrap();
    let one = one_face(&mut engine, &img, "obama");
    let five = engine.encode(&img, &one.landmarks, 5).unwrap();
    let d = face_distance(&one.encoding, &five);
    assert!(d > 0.0 && d < 0.15, "jittered vs plain: {d}");
    // encode with 0 or 1 jitter is the plain descriptor, bit for bit.
    assert_eq!(
        engine.encode(&img, &one.landmarks, 0).unwrap(),
        one.encoding
    );
}

#[test]
fn face_chip_is_the_aligned_face() {
    let Some(mut engine) = engine() else { return };
    let path = test_image("obama.jpg");
    let img = load_image(path).unwrap();
    let face = one_face(&mut engine, &img, "obama");
    let chip = face_chip(&img, &face.landmarks, CHIP_SIZE, CHIP_PADDING).unwrap();
    assert_eq!(chip.dimensions(), (150, 150));
    // The chip of a chip is the same face: encoding the upright chip again finds it.
    let again = engine.faces(&chip).unwrap();
    assert_eq!(again.len(), 1, "face in its own chip");
    assert!(face_distance(&again[0].encoding, &face.encoding) < 0.2);
    assert!(matches!(
        face_chip(&img, &face.landmarks, 0, 0.25),
        Err(FaceError::InvalidArgument(_))
    ));
}

#[test]
fn engine_rejects_empty_images_and_moves_between_threads() {
    let Some(mut engine) = engine() else { return };
    let empty = RgbImage::new(0, 0);
    assert!(matches!(
        engine.detect(&empty, 1),
        Err(FaceError::InvalidArgument(_))
    ));
    assert!(matches!(
        engine.faces(&empty),
        Err(FaceError::InvalidArgument(_))
    ));
    // Send: usable from another thread.
    let handle = std::thread::spawn(move || {
        let blank = RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128]));
        engine.faces(&blank).unwrap().len()
    });
    assert_eq!(handle.join().unwrap(), 0, "no face in a flat grey image");
}

#[test]
fn model_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    match Engine::load(dir.path()) {
        Err(FaceError::ModelMissing { path }) => {
            assert!(path.ends_with(facedb_face::models::SHAPE_PREDICTOR_FILE))
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(
        dir.path().join(facedb_face::models::SHAPE_PREDICTOR_FILE),
        b"not a model",
    )
    .unwrap();
    match Engine::load(dir.path()) {
        Err(FaceError::ModelChecksum {
            expected, actual, ..
        }) => {
            assert_eq!(expected, facedb_face::models::SHAPE_PREDICTOR_SHA256);
            assert_eq!(actual.len(), 64);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn upsampling_is_bounded_and_blas_threads_do_not_change_descriptors() {
    let Some(mut engine) = engine() else { return };
    let img = RgbImage::from_pixel(1000, 1000, image::Rgb([90, 90, 90]));
    // 10^6 px * 4^5 > 2^29
    assert!(matches!(
        engine.detect(&img, 5),
        Err(FaceError::InvalidArgument(_))
    ));
    let path = test_image("obama.jpg");
    let img = load_image(path).unwrap();
    let before = one_face(&mut engine, &img, "obama").encoding;
    if facedb_face::set_blas_threads(1) {
        let single = one_face(&mut engine, &img, "obama").encoding;
        assert!(l2(&before, &single) < 1e-6, "{}", l2(&before, &single));
    } else {
        eprintln!("BLAS is not OpenBLAS: thread count not settable");
    }
}
