/* Fast CPU batch normalisation (f32 data, double statistics). Statistics and the
 * backward reductions run in parallel over channels, one pass each, with SIMD
 * reductions in double; the normalisation itself is a subtract and a fused
 * multiply-add per element (y = (x - mean)*scale + b) in parallel over (n, c) planes.
 * Centring on the mean first keeps f32 precision when |mean| >> std. */
#include "../kernels/norm.h"

#define LN_PAR_MIN 32768 /* below this many elements a single thread is faster */

static inline int threads_for(const ln_ctx *ctx, int64_t n) {
    return n >= LN_PAR_MIN ? ctx->num_threads : 1;
}

void ln_cpu_bn_stats(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, const float *restrict x,
                     double *restrict mean, double *restrict var) {
    int nt = threads_for(ctx, N * C * HW);
    double M = (double)(N * HW);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        /* sums shifted by the channel's first value: no cancellation when |mean| >> std */
        double k = x[c * HW], s = 0, ss = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * HW;
#pragma omp simd reduction(+ : s, ss)
            for (int64_t i = 0; i < HW; i++) {
                double d = (double)p[i] - k;
                s += d;
                ss += d * d;
            }
        }
        double m = s / M, v = ss / M - m * m;
        mean[c] = k + m;
        var[c] = v > 0 ? v : 0;
    }
}

void ln_cpu_bn_fwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, const float *restrict x,
                   const double *mean, const double *invstd, const float *w, const float *b,
                   float *restrict y) {
    int nt = threads_for(ctx, N * C * HW);
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float scale = (float)((w ? w[c] : 1.0) * invstd[c]);
            float m = (float)mean[c], shift = b ? b[c] : 0.f;
            const float *p = x + (n * C + c) * HW;
            float *q = y + (n * C + c) * HW;
#pragma omp simd
            for (int64_t i = 0; i < HW; i++) q[i] = (p[i] - m) * scale + shift;
        }
}

void ln_cpu_bn_bwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, bool training,
                   const float *restrict x, const double *mean, const double *invstd,
                   const float *w, const float *restrict gy, float *restrict gx,
                   float *restrict gw, float *restrict gb) {
    int nt = threads_for(ctx, N * C * HW);
    double M = (double)(N * HW);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        double m = mean[c], is = invstd[c], sdy = 0, sdyx = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * HW, *g = gy + (n * C + c) * HW;
#pragma omp simd reduction(+ : sdy, sdyx)
            for (int64_t i = 0; i < HW; i++) {
                sdy += g[i];
                sdyx += (double)g[i] * ((double)p[i] - m);
            }
        }
        sdyx *= is; /* sum(gy * xhat) */
        if (gb) gb[c] = (float)sdy;
        if (gw) gw[c] = (float)sdyx;
        if (!gx) continue;
        /* gx = a*gy + bx*(x - mean) + k: the formula of kernels/norm.h expanded */
        double scale = (w ? w[c] : 1.0) * is;
        double bx = training ? -scale * is * sdyx / M : 0;
        double k = training ? -scale * sdy / M : 0;
        float fa = (float)scale, fb = (float)bx, fk = (float)k, fm = (float)m;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * HW, *g = gy + (n * C + c) * HW;
            float *q = gx + (n * C + c) * HW;
#pragma omp simd
            for (int64_t i = 0; i < HW; i++) q[i] = fa * g[i] + fb * (p[i] - fm) + fk;
        }
    }
}
