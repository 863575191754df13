//! The dlib face engine: HOG detection, 5-point landmarks, 128-d ResNet descriptors.

use std::cell::Cell;
use std::ffi::{c_char, c_double, c_int, c_long, c_void, CString};
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

use image::RgbImage;

use crate::error::{FaceError, Result};
use crate::ffi;
use crate::models::ModelFiles;

/// Length of a face descriptor ([`Encoding`]).
pub const ENCODING_DIM: usize = 128;

/// A 128-d face descriptor of `dlib_face_recognition_resnet_model_v1`: faces of one person
/// are within Euclidean distance ~0.6 of each other (dlib: 99.38% on LFW). Not unit length:
/// compare with [`face_distance`] (Euclidean), never with inner product.
pub type Encoding = [f32; ENCODING_DIM];

/// Size of the aligned face chip fed to the network, in pixels (150 x 150).
pub const CHIP_SIZE: u32 = 150;
/// Padding of the face chip around the landmarks, as a fraction of the face (0.25).
pub const CHIP_PADDING: f64 = 0.25;

/// A face box in pixels of the (oriented) image, as dlib's `rectangle` and
/// face_recognition's `face_locations` give it: `left`/`top` are the first column/row
/// inside the face, `right`/`bottom` the last (inclusive) — except that boxes returned by
/// [`Engine::detect`] are clipped as `face_locations` clips them: `left, top >= 0`,
/// `right <= width`, `bottom <= height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaceBox {
    /// Left edge, pixels from the image's left border.
    pub left: i32,
    /// Top edge, pixels from the image's top border.
    pub top: i32,
    /// Right edge (inclusive), pixels.
    pub right: i32,
    /// Bottom edge (inclusive), pixels.
    pub bottom: i32,
}

impl FaceBox {
    /// Width in pixels, as dlib counts it (`right - left + 1`), 0 if empty.
    pub fn width(&self) -> u32 {
        (i64::from(self.right) - i64::from(self.left) + 1).max(0) as u32
    }
    /// Height in pixels (`bottom - top + 1`), 0 if empty.
    pub fn height(&self) -> u32 {
        (i64::from(self.bottom) - i64::from(self.top) + 1).max(0) as u32
    }
    /// Area in pixels (`width * height`).
    pub fn area(&self) -> u64 {
        u64::from(self.width()) * u64::from(self.height())
    }
    fn offset(self, dx: i32, dy: i32) -> FaceBox {
        FaceBox {
            left: self.left.saturating_add(dx),
            top: self.top.saturating_add(dy),
            right: self.right.saturating_add(dx),
            bottom: self.bottom.saturating_add(dy),
        }
    }
    /// face_recognition's css tuple `(top, right, bottom, left)`.
    pub fn to_css(&self) -> (i32, i32, i32, i32) {
        (self.top, self.right, self.bottom, self.left)
    }
    /// Clipped as face_recognition's `_trim_css_to_bounds`: `top, left >= 0`,
    /// `right <= width`, `bottom <= height` (sic: not `width - 1`).
    pub fn clipped(&self, width: u32, height: u32) -> FaceBox {
        let w = i32::try_from(width).unwrap_or(i32::MAX);
        let h = i32::try_from(height).unwrap_or(i32::MAX);
        FaceBox {
            left: self.left.max(0),
            top: self.top.max(0),
            right: self.right.min(w),
            bottom: self.bottom.min(h),
        }
    }
}

/// A detection before clipping, with dlib's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The box as dlib returns it (may extend past the image borders).
    pub rect: FaceBox,
    /// HOG detector confidence (SVM score, > 0 for a detection; higher is surer).
    pub confidence: f64,
}

/// A pixel position in the (oriented) image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Point {
    /// Column, pixels from the left border.
    pub x: i32,
    /// Row, pixels from the top border.
    pub y: i32,
}

/// The 5 landmarks of dlib's `shape_predictor_5_face_landmarks`, in its order:
/// `points[0..2]` the corners of the subject's right eye (outer, inner), `points[2..4]` the
/// corners of the left eye (outer, inner), `points[4]` the bottom of the nose
/// (face_recognition's `face_landmarks(model="small")` names them `right_eye`, `left_eye`,
/// `nose_tip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Landmarks {
    /// The five points, in dlib's order (see the type's doc).
    pub points: [Point; 5],
}

impl Landmarks {
    /// Corners of the subject's right eye (points 0 and 1).
    pub fn right_eye(&self) -> [Point; 2] {
        [self.points[0], self.points[1]]
    }
    /// Corners of the subject's left eye (points 2 and 3).
    pub fn left_eye(&self) -> [Point; 2] {
        [self.points[2], self.points[3]]
    }
    /// Bottom of the nose (point 4).
    pub fn nose_tip(&self) -> Point {
        self.points[4]
    }
    fn to_xy(self) -> [c_long; 10] {
        let mut xy = [0 as c_long; 10];
        for (i, p) in self.points.iter().enumerate() {
            xy[2 * i] = c_long::from(p.x);
            xy[2 * i + 1] = c_long::from(p.y);
        }
        xy
    }
    fn offset(self, dx: i32, dy: i32) -> Landmarks {
        Landmarks {
            points: self.points.map(|p| Point {
                x: p.x.saturating_add(dx),
                y: p.y.saturating_add(dy),
            }),
        }
    }
}

/// How [`Engine::faces_with`] found a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectPass {
    /// The normal pass: HOG with [`FaceOptions::upsample`] on the image as it is (exactly
    /// face_recognition's `face_locations`).
    Standard,
    /// The small-image retry: the image was padded with a border (see
    /// [`FaceOptions::small_image_retry`]).
    Padded,
    /// The small-image retry with one more upsampling of the padded image.
    PaddedUpsampled,
}

/// One face found by [`Engine::faces`].
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// The box, clipped to the image (see [`FaceBox`]): face_recognition's `face_locations`.
    pub bbox: FaceBox,
    /// The box as the detector returned it, possibly extending past the image borders.
    /// The landmarks are predicted inside this box, as face_recognition's
    /// `face_encodings(img)` does (predicting inside the clipped box instead moves the
    /// descriptors of faces cut by the border by up to ~0.24).
    pub raw_bbox: FaceBox,
    /// HOG detector confidence of the box (higher is surer).
    pub confidence: f64,
    /// The 5 landmarks, in image pixels.
    pub landmarks: Landmarks,
    /// The 128-d descriptor.
    pub encoding: Encoding,
    /// Which pass found it.
    pub pass: DetectPass,
}

/// Options of [`Engine::faces_with`]. The defaults are face_recognition's, plus the
/// small-image retry (which only acts where face_recognition finds no face).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceOptions {
    /// How many times the image is upsampled (x2 each, dlib `pyramid_up`) before HOG
    /// detection: face_recognition's `number_of_times_to_upsample`, default 1. The HOG
    /// window is 80x80 px, so the smallest face found is ~80 / 2^upsample px. Each step
    /// costs ~4x the time and memory.
    pub upsample: u32,
    /// face_recognition's `num_jitters`, default 1: with n > 1 the descriptor is the mean
    /// over n randomly jittered chips (n times slower; the random generator lives in the
    /// engine, so results depend on the engine's history, as in dlib's Python binding).
    pub num_jitters: u32,
    /// When the standard pass finds no face in an image whose longer side is at most
    /// [`FaceOptions::small_image_max_side`], retry on a copy padded on every side by half
    /// its size with the mean colour of its border pixels (tight crops such as 92x112
    /// ORL faces or 150x150 celebrity crops leave the HOG window no context), and if that
    /// still finds nothing, once more with one more upsampling. Faces found so are marked
    /// [`DetectPass::Padded`] / [`DetectPass::PaddedUpsampled`]; their landmarks and chips
    /// are computed on the padded copy and their boxes mapped back and clipped. Default
    /// `true`; `false` gives exactly face_recognition's answers.
    pub small_image_retry: bool,
    /// The size limit of [`FaceOptions::small_image_retry`], in pixels. Default 400.
    pub small_image_max_side: u32,
}

impl Default for FaceOptions {
    fn default() -> Self {
        FaceOptions {
            upsample: 1,
            num_jitters: 1,
            small_image_retry: true,
            small_image_max_side: 400,
        }
    }
}

/// Sets how many threads OpenBLAS (behind `libblas.so.3`, used by the ResNet's
/// convolutions) may use per call, process-wide. With one [`Engine`] per core, call
/// `set_blas_threads(1)` first: otherwise every engine's BLAS calls spawn threads of their
/// own and the cores are oversubscribed (the default is one BLAS thread per core, or
/// `$OPENBLAS_NUM_THREADS`). The descriptors do not depend on it. Returns `false` (and
/// does nothing) when the BLAS is not OpenBLAS.
pub fn set_blas_threads(threads: u32) -> bool {
    let n = c_int::try_from(threads.max(1)).unwrap_or(c_int::MAX);
    // SAFETY: plain call; the shim checks that the symbol exists.
    unsafe { ffi::fdb_set_blas_threads(n) == 1 }
}

/// The most pixels an image may have once upsampled for detection
/// (`width * height * 4^upsample`): 2^29 (~537 Mpx, ~1.6 GB of RGB plus HOG features), so
/// that any image under [`crate::DEFAULT_MAX_PIXELS`] can be searched with upsample 1.
pub const MAX_UPSAMPLED_PIXELS: u64 = 1 << 29;

/// Euclidean distance between two descriptors (face_recognition's `face_distance`),
/// computed in f64. Same person: <= ~0.6 (face_recognition's default tolerance).
pub fn face_distance(a: &Encoding, b: &Encoding) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// The dlib face models of one worker thread: the HOG frontal face detector, the 5-point
/// shape predictor and the ResNet descriptor network (~30 MB of weights; a process with one
/// engine peaks at ~80 MB resident on a 0.75 Mpx photo; detection needs ~4x the image's
/// RGB size per upsampling step on top).
///
/// dlib's objects keep scratch state and are not thread-safe: an `Engine` is `Send` (move
/// it to a worker thread) but not `Sync`, and every method takes `&mut self`. Create one per
/// worker thread with [`Engine::from_models`].
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<facedb_face::Engine>(); // an Engine cannot be shared between threads
/// ```
/// ```
/// fn movable<T: Send>() {}
/// movable::<facedb_face::Engine>();
/// ```
pub struct Engine {
    raw: NonNull<ffi::FdbEngine>,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: the dlib objects have no thread affinity; they only must not be used from two
// threads at once, which `!Sync` plus `&mut self` methods rule out.
unsafe impl Send for Engine {}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: raw came from fdb_engine_load and is freed exactly once.
        unsafe { ffi::fdb_engine_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

fn check_image(img: &RgbImage) -> Result<(c_long, c_long)> {
    if img.width() == 0 || img.height() == 0 {
        return Err(FaceError::InvalidArgument("image has no pixels".into()));
    }
    Ok((c_long::from(img.height()), c_long::from(img.width())))
}

fn status(rc: c_int, err: &[c_char; ffi::ERR_LEN]) -> Result<()> {
    match rc {
        ffi::FDB_OK => Ok(()),
        ffi::FDB_ERR_ARG => Err(FaceError::InvalidArgument(ffi::message(err))),
        ffi::FDB_ERR_DLIB => Err(FaceError::Dlib(ffi::message(err))),
        other => Err(FaceError::Dlib(format!(
            "status {other}: {}",
            ffi::message(err)
        ))),
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        FaceError::InvalidArgument(format!("path contains a NUL byte: {}", path.display()))
    })
}

fn to_i32(v: c_long) -> i32 {
    v.clamp(c_long::from(i32::MIN), c_long::from(i32::MAX)) as i32
}

unsafe extern "C" fn push_detection(
    ctx: *mut c_void,
    left: c_long,
    top: c_long,
    right: c_long,
    bottom: c_long,
    confidence: c_double,
) {
    // SAFETY: ctx is the &mut Vec<Detection> given by Engine::detect_raw, alive for the call.
    let out = unsafe { &mut *(ctx as *mut Vec<Detection>) };
    out.push(Detection {
        rect: FaceBox {
            left: to_i32(left),
            top: to_i32(top),
            right: to_i32(right),
            bottom: to_i32(bottom),
        },
        confidence,
    });
}

impl Engine {
    /// Checks the model files in `models_dir` ([`ModelFiles::verify`]: presence and
    /// SHA-256) and loads them. `models_dir` is usually [`crate::default_models_dir`].
    ///
    /// # Errors
    /// As [`ModelFiles::verify`] and [`Engine::from_models`].
    pub fn load(models_dir: impl AsRef<Path>) -> Result<Engine> {
        Engine::from_models(&ModelFiles::verify(models_dir)?)
    }

    /// Loads already verified model files (cheap to repeat per thread: no hashing).
    /// Takes ~0.3 s.
    ///
    /// # Errors
    /// [`FaceError::ModelLoad`] if dlib cannot deserialize a file.
    pub fn from_models(files: &ModelFiles) -> Result<Engine> {
        let sp = c_path(&files.shape_predictor)?;
        let resnet = c_path(&files.resnet)?;
        let mut err = [0 as c_char; ffi::ERR_LEN];
        // SAFETY: valid NUL-terminated paths and error buffer.
        let raw = unsafe {
            ffi::fdb_engine_load(sp.as_ptr(), resnet.as_ptr(), err.as_mut_ptr(), err.len())
        };
        match NonNull::new(raw) {
            Some(raw) => Ok(Engine {
                raw,
                _not_sync: PhantomData,
            }),
            None => Err(FaceError::ModelLoad {
                path: files
                    .shape_predictor
                    .parent()
                    .unwrap_or(Path::new(""))
                    .to_path_buf(),
                reason: ffi::message(&err),
            }),
        }
    }

    /// HOG face detection exactly as face_recognition's
    /// `face_locations(img, number_of_times_to_upsample=upsample, model="hog")`:
    /// boxes in dlib's order (most confident first), clipped with [`FaceBox::clipped`].
    ///
    /// # Errors
    /// [`FaceError::InvalidArgument`] for an image without pixels or one that upsampled
    /// would exceed [`MAX_UPSAMPLED_PIXELS`]; [`FaceError::Dlib`] if dlib fails.
    pub fn detect(&mut self, img: &RgbImage, upsample: u32) -> Result<Vec<FaceBox>> {
        Ok(self
            .detect_raw(img, upsample)?
            .into_iter()
            .map(|d| d.rect.clipped(img.width(), img.height()))
            .collect())
    }

    /// HOG face detection as dlib's Python `frontal_face_detector(img, upsample)`: boxes
    /// NOT clipped, with their confidences, most confident first.
    ///
    /// # Errors
    /// As [`Engine::detect`].
    pub fn detect_raw(&mut self, img: &RgbImage, upsample: u32) -> Result<Vec<Detection>> {
        let (rows, cols) = check_image(img)?;
        let pixels = u64::from(img.width()) * u64::from(img.height());
        let upsampled = 4u64
            .checked_pow(upsample)
            .and_then(|f| f.checked_mul(pixels));
        if upsampled.is_none_or(|p| p > MAX_UPSAMPLED_PIXELS) {
            return Err(FaceError::InvalidArgument(format!(
                "{}x{} pixels upsampled {upsample} times is over {MAX_UPSAMPLED_PIXELS} pixels",
                img.width(),
                img.height()
            )));
        }
        let mut out: Vec<Detection> = Vec::new();
        let mut err = [0 as c_char; ffi::ERR_LEN];
        // SAFETY: the image buffer holds rows*cols*3 bytes; the callback only touches `out`.
        let rc = unsafe {
            ffi::fdb_detect(
                self.raw.as_ptr(),
                img.as_raw().as_ptr(),
                rows,
                cols,
                upsample,
                push_detection,
                &mut out as *mut Vec<Detection> as *mut c_void,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        status(rc, &err)?;
        Ok(out)
    }

    /// The 5 landmarks of the face in `bbox` (dlib `shape_predictor_5_face_landmarks`), as
    /// face_recognition's `face_landmarks(img, [box], model="small")` computes them.
    ///
    /// # Errors
    /// [`FaceError::InvalidArgument`] for an image without pixels, [`FaceError::Dlib`].
    pub fn landmarks(&mut self, img: &RgbImage, bbox: &FaceBox) -> Result<Landmarks> {
        let (rows, cols) = check_image(img)?;
        let mut xy = [0 as c_long; 10];
        let mut err = [0 as c_char; ffi::ERR_LEN];
        // SAFETY: buffers valid for the call; xy holds 10 values.
        let rc = unsafe {
            ffi::fdb_landmarks(
                self.raw.as_ptr(),
                img.as_raw().as_ptr(),
                rows,
                cols,
                c_long::from(bbox.left),
                c_long::from(bbox.top),
                c_long::from(bbox.right),
                c_long::from(bbox.bottom),
                xy.as_mut_ptr(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        status(rc, &err)?;
        let mut points = [Point { x: 0, y: 0 }; 5];
        for (i, p) in points.iter_mut().enumerate() {
            *p = Point {
                x: to_i32(xy[2 * i]),
                y: to_i32(xy[2 * i + 1]),
            };
        }
        Ok(Landmarks { points })
    }

    /// The 128-d descriptor of the face with these landmarks, as face_recognition's
    /// `face_encodings(img, [box], num_jitters, model="small")`: the face is aligned into a
    /// 150x150 chip with padding 0.25 (dlib `get_face_chip_details` +
    /// `extract_image_chips`; only the landmarks matter, not the box) and run through
    /// `dlib_face_recognition_resnet_model_v1`. `num_jitters` 0 or 1: one pass.
    ///
    /// # Errors
    /// [`FaceError::InvalidArgument`] for an image without pixels, [`FaceError::Dlib`].
    pub fn encode(
        &mut self,
        img: &RgbImage,
        landmarks: &Landmarks,
        num_jitters: u32,
    ) -> Result<Encoding> {
        let (rows, cols) = check_image(img)?;
        let xy = landmarks.to_xy();
        let mut out = [0f32; ENCODING_DIM];
        let mut err = [0 as c_char; ffi::ERR_LEN];
        let jitters = c_int::try_from(num_jitters).map_err(|_| {
            FaceError::InvalidArgument(format!("num_jitters {num_jitters} too large"))
        })?;
        // SAFETY: buffers valid for the call; out holds 128 floats, xy 10 values.
        let rc = unsafe {
            ffi::fdb_encode(
                self.raw.as_ptr(),
                img.as_raw().as_ptr(),
                rows,
                cols,
                0,
                0,
                0,
                0,
                xy.as_ptr(),
                jitters,
                CHIP_PADDING,
                out.as_mut_ptr(),
                err.as_mut_ptr(),
                err.len(),
            )
        };
        status(rc, &err)?;
        Ok(out)
    }

    /// Every face in the image with the default [`FaceOptions`]: boxes, landmarks and
    /// descriptors, as face_recognition's `face_locations(img)` + `face_encodings(img)`,
    /// plus the small-image retry.
    ///
    /// # Errors
    /// As [`Engine::faces_with`].
    pub fn faces(&mut self, img: &RgbImage) -> Result<Vec<Face>> {
        self.faces_with(img, &FaceOptions::default())
    }

    /// Every face in the image: detect (most confident first), landmarks (inside the
    /// unclipped box, as face_recognition's `face_encodings(img)`), descriptor, box clipped
    /// as `face_locations`; see [`FaceOptions`] for the small-image retry. An empty vector
    /// means no face was found.
    ///
    /// # Errors
    /// As [`Engine::detect`] (no pixels, over [`MAX_UPSAMPLED_PIXELS`] once upsampled),
    /// [`FaceError::Dlib`].
    pub fn faces_with(&mut self, img: &RgbImage, options: &FaceOptions) -> Result<Vec<Face>> {
        let found = self.detect_raw(img, options.upsample)?;
        if !found.is_empty() {
            return self.describe(img, &found, options, DetectPass::Standard, 0, 0);
        }
        let small = img.width().max(img.height()) <= options.small_image_max_side;
        if !options.small_image_retry || !small {
            return Ok(Vec::new());
        }
        let (padded, dx, dy) = pad_with_border_mean(img);
        for (pass, upsample) in [
            (DetectPass::Padded, options.upsample),
            (DetectPass::PaddedUpsampled, options.upsample + 1),
        ] {
            let found = self.detect_raw(&padded, upsample)?;
            if found.is_empty() {
                continue;
            }
            let mut faces = self.describe(&padded, &found, options, pass, dx, dy)?;
            for face in &mut faces {
                face.bbox = face.bbox.clipped(img.width(), img.height());
            }
            // A detection wholly in the padding is no face of this image.
            faces.retain(|f| f.bbox.right > f.bbox.left && f.bbox.bottom > f.bbox.top);
            return Ok(faces);
        }
        Ok(Vec::new())
    }

    /// Landmarks and descriptors of the detections in `img`, then every coordinate shifted
    /// by (-dx, -dy).
    fn describe(
        &mut self,
        img: &RgbImage,
        found: &[Detection],
        options: &FaceOptions,
        pass: DetectPass,
        dx: i32,
        dy: i32,
    ) -> Result<Vec<Face>> {
        let mut faces = Vec::with_capacity(found.len());
        for d in found {
            let landmarks = self.landmarks(img, &d.rect)?;
            let encoding = self.encode(img, &landmarks, options.num_jitters)?;
            faces.push(Face {
                bbox: d.rect.clipped(img.width(), img.height()).offset(-dx, -dy),
                raw_bbox: d.rect.offset(-dx, -dy),
                confidence: d.confidence,
                landmarks: landmarks.offset(-dx, -dy),
                encoding,
                pass,
            });
        }
        Ok(faces)
    }
}

/// The image centred on a canvas 2x its size in each dimension, the margin filled with
/// the mean colour of the image's border pixels. Returns the canvas and the offset of the
/// image in it.
fn pad_with_border_mean(img: &RgbImage) -> (RgbImage, i32, i32) {
    let (w, h) = (img.width(), img.height());
    let mut sum = [0u64; 3];
    let mut n = 0u64;
    for (x, y, p) in img.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            for (total, &v) in sum.iter_mut().zip(&p.0) {
                *total += u64::from(v);
            }
            n += 1;
        }
    }
    let mean = image::Rgb(sum.map(|s| (s / n.max(1)) as u8));
    let (dx, dy) = (w / 2, h / 2);
    let mut canvas = RgbImage::from_pixel(w + 2 * dx, h + 2 * dy, mean);
    image::imageops::replace(&mut canvas, img, i64::from(dx), i64::from(dy));
    (canvas, dx as i32, dy as i32)
}

/// The aligned face chip the network sees: `size x size` RGB pixels around the landmarks
/// with `padding` (fraction of the face; face_recognition uses [`CHIP_SIZE`] 150 and
/// [`CHIP_PADDING`] 0.25). Pixels outside the image are black.
///
/// # Errors
/// [`FaceError::InvalidArgument`] for an image without pixels, `size` 0, `size` over 4096
/// or a negative padding; [`FaceError::Dlib`].
pub fn face_chip(
    img: &RgbImage,
    landmarks: &Landmarks,
    size: u32,
    padding: f64,
) -> Result<RgbImage> {
    let (rows, cols) = check_image(img)?;
    if size == 0 || size > 4096 || padding.is_nan() || padding < 0.0 {
        return Err(FaceError::InvalidArgument(format!(
            "chip size {size} (1..=4096) / padding {padding} (>= 0)"
        )));
    }
    let xy = landmarks.to_xy();
    let mut out = vec![0u8; size as usize * size as usize * 3];
    let mut err = [0 as c_char; ffi::ERR_LEN];
    // SAFETY: out holds size*size*3 bytes; other buffers valid for the call.
    let rc = unsafe {
        ffi::fdb_face_chip(
            img.as_raw().as_ptr(),
            rows,
            cols,
            0,
            0,
            0,
            0,
            xy.as_ptr(),
            std::ffi::c_ulong::from(size),
            padding,
            out.as_mut_ptr(),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    status(rc, &err)?;
    RgbImage::from_raw(size, size, out)
        .ok_or_else(|| FaceError::Dlib("chip buffer of the wrong size".into()))
}
