/* Fast CPU 1-D convolution across channels (ECA), f32. The problem is tiny (N*C*K
 * multiply-adds), so these are loops ordered to vectorise over channels, with OpenMP
 * over the batch only when there is enough work. x, y, gy, gx are (N,C); w, gw are (K). */
#include "../kernels/conv.h"

#define LN_CONV1D_PAR_MIN 65536 /* multiply-adds below which one thread is faster */

/* channels o with 0 <= o + j - pad < c, as [lo, hi) */
static inline void tap_range(int64_t c, int64_t j, int64_t pad, int64_t *lo, int64_t *hi) {
    int64_t shift = j - pad;
    *lo = shift < 0 ? -shift : 0;
    *hi = shift > 0 ? c - shift : c;
}

void ln_cpu_conv1d_channels_fwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                const float *restrict x, const float *restrict w,
                                float *restrict y) {
    int nt = n * c * k >= LN_CONV1D_PAR_MIN ? ctx->num_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * c;
        float *yi = y + i * c;
        for (int64_t o = 0; o < c; o++) yi[o] = 0.f;
        for (int64_t j = 0; j < k; j++) {
            int64_t lo, hi, shift = j - pad;
            float wj = w[j];
            tap_range(c, j, pad, &lo, &hi);
            for (int64_t o = lo; o < hi; o++) yi[o] += wj * xi[o + shift];
        }
    }
}

void ln_cpu_conv1d_channels_bwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                const float *restrict x, const float *restrict w,
                                const float *restrict gy, float *restrict gx,
                                float *restrict gw) {
    int nt = n * c * k >= LN_CONV1D_PAR_MIN ? ctx->num_threads : 1;
    if (gx) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            const float *gyi = gy + i * c;
            float *gxi = gx + i * c;
            for (int64_t o = 0; o < c; o++) gxi[o] = 0.f;
            for (int64_t j = 0; j < k; j++) {
                int64_t lo, hi, shift = j - pad;
                float wj = w[j];
                tap_range(c, j, pad, &lo, &hi);
                for (int64_t o = lo; o < hi; o++) gxi[o + shift] += wj * gyi[o];
            }
        }
    }
    if (gw) {
        for (int64_t j = 0; j < k; j++) {
            int64_t lo, hi, shift = j - pad;
            tap_range(c, j, pad, &lo, &hi);
            double total = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : total)
            for (int64_t i = 0; i < n; i++) {
                const float *xi = x + i * c, *gyi = gy + i * c;
                float acc = 0.f;
#pragma omp simd reduction(+ : acc)
                for (int64_t o = lo; o < hi; o++) acc += xi[o + shift] * gyi[o];
                total += acc;
            }
            gw[j] = (float)total;
        }
    }
}
