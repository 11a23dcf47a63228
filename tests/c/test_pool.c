/* max_pool2d and global_avg_pool2d: finite-difference gradients (f64) over kernels,
 * strides and paddings; fast vs reference (f32); hand-computed outputs, tie and
 * padding behaviour; and argument errors. */
#include <math.h>
#include "testutil.h"

static ln_status maxpool_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_max_pool2d(ctx, in[0], *(const ln_pool2d_params *)ud, out);
}
static ln_status gap_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    return ln_global_avg_pool2d(ctx, in[0], out);
}

static double at(ln_ctx *ctx, const ln_tensor *t, int64_t i) {
    double v[256];
    if (ln_tensor_numel(t) > 256 || ln_tensor_to_f64(ctx, t, v) != LN_OK) return NAN;
    return v[i];
}

static void maxpool_checks(ln_ctx *ctx) {
    struct { int64_t shape[4]; ln_pool2d_params p; int64_t oh, ow; } cases[] = {
        {{2, 3, 6, 6}, {2, 2, 2, 2, 0, 0}, 3, 3},
        {{2, 2, 7, 7}, {3, 3, 2, 2, 1, 1}, 4, 4},
        {{1, 2, 5, 5}, {3, 3, 1, 1, 1, 1}, 5, 5},
        {{2, 1, 5, 6}, {2, 3, 1, 2, 1, 1}, 6, 3},
        {{1, 3, 4, 4}, {1, 1, 1, 1, 0, 0}, 4, 4},
        {{3, 2, 9, 8}, {3, 2, 3, 2, 0, 1}, 3, 5},
        {{4, 16, 24, 24}, {3, 3, 2, 2, 1, 1}, 12, 12},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char what[64];
        snprintf(what, sizeof what, "max_pool2d case %zu", c);
        ln_tensor *x = tu_randn(ctx, LN_F64, 4, cases[c].shape), *y;
        x->requires_grad = true;
        CHECK_OK(ctx, ln_max_pool2d(ctx, x, cases[c].p, &y));
        CHECK(y && y->shape[2] == cases[c].oh && y->shape[3] == cases[c].ow, "%s: output %lldx%lld",
              what, y ? (long long)y->shape[2] : -1LL, y ? (long long)y->shape[3] : -1LL);
        ln_tensor_release(y);
        tu_gradcheck(ctx, maxpool_fn, &cases[c].p, 1, &x, 1e-6, 1e-6, 150, what);
        ln_tensor_release(x);
        ln_tensor *xf = tu_randn(ctx, LN_F32, 4, cases[c].shape);
        xf->requires_grad = true;
        /* outputs equal; overlapping windows sum gradients in f32 vs double */
        tu_compare_paths(ctx, maxpool_fn, &cases[c].p, 1, &xf, 1e-6, 1e-7, what);
        xf->requires_grad = false; /* forward without indices */
        ln_tensor *a, *b;
        CHECK_OK(ctx, ln_max_pool2d(ctx, xf, cases[c].p, &a));
        ln_ctx_set_backend(ctx, LN_BACKEND_REF);
        CHECK_OK(ctx, ln_max_pool2d(ctx, xf, cases[c].p, &b));
        ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
        tu_check_close(ctx, a, b, 0, 0, "max_pool2d without grad, fast vs reference");
        ln_tensor_release(a); ln_tensor_release(b);
        ln_tensor_release(xf);
    }
}

/* 4x4 plane 0..15 row-major, kernel 2 stride 2: maxima 5, 7, 13, 15 */
static void maxpool_hand(ln_ctx *ctx, ln_dtype dt) {
    double v[16];
    for (int i = 0; i < 16; i++) v[i] = i;
    int64_t shp[4] = {1, 1, 4, 4};
    ln_pool2d_params k2 = {2, 2, 2, 2, 0, 0}, k3p1 = {3, 3, 2, 2, 1, 1};
    ln_tensor *x, *y;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 4, shp, v, &x));
    x->requires_grad = true;
    CHECK_OK(ctx, ln_max_pool2d(ctx, x, k2, &y));
    CHECK(at(ctx, y, 0) == 5 && at(ctx, y, 1) == 7 && at(ctx, y, 2) == 13 && at(ctx, y, 3) == 15,
          "max_pool2d 2x2 maxima");
    ln_tensor_release(y);
    /* ties route the gradient to the first maximum of each window */
    CHECK_OK(ctx, ln_tensor_fill_(ctx, x, 1));
    CHECK_OK(ctx, ln_max_pool2d(ctx, x, k2, &y));
    ln_tensor *g;
    CHECK_OK(ctx, ln_tensor_full(ctx, dt, ln_cpu(), 4, (int64_t[]){1, 1, 2, 2}, 1, &g));
    CHECK_OK(ctx, ln_backward(ctx, y, g, false));
    double want[16] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
    int ok = 1;
    for (int i = 0; i < 16; i++) ok = ok && at(ctx, x->grad, i) == want[i];
    CHECK(ok, "max_pool2d ties: gradient to the first maximum");
    ln_tensor_release(g); ln_tensor_release(y);
    ln_tensor_release(x->grad); x->grad = NULL;
    /* overlapping windows accumulate; padding is -inf so an all-negative plane keeps
     * its negative maxima (never 0 from the padding) */
    for (int i = 0; i < 16; i++) v[i] = -1 - i;
    ln_tensor_release(x);
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 4, shp, v, &x));
    x->requires_grad = true;
    CHECK_OK(ctx, ln_max_pool2d(ctx, x, k3p1, &y));
    CHECK(y->shape[2] == 2 && y->shape[3] == 2 && at(ctx, y, 0) == -1 && at(ctx, y, 1) == -2 &&
              at(ctx, y, 2) == -5 && at(ctx, y, 3) == -6,
          "max_pool2d padding is -inf: %g %g %g %g", at(ctx, y, 0), at(ctx, y, 1), at(ctx, y, 2), at(ctx, y, 3));
    CHECK_OK(ctx, ln_tensor_full(ctx, dt, ln_cpu(), 4, (int64_t[]){1, 1, 2, 2}, 1, &g));
    CHECK_OK(ctx, ln_backward(ctx, y, g, false));
    CHECK(at(ctx, x->grad, 0) == 1 && at(ctx, x->grad, 1) == 1 && at(ctx, x->grad, 4) == 1 &&
              at(ctx, x->grad, 5) == 1 && at(ctx, x->grad, 2) == 0,
          "max_pool2d gradient routed to the argmax");
    ln_tensor_release(g); ln_tensor_release(y);
    /* a NaN in a window wins (as PyTorch) */
    v[5] = NAN;
    ln_tensor_release(x);
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 4, shp, v, &x));
    CHECK_OK(ctx, ln_max_pool2d(ctx, x, k2, &y));
    CHECK(isnan(at(ctx, y, 0)) && at(ctx, y, 1) == -3, "max_pool2d propagates NaN");
    ln_tensor_release(y);
    ln_tensor_release(x);
}

static void gap_checks(ln_ctx *ctx) {
    int64_t shapes[][4] = {{2, 3, 4, 5}, {1, 1, 1, 1}, {3, 2, 7, 1}, {8, 64, 8, 8}};
    for (size_t s = 0; s < 4; s++) {
        ln_tensor *x = tu_randn(ctx, LN_F64, 4, shapes[s]);
        x->requires_grad = true;
        tu_gradcheck(ctx, gap_fn, NULL, 1, &x, 1e-6, 1e-6, 150, "global_avg_pool2d");
        ln_tensor_release(x);
        ln_tensor *xf = tu_randn(ctx, LN_F32, 4, shapes[s]);
        xf->requires_grad = true;
        tu_compare_paths(ctx, gap_fn, NULL, 1, &xf, 1e-5, 1e-6, "global_avg_pool2d");
        ln_tensor_release(xf);
    }
    double v[8] = {1, 2, 3, 6, -1, -1, 5, 1};
    ln_tensor *x, *xt, *y;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 4, (int64_t[]){1, 2, 2, 2}, v, &x));
    CHECK_OK(ctx, ln_global_avg_pool2d(ctx, x, &y));
    CHECK(y->ndim == 4 && y->shape[0] == 1 && y->shape[1] == 2 && y->shape[2] == 1 && y->shape[3] == 1 &&
              at(ctx, y, 0) == 3 && at(ctx, y, 1) == 1,
          "global_avg_pool2d values and shape");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, x, 2, 3, &xt));
    CHECK_OK(ctx, ln_global_avg_pool2d(ctx, xt, &y));
    CHECK(at(ctx, y, 0) == 3 && at(ctx, y, 1) == 1, "global_avg_pool2d of a strided input");
    ln_tensor_release(y); ln_tensor_release(xt); ln_tensor_release(x);
}

static void errors(ln_ctx *ctx) {
    int64_t shp[4] = {1, 2, 5, 5};
    ln_tensor *x = tu_randn(ctx, LN_F32, 4, shp), *x3 = tu_randn(ctx, LN_F32, 3, shp), *xi, *xe, *y = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I32, ln_cpu(), 4, shp, &xi));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 4, (int64_t[]){1, 2, 0, 3}, &xe));
    ln_pool2d_params ok = {3, 3, 2, 2, 1, 1};
    ln_pool2d_params bad_pad = {3, 3, 2, 2, 2, 1}, bad_k = {0, 3, 1, 1, 0, 0}, bad_s = {2, 2, 0, 2, 0, 0},
                     neg_pad = {2, 2, 2, 2, -1, 0}, too_big = {7, 7, 1, 1, 0, 0};
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, x, bad_pad, &y), LN_ERR_ARG);
    CHECK(y == NULL, "no output on failure");
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, x, bad_k, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, x, bad_s, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, x, neg_pad, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, x, too_big, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, x3, ok, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, xi, ok, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_max_pool2d(ctx, NULL, ok, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_global_avg_pool2d(ctx, x3, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_global_avg_pool2d(ctx, xi, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_global_avg_pool2d(ctx, xe, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_global_avg_pool2d(ctx, NULL, &y), LN_ERR_ARG);
    CHECK(y == NULL, "no output on failure");
    ln_tensor_release(x); ln_tensor_release(x3); ln_tensor_release(xi); ln_tensor_release(xe);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 3);
    maxpool_checks(ctx);
    maxpool_hand(ctx, LN_F64);
    maxpool_hand(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_REF);
    maxpool_hand(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
    gap_checks(ctx);
    errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
