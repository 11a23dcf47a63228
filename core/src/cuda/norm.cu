/* CUDA batch normalisation (f32 data, double statistics), the same arithmetic as
 * cpu/norm.c: per-channel sums in double (the batch statistics shifted by the
 * channel's first value), the running-statistics update in double, and
 * y = (x - mean)*scale + shift per element. x, y, gy, gx are contiguous (N,C,HW);
 * mean, var and invstd are device arrays of C doubles.
 *
 * The per-channel sums are deterministic: P blocks per channel each sum a fixed
 * slice into a partial (a fixed tree in shared memory), and one thread per channel
 * adds the P partials in order. P is chosen so the grid fills the device. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/norm.h"
}

#define BN_THREADS 256
#define BN_MIN_SLICE 2048 /* values a partial block sums at least */

/* Partial blocks per channel for M values per channel. */
static int64_t bn_parts(const struct ln_cuda_state *s, int64_t C, int64_t M) {
    int64_t want = (4 * (int64_t)s->sm_count + C - 1) / C;
    int64_t most = (M + BN_MIN_SLICE - 1) / BN_MIN_SLICE;
    int64_t p = want < most ? want : most;
    return p < 1 ? 1 : p > 1024 ? 1024 : p;
}

/* Sums two values over the block into thread 0's (a, b); fixed order. */
__device__ inline void block_sum2(double *sa, double *sb, double *a, double *b) {
    sa[threadIdx.x] = *a;
    sb[threadIdx.x] = *b;
    __syncthreads();
    for (int h = BN_THREADS / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) {
            sa[threadIdx.x] += sa[threadIdx.x + h];
            sb[threadIdx.x] += sb[threadIdx.x + h];
        }
        __syncthreads();
    }
    *a = sa[0];
    *b = sb[0];
}

/* Element e of channel c's M = N*HW values (n-major), as an offset into x. */
__device__ inline int64_t bn_at(int64_t e, int64_t c, int64_t C, int64_t HW) {
    return ((e / HW) * C + c) * HW + e % HW;
}

/* grid (P, C): partial sums of d = x - x[c's first value] and d^2 over slice p. */
__global__ void bn_stats_partial_kernel(int64_t C, int64_t HW, int64_t M, int64_t P, const float *x,
                                        double *part) {
    __shared__ double sa[BN_THREADS], sb[BN_THREADS];
    int64_t c = blockIdx.y, p = blockIdx.x, len = (M + P - 1) / P;
    int64_t e0 = p * len, e1 = e0 + len < M ? e0 + len : M;
    double k = x[c * HW], s = 0, ss = 0;
    for (int64_t e = e0 + threadIdx.x; e < e1; e += BN_THREADS) {
        double d = (double)x[bn_at(e, c, C, HW)] - k;
        s += d;
        ss += d * d;
    }
    block_sum2(sa, sb, &s, &ss);
    if (threadIdx.x == 0) {
        part[2 * (c * P + p)] = s;
        part[2 * (c * P + p) + 1] = ss;
    }
}

/* One thread per channel: mean, biased variance and 1/sqrt(var + eps). */
__global__ void bn_stats_final_kernel(int64_t C, int64_t HW, int64_t M, int64_t P, double eps, const float *x,
                                      const double *part, double *mean, double *var, double *invstd) {
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0, ss = 0;
    for (int64_t p = 0; p < P; p++) {
        s += part[2 * (c * P + p)];
        ss += part[2 * (c * P + p) + 1];
    }
    double m = s / (double)M, v = ss / (double)M - m * m;
    v = v > 0 ? v : 0;
    mean[c] = (double)x[c * HW] + m;
    var[c] = v;
    invstd[c] = 1.0 / sqrt(v + eps);
}

extern "C" ln_status ln_cuda_bn_train_stats(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, double eps,
                                            const float *x, double *mean, double *var, double *invstd) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (C == 0) return LN_OK;
    if (C > 65535) return ln_fail(ctx, LN_ERR_UNSUPPORTED, "batch_norm2d: CUDA kernels take at most 65535 channels");
    int64_t M = N * HW, P = bn_parts(s, C, M);
    double *part;
    LN_TRY(ln_cuda_scratch(ctx, (size_t)(2 * C * P) * sizeof(double), (void **)&part));
    bn_stats_partial_kernel<<<dim3((unsigned)P, (unsigned)C), BN_THREADS, 0, s->stream>>>(C, HW, M, P, x, part);
    ln_status st = ln_cuda_launched(ctx, "launching batch_norm2d statistics");
    if (st == LN_OK) {
        bn_stats_final_kernel<<<(unsigned)((C + 127) / 128), 128, 0, s->stream>>>(C, HW, M, P, eps, x, part, mean,
                                                                                  var, invstd);
        st = ln_cuda_launched(ctx, "launching batch_norm2d statistics");
    }
    ln_cuda_scratch_free(ctx, part);
    return st;
}

/* running = (1-momentum)*running + momentum*stat (times unbias for the variance) */
__global__ void bn_running_kernel(int64_t C, double momentum, double unbias, const double *mean, const double *var,
                                  float *running_mean, float *running_var) {
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    running_mean[c] = (float)((1 - momentum) * (double)running_mean[c] + momentum * mean[c] * 1.0);
    running_var[c] = (float)((1 - momentum) * (double)running_var[c] + momentum * var[c] * unbias);
}

extern "C" ln_status ln_cuda_bn_update_running(ln_ctx *ctx, int64_t C, double momentum, double unbias,
                                               const double *mean, const double *var, float *running_mean,
                                               float *running_var) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (C == 0) return LN_OK;
    bn_running_kernel<<<(unsigned)((C + 127) / 128), 128, 0, s->stream>>>(C, momentum, unbias, mean, var,
                                                                          running_mean, running_var);
    return ln_cuda_launched(ctx, "launching the batch_norm2d running-statistics update");
}

/* Eval: the statistics are the running ones. */
__global__ void bn_eval_stats_kernel(int64_t C, double eps, const float *running_mean, const float *running_var,
                                     double *mean, double *invstd) {
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    mean[c] = (double)running_mean[c];
    invstd[c] = 1.0 / sqrt((double)running_var[c] + eps);
}

extern "C" ln_status ln_cuda_bn_eval_stats(ln_ctx *ctx, int64_t C, double eps, const float *running_mean,
                                           const float *running_var, double *mean, double *invstd) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (C == 0) return LN_OK;
    bn_eval_stats_kernel<<<(unsigned)((C + 127) / 128), 128, 0, s->stream>>>(C, eps, running_mean, running_var,
                                                                             mean, invstd);
    return ln_cuda_launched(ctx, "launching batch_norm2d eval statistics");
}

/* ------------------------------------------------------------ normalise */
__global__ void bn_fwd_kernel(int64_t total, int64_t C, int64_t HW, const float *x, const double *mean,
                              const double *invstd, const float *w, const float *b, float *y) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int64_t c = (i / HW) % C;
        float scale = (float)((w ? (double)w[c] : 1.0) * invstd[c]);
        float m = (float)mean[c], shift = b ? b[c] : 0.f;
        y[i] = (x[i] - m) * scale + shift;
    }
}

extern "C" ln_status ln_cuda_bn_fwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, const float *x,
                                    const double *mean, const double *invstd, const float *w, const float *b,
                                    float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    int64_t total = N * C * HW;
    if (total == 0) return LN_OK;
    bn_fwd_kernel<<<ln_cuda_blocks(total), LN_CUDA_BLOCK, 0, s->stream>>>(total, C, HW, x, mean, invstd, w, b, y);
    return ln_cuda_launched(ctx, "launching batch_norm2d");
}

/* ------------------------------------------------------------ backward */
/* grid (P, C): partial sums of gy and gy*(x - mean) over slice p. */
__global__ void bn_bwd_partial_kernel(int64_t C, int64_t HW, int64_t M, int64_t P, const float *x,
                                      const double *mean, const float *gy, double *part) {
    __shared__ double sa[BN_THREADS], sb[BN_THREADS];
    int64_t c = blockIdx.y, p = blockIdx.x, len = (M + P - 1) / P;
    int64_t e0 = p * len, e1 = e0 + len < M ? e0 + len : M;
    double m = mean[c], sdy = 0, sdyx = 0;
    for (int64_t e = e0 + threadIdx.x; e < e1; e += BN_THREADS) {
        int64_t o = bn_at(e, c, C, HW);
        double g = gy[o];
        sdy += g;
        sdyx += g * ((double)x[o] - m);
    }
    block_sum2(sa, sb, &sdy, &sdyx);
    if (threadIdx.x == 0) {
        part[2 * (c * P + p)] = sdy;
        part[2 * (c * P + p) + 1] = sdyx;
    }
}

/* One thread per channel: gb, gw, and the coefficients of gx = fa*gy + fb*(x - fm) + fk
 * (coef[4c..4c+3] = fa, fb, fk, fm). */
__global__ void bn_bwd_final_kernel(int64_t C, int64_t M, int64_t P, bool training, const double *mean,
                                    const double *invstd, const float *w, const double *part, float *gw,
                                    float *gb, float *coef) {
    int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double sdy = 0, sdyx = 0;
    for (int64_t p = 0; p < P; p++) {
        sdy += part[2 * (c * P + p)];
        sdyx += part[2 * (c * P + p) + 1];
    }
    double is = invstd[c];
    sdyx *= is; /* sum(gy * xhat) */
    if (gb) gb[c] = (float)sdy;
    if (gw) gw[c] = (float)sdyx;
    double scale = (w ? (double)w[c] : 1.0) * is;
    double bx = training ? -scale * is * sdyx / (double)M : 0;
    double k = training ? -scale * sdy / (double)M : 0;
    coef[4 * c] = (float)scale;
    coef[4 * c + 1] = (float)bx;
    coef[4 * c + 2] = (float)k;
    coef[4 * c + 3] = (float)mean[c];
}

__global__ void bn_bwd_gx_kernel(int64_t total, int64_t C, int64_t HW, const float *x, const float *gy,
                                 const float *coef, float *gx) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const float *k = coef + 4 * ((i / HW) % C);
        gx[i] = k[0] * gy[i] + k[1] * (x[i] - k[3]) + k[2];
    }
}

extern "C" ln_status ln_cuda_bn_bwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, bool training, const float *x,
                                    const double *mean, const double *invstd, const float *w, const float *gy,
                                    float *gx, float *gw, float *gb) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (C == 0) return LN_OK;
    if (C > 65535) return ln_fail(ctx, LN_ERR_UNSUPPORTED, "batch_norm2d: CUDA kernels take at most 65535 channels");
    int64_t M = N * HW, P = M > 0 ? bn_parts(s, C, M) : 1;
    size_t part_bytes = (size_t)(2 * C * P) * sizeof(double);
    char *scratch;
    LN_TRY(ln_cuda_scratch(ctx, part_bytes + (size_t)(4 * C) * sizeof(float), (void **)&scratch));
    double *part = (double *)scratch;
    float *coef = (float *)(scratch + part_bytes);
    bn_bwd_partial_kernel<<<dim3((unsigned)P, (unsigned)C), BN_THREADS, 0, s->stream>>>(C, HW, M, P, x, mean, gy,
                                                                                        part);
    ln_status st = ln_cuda_launched(ctx, "launching batch_norm2d backward");
    if (st == LN_OK) {
        bn_bwd_final_kernel<<<(unsigned)((C + 127) / 128), 128, 0, s->stream>>>(C, M, P, training, mean, invstd, w,
                                                                                part, gw, gb, coef);
        st = ln_cuda_launched(ctx, "launching batch_norm2d backward");
    }
    int64_t total = N * C * HW;
    if (st == LN_OK && gx && total > 0) {
        bn_bwd_gx_kernel<<<ln_cuda_blocks(total), LN_CUDA_BLOCK, 0, s->stream>>>(total, C, HW, x, gy, coef, gx);
        st = ln_cuda_launched(ctx, "launching batch_norm2d backward");
    }
    ln_cuda_scratch_free(ctx, scratch);
    return st;
}
