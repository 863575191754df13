//! Image decoding: bytes -> 8-bit RGB, format sniffed from the content, EXIF orientation
//! applied.
//!
//! JPEG goes through the system libjpeg-turbo with Pillow's settings (islow IDCT, fancy
//! upsampling), so the pixels are exactly those face_recognition's `load_image_file` sees;
//! another JPEG decoder moves 128-d encodings by ~0.04. PNG (8/16-bit, grey, alpha,
//! palette), GIF (first frame), BMP, TIFF, WebP and PNM/PGM go through the `image` crate.
//! Conversion to RGB follows Pillow's `convert("RGB")` where it is sane: alpha is dropped
//! (not composited), grey is replicated, palettes are expanded; 16-bit samples are scaled
//! to 8 bits (Pillow clips them instead).

use std::ffi::{c_char, c_int, c_void};
use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, RgbImage};

use crate::error::{FaceError, Result};
use crate::ffi;

/// Pillow's `Image.MAX_IMAGE_PIXELS` (89,478,485 = 0x7FFFFFFF / 4 / 3 / 2): the default
/// pixel limit.
pub const DEFAULT_MAX_PIXELS: u64 = 89_478_485;

/// Image formats recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 'PNG' 0D 0A 1A 0A`).
    Png,
    /// GIF (`GIF87a` / `GIF89a`); the first frame is decoded.
    Gif,
    /// Windows bitmap (`BM`).
    Bmp,
    /// TIFF (`II*\0` / `MM\0*`).
    Tiff,
    /// WebP (`RIFF....WEBP`), lossy or lossless.
    WebP,
    /// Netpbm PBM/PGM/PPM/PAM (`P1` .. `P7`).
    Pnm,
}

impl ImageKind {
    /// Upper-case name, e.g. `"JPEG"`.
    pub fn name(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "JPEG",
            ImageKind::Png => "PNG",
            ImageKind::Gif => "GIF",
            ImageKind::Bmp => "BMP",
            ImageKind::Tiff => "TIFF",
            ImageKind::WebP => "WebP",
            ImageKind::Pnm => "PNM",
        }
    }
}

/// Options of [`decode_image_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Refuse images with more than this many pixels (width x height), checked from the
    /// header before any pixel is decoded. Default [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
    /// Rotate / mirror the pixels as the EXIF `Orientation` tag (0x0112) says, so that the
    /// result is upright. Default `true`. (face_recognition does not do this.)
    pub apply_exif_orientation: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_pixels: DEFAULT_MAX_PIXELS,
            apply_exif_orientation: true,
        }
    }
}

/// The format of an encoded image, from its first bytes (never from a file name).
/// `None` if it is none of [`ImageKind`].
pub fn sniff_format(bytes: &[u8]) -> Option<ImageKind> {
    let b = bytes;
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageKind::Png)
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some(ImageKind::Gif)
    } else if b.starts_with(b"BM") && b.len() >= 26 {
        Some(ImageKind::Bmp)
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        Some(ImageKind::Tiff)
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some(ImageKind::WebP)
    } else if b.len() >= 3
        && b[0] == b'P'
        && (b'1'..=b'7').contains(&b[1])
        && b[2].is_ascii_whitespace()
    {
        Some(ImageKind::Pnm)
    } else {
        None
    }
}

/// The EXIF `Orientation` (1..=8) stored in a JPEG, PNG (`eXIf`), TIFF or WebP, or `None`
/// when there is no EXIF, no such tag, or an out-of-range value.
pub fn exif_orientation(bytes: &[u8]) -> Option<u8> {
    let exif = exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
        .ok()?;
    let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    let value = field.value.get_uint(0)?;
    u8::try_from(value).ok().filter(|v| (1..=8).contains(v))
}

/// Decodes an image file's bytes to upright 8-bit RGB with the default options
/// (pixel limit [`DEFAULT_MAX_PIXELS`], EXIF orientation applied).
///
/// The result is `height x width x 3` bytes, row-major, as face_recognition's
/// `load_image_file(path)` returns (for JPEG: the same pixels, bit for bit).
///
/// # Errors
/// [`FaceError::Empty`] (0 bytes), [`FaceError::UnknownFormat`] (not an image by content),
/// [`FaceError::Truncated`], [`FaceError::Corrupt`], [`FaceError::Unsupported`],
/// [`FaceError::TooLarge`].
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage> {
    decode_image_with(bytes, &DecodeOptions::default())
}

/// Reads a file and [`decode_image`]s it.
///
/// # Errors
/// [`FaceError::Io`] if the file cannot be read, else as [`decode_image`].
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| FaceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image(&bytes)
}

/// [`decode_image`] with explicit options.
///
/// # Errors
/// As [`decode_image`].
pub fn decode_image_with(bytes: &[u8], options: &DecodeOptions) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(FaceError::Empty);
    }
    let kind = sniff_format(bytes).ok_or(FaceError::UnknownFormat)?;
    let image = match kind {
        ImageKind::Jpeg => decode_jpeg(bytes, options.max_pixels)?,
        _ => decode_with_image_crate(bytes, kind, options.max_pixels)?,
    };
    if !options.apply_exif_orientation {
        return Ok(image);
    }
    match exif_orientation(bytes).and_then(image::metadata::Orientation::from_exif) {
        Some(orientation) if orientation != image::metadata::Orientation::NoTransforms => {
            let mut dynamic = DynamicImage::ImageRgb8(image);
            dynamic.apply_orientation(orientation);
            Ok(dynamic.into_rgb8())
        }
        _ => Ok(image),
    }
}

unsafe extern "C" fn alloc_in_vec(ctx: *mut c_void, n: usize) -> *mut u8 {
    // SAFETY: ctx is the &mut Vec<u8> passed by decode_jpeg, alive for the whole call.
    let buf = unsafe { &mut *(ctx as *mut Vec<u8>) };
    if buf.try_reserve_exact(n).is_err() {
        return std::ptr::null_mut();
    }
    buf.resize(n, 0);
    buf.as_mut_ptr()
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<RgbImage> {
    const FORMAT: &str = "JPEG";
    let mut buf: Vec<u8> = Vec::new();
    let mut err = [0 as c_char; ffi::ERR_LEN];
    let (mut w, mut h, mut components): (u32, u32, c_int) = (0, 0, 0);
    // SAFETY: every pointer is valid for the call; the callback only touches `buf`.
    let rc = unsafe {
        ffi::fdb_decode_jpeg(
            bytes.as_ptr(),
            bytes.len(),
            max_pixels,
            alloc_in_vec,
            &mut buf as *mut Vec<u8> as *mut c_void,
            &mut w,
            &mut h,
            &mut components,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    let reason = ffi::message(&err);
    let error = match rc {
        ffi::FDB_OK => None,
        ffi::FDB_ERR_TRUNCATED => Some(FaceError::Truncated {
            format: FORMAT,
            reason,
        }),
        ffi::FDB_ERR_TOO_LARGE => Some(FaceError::TooLarge {
            width: w,
            height: h,
            max_pixels,
        }),
        ffi::FDB_ERR_UNSUPPORTED => Some(FaceError::Unsupported {
            format: FORMAT,
            reason,
        }),
        ffi::FDB_ERR_ALLOC => Some(FaceError::Unsupported {
            format: FORMAT,
            reason: format!("cannot allocate {w}x{h} pixels"),
        }),
        ffi::FDB_ERR_CORRUPT | ffi::FDB_ERR_ARG => Some(FaceError::Corrupt {
            format: FORMAT,
            reason,
        }),
        other => Some(FaceError::Corrupt {
            format: FORMAT,
            reason: format!("status {other}: {reason}"),
        }),
    };
    if let Some(error) = error {
        return Err(error);
    }
    let pixels = w as usize * h as usize;
    let rgb = match components {
        3 => buf,
        1 => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        4 => buf
            .chunks_exact(4)
            .flat_map(|p| cmyk_to_rgb(p[0], p[1], p[2], p[3]))
            .collect(),
        n => {
            return Err(FaceError::Unsupported {
                format: FORMAT,
                reason: format!("{n} output components"),
            })
        }
    };
    debug_assert_eq!(rgb.len(), pixels * 3);
    RgbImage::from_raw(w, h, rgb).ok_or_else(|| FaceError::Corrupt {
        format: FORMAT,
        reason: "decoder returned a buffer of the wrong size".into(),
    })
}

/// Pillow's CMYK -> RGB (`cmyk2rgb` in Convert.c): `channel = 255 - k - c * (255 - k) / 255`,
/// with its rounding.
fn cmyk_to_rgb(c: u8, m: u8, y: u8, k: u8) -> [u8; 3] {
    let nk = 255 - i32::from(k);
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let ch = |v: u8| (nk - muldiv255(i32::from(v), nk)).clamp(0, 255) as u8;
    [ch(c), ch(m), ch(y)]
}

fn decode_with_image_crate(bytes: &[u8], kind: ImageKind, max_pixels: u64) -> Result<RgbImage> {
    let format = match kind {
        ImageKind::Png => ImageFormat::Png,
        ImageKind::Gif => ImageFormat::Gif,
        ImageKind::Bmp => ImageFormat::Bmp,
        ImageKind::Tiff => ImageFormat::Tiff,
        ImageKind::WebP => ImageFormat::WebP,
        ImageKind::Pnm => ImageFormat::Pnm,
        ImageKind::Jpeg => ImageFormat::Jpeg,
    };
    let name = kind.name();
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // Room for the largest allowed image at 16-bit RGBA plus the codec's own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(512 << 20));
    reader.limits(limits);
    let decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, name))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(FaceError::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(FaceError::Corrupt {
            format: name,
            reason: "zero width or height".into(),
        });
    }
    let image = DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, name))?;
    Ok(image.into_rgb8())
}

fn map_image_error(error: ImageError, format: &'static str) -> FaceError {
    let reason = error.to_string();
    let lower = reason.to_ascii_lowercase();
    let truncated = match &error {
        ImageError::IoError(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    } || lower.contains("eof")
        || lower.contains("end of")
        || lower.contains("unexpected end")
        || lower.contains("truncated");
    match error {
        _ if truncated => FaceError::Truncated { format, reason },
        ImageError::Unsupported(_) => FaceError::Unsupported { format, reason },
        ImageError::Limits(_) => FaceError::Unsupported { format, reason },
        _ => FaceError::Corrupt { format, reason },
    }
}
