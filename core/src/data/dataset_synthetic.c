/* The synthetic dataset: `size` samples of any shape and class count, each a fixed
 * function of (seed, index), computed on demand (nothing is stored). Sample i has
 * label hash(seed, i) mod classes and values u + 0.5 * p_c where u is uniform in
 * [0, 0.5) from the sample's own stream and p_c is a fixed 0/1 pattern of its class,
 * so a model can learn it. No transform: the loader's seed is not used. */
#include <stdio.h>
#include "dataset.h"

typedef struct synth {
    uint64_t seed;
} synth;

static ln_status synth_load(const ln_dataset *ds, int64_t index, ln_image_rng *rng,
                            ln_data_scratch *scratch, float *out, int64_t *label,
                            bool *converted, char *err, size_t errlen) {
    (void)rng; (void)scratch; (void)err; (void)errlen;
    const synth *s = ds->impl;
    int64_t c = (int64_t)(ln_seed_mix(s->seed, 1, (uint64_t)index, 0) % (uint64_t)ds->classes);
    ln_image_rng values, pattern; /* streams 2 (per sample) and 3 (per class) of seed */
    ln_image_rng_seed(&values, s->seed, 2, (uint64_t)index);
    ln_image_rng_seed(&pattern, s->seed, 3, (uint64_t)c);
    uint64_t bits = 0;
    for (int64_t j = 0; j < ds->numel; j++) {
        if ((j & 63) == 0) bits = ln_image_rng_next(&pattern);
        float u = (float)(ln_image_rng_next(&values) >> 40) * 0x1.0p-25f; /* [0, 0.5) */
        out[j] = u + ((bits >> (j & 63)) & 1 ? 0.5f : 0.0f);
    }
    *label = c;
    *converted = false;
    return LN_OK;
}

static void synth_describe(const ln_dataset *ds, int64_t index, char *buf, size_t n) {
    (void)ds;
    ln_strf(buf, n, "synthetic sample %lld", (long long)index);
}

static void synth_destroy(ln_dataset *ds) { free(ds->impl); }

static const ln_dataset_vt synth_vt = {synth_load, synth_describe, synth_destroy};

ln_status ln_dataset_synthetic(ln_ctx *ctx, int ndim, const int64_t *shape, int classes,
                               int64_t size, uint64_t seed, ln_dataset **out) {
    *out = NULL;
    if (ndim < 1 || ndim > LN_MAX_DIMS - 1)
        return ln_fail(ctx, LN_ERR_ARG, "synthetic: a sample has 1 to %d dimensions, got %d",
                       LN_MAX_DIMS - 1, ndim);
    if (!shape) return ln_fail(ctx, LN_ERR_ARG, "synthetic: argument 'shape' is NULL");
    int64_t numel;
    if (!ln_shape_numel(ndim, shape, &numel) || numel <= 0 || numel > ((int64_t)1 << 40)) {
        char buf[128];
        ln_shape_format(ndim, shape, buf, sizeof buf);
        return ln_fail(ctx, LN_ERR_ARG, "synthetic: invalid sample shape %s", buf);
    }
    if (classes < 1) return ln_fail(ctx, LN_ERR_ARG, "synthetic: 'classes' must be >= 1, got %d", classes);
    if (size < 1) return ln_fail(ctx, LN_ERR_ARG, "synthetic: 'size' must be >= 1, got %lld", (long long)size);
    ln_dataset *ds = ln_dataset_new("synthetic", &synth_vt);
    synth *s = malloc(sizeof *s);
    if (!ds || !s) {
        free(s);
        ln_dataset_release(ds);
        return ln_fail(ctx, LN_ERR_NOMEM, "synthetic: out of memory");
    }
    s->seed = seed;
    ds->impl = s;
    ds->size = size;
    ds->classes = classes;
    ln_dataset_set_shape(ds, ndim, shape);
    *out = ds;
    return LN_OK;
}
