/* Pooling kernels: reference (double), fast CPU (f32) and CUDA (f32).
 * Max pooling works on NC = N*C independent planes: x is (NC,H,W), y and idx are
 * (NC,OH,OW) with OH = (H + 2*pad_h - kernel_h)/stride_h + 1 (floor; same for W).
 * Padding is implicit -inf. idx[o] is the flat index h*W + w within the input plane of
 * the maximum of window o: the first maximum in row-major window order on ties, a NaN
 * if the window holds one (as PyTorch). Backward routes gy to gx at idx (gx is written
 * in full: zero elsewhere).
 * Global average pooling: x is (NC,HW) -> y (NC); backward gx = gy / HW. */
#ifndef LUNET_KERNELS_POOL_H
#define LUNET_KERNELS_POOL_H

#include <stdint.h>
#include "../internal.h"

void ln_ref_maxpool_fwd(int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        const ln_pool2d_params *p, const double *x, double *y, int64_t *idx);
void ln_ref_maxpool_bwd(int64_t NC, int64_t HW, int64_t OHW, const int64_t *idx,
                        const double *gy, double *gx);
void ln_ref_gap_fwd(int64_t NC, int64_t HW, const double *x, double *y);
void ln_ref_gap_bwd(int64_t NC, int64_t HW, const double *gy, double *gx);

/* idx may be NULL when no backward will follow. */
void ln_cpu_maxpool_fwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        const ln_pool2d_params *p, const float *x, float *y, int64_t *idx);
void ln_cpu_maxpool_bwd(ln_ctx *ctx, int64_t NC, int64_t HW, int64_t OHW, const int64_t *idx,
                        const float *gy, float *gx);
void ln_cpu_gap_fwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *x, float *y);
void ln_cpu_gap_bwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *gy, float *gx);

/* CUDA (cuda/pool.cu), device pointers (idx an i64 device array). The max-pool
 * backward takes the window geometry: it gathers per input element instead of
 * scattering, so it needs no atomics. */
ln_status ln_cuda_maxpool_fwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              const ln_pool2d_params *p, const float *x, float *y, int64_t *idx);
ln_status ln_cuda_maxpool_bwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              const ln_pool2d_params *p, const int64_t *idx, const float *gy,
                              float *gx);
ln_status ln_cuda_gap_fwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *x, float *y);
ln_status ln_cuda_gap_bwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *gy, float *gx);

#endif
