/* facedb-face: the C ABI between the Rust crate and dlib / libjpeg.
 *
 * Every function catches every C++ exception and reports it as a status code plus a
 * NUL-terminated message written into `err` (at most `err_len` bytes). Images are
 * 8-bit RGB, interleaved, row-major, `rows x cols x 3` bytes, no row padding.
 * Coordinates are dlib's: pixels, `right` and `bottom` inclusive. */
#ifndef FACEDB_FACE_SHIM_H
#define FACEDB_FACE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes shared by every function. */
enum fdb_status {
    FDB_OK = 0,
    FDB_ERR_DLIB = 1,      /* dlib threw (message in err) */
    FDB_ERR_ARG = 2,       /* an argument is out of range */
    FDB_ERR_CORRUPT = 3,   /* JPEG: corrupt data */
    FDB_ERR_TRUNCATED = 4, /* JPEG: data ends early */
    FDB_ERR_TOO_LARGE = 5, /* JPEG: width*height over the limit (dims in out_w/out_h) */
    FDB_ERR_UNSUPPORTED = 6, /* JPEG: colour space we cannot convert */
    FDB_ERR_ALLOC = 7      /* the output allocation callback returned NULL */
};

typedef struct fdb_engine fdb_engine;

/* Loads the HOG frontal face detector (built into dlib), the 5-point shape predictor and
 * the ResNet face recognition model from the two given files. NULL on error. */
fdb_engine *fdb_engine_load(const char *shape_predictor_path, const char *resnet_path,
                            char *err, size_t err_len);
void fdb_engine_free(fdb_engine *engine);

/* Called once per detection, in dlib's order (by descending confidence). */
typedef void (*fdb_detection_cb)(void *ctx, long left, long top, long right, long bottom,
                                 double confidence);

/* HOG detection as dlib's Python `frontal_face_detector(img, upsample)`: the image is
 * upsampled `upsample` times with pyramid_up, scanned with threshold 0, and the boxes
 * mapped back with pyramid_down<2>::rect_down. Boxes are NOT clipped. */
int fdb_detect(fdb_engine *engine, const uint8_t *rgb, long rows, long cols,
               unsigned upsample, fdb_detection_cb cb, void *ctx, char *err, size_t err_len);

/* 5-point shape predictor inside the box; writes x0,y0,...,x4,y4 to out_xy. */
int fdb_landmarks(fdb_engine *engine, const uint8_t *rgb, long rows, long cols, long left,
                  long top, long right, long bottom, long *out_xy, char *err, size_t err_len);

/* Face chip (150 px, `padding`) and ResNet descriptor from a box and its 5 landmarks.
 * num_jitters <= 1: one pass; otherwise the mean over num_jitters jittered chips, drawn
 * from the engine's own random generator (as dlib's Python binding does). */
int fdb_encode(fdb_engine *engine, const uint8_t *rgb, long rows, long cols, long left,
               long top, long right, long bottom, const long *xy, int num_jitters,
               double padding, float *out128, char *err, size_t err_len);

/* The 150x150 aligned face chip itself (150*150*3 bytes written to out). */
int fdb_face_chip(const uint8_t *rgb, long rows, long cols, long left, long top, long right,
                  long bottom, const long *xy, unsigned long size, double padding,
                  uint8_t *out, char *err, size_t err_len);

/* Sets OpenBLAS's thread count (openblas_set_num_threads, looked up at run time) and
 * returns 1, or returns 0 when the BLAS behind libblas.so.3 is not OpenBLAS. */
int fdb_set_blas_threads(int n);

/* Output buffer allocation: returns a buffer of n bytes, or NULL. */
typedef uint8_t *(*fdb_alloc_cb)(void *ctx, size_t n);

/* Decodes a JPEG with libjpeg(-turbo) exactly as Pillow does for `convert("RGB")`:
 * islow IDCT, fancy upsampling. Output components: 3 (RGB), 1 (grey) or 4 (CMYK, already
 * un-inverted for Adobe files), in *out_components. Refuses width*height > max_pixels
 * before decoding (FDB_ERR_TOO_LARGE, with the size in out_w/out_h). */
int fdb_decode_jpeg(const uint8_t *data, size_t len, uint64_t max_pixels, fdb_alloc_cb alloc,
                    void *ctx, uint32_t *out_w, uint32_t *out_h, int *out_components,
                    char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif
