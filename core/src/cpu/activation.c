/* Fast CPU activations (f32, OpenMP over chunks, auto-vectorised inner loops). */
#include <math.h>
#include "../kernels/activation.h"

#define LN_PAR_MIN 32768 /* below this many elements a single thread is faster */

void ln_cpu_act_fwd(ln_ctx *ctx, ln_act a, int64_t n, const float *restrict x, float *restrict y) {
    int nt = n >= LN_PAR_MIN ? ctx->num_threads : 1;
    switch (a) {
    case LN_ACT_RELU:
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.f ? x[i] : 0.f;
        break;
    case LN_ACT_RELU6:
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = fminf(fmaxf(x[i], 0.f), 6.f);
        break;
    case LN_ACT_SIGMOID:
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = 1.f / (1.f + expf(-x[i]));
        break;
    }
}

void ln_cpu_act_bwd(ln_ctx *ctx, ln_act a, int64_t n, const float *restrict s,
                    const float *restrict gy, float *restrict gx) {
    int nt = n >= LN_PAR_MIN ? ctx->num_threads : 1;
    switch (a) {
    case LN_ACT_RELU:
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] = s[i] > 0.f ? gy[i] : 0.f;
        break;
    case LN_ACT_RELU6:
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] = (s[i] > 0.f && s[i] < 6.f) ? gy[i] : 0.f;
        break;
    case LN_ACT_SIGMOID:
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * s[i] * (1.f - s[i]);
        break;
    }
}
