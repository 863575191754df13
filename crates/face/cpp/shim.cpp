// facedb-face: a thin C ABI over Debian's dlib 19.24 (libdlib-dev), doing what dlib's Python
// binding does for face_recognition 1.3.0: HOG frontal face detector with pyramid_up
// upsampling, shape_predictor_5_face_landmarks, get_face_chip_details(150, padding) +
// extract_image_chips, and the dlib_face_recognition_resnet_model_v1 network.
// Build without -march flags: wider vector code changes HOG rounding and moves boxes.
#include <cstring>
#include <dlfcn.h>
#include <exception>
#include <string>
#include <vector>

#include <dlib/dnn.h>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>

#include "shim.h"

namespace facedb {

// A read-only view of a Rust-owned RGB buffer, usable by dlib's generic image functions
// (the same role as dlib's numpy_image in the Python binding; no copy). The free functions
// below are found by argument-dependent lookup, so they live in this namespace.
struct rgb_view {
    const dlib::rgb_pixel *data;
    long nr;
    long nc;
};
inline long num_rows(const rgb_view &v) { return v.nr; }
inline long num_columns(const rgb_view &v) { return v.nc; }
inline void *image_data(rgb_view &v) { return const_cast<dlib::rgb_pixel *>(v.data); }
inline const void *image_data(const rgb_view &v) { return v.data; }
inline long width_step(const rgb_view &v) { return v.nc * (long)sizeof(dlib::rgb_pixel); }

}  // namespace facedb

namespace dlib {
template <> struct image_traits<facedb::rgb_view> {
    typedef rgb_pixel pixel_type;
};
}  // namespace dlib

namespace {

using namespace dlib;
using facedb::rgb_view;

// The ResNet of dlib_face_recognition_resnet_model_v1 (29 conv layers, 128-d metric output).
// The layer types must match the serialized model exactly.
template <template <int, template <typename> class, int, typename> class B, int N,
          template <typename> class BN, typename S>
using res_same = add_prev1<B<N, BN, 1, tag1<S>>>;
template <template <int, template <typename> class, int, typename> class B, int N,
          template <typename> class BN, typename S>
using res_half = add_prev2<avg_pool<2, 2, 2, 2, skip1<tag2<B<N, BN, 2, tag1<S>>>>>>;
template <int N, template <typename> class BN, int STRIDE, typename S>
using conv_pair = BN<con<N, 3, 3, 1, 1, relu<BN<con<N, 3, 3, STRIDE, STRIDE, S>>>>>;
template <int N, typename S> using unit = relu<res_same<conv_pair, N, affine, S>>;
template <int N, typename S> using unit_down = relu<res_half<conv_pair, N, affine, S>>;

template <typename S> using stage256a = unit_down<256, S>;
template <typename S> using stage256b = unit<256, unit<256, unit_down<256, S>>>;
template <typename S> using stage128 = unit<128, unit<128, unit_down<128, S>>>;
template <typename S> using stage64 = unit<64, unit<64, unit<64, unit_down<64, S>>>>;
template <typename S> using stage32 = unit<32, unit<32, unit<32, S>>>;

using face_net = loss_metric<fc_no_bias<
    128,
    avg_pool_everything<stage256a<stage256b<stage128<stage64<stage32<max_pool<
        3, 3, 2, 2, relu<affine<con<32, 7, 7, 2, 2, input_rgb_image_sized<150>>>>>>>>>>>>>;

void put_err(char *err, size_t err_len, const std::string &msg) {
    if (err && err_len > 0) {
        std::strncpy(err, msg.c_str(), err_len - 1);
        err[err_len - 1] = 0;
    }
}

template <typename F> int guarded(char *err, size_t err_len, F &&f) {
    try {
        f();
        return FDB_OK;
    } catch (const std::exception &e) {
        put_err(err, err_len, e.what());
    } catch (...) {
        put_err(err, err_len, "unknown C++ exception");
    }
    return FDB_ERR_DLIB;
}

bool valid_image(const uint8_t *rgb, long rows, long cols) {
    return rgb != nullptr && rows > 0 && cols > 0;
}

full_object_detection make_shape(long left, long top, long right, long bottom, const long *xy) {
    std::vector<point> parts;
    for (int i = 0; i < 5; ++i) parts.push_back(point(xy[2 * i], xy[2 * i + 1]));
    return full_object_detection(rectangle(left, top, right, bottom), parts);
}

}  // namespace

struct fdb_engine {
    frontal_face_detector detector;
    shape_predictor predictor;
    face_net net;
    dlib::rand rnd;  // for num_jitters > 1, kept across calls as the Python binding does
};

extern "C" {

fdb_engine *fdb_engine_load(const char *shape_predictor_path, const char *resnet_path,
                            char *err, size_t err_len) {
    fdb_engine *engine = nullptr;
    int rc = guarded(err, err_len, [&] {
        std::unique_ptr<fdb_engine> e(new fdb_engine());
        e->detector = get_frontal_face_detector();
        deserialize(shape_predictor_path) >> e->predictor;
        deserialize(resnet_path) >> e->net;
        if (e->predictor.num_parts() != 5)
            throw dlib::error("the shape predictor does not have 5 parts");
        engine = e.release();
    });
    return rc == FDB_OK ? engine : nullptr;
}

void fdb_engine_free(fdb_engine *engine) { delete engine; }

int fdb_detect(fdb_engine *engine, const uint8_t *rgb, long rows, long cols,
               unsigned upsample, fdb_detection_cb cb, void *ctx, char *err, size_t err_len) {
    if (!engine || !valid_image(rgb, rows, cols) || !cb) {
        put_err(err, err_len, "invalid arguments");
        return FDB_ERR_ARG;
    }
    return guarded(err, err_len, [&] {
        const rgb_view img{reinterpret_cast<const rgb_pixel *>(rgb), rows, cols};
        std::vector<rect_detection> dets;
        if (upsample == 0) {
            engine->detector(img, dets, 0.0);
        } else {
            pyramid_down<2> pyr;
            array2d<rgb_pixel> temp;
            pyramid_up(img, temp, pyr);
            for (unsigned i = 1; i < upsample; ++i) pyramid_up(temp);
            engine->detector(temp, dets, 0.0);
            for (auto &d : dets) d.rect = pyr.rect_down(d.rect, upsample);
        }
        for (const auto &d : dets)
            cb(ctx, d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(),
               d.detection_confidence);
    });
}

int fdb_landmarks(fdb_engine *engine, const uint8_t *rgb, long rows, long cols, long left,
                  long top, long right, long bottom, long *out_xy, char *err, size_t err_len) {
    if (!engine || !valid_image(rgb, rows, cols) || !out_xy) {
        put_err(err, err_len, "invalid arguments");
        return FDB_ERR_ARG;
    }
    return guarded(err, err_len, [&] {
        const rgb_view img{reinterpret_cast<const rgb_pixel *>(rgb), rows, cols};
        full_object_detection shape =
            engine->predictor(img, rectangle(left, top, right, bottom));
        if (shape.num_parts() != 5) throw dlib::error("shape predictor returned != 5 parts");
        for (unsigned long i = 0; i < 5; ++i) {
            out_xy[2 * i] = shape.part(i).x();
            out_xy[2 * i + 1] = shape.part(i).y();
        }
    });
}

int fdb_encode(fdb_engine *engine, const uint8_t *rgb, long rows, long cols, long left,
               long top, long right, long bottom, const long *xy, int num_jitters,
               double padding, float *out128, char *err, size_t err_len) {
    if (!engine || !valid_image(rgb, rows, cols) || !xy || !out128 || padding < 0) {
        put_err(err, err_len, "invalid arguments");
        return FDB_ERR_ARG;
    }
    return guarded(err, err_len, [&] {
        const rgb_view img{reinterpret_cast<const rgb_pixel *>(rgb), rows, cols};
        std::vector<chip_details> details{
            get_face_chip_details(make_shape(left, top, right, bottom, xy), 150, padding)};
        dlib::array<matrix<rgb_pixel>> chips;
        extract_image_chips(img, details, chips);
        matrix<float, 0, 1> descriptor;
        if (num_jitters <= 1) {
            std::vector<matrix<float, 0, 1>> out = engine->net(chips, 16);
            descriptor = out.at(0);
        } else {
            std::vector<matrix<rgb_pixel>> crops;
            for (int i = 0; i < num_jitters; ++i)
                crops.push_back(jitter_image(chips[0], engine->rnd));
            descriptor = mean(mat(engine->net(crops, 16)));
        }
        if (descriptor.size() != 128) throw dlib::error("descriptor is not 128-d");
        for (long i = 0; i < 128; ++i) out128[i] = descriptor(i);
    });
}

int fdb_face_chip(const uint8_t *rgb, long rows, long cols, long left, long top, long right,
                  long bottom, const long *xy, unsigned long size, double padding,
                  uint8_t *out, char *err, size_t err_len) {
    if (!valid_image(rgb, rows, cols) || !xy || !out || size == 0 || padding < 0) {
        put_err(err, err_len, "invalid arguments");
        return FDB_ERR_ARG;
    }
    return guarded(err, err_len, [&] {
        const rgb_view img{reinterpret_cast<const rgb_pixel *>(rgb), rows, cols};
        std::vector<chip_details> details{
            get_face_chip_details(make_shape(left, top, right, bottom, xy), size, padding)};
        dlib::array<matrix<rgb_pixel>> chips;
        extract_image_chips(img, details, chips);
        const matrix<rgb_pixel> &c = chips[0];
        for (long r = 0; r < c.nr(); ++r)
            for (long k = 0; k < c.nc(); ++k) {
                uint8_t *p = out + 3 * (r * (long)size + k);
                p[0] = c(r, k).red;
                p[1] = c(r, k).green;
                p[2] = c(r, k).blue;
            }
    });
}

int fdb_set_blas_threads(int n) {
    typedef void (*set_threads_fn)(int);
    void *sym = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (!sym) return 0;
    reinterpret_cast<set_threads_fn>(sym)(n);
    return 1;
}

}  // extern "C"
