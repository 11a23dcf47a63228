/* Batch normalisation kernels: reference (double), fast CPU (f32) and CUDA (f32).
 * x, y, gy, gx are contiguous (N,C,HW) with HW = H*W. The per-channel statistics
 * mean, var and invstd = 1/sqrt(var + eps) are double arrays of C values owned by the
 * caller (the op computes them once and keeps them for backward). Weight w and bias b
 * are (C) arrays or NULL (then 1 and 0). Output arrays gx, gw, gb may each be NULL
 * when that gradient is not wanted.
 * Backward, with xhat = (x - mean) * invstd, M = N*HW and per channel
 * sdy = sum(gy), sdyx = sum(gy * xhat):
 *   gb = sdy, gw = sdyx,
 *   gx = w*invstd * (gy - sdy/M - xhat*sdyx/M)   (training: batch statistics)
 *   gx = w*invstd * gy                            (eval: fixed running statistics) */
#ifndef LUNET_KERNELS_NORM_H
#define LUNET_KERNELS_NORM_H

#include <stdint.h>
#include "../internal.h"

/* Per-channel mean and biased variance of x; needs N*HW >= 1. */
void ln_ref_bn_stats(int64_t N, int64_t C, int64_t HW, const double *x, double *mean,
                     double *var);
/* y = (x - mean) * invstd * w + b, per channel. */
void ln_ref_bn_fwd(int64_t N, int64_t C, int64_t HW, const double *x, const double *mean,
                   const double *invstd, const double *w, const double *b, double *y);
void ln_ref_bn_bwd(int64_t N, int64_t C, int64_t HW, bool training, const double *x,
                   const double *mean, const double *invstd, const double *w,
                   const double *gy, double *gx, double *gw, double *gb);

/* One pass over x per channel (shifted sums in double), parallel over channels. */
void ln_cpu_bn_stats(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, const float *x,
                     double *mean, double *var);
void ln_cpu_bn_fwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, const float *x,
                   const double *mean, const double *invstd, const float *w, const float *b,
                   float *y);
void ln_cpu_bn_bwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, bool training,
                   const float *x, const double *mean, const double *invstd, const float *w,
                   const float *gy, float *gx, float *gw, float *gb);

/* CUDA (cuda/norm.cu): the same arithmetic on device pointers, the statistics (mean,
 * var, invstd: C doubles each) kept on the device too. train_stats computes the batch
 * mean, biased variance and 1/sqrt(var + eps); eval_stats takes the mean and
 * 1/sqrt(running_var + eps) from the running statistics; update_running applies
 * running = (1-momentum)*running + momentum*stat (the variance times unbias = M/(M-1))
 * to contiguous f32 running tensors. */
ln_status ln_cuda_bn_train_stats(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, double eps,
                                 const float *x, double *mean, double *var, double *invstd);
ln_status ln_cuda_bn_eval_stats(ln_ctx *ctx, int64_t C, double eps, const float *running_mean,
                                const float *running_var, double *mean, double *invstd);
ln_status ln_cuda_bn_update_running(ln_ctx *ctx, int64_t C, double momentum, double unbias,
                                    const double *mean, const double *var, float *running_mean,
                                    float *running_var);
ln_status ln_cuda_bn_fwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, const float *x,
                         const double *mean, const double *invstd, const float *w, const float *b,
                         float *y);
ln_status ln_cuda_bn_bwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, bool training,
                         const float *x, const double *mean, const double *invstd, const float *w,
                         const float *gy, float *gx, float *gw, float *gb);

#endif
