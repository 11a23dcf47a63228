/* Sum reductions over a set of dimensions and their inverse, the broadcast "expand":
 * reference (double), fast CPU (f32) and CUDA (f32) kernels.
 *
 * A reduction is described by a full shape (ndim, shape) and a flag per dimension:
 * reduced[d] true means dimension d is summed away. `small` holds the kept
 * dimensions only, in order (numel = product of kept extents; 1 when all reduced).
 *   sum:    small[k] = alpha * sum of full[i] over all i that map to k
 *   expand: full[i]  = alpha * small[k(i)]
 * Both arrays are contiguous. ln_sum/ln_mean, their backward, the backward of
 * broadcasting binary ops and the bias gradient of linear all use these. */
#ifndef LUNET_KERNELS_REDUCE_H
#define LUNET_KERNELS_REDUCE_H

#include <stdint.h>
#include "../internal.h"

/* The plain loops: the definition the fast kernels are tested against. */
void ln_ref_sum(int ndim, const int64_t *shape, const bool *reduced, double alpha,
                const double *full, double *small);
void ln_ref_expand(int ndim, const int64_t *shape, const bool *reduced, double alpha,
                   const double *small, double *full);

/* The fast kernels work on a collapsed layout: size-1 dimensions dropped and
 * neighbouring dimensions of the same kind merged, so kept and reduced dimensions
 * alternate (e.g. (N,C,H,W) summed to (1,C,1,1) becomes reduced N, kept C, reduced HW). */
typedef struct ln_reduce_layout {
    int ndim;                      /* 0 only when the full tensor has one element */
    int64_t shape[LN_MAX_DIMS];
    bool reduced[LN_MAX_DIMS];
    int64_t full_numel, small_numel;
} ln_reduce_layout;

void ln_reduce_layout_make(int ndim, const int64_t *shape, const bool *reduced,
                           ln_reduce_layout *lay);

void ln_cpu_sum(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                float *small);
/* small = alpha * sum(full * w) with w full-shaped: a broadcast operand's gradient
 * in mul (gy times the other operand) without an output-sized temporary. */
void ln_cpu_sum_prod(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                     const float *w, float *small);
void ln_cpu_expand(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *small,
                   float *full);

/* CUDA (cuda/reduce.cu): the same on device pointers, deterministic (no atomics). */
ln_status ln_cuda_sum(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                      float *small);
ln_status ln_cuda_sum_prod(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                           const float *w, float *small);
ln_status ln_cuda_expand(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *small,
                         float *full);

#endif
