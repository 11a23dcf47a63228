/* Fast CPU pooling (f32), parallel over (n, c) planes. Max pooling clips each window
 * to the image once instead of testing every tap, so the inner loops carry no padding
 * branches; global average pooling is a SIMD sum in double per plane. */
#include <math.h>
#include "../kernels/pool.h"

#define LN_PAR_MIN 32768 /* below this many elements a single thread is faster */

static inline int threads_for(const ln_ctx *ctx, int64_t n) {
    return n >= LN_PAR_MIN ? ctx->num_threads : 1;
}

static inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

void ln_cpu_maxpool_fwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        const ln_pool2d_params *p, const float *restrict x, float *restrict y,
                        int64_t *restrict idx) {
    int nt = threads_for(ctx, NC * H * W);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t pl = 0; pl < NC; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * OH * OW;
        int64_t *ip = idx ? idx + pl * OH * OW : NULL;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * p->stride_h - p->pad_h;
            int64_t hs = max_i64(h0, 0), he = min_i64(h0 + p->kernel_h, H);
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * p->stride_w - p->pad_w;
                int64_t ws = max_i64(w0, 0), we = min_i64(w0 + p->kernel_w, W);
                /* padding <= kernel/2 guarantees every window holds an input element */
                int64_t arg = hs * W + ws;
                float best = xp[arg];
                for (int64_t ih = hs; ih < he; ih++)
                    for (int64_t iw = ws; iw < we; iw++) {
                        float v = xp[ih * W + iw];
                        if (v > best || isnan(v)) { best = v; arg = ih * W + iw; }
                    }
                yp[oh * OW + ow] = best;
                if (ip) ip[oh * OW + ow] = arg;
            }
        }
    }
}

void ln_cpu_maxpool_bwd(ln_ctx *ctx, int64_t NC, int64_t HW, int64_t OHW,
                        const int64_t *restrict idx, const float *restrict gy,
                        float *restrict gx) {
    int nt = threads_for(ctx, NC * HW);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t pl = 0; pl < NC; pl++) {
        float *gp = gx + pl * HW;
        const float *g = gy + pl * OHW;
        const int64_t *ip = idx + pl * OHW;
        for (int64_t i = 0; i < HW; i++) gp[i] = 0.f;
        for (int64_t o = 0; o < OHW; o++) gp[ip[o]] += g[o];
    }
}

void ln_cpu_gap_fwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *restrict x,
                    float *restrict y) {
    int nt = threads_for(ctx, NC * HW);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t pl = 0; pl < NC; pl++) {
        const float *xp = x + pl * HW;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < HW; i++) s += xp[i];
        y[pl] = (float)(s / (double)HW);
    }
}

void ln_cpu_gap_bwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *restrict gy,
                    float *restrict gx) {
    int nt = threads_for(ctx, NC * HW);
    float inv = 1.f / (float)HW;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t pl = 0; pl < NC; pl++) {
        float g = gy[pl] * inv;
        float *gp = gx + pl * HW;
#pragma omp simd
        for (int64_t i = 0; i < HW; i++) gp[i] = g;
    }
}
