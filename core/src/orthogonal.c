/* Orthogonal initialisation (ln_orthogonal_, ln_orthogonal_joint_): the Q factor, with
 * R's diagonal positive, of the QR factorisation of a Gaussian matrix (drawn from the
 * context RNG), computed on the host by CholeskyQR2 and copied into the tensors.
 *
 * Work layout: W is (n, m) row-major with n = min(rows, cols) vectors of length
 * m = max(rows, cols), each a row. Orthonormalising the rows of W gives the unique
 * factorisation W = L Q with L lower triangular, positive diagonal (i.e. the QR of
 * W^T with R = L^T positive). For rows <= cols the result is Q itself (orthonormal
 * rows); for rows > cols it is Q^T (orthonormal columns), as PyTorch's orthogonal_
 * computes QR of the tall matrix.
 *
 * CholeskyQR2: twice { G = W W^T ; G = L L^T (Cholesky) ; W = L^{-1} W }. The second
 * pass restores orthogonality to working precision; the product of the two triangular
 * factors is again lower triangular with a positive diagonal, so Q is the QR factor
 * of the Gaussian matrix. f32 results run both passes in f32 through oneDNN's SGEMM
 * (768 x 4608 in well under a second); f64 results run them in double with the
 * cache-blocked OpenMP kernels below. Should Cholesky fail (a nearly singular square
 * Gaussian), that pass is redone in double, then by modified Gram-Schmidt (twice),
 * which yields the same factorisation. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "lunet/init.h"
#include "kernels/linear.h"

#define COL_BLOCK 256 /* columns of W per cache block (n * 2 KiB of W in flight) */
#define TILE 4        /* rows per register tile of the Gram kernel */

/* G[i*n + j] (j <= i) = sum_k W[i,k] W[j,k]; W is (n, m). Only the lower triangle is
 * written. Tiles of TILE x TILE dot products, accumulated over column blocks; a tile
 * row past n reads the zero row `zero` (length m) and its results are dropped. */
static void gram_lower(int nt, int64_t n, int64_t m, const double *W, const double *zero,
                       double *G) {
    memset(G, 0, (size_t)(n * n) * sizeof *G);
    int64_t nb = (n + TILE - 1) / TILE;
    for (int64_t k0 = 0; k0 < m; k0 += COL_BLOCK) {
        int64_t kl = m - k0 < COL_BLOCK ? m - k0 : COL_BLOCK;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t bi = 0; bi < nb; bi++) {
            const double *a[TILE];
            for (int r = 0; r < TILE; r++) {
                int64_t i = bi * TILE + r;
                a[r] = (i < n ? W + i * m : zero) + k0;
            }
            for (int64_t bj = 0; bj <= bi; bj++) {
                const double *b[TILE];
                for (int r = 0; r < TILE; r++) {
                    int64_t j = bj * TILE + r;
                    b[r] = (j < n ? W + j * m : zero) + k0;
                }
                double s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
                double s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33)
                for (int64_t k = 0; k < kl; k++) {
                    double a0 = a[0][k], a1 = a[1][k], a2 = a[2][k], a3 = a[3][k];
                    double b0 = b[0][k], b1 = b[1][k], b2 = b[2][k], b3 = b[3][k];
                    s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
                    s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
                    s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
                    s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3;
                }
                const double s[TILE][TILE] = {{s00, s01, s02, s03}, {s10, s11, s12, s13},
                                              {s20, s21, s22, s23}, {s30, s31, s32, s33}};
                for (int r = 0; r < TILE; r++) {
                    int64_t i = bi * TILE + r;
                    for (int c = 0; c < TILE; c++) {
                        int64_t j = bj * TILE + c;
                        if (i < n && j <= i) G[i * n + j] += s[r][c];
                    }
                }
            }
        }
    }
}

/* In-place Cholesky of the lower triangle of G (n, n): G = L L^T. False when a pivot
 * is not safely positive (W numerically rank deficient). */
static bool cholesky_lower(int64_t n, double *G) {
    for (int64_t j = 0; j < n; j++) {
        double d = G[j * n + j];
        const double *rj = G + j * n;
#pragma omp simd reduction(- : d)
        for (int64_t k = 0; k < j; k++) d -= rj[k] * rj[k];
        if (!(d > 1e-10 * fabs(G[j * n + j])) || !(d > 0)) return false;
        double l = sqrt(d);
        G[j * n + j] = l;
        for (int64_t i = j + 1; i < n; i++) {
            double s = G[i * n + j];
            const double *ri = G + i * n;
#pragma omp simd reduction(- : s)
            for (int64_t k = 0; k < j; k++) s -= ri[k] * rj[k];
            G[i * n + j] = s / l;
        }
    }
    return true;
}

/* W = L^{-1} W by forward substitution over rows, independently per column block. */
static void solve_lower(int nt, int64_t n, int64_t m, const double *L, double *W) {
    int64_t nblocks = (m + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t cb = 0; cb < nblocks; cb++) {
        int64_t k0 = cb * COL_BLOCK;
        int64_t kl = m - k0 < COL_BLOCK ? m - k0 : COL_BLOCK;
        for (int64_t i = 0; i < n; i++) {
            double *restrict wi = W + i * m + k0;
            for (int64_t j = 0; j < i; j++) {
                const double *restrict wj = W + j * m + k0;
                double lij = L[i * n + j];
#pragma omp simd
                for (int64_t k = 0; k < kl; k++) wi[k] -= lij * wj[k];
            }
            double inv = 1.0 / L[i * n + i];
#pragma omp simd
            for (int64_t k = 0; k < kl; k++) wi[k] *= inv;
        }
    }
}

/* Modified Gram-Schmidt over the rows of W, run twice; false if a row vanishes. */
static bool mgs2(int64_t n, int64_t m, double *W) {
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < n; i++) {
            double *wi = W + i * m;
            for (int64_t j = 0; j < i; j++) {
                const double *wj = W + j * m;
                double d = 0;
                for (int64_t k = 0; k < m; k++) d += wi[k] * wj[k];
                for (int64_t k = 0; k < m; k++) wi[k] -= d * wj[k];
            }
            double nrm = 0;
            for (int64_t k = 0; k < m; k++) nrm += wi[k] * wi[k];
            if (!(nrm > 0)) return false;
            nrm = 1.0 / sqrt(nrm);
            for (int64_t k = 0; k < m; k++) wi[k] *= nrm;
        }
    }
    return true;
}

/* L (n, n) lower triangular -> Linv = L^{-1} as floats (zeros above the diagonal),
 * column by column. */
static void invert_lower_f32(int nt, int64_t n, const double *L, float *Linv) {
#pragma omp parallel num_threads(nt)
    {
        double *x = malloc((size_t)n * sizeof *x);
#pragma omp for schedule(dynamic, 8)
        for (int64_t j = 0; j < n; j++) { /* column j: L x = e_j, x_i = 0 for i < j */
            if (!x) continue;
            for (int64_t i = j; i < n; i++) {
                double s = i == j ? 1.0 : 0.0;
                const double *li = L + i * n;
#pragma omp simd reduction(+ : s)
                for (int64_t k = j; k < i; k++) s -= li[k] * x[k];
                x[i] = s / li[i];
            }
            for (int64_t i = 0; i < n; i++) Linv[i * n + j] = i < j ? 0.f : (float)x[i];
        }
        free(x);
    }
}

/* A first CholeskyQR pass in f32 through oneDNN's SGEMM: W = L^{-1} W with
 * G = W W^T = L L^T, the Cholesky in double. Sets *done false (W untouched) when the
 * f32 Gram matrix is not safely positive definite (an ill-conditioned W). The f32
 * rounding only perturbs the Gaussian sample by ~1e-7 relative; the double pass that
 * follows makes the rows orthonormal to double precision. */
static ln_status pass_f32(ln_ctx *ctx, int64_t n, int64_t m, double *W, double *G, bool *done) {
    *done = false;
    float *Wf = malloc((size_t)(n * m) * sizeof *Wf);
    float *Of = malloc((size_t)(n * m) * sizeof *Of);
    float *Gf = malloc((size_t)(n * n) * sizeof *Gf);
    ln_status st = LN_OK;
    if (!Wf || !Of || !Gf) {
        st = ln_fail(ctx, LN_ERR_NOMEM, "orthogonal_: out of memory for a %lld x %lld matrix",
                     (long long)n, (long long)m);
        goto done;
    }
    int nt = n * m < (1 << 16) ? 1 : ctx->num_threads;
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n * m; i++) Wf[i] = (float)W[i];
    LN_CHECK(st, ln_cpu_gemm(ctx, false, true, n, n, m, 1.f, Wf, m, Wf, m, 0.f, Gf, n), done);
    for (int64_t i = 0; i < n * n; i++) G[i] = Gf[i];
    if (!cholesky_lower(n, G)) goto done;
    invert_lower_f32(nt, n, G, Gf);
    LN_CHECK(st, ln_cpu_gemm(ctx, false, false, n, m, n, 1.f, Gf, n, Wf, m, 0.f, Of, m), done);
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n * m; i++) W[i] = Of[i];
    *done = true;
done:
    free(Wf);
    free(Of);
    free(Gf);
    return st;
}

/* One CholeskyQR pass in double: W = L^{-1} W; false when Cholesky fails. */
static bool pass_f64(int nt, int64_t n, int64_t m, double *W, const double *zero, double *G) {
    gram_lower(nt, n, m, W, zero, G);
    if (!cholesky_lower(n, G)) return false;
    solve_lower(nt, n, m, G, W);
    return true;
}

/* Orthonormalises the rows of W (n, m), n <= m, keeping W = L Q with L lower
 * triangular, positive diagonal. Two CholeskyQR passes, in f32 through oneDNN (for
 * results stored as f32: orthonormal to f32 precision, and Q the QR factor of a
 * sample within ~1e-7 of the Gaussian) or, when `exact`, in double (orthonormal to
 * double precision). A pass whose Cholesky fails (W too ill-conditioned for it) is
 * redone in double, then by Gram-Schmidt. */
static ln_status orthonormalise_rows(ln_ctx *ctx, int64_t n, int64_t m, double *W, bool exact) {
    double *G = malloc((size_t)(n * n) * sizeof *G);
    double *zero = calloc((size_t)m, sizeof *zero);
    ln_status st = LN_OK;
    if (!G || !zero) {
        st = ln_fail(ctx, LN_ERR_NOMEM, "orthogonal_: out of memory for a %lld x %lld Gram matrix",
                     (long long)n, (long long)n);
        goto done;
    }
    /* a single thread below ~4M multiply-adds: no fork/join cost on small bases */
    int nt = n * n * m < (1 << 22) ? 1 : ctx->num_threads;
    for (int pass = 0; pass < 2; pass++) {
        bool ok = false;
        if (!exact) LN_CHECK(st, pass_f32(ctx, n, m, W, G, &ok), done);
        if (!ok && !pass_f64(nt, n, m, W, zero, G) && !mgs2(n, m, W)) {
            st = ln_fail(ctx, LN_ERR_STATE, "orthogonal_: the random matrix is rank deficient");
            goto done;
        }
    }
done:
    free(G);
    free(zero);
    return st;
}

static ln_status check_tensor(ln_ctx *ctx, const char *op, const ln_tensor *t, int i,
                              int64_t *rows, int64_t *cols) {
    char arg[32];
    snprintf(arg, sizeof arg, i < 0 ? "t" : "ts[%d]", i);
    LN_TRY(ln_check_not_null(ctx, op, arg, t));
    LN_TRY(ln_check_float(ctx, op, arg, t));
    if (t->ndim < 2) {
        char d[256];
        ln_describe(t, d, sizeof d);
        return ln_fail(ctx, LN_ERR_SHAPE, "%s: '%s' needs at least 2 dimensions (rows, columns...), got %s",
                       op, arg, d);
    }
    *rows = t->shape[0];
    *cols = 1;
    for (int d = 1; d < t->ndim; d++) *cols *= t->shape[d];
    return LN_OK;
}

/* Writes rows [r0, r0 + t rows) of the result matrix Q (rows, cols) into t, where Q is
 * W (rows <= cols) or W^T (rows > cols), W being (min, max) row-major. */
static ln_status store_rows(ln_ctx *ctx, ln_tensor *t, const double *W, int64_t rows,
                            int64_t cols, int64_t r0) {
    int64_t tr = t->shape[0];
    double *v = malloc((size_t)(tr * cols > 0 ? tr * cols : 1) * sizeof *v);
    if (!v) return ln_fail(ctx, LN_ERR_NOMEM, "orthogonal_: out of memory");
    if (rows <= cols) {
        memcpy(v, W + r0 * cols, (size_t)(tr * cols) * sizeof *v);
    } else {
        for (int64_t i = 0; i < tr; i++)
            for (int64_t j = 0; j < cols; j++) v[i * cols + j] = W[j * rows + r0 + i];
    }
    ln_tensor *host = NULL;
    ln_status st = ln_tensor_from_f64(ctx, t->dtype, t->ndim, t->shape, v, &host);
    free(v);
    if (st == LN_OK) st = ln_tensor_copy_(ctx, t, host);
    ln_tensor_release(host);
    return st;
}

static ln_status orthogonal_impl(ln_ctx *ctx, const char *op, int n, ln_tensor *const *ts,
                                 bool joint) {
    if (!ctx) return LN_ERR_ARG;
    if (n < 1 || !ts)
        return ln_fail(ctx, LN_ERR_ARG, "%s: needs at least one tensor, got %d", op, n);
    int64_t rows = 0, cols = 0;
    for (int i = 0; i < n; i++) {
        int64_t r = 0, c = 0;
        LN_TRY(check_tensor(ctx, op, ts[i], joint ? i : -1, &r, &c));
        if (i > 0 && c != cols) {
            char a[256], b[256];
            ln_describe(ts[0], a, sizeof a);
            ln_describe(ts[i], b, sizeof b);
            return ln_fail(ctx, LN_ERR_SHAPE, "%s: every tensor needs the same number of columns "
                           "(dims 2.. flattened): ts[0] %s has %lld, ts[%d] %s has %lld",
                           op, a, (long long)cols, i, b, (long long)c);
        }
        cols = c;
        rows += r;
    }
    if (rows == 0 || cols == 0) return LN_OK;
    int64_t nv = rows <= cols ? rows : cols, len = rows <= cols ? cols : rows;
    ln_tensor *gauss = NULL;
    LN_TRY(ln_tensor_empty(ctx, LN_F64, ln_cpu(), 2, (int64_t[]){nv, len}, &gauss));
    ln_status st = ln_tensor_normal_(ctx, gauss, 0.0, 1.0);
    double *W = ln_tensor_data(gauss);
    bool exact = false; /* double precision needed when any tensor is f64 */
    for (int i = 0; i < n; i++) exact = exact || ts[i]->dtype == LN_F64;
    if (st == LN_OK) st = orthonormalise_rows(ctx, nv, len, W, exact);
    int64_t r0 = 0;
    for (int i = 0; i < n && st == LN_OK; i++) {
        st = store_rows(ctx, ts[i], W, rows, cols, r0);
        r0 += ts[i]->shape[0];
    }
    ln_tensor_release(gauss);
    return st;
}

ln_status ln_orthogonal_(ln_ctx *ctx, ln_tensor *t) {
    return orthogonal_impl(ctx, "orthogonal_", 1, &t, false);
}

ln_status ln_orthogonal_joint_(ln_ctx *ctx, int n, ln_tensor *const *ts) {
    return orthogonal_impl(ctx, "orthogonal_joint_", n, ts, true);
}
