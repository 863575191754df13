//! Raw declarations of `cpp/shim.h`. Only `engine.rs` and `decode.rs` call these.

use std::ffi::{c_char, c_double, c_float, c_int, c_long, c_uint, c_ulong, c_void};

pub const FDB_OK: c_int = 0;
pub const FDB_ERR_DLIB: c_int = 1;
pub const FDB_ERR_ARG: c_int = 2;
pub const FDB_ERR_CORRUPT: c_int = 3;
pub const FDB_ERR_TRUNCATED: c_int = 4;
pub const FDB_ERR_TOO_LARGE: c_int = 5;
pub const FDB_ERR_UNSUPPORTED: c_int = 6;
pub const FDB_ERR_ALLOC: c_int = 7;

/// Opaque dlib state (detector, shape predictor, network, random generator).
#[repr(C)]
pub struct FdbEngine {
    _private: [u8; 0],
}

pub type DetectionCb = unsafe extern "C" fn(
    ctx: *mut c_void,
    left: c_long,
    top: c_long,
    right: c_long,
    bottom: c_long,
    confidence: c_double,
);
pub type AllocCb = unsafe extern "C" fn(ctx: *mut c_void, n: usize) -> *mut u8;

extern "C" {
    pub fn fdb_engine_load(
        shape_predictor_path: *const c_char,
        resnet_path: *const c_char,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut FdbEngine;
    pub fn fdb_engine_free(engine: *mut FdbEngine);
    pub fn fdb_detect(
        engine: *mut FdbEngine,
        rgb: *const u8,
        rows: c_long,
        cols: c_long,
        upsample: c_uint,
        cb: DetectionCb,
        ctx: *mut c_void,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn fdb_landmarks(
        engine: *mut FdbEngine,
        rgb: *const u8,
        rows: c_long,
        cols: c_long,
        left: c_long,
        top: c_long,
        right: c_long,
        bottom: c_long,
        out_xy: *mut c_long,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn fdb_encode(
        engine: *mut FdbEngine,
        rgb: *const u8,
        rows: c_long,
        cols: c_long,
        left: c_long,
        top: c_long,
        right: c_long,
        bottom: c_long,
        xy: *const c_long,
        num_jitters: c_int,
        padding: c_double,
        out128: *mut c_float,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn fdb_face_chip(
        rgb: *const u8,
        rows: c_long,
        cols: c_long,
        left: c_long,
        top: c_long,
        right: c_long,
        bottom: c_long,
        xy: *const c_long,
        size: c_ulong,
        padding: c_double,
        out: *mut u8,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn fdb_set_blas_threads(n: c_int) -> c_int;
    pub fn fdb_decode_jpeg(
        data: *const u8,
        len: usize,
        max_pixels: u64,
        alloc: AllocCb,
        ctx: *mut c_void,
        out_w: *mut u32,
        out_h: *mut u32,
        out_components: *mut c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

/// Size of the message buffers handed to the shim.
pub const ERR_LEN: usize = 512;

/// The NUL-terminated message the shim wrote into `buf`.
pub fn message(buf: &[c_char; ERR_LEN]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
