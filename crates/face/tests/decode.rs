//! Image decoding: formats by content, conversions to RGB, EXIF orientation, limits, and
//! typed errors on bad input. Needs no model.

mod common;

use std::io::Cursor;

use facedb_face::{
    decode_image, decode_image_with, exif_orientation, load_image, sniff_format, DecodeOptions,
    FaceError, ImageKind,
};
use image::{ImageEncoder, Rgb, RgbImage};

/// A 3x2 image whose every pixel differs, to follow pixels through rotations.
fn asymmetric() -> RgbImage {
    RgbImage::from_fn(3, 2, |x, y| {
        Rgb([
            (10 + 40 * x) as u8,
            (20 + 100 * y) as u8,
            (x * 7 + y * 3) as u8,
        ])
    })
}

fn png_bytes(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[test]
fn every_invalid_dev_file_gives_a_typed_error() {
    let Some(dev) = common::dev_dir() else { return };
    let dir = dev.join("_invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let err = load_image(&path).expect_err(&name);
        match name.as_str() {
            // 5 bytes of text ("test\n") named .png
            "compreface__empty.png" => {
                assert!(matches!(err, FaceError::UnknownFormat), "{name}: {err:?}")
            }
            "compreface__truncated.jpg" => {
                assert!(
                    matches!(err, FaceError::Truncated { format: "JPEG", .. }),
                    "{name}: {err:?}"
                )
            }
            "compreface__corrupted.png" => assert!(
                matches!(
                    err,
                    FaceError::Corrupt { format: "PNG", .. }
                        | FaceError::Truncated { format: "PNG", .. }
                ),
                "{name}: {err:?}"
            ),
            _ => {}
        }
        eprintln!("{name}: {err}");
        seen += 1;
    }
    assert_eq!(seen, 3, "files in {}", dir.display());
}

#[test]
fn empty_and_text_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.jpg");
    std::fs::write(&zero, b"").unwrap();
    assert!(matches!(load_image(&zero), Err(FaceError::Empty)));
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"this is not a picture, just text named .jpg\n").unwrap();
    assert!(matches!(load_image(&text), Err(FaceError::UnknownFormat)));
    let missing = dir.path().join("missing.png");
    assert!(matches!(load_image(&missing), Err(FaceError::Io { .. })));
}

#[test]
fn garbage_after_a_valid_magic_is_corrupt_or_truncated() {
    // JPEG SOI + garbage
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend(std::iter::repeat_n(0x5Au8, 300));
    let err = decode_image(&jpeg).unwrap_err();
    assert!(
        matches!(
            err,
            FaceError::Corrupt { format: "JPEG", .. } | FaceError::Truncated { .. }
        ),
        "{err:?}"
    );
    // PNG signature only
    let err = decode_image(b"\x89PNG\r\n\x1a\n").unwrap_err();
    assert!(
        matches!(err, FaceError::Corrupt { .. } | FaceError::Truncated { .. }),
        "{err:?}"
    );
    // A real PNG cut in half
    let png = png_bytes(&image::DynamicImage::ImageRgb8(RgbImage::from_pixel(
        64,
        64,
        Rgb([1, 2, 3]),
    )));
    let err = decode_image(&png[..png.len() / 2]).unwrap_err();
    assert!(
        matches!(err, FaceError::Corrupt { .. } | FaceError::Truncated { .. }),
        "{err:?}"
    );
    // Every prefix of a small JPEG fails cleanly or decodes; none panics.
    let jpeg = jpeg_bytes(
        &RgbImage::from_fn(40, 30, |x, y| Rgb([x as u8 * 6, y as u8 * 8, 99])),
        None,
    );
    for n in 0..jpeg.len() {
        let _ = decode_image(&jpeg[..n]);
    }
}

fn jpeg_bytes(img: &RgbImage, exif_orientation: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    match exif_orientation {
        None => out,
        Some(o) => common::jpeg_with_exif(&out, o),
    }
}

#[test]
fn pixel_limit_is_checked_before_decoding() {
    // A JPEG whose SOF claims 50000 x 50000 pixels (2.5 Gpx): refused from the header.
    let mut jpeg = jpeg_bytes(&RgbImage::from_pixel(16, 16, Rgb([9, 9, 9])), None);
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    jpeg[sof + 5..sof + 7].copy_from_slice(&50000u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&50000u16.to_be_bytes());
    match decode_image(&jpeg) {
        Err(FaceError::TooLarge {
            width: 50000,
            height: 50000,
            max_pixels,
        }) => {
            assert_eq!(max_pixels, facedb_face::DEFAULT_MAX_PIXELS)
        }
        other => panic!("{other:?}"),
    }
    // PNG over a custom limit.
    let png = png_bytes(&image::DynamicImage::ImageRgb8(RgbImage::from_pixel(
        100,
        50,
        Rgb([1, 2, 3]),
    )));
    let tight = DecodeOptions {
        max_pixels: 4999,
        ..DecodeOptions::default()
    };
    assert!(matches!(
        decode_image_with(&png, &tight),
        Err(FaceError::TooLarge {
            width: 100,
            height: 50,
            max_pixels: 4999
        })
    ));
    let exact = DecodeOptions {
        max_pixels: 5000,
        ..DecodeOptions::default()
    };
    assert_eq!(
        decode_image_with(&png, &exact).unwrap().dimensions(),
        (100, 50)
    );
}

#[test]
fn png_grey_alpha_16bit_convert_to_rgb() {
    // Grey 8-bit: replicated.
    let grey = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 50 + y) as u8]));
    let rgb = decode_image(&png_bytes(&image::DynamicImage::ImageLuma8(grey))).unwrap();
    assert_eq!(rgb.get_pixel(3, 2).0, [152, 152, 152]);
    // RGBA: alpha dropped, colour kept (as Pillow's convert("RGB")).
    let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([200, 100, 50, 0]));
    let rgb = decode_image(&png_bytes(&image::DynamicImage::ImageRgba8(rgba))).unwrap();
    assert_eq!(rgb.get_pixel(1, 1).0, [200, 100, 50]);
    // 16-bit grey: scaled to 8 bits.
    let g16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(2, 1, |x, _| {
        image::Luma([if x == 0 { 65535 } else { 32896 }])
    });
    let rgb = decode_image(&png_bytes(&image::DynamicImage::ImageLuma16(g16))).unwrap();
    assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(rgb.get_pixel(1, 0).0, [128, 128, 128]);
    // Grey + alpha, 16-bit RGB(A)
    let la = image::GrayAlphaImage::from_pixel(1, 1, image::LumaA([77, 10]));
    assert_eq!(
        decode_image(&png_bytes(&image::DynamicImage::ImageLumaA8(la)))
            .unwrap()
            .get_pixel(0, 0)
            .0,
        [77, 77, 77]
    );
    let rgba16 = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_pixel(
        1,
        1,
        image::Rgba([65535, 0, 257 * 40, 0]),
    );
    assert_eq!(
        decode_image(&png_bytes(&image::DynamicImage::ImageRgba16(rgba16)))
            .unwrap()
            .get_pixel(0, 0)
            .0,
        [255, 0, 40]
    );
}

#[test]
fn grey_jpeg_is_replicated_to_rgb() {
    let grey = image::GrayImage::from_fn(16, 16, |x, _| image::Luma([(x * 16) as u8]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 100)
        .write_image(grey.as_raw(), 16, 16, image::ExtendedColorType::L8)
        .unwrap();
    let rgb = decode_image(&out).unwrap();
    assert_eq!(rgb.dimensions(), (16, 16));
    for p in rgb.pixels() {
        assert!(p.0[0] == p.0[1] && p.0[1] == p.0[2]);
    }
    // A smooth ramp survives quality 100 within a few levels.
    assert!(
        (i32::from(rgb.get_pixel(15, 8).0[0]) - 240).abs() <= 3,
        "{:?}",
        rgb.get_pixel(15, 8)
    );
}

#[test]
fn format_is_sniffed_from_content_not_name() {
    assert_eq!(sniff_format(b"\xFF\xD8\xFF\xE0rest"), Some(ImageKind::Jpeg));
    assert_eq!(sniff_format(b"GIF89a..."), Some(ImageKind::Gif));
    assert_eq!(sniff_format(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::WebP));
    assert_eq!(sniff_format(b"P5\n92 112\n255\n"), Some(ImageKind::Pnm));
    assert_eq!(sniff_format(b"II*\0"), Some(ImageKind::Tiff));
    assert_eq!(sniff_format(b"test\n"), None);
    // A PNG stored under a .jpg name decodes as PNG.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("really_a_png.jpg");
    std::fs::write(&p, png_bytes(&image::DynamicImage::ImageRgb8(asymmetric()))).unwrap();
    assert_eq!(load_image(&p).unwrap(), asymmetric());
}

#[test]
fn dev_format_variants_decode_to_the_same_picture() {
    let Some(dev) = common::dev_dir() else { return };
    let dir = dev.join("_format_variants");
    let png = load_image(dir.join("compreface__einstein.png")).unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let img = load_image(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(img.dimensions(), (256, 256), "{}", path.display());
        let mean_abs = img
            .as_raw()
            .iter()
            .zip(png.as_raw())
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .sum::<f64>()
            / img.as_raw().len() as f64;
        // lossless formats are identical; GIF (palette), JPEG and WebP (lossy) are close.
        assert!(mean_abs < 8.0, "{}: mean |diff| {mean_abs}", path.display());
        eprintln!("{}: mean |diff| to PNG {mean_abs:.2}", path.display());
        n += 1;
    }
    assert_eq!(n, 6);
}

#[test]
fn exif_orientation_is_applied() {
    let upright = asymmetric(); // 3 wide, 2 high
                                // Orientation 6: stored rotated 90 degrees counter-clockwise; displays rotated back.
    let stored = image::imageops::rotate270(&upright);
    let png = common::png_with_exif(
        &png_bytes(&image::DynamicImage::ImageRgb8(stored.clone())),
        6,
    );
    assert_eq!(exif_orientation(&png), Some(6));
    assert_eq!(decode_image(&png).unwrap(), upright);
    let raw = DecodeOptions {
        apply_exif_orientation: false,
        ..DecodeOptions::default()
    };
    assert_eq!(decode_image_with(&png, &raw).unwrap(), stored);
    // All eight orientations map back to the upright image.
    let cases: [(u16, RgbImage); 8] = [
        (1, upright.clone()),
        (2, image::imageops::flip_horizontal(&upright)),
        (3, image::imageops::rotate180(&upright)),
        (4, image::imageops::flip_vertical(&upright)),
        (
            5,
            image::imageops::flip_horizontal(&image::imageops::rotate90(&upright)),
        ),
        (6, image::imageops::rotate270(&upright)),
        (
            7,
            image::imageops::flip_horizontal(&image::imageops::rotate270(&upright)),
        ),
        (8, image::imageops::rotate90(&upright)),
    ];
    for (o, stored) in cases {
        let png = common::png_with_exif(&png_bytes(&image::DynamicImage::ImageRgb8(stored)), o);
        assert_eq!(decode_image(&png).unwrap(), upright, "orientation {o}");
    }
    // JPEG with an APP1 Exif segment.
    let big = RgbImage::from_fn(64, 32, |x, y| Rgb([(x * 4) as u8, (y * 8) as u8, 128]));
    let jpeg = jpeg_bytes(&image::imageops::rotate270(&big), Some(6));
    assert_eq!(exif_orientation(&jpeg), Some(6));
    let decoded = decode_image(&jpeg).unwrap();
    assert_eq!(decoded.dimensions(), (64, 32));
    let px = decoded.get_pixel(60, 4).0;
    assert!(
        (i32::from(px[0]) - 240).abs() <= 6 && (i32::from(px[1]) - 32).abs() <= 6,
        "{px:?}"
    );
}

#[test]
fn palette_png_with_transparency_expands_to_its_colours() {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 3, 1);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 0, 0, 0, 255, 0, 10, 20, 30]);
        enc.set_trns(vec![255, 0, 128]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[2, 0, 1]).unwrap();
    }
    let rgb = decode_image(&out).unwrap();
    // Colours from the palette; transparency dropped (Pillow: P -> RGB ignores tRNS).
    assert_eq!(rgb.as_raw(), &vec![10, 20, 30, 255, 0, 0, 0, 255, 0]);
}
