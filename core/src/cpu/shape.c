/* Fast CPU cat, split and option-A shortcut (f32): whole contiguous blocks moved with
 * memcpy, planes shared out between threads with OpenMP. */
#include <string.h>
#include "../kernels/shape.h"

#define LN_PAR_MIN 32768 /* below this many elements a single thread is faster */

static int cat_threads(ln_ctx *ctx, int n, const int64_t *sizes, int64_t outer, int64_t inner,
                       int64_t *total) {
    *total = 0;
    for (int i = 0; i < n; i++) *total += sizes[i];
    return outer * *total * inner >= LN_PAR_MIN ? ctx->num_threads : 1;
}

void ln_cpu_cat(ln_ctx *ctx, int n, const float *const *xs, const int64_t *sizes, int64_t outer,
                int64_t inner, float *y) {
    int64_t total;
    int nt = cat_threads(ctx, n, sizes, outer, inner, &total);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        float *dst = y + o * total * inner;
        for (int i = 0; i < n; i++) {
            size_t len = (size_t)(sizes[i] * inner);
            if (len) memcpy(dst, xs[i] + (size_t)o * len, len * sizeof(float));
            dst += len;
        }
    }
}

void ln_cpu_split(ln_ctx *ctx, int n, float *const *gs, const int64_t *sizes, int64_t outer,
                  int64_t inner, const float *gy) {
    int64_t total;
    int nt = cat_threads(ctx, n, sizes, outer, inner, &total);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        const float *src = gy + o * total * inner;
        for (int i = 0; i < n; i++) {
            size_t len = (size_t)(sizes[i] * inner);
            if (len && gs[i]) memcpy(gs[i] + (size_t)o * len, src, len * sizeof(float));
            src += len;
        }
    }
}

void ln_cpu_shortcut_fwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *x, float *y) {
    int64_t oc = d->c + 2 * d->pad, plane = d->oh * d->ow, s = d->stride;
    int nt = d->n * oc * plane >= LN_PAR_MIN ? ctx->num_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t p = 0; p < d->n * oc; p++) {
        int64_t n = p / oc, c = p % oc - d->pad;
        float *yp = y + p * plane;
        if (c < 0 || c >= d->c) {
            memset(yp, 0, (size_t)plane * sizeof(float));
            continue;
        }
        const float *xp = x + (n * d->c + c) * d->h * d->w;
        for (int64_t i = 0; i < d->oh; i++) {
            const float *xr = xp + i * s * d->w;
            float *yr = yp + i * d->ow;
            for (int64_t j = 0; j < d->ow; j++) yr[j] = xr[j * s];
        }
    }
}

void ln_cpu_shortcut_bwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *gy, float *gx) {
    int64_t oc = d->c + 2 * d->pad, plane = d->h * d->w, s = d->stride;
    int nt = d->n * d->c * plane >= LN_PAR_MIN ? ctx->num_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t p = 0; p < d->n * d->c; p++) {
        int64_t n = p / d->c, c = p % d->c;
        float *gp = gx + p * plane;
        const float *yp = gy + (n * oc + c + d->pad) * d->oh * d->ow;
        if (s > 1) memset(gp, 0, (size_t)plane * sizeof(float));
        for (int64_t i = 0; i < d->oh; i++) {
            const float *yr = yp + i * d->ow;
            float *gr = gp + i * s * d->w;
            for (int64_t j = 0; j < d->ow; j++) gr[j * s] = yr[j];
        }
    }
}
