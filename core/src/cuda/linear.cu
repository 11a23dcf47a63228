/* CUDA matrix products for matmul and linear: a row-major GEMM on cuBLAS (f32, the
 * handle's math mode keeps TF32 off) and the row fill that puts linear's bias in
 * place before a GEMM with beta = 1.
 *
 * Row-major trick: a row-major (r,c) matrix with row stride ld is, to column-major
 * cuBLAS, its (c,r) transpose with leading dimension ld. So the row-major product
 * C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T, i.e. with
 * the operands swapped and the same transpose flags. */
#include <limits.h>
#include "cuda_internal.h"
extern "C" {
#include "../kernels/linear.h"
}

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

extern "C" ln_status ln_cuda_gemm(ln_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                                  int64_t ldc) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (m == 0 || n == 0) return LN_OK;
    if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc))
        return ln_fail(ctx, LN_ERR_UNSUPPORTED,
                       "cuda gemm: sizes (%lld x %lld x %lld) or strides beyond the 32-bit range of cuBLAS",
                       (long long)m, (long long)n, (long long)k);
    if (k == 0) { /* no products: C = beta * C */
        if (beta == 1.f) return LN_OK;
        if (beta == 0.f)
            return ln_cuda_check(ctx, cudaMemset2DAsync(c, (size_t)ldc * sizeof(float), 0, (size_t)n * sizeof(float),
                                                        (size_t)m, s->stream), "clearing an empty product");
    }
    /* k == 0 reads neither operand, but cuBLAS still checks the leading dimensions */
    int la = (int)lda, lb = (int)ldb;
    if (k == 0) {
        la = ta ? (int)m : 1;
        lb = tb ? 1 : (int)n;
    }
    return ln_cublas_check(ctx,
                           cublasSgemm(s->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                       (int)n, (int)m, (int)k, &alpha, b, lb, a, la, &beta, c, (int)ldc),
                           "cublasSgemm");
}

__global__ void fill_rows_kernel(int64_t rows, int64_t cols, const float *bias, float *y) {
    int64_t total = rows * cols, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) y[i] = bias[i % cols];
}

extern "C" ln_status ln_cuda_fill_rows(ln_ctx *ctx, int64_t rows, int64_t cols, const float *bias, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (rows * cols == 0) return LN_OK;
    fill_rows_kernel<<<ln_cuda_blocks(rows * cols), LN_CUDA_BLOCK, 0, s->stream>>>(rows, cols, bias, y);
    return ln_cuda_launched(ctx, "launching the bias fill");
}
