/* ln_orthogonal_ / ln_orthogonal_joint_: orthonormal rows (rows <= columns) or columns
 * (rows > columns) in f32 (1e-5) and f64 (1e-12) over several shapes; Q is the QR
 * factor of the context's Gaussian sample with R's diagonal positive (sign-corrected);
 * a joint init over two tensors makes them mutually orthogonal; argument errors; and,
 * outside sanitizer builds, the time of a 768 x 4608 basis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "testutil.h"

/* The values of t as a (rows, cols) matrix of doubles (caller frees). */
static double *matrix_of(ln_ctx *ctx, const ln_tensor *t, int64_t *rows, int64_t *cols) {
    int64_t n = ln_tensor_numel(t);
    double *v = malloc((size_t)n * sizeof *v);
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, t, v));
    *rows = t->shape[0];
    *cols = n / *rows;
    return v;
}

/* max |(A A^T - I)_ij| over the rows of A (rows, cols) when rows <= cols, else over
 * the columns (A^T A - I). */
static double orth_error(const double *a, int64_t rows, int64_t cols) {
    bool by_rows = rows <= cols;
    int64_t nv = by_rows ? rows : cols, len = by_rows ? cols : rows;
    double worst = 0;
    for (int64_t i = 0; i < nv; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t k = 0; k < len; k++)
                s += by_rows ? a[i * cols + k] * a[j * cols + k] : a[k * cols + i] * a[k * cols + j];
            double e = fabs(s - (i == j ? 1.0 : 0.0));
            if (e > worst) worst = e;
        }
    return worst;
}

static void check_shape(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape, double tol) {
    ln_tensor *t;
    char what[64];
    ln_shape_format(ndim, shape, what, sizeof what);
    CHECK_OK(ctx, ln_tensor_zeros(ctx, dt, ln_cpu(), ndim, shape, &t));
    CHECK_OK(ctx, ln_orthogonal_(ctx, t));
    int64_t r, c;
    double *a = matrix_of(ctx, t, &r, &c);
    double e = orth_error(a, r, c);
    CHECK(e <= tol, "%s %s: orthogonality error %.3g > %.3g", ln_dtype_name(dt), what, e, tol);
    free(a);
    ln_tensor_release(t);
}

/* Q (f64, so computed in double throughout) is the QR factor of the Gaussian drawn
 * from the seeded RNG: with G that sample,
 * G Q^T (rows <= cols; G is (rows, cols)) or G Q (rows > cols; G is (cols, rows)) is
 * lower triangular with a positive diagonal. */
static void check_qr_factor(ln_ctx *ctx, int64_t rows, int64_t cols) {
    int64_t nv = rows <= cols ? rows : cols, len = rows <= cols ? cols : rows;
    ln_tensor *t, *g;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F64, ln_cpu(), 2, (int64_t[]){rows, cols}, &t));
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F64, ln_cpu(), 2, (int64_t[]){nv, len}, &g));
    ln_ctx_manual_seed(ctx, 1234);
    CHECK_OK(ctx, ln_orthogonal_(ctx, t));
    ln_ctx_manual_seed(ctx, 1234);
    CHECK_OK(ctx, ln_tensor_normal_(ctx, g, 0.0, 1.0));
    int64_t r, c, gr, gc;
    double *q = matrix_of(ctx, t, &r, &c), *gv = matrix_of(ctx, g, &gr, &gc);
    double upper = 0, min_diag = INFINITY;
    for (int64_t i = 0; i < nv; i++)
        for (int64_t j = 0; j < nv; j++) { /* L_ij = sum_k G_ik Qvec_j,k */
            double s = 0;
            for (int64_t k = 0; k < len; k++)
                s += gv[i * len + k] * (rows <= cols ? q[j * cols + k] : q[k * cols + j]);
            if (j > i && fabs(s) > upper) upper = fabs(s);
            if (j == i && s < min_diag) min_diag = s;
        }
    CHECK(upper < 1e-9, "[%lld, %lld]: G Q^T has %.3g above the diagonal", (long long)rows,
          (long long)cols, upper);
    CHECK(min_diag > 0, "[%lld, %lld]: R's diagonal is not positive (min %.3g)", (long long)rows,
          (long long)cols, min_diag);
    free(q);
    free(gv);
    ln_tensor_release(t);
    ln_tensor_release(g);
}

static void check_joint(ln_ctx *ctx) {
    /* (3, 4,3,3) f32 and (5, 4,3,3) f64: 8 x 36 stacked */
    ln_tensor *a, *b;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 4, (int64_t[]){3, 4, 3, 3}, &a));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F64, ln_cpu(), 4, (int64_t[]){5, 4, 3, 3}, &b));
    ln_tensor *ts[2] = {a, b};
    CHECK_OK(ctx, ln_orthogonal_joint_(ctx, 2, ts));
    int64_t ra, ca, rb, cb;
    double *va = matrix_of(ctx, a, &ra, &ca), *vb = matrix_of(ctx, b, &rb, &cb);
    double *all = malloc((size_t)((ra + rb) * ca) * sizeof *all);
    for (int64_t i = 0; i < ra * ca; i++) all[i] = va[i];
    for (int64_t i = 0; i < rb * cb; i++) all[ra * ca + i] = vb[i];
    double e = orth_error(all, ra + rb, ca);
    CHECK(e <= 1e-5, "joint: stacked rows orthogonality error %.3g", e);
    double cross = 0;
    for (int64_t i = 0; i < ra; i++)
        for (int64_t j = 0; j < rb; j++) {
            double s = 0;
            for (int64_t k = 0; k < ca; k++) s += va[i * ca + k] * vb[j * cb + k];
            if (fabs(s) > cross) cross = fabs(s);
        }
    CHECK(cross <= 1e-5, "joint: rows of the two tensors not orthogonal (max |dot| %.3g)", cross);
    free(va);
    free(vb);
    free(all);
    /* more rows than columns in total: the stacked matrix has orthonormal columns */
    ln_tensor *c, *d;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F64, ln_cpu(), 2, (int64_t[]){4, 5}, &c));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F64, ln_cpu(), 2, (int64_t[]){3, 5}, &d));
    ln_tensor *cd[2] = {c, d};
    CHECK_OK(ctx, ln_orthogonal_joint_(ctx, 2, cd));
    double *vc = matrix_of(ctx, c, &ra, &ca), *vd = matrix_of(ctx, d, &rb, &cb);
    all = malloc((size_t)(7 * 5) * sizeof *all);
    for (int64_t i = 0; i < 20; i++) all[i] = vc[i];
    for (int64_t i = 0; i < 15; i++) all[20 + i] = vd[i];
    e = orth_error(all, 7, 5);
    CHECK(e <= 1e-12, "joint 7 x 5: column orthogonality error %.3g", e);
    free(vc);
    free(vd);
    free(all);
    ln_tensor_release(a);
    ln_tensor_release(b);
    ln_tensor_release(c);
    ln_tensor_release(d);
}

static void check_errors(ln_ctx *ctx) {
    ln_tensor *v, *i64, *a, *b;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){5}, &v));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 2, (int64_t[]){2, 3}, &i64));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){2, 3}, &a));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 3, (int64_t[]){2, 2, 2}, &b));
    CHECK_FAILS(ctx, ln_orthogonal_(ctx, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_orthogonal_(ctx, v), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_orthogonal_(ctx, i64), LN_ERR_DTYPE);
    ln_tensor *mismatch[2] = {a, b}, *with_null[2] = {a, NULL};
    CHECK(ln_orthogonal_joint_(ctx, 2, mismatch) == LN_ERR_SHAPE &&
          strstr(ln_ctx_error(ctx), "columns") != NULL, "mismatched columns: %s", ln_ctx_error(ctx));
    CHECK_FAILS(ctx, ln_orthogonal_joint_(ctx, 2, with_null), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_orthogonal_joint_(ctx, 0, mismatch), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_orthogonal_joint_(ctx, 1, NULL), LN_ERR_ARG);
    /* a failed call leaves the tensors untouched */
    double vals[6];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, a, vals));
    bool zero = true;
    for (int i = 0; i < 6; i++) zero = zero && vals[i] == 0;
    CHECK(zero, "a failed joint init wrote into its first tensor");
    ln_tensor_release(v);
    ln_tensor_release(i64);
    ln_tensor_release(a);
    ln_tensor_release(b);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 7);
    const int64_t shapes[][4] = {{8, 20}, {20, 8}, {16, 16}, {1, 9}, {9, 1}, {6, 3, 3, 3},
                                 {48, 16, 3, 3}, {96, 32, 1, 1}};
    const int ndims[] = {2, 2, 2, 2, 2, 4, 4, 4};
    for (int s = 0; s < 8; s++) {
        check_shape(ctx, LN_F32, ndims[s], shapes[s], 1e-5);
        check_shape(ctx, LN_F64, ndims[s], shapes[s], 1e-12);
    }
    check_qr_factor(ctx, 6, 10);
    check_qr_factor(ctx, 10, 6);
    check_qr_factor(ctx, 7, 7);
    check_joint(ctx);
    check_errors(ctx);
#ifndef __SANITIZE_ADDRESS__
    { /* the largest basis of the zoo's scale: 768 x (512*3*3) */
        ln_tensor *t;
        CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 4, (int64_t[]){768, 512, 3, 3}, &t));
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_OK(ctx, ln_orthogonal_(ctx, t));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("orthogonal_ 768 x 4608 f32: %.3f s\n", secs);
        CHECK(secs < 10.0, "orthogonal_ 768 x 4608 took %.1f s", secs);
        ln_tensor_release(t);
    }
#endif
    ln_ctx_release(ctx);
    return test_finish();
}
