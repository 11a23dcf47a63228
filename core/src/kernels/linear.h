/* Matrix products for matmul and linear: reference (double, contiguous row-major
 * loops), the fast CPU GEMM (oneDNN's row-major dnnl_sgemm) and the CUDA GEMM (cuBLAS,
 * no TF32).
 *   matmul: y (M,N) = a (M,K) @ b (K,N); ga = gy @ b^T, gb = a^T @ gy
 *   linear: y (N,out) = x (N,in) @ w^T + bias, w (out,in), bias (out) or NULL;
 *           gx = gy @ w, gw = gy^T @ x, gbias = column sums of gy
 * Gradient outputs passed as NULL are not computed, and the backward kernels read
 * only what the wanted gradients need (b for ga, a for gb; w for gx, x for gw), so
 * the others may be NULL. */
#ifndef LUNET_KERNELS_LINEAR_H
#define LUNET_KERNELS_LINEAR_H

#include <stdint.h>
#include "../internal.h"

void ln_ref_matmul_fwd(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *y);
void ln_ref_matmul_bwd(int64_t m, int64_t k, int64_t n, const double *a, const double *b,
                       const double *gy, double *ga, double *gb);
void ln_ref_linear_fwd(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                       const double *bias, double *y);
void ln_ref_linear_bwd(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                       const double *gy, double *gx, double *gw, double *gbias);

/* C (m,n) = alpha * op(A) @ op(B) + beta * C, all row-major; op(A) is (m,k): A is stored
 * (m,k) with row stride lda, or, when ta, as its transpose (k,m) with row stride lda.
 * Likewise B for (k,n). Runs with ctx's thread count. */
ln_status ln_cpu_gemm(ln_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc);
/* y (rows, cols) contiguous: every row set to bias (cols). */
void ln_cpu_fill_rows(ln_ctx *ctx, int64_t rows, int64_t cols, const float *bias, float *y);

/* CUDA (cuda/linear.cu): the same contracts on device pointers. */
ln_status ln_cuda_gemm(ln_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                       float *c, int64_t ldc);
ln_status ln_cuda_fill_rows(ln_ctx *ctx, int64_t rows, int64_t cols, const float *bias, float *y);

#endif
