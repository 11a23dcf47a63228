/* IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed (zlib's gzread reads
 * both), read whole into memory. An IDX file is: two zero bytes, a type byte (0x08 =
 * unsigned byte, the only one images and labels use), the number of dimensions, each
 * dimension as a big-endian u32, then the data in row-major order. Images are
 * N x H x W, labels N. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include "dataset.h"

/* Reads exactly n bytes; false on a short read or error. */
static bool gz_read_all(gzFile f, uint8_t *buf, size_t n) {
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, buf, chunk);
        if (got <= 0) return false;
        buf += got;
        n -= (size_t)got;
    }
    return true;
}

/* Reads the IDX file at path: its dims (must be `ndim` of them) and its data. */
static ln_status idx_read(ln_ctx *ctx, const char *path, int ndim, int64_t *dims, uint8_t **data) {
    *data = NULL;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) return ln_fail(ctx, errno == ENOMEM ? LN_ERR_NOMEM : LN_ERR_IO, "idx: cannot open '%s': %s",
                           path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    ln_status st = LN_OK;
    uint8_t head[4], d[4];
    if (!gz_read_all(f, head, 4)) {
        st = ln_fail(ctx, LN_ERR_IO, "idx: '%s' is too short for an IDX header", path);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0) {
        st = ln_fail(ctx, LN_ERR_IO, "idx: '%s' is not an IDX file (it starts %02x %02x, not 00 00)",
                     path, head[0], head[1]);
        goto done;
    }
    if (head[2] != 0x08) {
        st = ln_fail(ctx, LN_ERR_UNSUPPORTED, "idx: '%s' holds element type 0x%02x; only unsigned "
                     "bytes (0x08) are supported", path, head[2]);
        goto done;
    }
    if (head[3] != ndim) {
        st = ln_fail(ctx, LN_ERR_SHAPE, "idx: '%s' has %d dimensions, expected %d (%s)", path,
                     head[3], ndim, ndim == 1 ? "labels: N" : "images: N x H x W");
        goto done;
    }
    size_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (!gz_read_all(f, d, 4)) {
            st = ln_fail(ctx, LN_ERR_IO, "idx: '%s' ends inside its header", path);
            goto done;
        }
        dims[i] = (int64_t)d[0] << 24 | (int64_t)d[1] << 16 | (int64_t)d[2] << 8 | d[3];
        if (dims[i] == 0 || (size_t)dims[i] > SIZE_MAX / 2 / total) {
            st = ln_fail(ctx, LN_ERR_IO, "idx: '%s' has an invalid dimension %lld", path, (long long)dims[i]);
            goto done;
        }
        total *= (size_t)dims[i];
    }
    *data = malloc(total);
    if (!*data) {
        st = ln_fail(ctx, LN_ERR_NOMEM, "idx: out of memory for '%s' (%zu bytes)", path, total);
        goto done;
    }
    if (!gz_read_all(f, *data, total)) {
        int zerr;
        const char *msg = gzerror(f, &zerr);
        st = ln_fail(ctx, LN_ERR_IO, "idx: '%s' is truncated or corrupt (%zu bytes of data "
                     "expected%s%s)", path, total, zerr ? ": " : "", zerr ? msg : "");
        free(*data);
        *data = NULL;
    }
done:
    gzclose(f);
    return st;
}

void ln_idx_opts_default(ln_array_opts *o) {
    o->mode = LN_DATA_EVAL;
    o->padding = 0;
    o->flip_p = 0;
    for (int c = 0; c < 3; c++) {
        o->mean[c] = 0;
        o->std[c] = 1;
    }
}

ln_status ln_dataset_idx(ln_ctx *ctx, const char *images, const char *labels,
                         const ln_array_opts *opts, ln_dataset **out) {
    *out = NULL;
    if (!images) return ln_fail(ctx, LN_ERR_ARG, "idx: argument 'images' is NULL");
    if (!labels) return ln_fail(ctx, LN_ERR_ARG, "idx: argument 'labels' is NULL");
    ln_array_opts o;
    if (opts) o = *opts;
    else ln_idx_opts_default(&o);
    LN_TRY(ln_array_opts_check(ctx, "idx", &o, 1));
    int64_t idims[3], ldims[1];
    uint8_t *pix, *lab;
    LN_TRY(idx_read(ctx, images, 3, idims, &pix));
    ln_status st = idx_read(ctx, labels, 1, ldims, &lab);
    if (st != LN_OK) {
        free(pix);
        return st;
    }
    if (idims[0] != ldims[0] || idims[1] > INT_MAX || idims[2] > INT_MAX) {
        free(pix);
        free(lab);
        if (idims[0] != ldims[0])
            return ln_fail(ctx, LN_ERR_SHAPE, "idx: '%s' holds %lld images but '%s' %lld labels",
                           images, (long long)idims[0], labels, (long long)ldims[0]);
        return ln_fail(ctx, LN_ERR_SHAPE, "idx: '%s' has images too large", images);
    }
    int classes = 0;
    for (int64_t i = 0; i < ldims[0]; i++)
        if (lab[i] + 1 > classes) classes = lab[i] + 1;
    ln_array_data *a = calloc(1, sizeof *a);
    if (!a) {
        free(pix);
        free(lab);
        return ln_fail(ctx, LN_ERR_NOMEM, "idx: out of memory");
    }
    a->pix = a->pix_buf = pix;
    a->lab = a->lab_buf = lab;
    a->c = 1;
    a->h = (int)idims[1];
    a->w = (int)idims[2];
    a->pix_stride = (size_t)a->h * (size_t)a->w;
    a->lab_stride = 1;
    a->opts = o;
    ln_strf(a->source, sizeof a->source, "%s", images);
    return ln_array_dataset(ctx, "idx", a, idims[0], classes, out);
}
