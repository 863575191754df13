/* facedb-face: JPEG decoding through the system libjpeg(-turbo), with the same settings as
 * Pillow (islow IDCT, fancy upsampling), so that pixels match what face_recognition sees.
 * Plain C on purpose: libjpeg reports fatal errors by longjmp, which must not cross C++
 * frames. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "shim.h"

struct fdb_jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int truncated;
};

static void fdb_jpeg_error_exit(j_common_ptr cinfo) {
    struct fdb_jpeg_err *e = (struct fdb_jpeg_err *)cinfo->err;
    longjmp(e->jump, 1);
}

static void fdb_jpeg_emit_message(j_common_ptr cinfo, int level) {
    struct fdb_jpeg_err *e = (struct fdb_jpeg_err *)cinfo->err;
    if (level < 0) {
        /* A warning. The memory source reports running out of data as JWRN_JPEG_EOF and
         * then pads with a fake EOI: for us that is a truncated file. Other warnings
         * (extraneous bytes, hit marker) are tolerated, as Pillow does. */
        if (cinfo->err->msg_code == JWRN_JPEG_EOF)
            e->truncated = 1;
        cinfo->err->num_warnings++;
    }
}

static void fdb_put_err(char *err, size_t err_len, const char *msg) {
    if (err && err_len > 0) {
        strncpy(err, msg, err_len - 1);
        err[err_len - 1] = 0;
    }
}

int fdb_decode_jpeg(const uint8_t *data, size_t len, uint64_t max_pixels, fdb_alloc_cb alloc,
                    void *ctx, uint32_t *out_w, uint32_t *out_h, int *out_components,
                    char *err, size_t err_len) {
    struct jpeg_decompress_struct cinfo;
    struct fdb_jpeg_err jerr;
    /* volatile: read after longjmp */
    volatile int status = FDB_OK;
    uint8_t *volatile out = NULL;

    if (data == NULL || len == 0) {
        fdb_put_err(err, err_len, "empty input");
        return FDB_ERR_ARG;
    }
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = fdb_jpeg_error_exit;
    jerr.mgr.emit_message = fdb_jpeg_emit_message;
    jerr.truncated = 0;

    if (setjmp(jerr.jump)) {
        char buf[JMSG_LENGTH_MAX];
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, buf);
        fdb_put_err(err, err_len, buf);
        jpeg_destroy_decompress(&cinfo);
        /* A fatal error after the data ran out is a truncation, not corruption. */
        return jerr.truncated ? FDB_ERR_TRUNCATED : FDB_ERR_CORRUPT;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (jerr.truncated) {
        fdb_put_err(err, err_len, "JPEG data ends inside the header");
        jpeg_destroy_decompress(&cinfo);
        return FDB_ERR_TRUNCATED;
    }
    *out_w = cinfo.image_width;
    *out_h = cinfo.image_height;
    if (cinfo.image_width == 0 || cinfo.image_height == 0) {
        fdb_put_err(err, err_len, "JPEG has a zero dimension");
        jpeg_destroy_decompress(&cinfo);
        return FDB_ERR_CORRUPT;
    }
    if ((uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height > max_pixels) {
        fdb_put_err(err, err_len, "JPEG over the pixel limit");
        jpeg_destroy_decompress(&cinfo);
        return FDB_ERR_TOO_LARGE;
    }

    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo.out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        break;
    default:
        fdb_put_err(err, err_len, "JPEG colour space not supported");
        jpeg_destroy_decompress(&cinfo);
        return FDB_ERR_UNSUPPORTED;
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;

    jpeg_start_decompress(&cinfo);
    {
        size_t row_bytes = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
        size_t total = row_bytes * (size_t)cinfo.output_height;
        out = alloc(ctx, total);
        if (out == NULL) {
            fdb_put_err(err, err_len, "output allocation failed");
            jpeg_destroy_decompress(&cinfo);
            return FDB_ERR_ALLOC;
        }
        while (cinfo.output_scanline < cinfo.output_height) {
            JSAMPROW row = (JSAMPROW)(out + row_bytes * cinfo.output_scanline);
            jpeg_read_scanlines(&cinfo, &row, 1);
        }
        if (cinfo.out_color_space == JCS_CMYK) {
            /* Pillow reads CMYK JPEGs as "CMYK;I" (Adobe's inverted convention). */
            size_t i;
            for (i = 0; i < total; i++)
                out[i] = (uint8_t)(255 - out[i]);
        }
        *out_w = cinfo.output_width;
        *out_h = cinfo.output_height;
        *out_components = cinfo.output_components;
    }
    jpeg_finish_decompress(&cinfo);
    if (jerr.truncated) {
        fdb_put_err(err, err_len, "JPEG data ends before the last scan line");
        status = FDB_ERR_TRUNCATED;
    }
    jpeg_destroy_decompress(&cinfo);
    return status;
}
