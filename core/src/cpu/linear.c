/* Fast CPU matrix products: oneDNN's row-major SGEMM, run with the context's thread
 * count (oneDNN reads OpenMP's max-threads setting, which is set for the call and
 * restored after). */
#include <string.h>
#include <dnnl.h>
#include "../kernels/linear.h"

ln_status ln_cpu_gemm(ln_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc) {
    if (m == 0 || n == 0) return LN_OK;
    if (k == 0) { /* empty products: C = beta * C */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
        return LN_OK;
    }
    int prev = ln_omp_threads_enter(ctx);
    dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb,
                                 beta, c, ldc);
    ln_omp_threads_leave(prev);
    if (s != dnnl_success)
        return ln_fail(ctx, LN_ERR_BACKEND,
                       "gemm: dnnl_sgemm failed with status %d (m %lld, n %lld, k %lld, lda %lld, ldb %lld)",
                       (int)s, (long long)m, (long long)n, (long long)k, (long long)lda, (long long)ldb);
    return LN_OK;
}

void ln_cpu_fill_rows(ln_ctx *ctx, int64_t rows, int64_t cols, const float *bias, float *y) {
    int nt = rows * cols >= 32768 ? ctx->num_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; r++) memcpy(y + r * cols, bias, (size_t)cols * sizeof(float));
}
