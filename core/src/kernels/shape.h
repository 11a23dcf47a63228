/* Data-moving shape ops: concatenation (and its backward, the split) and the option-A
 * shortcut of CIFAR ResNets; reference (double), fast CPU and CUDA (f32) kernels. The pure
 * views (reshape, transpose, narrow) need no kernel.
 *
 * cat: input i is viewed as (outer, sizes[i] * inner) and the output as
 * (outer, total * inner), where total = sum of sizes, outer = product of the dims
 * before the cat dim and inner = product of the dims after it. split is the inverse;
 * its targets gs[i] may be NULL (not wanted).
 *
 * shortcut: x is (N,C,H,W), y is (N, C+2*pad, OH, OW) with OH = ceil(H/stride),
 * OW = ceil(W/stride); y[n, c+pad, i, j] = x[n, c, i*stride, j*stride], the padded
 * channels are 0. Backward: gx[n, c, i*stride, j*stride] = gy[n, c+pad, i, j], else 0. */
#ifndef LUNET_KERNELS_SHAPE_H
#define LUNET_KERNELS_SHAPE_H

#include <stdint.h>
#include "../internal.h"

typedef struct ln_shortcut_dims { int64_t n, c, h, w, oh, ow, pad; int stride; } ln_shortcut_dims;

void ln_ref_cat(int n, const double *const *xs, const int64_t *sizes, int64_t outer,
                int64_t inner, double *y);
void ln_ref_split(int n, double *const *gs, const int64_t *sizes, int64_t outer, int64_t inner,
                  const double *gy);
void ln_ref_shortcut_fwd(const ln_shortcut_dims *d, const double *x, double *y);
void ln_ref_shortcut_bwd(const ln_shortcut_dims *d, const double *gy, double *gx);

void ln_cpu_cat(ln_ctx *ctx, int n, const float *const *xs, const int64_t *sizes, int64_t outer,
                int64_t inner, float *y);
void ln_cpu_split(ln_ctx *ctx, int n, float *const *gs, const int64_t *sizes, int64_t outer,
                  int64_t inner, const float *gy);
void ln_cpu_shortcut_fwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *x, float *y);
void ln_cpu_shortcut_bwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *gy, float *gx);

/* CUDA (cuda/shape.cu): the same on device pointers. */
ln_status ln_cuda_cat(ln_ctx *ctx, int n, const float *const *xs, const int64_t *sizes,
                      int64_t outer, int64_t inner, float *y);
ln_status ln_cuda_split(ln_ctx *ctx, int n, float *const *gs, const int64_t *sizes, int64_t outer,
                        int64_t inner, const float *gy);
ln_status ln_cuda_shortcut_fwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *x, float *y);
ln_status ln_cuda_shortcut_bwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *gy, float *gx);

#endif
