/* Reference cat, split and option-A shortcut in double: element by element. */
#include "../kernels/shape.h"

void ln_ref_cat(int n, const double *const *xs, const int64_t *sizes, int64_t outer,
                int64_t inner, double *y) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    for (int64_t o = 0; o < outer; o++) {
        int64_t start = 0;
        for (int i = 0; i < n; i++) {
            for (int64_t k = 0; k < sizes[i]; k++)
                for (int64_t j = 0; j < inner; j++)
                    y[(o * total + start + k) * inner + j] = xs[i][(o * sizes[i] + k) * inner + j];
            start += sizes[i];
        }
    }
}

void ln_ref_split(int n, double *const *gs, const int64_t *sizes, int64_t outer, int64_t inner,
                  const double *gy) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    for (int64_t o = 0; o < outer; o++) {
        int64_t start = 0;
        for (int i = 0; i < n; i++) {
            for (int64_t k = 0; gs[i] && k < sizes[i]; k++)
                for (int64_t j = 0; j < inner; j++)
                    gs[i][(o * sizes[i] + k) * inner + j] = gy[(o * total + start + k) * inner + j];
            start += sizes[i];
        }
    }
}

void ln_ref_shortcut_fwd(const ln_shortcut_dims *d, const double *x, double *y) {
    int64_t oc = d->c + 2 * d->pad;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t c = 0; c < oc; c++)
            for (int64_t i = 0; i < d->oh; i++)
                for (int64_t j = 0; j < d->ow; j++) {
                    int64_t ic = c - d->pad;
                    double v = 0;
                    if (ic >= 0 && ic < d->c)
                        v = x[((n * d->c + ic) * d->h + i * d->stride) * d->w + j * d->stride];
                    y[((n * oc + c) * d->oh + i) * d->ow + j] = v;
                }
}

void ln_ref_shortcut_bwd(const ln_shortcut_dims *d, const double *gy, double *gx) {
    int64_t oc = d->c + 2 * d->pad;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t c = 0; c < d->c; c++)
            for (int64_t h = 0; h < d->h; h++)
                for (int64_t w = 0; w < d->w; w++) {
                    double v = 0;
                    if (h % d->stride == 0 && w % d->stride == 0)
                        v = gy[((n * oc + c + d->pad) * d->oh + h / d->stride) * d->ow + w / d->stride];
                    gx[((n * d->c + c) * d->h + h) * d->w + w] = v;
                }
}
