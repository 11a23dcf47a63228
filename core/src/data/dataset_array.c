/* Datasets of small 8-bit images held in memory (the CIFAR and IDX readers build
 * one): each sample is a planar (c, h, w) byte image and a label byte; loading it is
 * ln_image_crop_flip_planar (random crop with zero padding + flip in train mode, then
 * scaling to [0,1] and normalisation). */
#include <math.h>
#include <stdio.h>
#include "dataset.h"

static ln_status array_load(const ln_dataset *ds, int64_t index, ln_image_rng *rng,
                            ln_data_scratch *scratch, float *out, int64_t *label,
                            bool *converted, char *err, size_t errlen) {
    (void)scratch;
    const ln_array_data *a = ds->impl;
    const ln_array_opts *o = &a->opts;
    bool train = o->mode == LN_DATA_TRAIN;
    *label = a->lab[(size_t)index * a->lab_stride];
    *converted = false;
    return ln_image_crop_flip_planar(a->pix + (size_t)index * a->pix_stride, a->c, a->h, a->w,
                                     train ? o->padding : 0, train ? o->flip_p : 0.0,
                                     o->mean, o->std, rng, out, err, errlen);
}

static void array_describe(const ln_dataset *ds, int64_t index, char *buf, size_t n) {
    const ln_array_data *a = ds->impl;
    ln_strf(buf, n, "%s sample %lld of %s", ds->kind, (long long)index, a->source);
}

static void array_free(ln_array_data *a) {
    if (!a) return;
    if (a->lab_buf != a->pix_buf) free(a->lab_buf);
    free(a->pix_buf);
    free(a);
}

static void array_destroy(ln_dataset *ds) { array_free(ds->impl); }

static const ln_dataset_vt array_vt = {array_load, array_describe, array_destroy};

ln_status ln_array_opts_check(ln_ctx *ctx, const char *what, const ln_array_opts *o, int channels) {
    if (o->mode != LN_DATA_TRAIN && o->mode != LN_DATA_EVAL)
        return ln_fail(ctx, LN_ERR_ARG, "%s: unknown mode %d", what, (int)o->mode);
    if (o->padding < 0 || o->padding > 1024)
        return ln_fail(ctx, LN_ERR_ARG, "%s: padding must be in 0..1024, got %d", what, o->padding);
    if (!(o->flip_p >= 0 && o->flip_p <= 1))
        return ln_fail(ctx, LN_ERR_ARG, "%s: flip probability must be in [0, 1], got %g", what, o->flip_p);
    for (int c = 0; c < channels; c++)
        if (!(o->std[c] > 0) || !isfinite(o->mean[c]))
            return ln_fail(ctx, LN_ERR_ARG, "%s: channel %d needs a finite mean and a std > 0 "
                           "(got mean %g, std %g)", what, c + 1, o->mean[c], o->std[c]);
    return LN_OK;
}

ln_status ln_array_dataset(ln_ctx *ctx, const char *kind, ln_array_data *a, int64_t n,
                           int classes, ln_dataset **out) {
    *out = NULL;
    ln_dataset *ds = ln_dataset_new(kind, &array_vt);
    if (!ds) {
        array_free(a);
        return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory", kind);
    }
    ds->impl = a;
    ds->size = n;
    ds->classes = classes;
    ln_dataset_set_shape(ds, 3, (int64_t[]){a->c, a->h, a->w});
    *out = ds;
    return LN_OK;
}
