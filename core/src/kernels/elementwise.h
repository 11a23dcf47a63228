/* Elementwise kernels: broadcasting binary ops (add, sub, mul, div), a*scale+shift,
 * x^p and dropout masks; reference (double), fast CPU (f32) and CUDA (f32) versions.
 *
 * Broadcasting is numpy's: shapes are aligned at the right, and each dimension of an
 * input is either the output's extent or 1. The reference kernels take the aligned
 * shapes as they are (all ndim dims, inputs contiguous); the fast kernels take an
 * ln_bcast, the same thing with size-1 output dims dropped and mergeable neighbours
 * merged, so (N,C,H,W) op (1,C,1,1) becomes (N, C, H*W) with b strides (0, 1, 0). */
#ifndef LUNET_KERNELS_ELEMENTWISE_H
#define LUNET_KERNELS_ELEMENTWISE_H

#include <stdint.h>
#include "../internal.h"

typedef enum ln_binop { LN_BIN_ADD = 0, LN_BIN_SUB, LN_BIN_MUL, LN_BIN_DIV } ln_binop;

/* ---------------- reference (double, contiguous) ---------------- */
/* y (out_shape) = a op b; a_shape and b_shape have ndim entries (leading 1s added). */
void ln_ref_binary_fwd(ln_binop op, int ndim, const int64_t *out_shape, const int64_t *a_shape,
                       const int64_t *b_shape, const double *a, const double *b, double *y);
/* Given gy (out_shape), writes ga (a_shape) and gb (b_shape), each summed over the
 * dims where that input was broadcast; either may be NULL (not wanted). Only what the
 * wanted gradients need is read: b for ga of mul and div, a for gb of mul, a and b for
 * gb of div; the others may be NULL. */
void ln_ref_binary_bwd(ln_binop op, int ndim, const int64_t *out_shape, const int64_t *a_shape,
                       const int64_t *b_shape, const double *a, const double *b,
                       const double *gy, double *ga, double *gb);
/* y = x * scale + shift */
void ln_ref_affine(int64_t n, const double *x, double scale, double shift, double *y);
/* y = x^p; gx = gy * p * x^(p-1) (0 when p is 0) */
void ln_ref_pow_fwd(int64_t n, const double *x, double p, double *y);
void ln_ref_pow_bwd(int64_t n, const double *x, double p, const double *gy, double *gx);
/* Dropout mask: mask[i] = 0 with probability p, else 1/(1-p); one ln_ctx_rand_u64
 * draw per element in order, so both paths make the same mask from the same seed. */
void ln_ref_dropout_mask(ln_ctx *ctx, int64_t n, double p, double *mask);

/* ---------------- fast CPU (f32, contiguous inputs) ---------------- */
typedef struct ln_bcast {
    int ndim;                      /* >= 1 */
    int64_t shape[LN_MAX_DIMS];
    int64_t sa[LN_MAX_DIMS], sb[LN_MAX_DIMS]; /* element strides of a and b; 0 = broadcast */
    int64_t numel;
} ln_bcast;

void ln_bcast_make(int ndim, const int64_t *out_shape, const int64_t *a_shape,
                   const int64_t *b_shape, ln_bcast *bc);

void ln_cpu_binary_fwd(ln_ctx *ctx, ln_binop op, const ln_bcast *bc, const float *a,
                       const float *b, float *y);
/* g (output-shaped, contiguous) = gy * d(a op b)/d(input `which`: 0 = a, 1 = b),
 * before any summing over broadcast dims (see ln_cpu_sum in reduce.h). Reads only
 * what that derivative needs, as ln_ref_binary_bwd; the others may be NULL. */
void ln_cpu_binary_grad(ln_ctx *ctx, ln_binop op, int which, const ln_bcast *bc,
                        const float *a, const float *b, const float *gy, float *g);
void ln_cpu_affine(ln_ctx *ctx, int64_t n, const float *x, float scale, float shift, float *y);
void ln_cpu_pow_fwd(ln_ctx *ctx, int64_t n, const float *x, float p, float *y);
void ln_cpu_pow_bwd(ln_ctx *ctx, int64_t n, const float *x, float p, const float *gy, float *gx);
void ln_cpu_dropout_mask(ln_ctx *ctx, int64_t n, double p, float *mask);

/* ---------------- CUDA (f32, contiguous device arrays; cuda/elementwise.cu) ----------------
 * The same contracts as the fast CPU kernels. A CUDA dropout mask is made by
 * ln_cpu_dropout_mask on the host and copied, so a seed gives the same mask on both. */
ln_status ln_cuda_binary_fwd(ln_ctx *ctx, ln_binop op, const ln_bcast *bc, const float *a,
                             const float *b, float *y);
ln_status ln_cuda_binary_grad(ln_ctx *ctx, ln_binop op, int which, const ln_bcast *bc,
                              const float *a, const float *b, const float *gy, float *g);
ln_status ln_cuda_affine(ln_ctx *ctx, int64_t n, const float *x, float scale, float shift, float *y);
ln_status ln_cuda_pow_fwd(ln_ctx *ctx, int64_t n, const float *x, float p, float *y);
ln_status ln_cuda_pow_bwd(ln_ctx *ctx, int64_t n, const float *x, float p, const float *gy, float *gx);

#endif
