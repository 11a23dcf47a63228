/* batch_norm2d: finite-difference gradients (f64) in training and eval mode, with and
 * without affine parameters; fast vs reference (f32); running statistics and outputs
 * against hand-computed numbers; in-place update of strided running statistics; and
 * argument errors. */
#include <math.h>
#include <string.h>
#include "testutil.h"

typedef struct bn_cfg { bool training; double momentum, eps; } bn_cfg;

/* inputs: x, running_mean, running_var, weight, bias (any but x may be NULL) */
static ln_status bn_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const bn_cfg *c = ud;
    return ln_batch_norm2d(ctx, in[0], in[1], in[2], in[3], in[4], c->training, c->momentum,
                           c->eps, out);
}

static ln_tensor *vec(ln_ctx *ctx, ln_dtype dt, int64_t n, const double *v) {
    ln_tensor *t = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 1, &n, v, &t));
    return t;
}

static double at(ln_ctx *ctx, const ln_tensor *t, int64_t i) {
    double v[64];
    if (ln_tensor_numel(t) > 64 || ln_tensor_to_f64(ctx, t, v) != LN_OK) return NAN;
    return v[i];
}

static void gradchecks(ln_ctx *ctx) {
    int64_t shapes[][4] = {{2, 3, 4, 5}, {4, 2, 1, 1}, {1, 3, 3, 3}, {3, 1, 2, 2}};
    for (size_t s = 0; s < 4; s++) {
        int64_t C = shapes[s][1];
        for (int mode = 0; mode < 4; mode++) {
            /* mode 0: train affine, 1: train no affine, 2: eval affine, 3: train weight only,
             * no running stats */
            bn_cfg cfg = {mode != 2, 0.1, 1e-5};
            ln_tensor *in[5] = {0};
            in[0] = tu_rand_uniform(ctx, LN_F64, 4, shapes[s], -2, 3);
            if (mode != 3) {
                in[1] = tu_randn(ctx, LN_F64, 1, &C);
                in[2] = tu_rand_uniform(ctx, LN_F64, 1, &C, 0.5, 2);
            }
            if (mode != 1) in[3] = tu_rand_uniform(ctx, LN_F64, 1, &C, 0.5, 1.5);
            if (mode == 0 || mode == 2) in[4] = tu_randn(ctx, LN_F64, 1, &C);
            in[0]->requires_grad = true;
            if (in[3]) in[3]->requires_grad = true;
            if (in[4]) in[4]->requires_grad = true;
            char what[64];
            snprintf(what, sizeof what, "batch_norm2d shape %zu mode %d", s, mode);
            tu_gradcheck(ctx, bn_fn, &cfg, 5, in, 1e-6, 1e-6, 0, what);
            /* only the weight needs a gradient: dx is skipped, dw still right */
            in[0]->requires_grad = false;
            if (in[3]) {
                snprintf(what, sizeof what, "batch_norm2d weight only, shape %zu mode %d", s, mode);
                tu_gradcheck(ctx, bn_fn, &cfg, 5, in, 1e-6, 1e-6, 0, what);
            }
            for (int i = 0; i < 5; i++) ln_tensor_release(in[i]);
        }
    }
}

static void compare_fast_ref(ln_ctx *ctx) {
    int64_t shapes[][4] = {{2, 3, 4, 5}, {8, 16, 16, 16}, {5, 4, 1, 1}, {2, 7, 9, 3}};
    for (size_t s = 0; s < 4; s++) {
        int64_t C = shapes[s][1];
        for (int training = 0; training < 2; training++) {
            bn_cfg cfg = {training, 0.1, 1e-5};
            ln_tensor *in[5];
            in[0] = tu_rand_uniform(ctx, LN_F32, 4, shapes[s], -3, 5);
            in[1] = tu_randn(ctx, LN_F32, 1, &C);
            in[2] = tu_rand_uniform(ctx, LN_F32, 1, &C, 0.5, 2);
            in[3] = tu_rand_uniform(ctx, LN_F32, 1, &C, 0.5, 1.5);
            in[4] = tu_randn(ctx, LN_F32, 1, &C);
            in[0]->requires_grad = in[3]->requires_grad = in[4]->requires_grad = true;
            char what[64];
            snprintf(what, sizeof what, "batch_norm2d f32 shape %zu training %d", s, training);
            tu_compare_paths(ctx, bn_fn, &cfg, 5, in, 1e-4, 1e-4, what);
            /* the running statistics after one step agree between the paths */
            if (training) {
                ln_tensor *rm2, *rv2, *y1, *y2;
                CHECK_OK(ctx, ln_tensor_clone(ctx, in[1], &rm2));
                CHECK_OK(ctx, ln_tensor_clone(ctx, in[2], &rv2));
                ln_ctx_set_backend(ctx, LN_BACKEND_REF);
                CHECK_OK(ctx, ln_batch_norm2d(ctx, in[0], in[1], in[2], NULL, NULL, true, 0.3, 1e-5, &y1));
                ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
                CHECK_OK(ctx, ln_batch_norm2d(ctx, in[0], rm2, rv2, NULL, NULL, true, 0.3, 1e-5, &y2));
                tu_check_close(ctx, rm2, in[1], 1e-5, 1e-6, "running_mean fast vs reference");
                tu_check_close(ctx, rv2, in[2], 1e-5, 1e-6, "running_var fast vs reference");
                ln_tensor_release(rm2); ln_tensor_release(rv2);
                ln_tensor_release(y1); ln_tensor_release(y2);
            }
            for (int i = 0; i < 5; i++) ln_tensor_release(in[i]);
        }
    }
    /* a large mean relative to the spread keeps its precision on the fast path */
    bn_cfg cfg = {true, 0.1, 1e-5};
    int64_t shp[4] = {4, 3, 8, 8}, C = 3;
    ln_tensor *in[5] = {0};
    in[0] = tu_rand_uniform(ctx, LN_F32, 4, shp, 999, 1001);
    in[3] = tu_rand_uniform(ctx, LN_F32, 1, &C, 0.5, 1.5);
    in[0]->requires_grad = in[3]->requires_grad = true;
    tu_compare_paths(ctx, bn_fn, &cfg, 5, in, 1e-3, 1e-3, "batch_norm2d f32 mean 1000");
    ln_tensor_release(in[0]); ln_tensor_release(in[3]);
}

/* x (2,2,1,2): channel 0 holds {1,2 | 3,6}, channel 1 holds {0,0 | 4,-4}. */
static void hand_computed(ln_ctx *ctx, ln_dtype dt) {
    const double xv[] = {1, 2, 0, 0, 3, 6, 4, -4};
    int64_t shp[4] = {2, 2, 1, 2};
    ln_tensor *x, *y, *rm = vec(ctx, dt, 2, (double[]){0, 0}), *rv = vec(ctx, dt, 2, (double[]){1, 1});
    ln_tensor *w = vec(ctx, dt, 2, (double[]){2, 1}), *b = vec(ctx, dt, 2, (double[]){0.5, -1});
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 4, shp, xv, &x));
    double tol = dt == LN_F32 ? 1e-6 : 1e-12;
    /* batch: mean {3, 0}, biased var {3.5, 8}, unbiased var {14/3, 32/3} */
    CHECK_OK(ctx, ln_batch_norm2d(ctx, x, rm, rv, w, b, true, 0.1, 1e-5, &y));
    CHECK(fabs(at(ctx, rm, 0) - 0.3) < tol && fabs(at(ctx, rm, 1) - 0.0) < tol,
          "running_mean after step 1: %g %g", at(ctx, rm, 0), at(ctx, rm, 1));
    CHECK(fabs(at(ctx, rv, 0) - (0.9 + 0.1 * 14.0 / 3)) < tol &&
              fabs(at(ctx, rv, 1) - (0.9 + 0.1 * 32.0 / 3)) < tol,
          "running_var after step 1: %g %g", at(ctx, rv, 0), at(ctx, rv, 1));
    /* y[n=0,c=0,w=0] = (1-3)/sqrt(3.5+1e-5)*2 + 0.5; y[n=1,c=1,w=1] = (-4-0)/sqrt(8+1e-5) - 1 */
    CHECK(fabs(at(ctx, y, 0) - (-2 / sqrt(3.5 + 1e-5) * 2 + 0.5)) < 10 * tol, "y[0] = %g", at(ctx, y, 0));
    CHECK(fabs(at(ctx, y, 7) - (-4 / sqrt(8 + 1e-5) - 1)) < 10 * tol, "y[7] = %g", at(ctx, y, 7));
    ln_tensor_release(y);
    /* second step with momentum 0.5 compounds on the updated values */
    CHECK_OK(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, NULL, true, 0.5, 1e-5, &y));
    CHECK(fabs(at(ctx, rm, 0) - (0.5 * 0.3 + 0.5 * 3)) < tol, "running_mean after step 2: %g", at(ctx, rm, 0));
    CHECK(fabs(at(ctx, rv, 1) - (0.5 * (0.9 + 0.1 * 32.0 / 3) + 0.5 * 32.0 / 3)) < tol,
          "running_var after step 2: %g", at(ctx, rv, 1));
    ln_tensor_release(y);
    /* eval: uses the running statistics, leaves them as they are */
    double m0 = at(ctx, rm, 0), v0 = at(ctx, rv, 0), m1 = at(ctx, rm, 1), v1 = at(ctx, rv, 1);
    CHECK_OK(ctx, ln_batch_norm2d(ctx, x, rm, rv, w, b, false, 0.1, 1e-3, &y));
    CHECK(fabs(at(ctx, y, 1) - ((2 - m0) / sqrt(v0 + 1e-3) * 2 + 0.5)) < 10 * tol, "eval y[1] = %g", at(ctx, y, 1));
    CHECK(fabs(at(ctx, y, 6) - ((4 - m1) / sqrt(v1 + 1e-3) - 1)) < 10 * tol, "eval y[6] = %g", at(ctx, y, 6));
    CHECK(at(ctx, rm, 0) == m0 && at(ctx, rv, 0) == v0, "eval leaves the running statistics alone");
    ln_tensor_release(y);
    /* momentum 0 keeps them, momentum 1 replaces them with the batch statistics */
    CHECK_OK(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, NULL, true, 0.0, 1e-5, &y));
    CHECK(at(ctx, rm, 0) == m0 && at(ctx, rv, 0) == v0, "momentum 0 keeps the running statistics");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, NULL, true, 1.0, 1e-5, &y));
    CHECK(fabs(at(ctx, rm, 0) - 3) < tol && fabs(at(ctx, rv, 0) - 14.0 / 3) < tol,
          "momentum 1: running = batch statistics (%g %g)", at(ctx, rm, 0), at(ctx, rv, 0));
    ln_tensor_release(y);
    /* hand-computed gradient, training, no affine, loss = y[0]: channel 0 has M = 4,
     * xhat = (x-3)/s with s = sqrt(3.5+eps); dx_j = (delta_j0 - 1/4 - xhat_0 xhat_j / 4) / s */
    ln_tensor *xg;
    CHECK_OK(ctx, ln_tensor_clone(ctx, x, &xg));
    xg->requires_grad = true;
    CHECK_OK(ctx, ln_batch_norm2d(ctx, xg, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &y));
    double seed[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    ln_tensor *gy;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 4, shp, seed, &gy));
    CHECK_OK(ctx, ln_backward(ctx, y, gy, false));
    double s = sqrt(3.5 + 1e-5), xh0 = -2 / s, xh5 = 3 / s;
    CHECK(xg->grad && fabs(at(ctx, xg->grad, 0) - (1 - 0.25 - xh0 * xh0 / 4) / s) < 10 * tol &&
              fabs(at(ctx, xg->grad, 5) - (-0.25 - xh0 * xh5 / 4) / s) < 10 * tol &&
              at(ctx, xg->grad, 2) == 0,
          "hand-computed batch-norm gradient");
    ln_tensor_release(gy); ln_tensor_release(y); ln_tensor_release(xg);
    ln_tensor_release(x); ln_tensor_release(rm); ln_tensor_release(rv);
    ln_tensor_release(w); ln_tensor_release(b);
}

/* Strided x, and running statistics that are strided views (every other element of
 * a (2C) vector: only the viewed elements change). */
static void strided(ln_ctx *ctx) {
    int64_t shp[4] = {3, 4, 2, 5}, C = 4, C2 = 8;
    ln_tensor *x = tu_randn(ctx, LN_F32, 4, shp), *xt, *xc, *y1, *y2;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, x, 2, 3, &xt));
    CHECK_OK(ctx, ln_tensor_clone(ctx, xt, &xc));
    ln_tensor *big_m = tu_randn(ctx, LN_F32, 1, &C2), *big_v = tu_rand_uniform(ctx, LN_F32, 1, &C2, 0.5, 1);
    ln_tensor *rm_s, *rv_s, *rm_c, *rv_c, *before;
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, big_m, 0, 1, C, &rm_s));
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, big_v, 0, 1, C, &rv_s));
    rm_s->strides[0] = rv_s->strides[0] = 2; /* elements 1, 3, 5, 7 */
    CHECK_OK(ctx, ln_tensor_clone(ctx, rm_s, &rm_c));
    CHECK_OK(ctx, ln_tensor_clone(ctx, rv_s, &rv_c));
    CHECK_OK(ctx, ln_tensor_clone(ctx, big_m, &before));
    CHECK_OK(ctx, ln_batch_norm2d(ctx, xt, rm_s, rv_s, NULL, NULL, true, 0.1, 1e-5, &y1));
    CHECK_OK(ctx, ln_batch_norm2d(ctx, xc, rm_c, rv_c, NULL, NULL, true, 0.1, 1e-5, &y2));
    tu_check_close(ctx, y1, y2, 0, 0, "strided x");
    tu_check_close(ctx, rm_s, rm_c, 0, 0, "strided running_mean updated in place");
    tu_check_close(ctx, rv_s, rv_c, 0, 0, "strided running_var updated in place");
    CHECK(at(ctx, big_m, 0) == at(ctx, before, 0) && at(ctx, big_m, 6) == at(ctx, before, 6) &&
              at(ctx, big_m, 1) != at(ctx, before, 1),
          "only the viewed running_mean elements change");
    ln_tensor_release(y1); ln_tensor_release(y2); ln_tensor_release(before);
    ln_tensor_release(rm_s); ln_tensor_release(rv_s); ln_tensor_release(rm_c); ln_tensor_release(rv_c);
    ln_tensor_release(big_m); ln_tensor_release(big_v);
    ln_tensor_release(x); ln_tensor_release(xt); ln_tensor_release(xc);
}

static void errors(ln_ctx *ctx) {
    int64_t shp[4] = {2, 3, 4, 4}, one[4] = {1, 3, 1, 1}, C = 3, C4 = 4;
    ln_tensor *x = tu_randn(ctx, LN_F32, 4, shp), *y = NULL;
    ln_tensor *rm = tu_randn(ctx, LN_F32, 1, &C), *rv = tu_rand_uniform(ctx, LN_F32, 1, &C, 0.5, 1);
    ln_tensor *w4 = tu_randn(ctx, LN_F32, 1, &C4), *rm4 = tu_randn(ctx, LN_F32, 1, &C4);
    ln_tensor *w64 = tu_randn(ctx, LN_F64, 1, &C), *x1 = tu_randn(ctx, LN_F32, 4, one), *rm_before;
    ln_tensor *x3 = tu_randn(ctx, LN_F32, 3, shp), *xi;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 4, shp, &xi));
    CHECK_OK(ctx, ln_tensor_clone(ctx, rm, &rm_before));
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm4, rv, NULL, NULL, true, 0.1, 1e-5, &y), LN_ERR_SHAPE);
    CHECK(y == NULL, "no output on failure");
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, rv, w4, NULL, true, 0.1, 1e-5, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, w4, false, 0.1, 1e-5, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, NULL, NULL, NULL, true, 0.1, 1e-5, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, NULL, true, 0.1, -1e-5, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, NULL, true, 1.5, 1e-5, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, NULL, true, -0.1, 1e-5, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, rv, NULL, NULL, true, NAN, 1e-5, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x, rm, rv, w64, NULL, true, 0.1, 1e-5, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, x3, rm, rv, NULL, NULL, true, 0.1, 1e-5, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, xi, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_batch_norm2d(ctx, NULL, rm, rv, NULL, NULL, true, 0.1, 1e-5, &y), LN_ERR_ARG);
    /* one value per channel: an error when training (as PyTorch), fine in eval */
    ln_status st = ln_batch_norm2d(ctx, x1, rm, rv, NULL, NULL, true, 0.1, 1e-5, &y);
    CHECK(st == LN_ERR_SHAPE && strstr(ln_ctx_error(ctx), "more than 1 value per channel"),
          "N*H*W == 1 in training: '%s'", ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    CHECK(y == NULL, "no output on failure");
    tu_check_close(ctx, rm, rm_before, 0, 0, "failed calls leave running_mean alone");
    CHECK_OK(ctx, ln_batch_norm2d(ctx, x1, rm, rv, NULL, NULL, false, 0.1, 1e-5, &y));
    ln_tensor_release(y);
    ln_tensor *ts[] = {x, rm, rv, w4, rm4, w64, x1, rm_before, x3, xi};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ln_tensor_release(ts[i]);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 7);
    gradchecks(ctx);
    compare_fast_ref(ctx);
    hand_computed(ctx, LN_F64);
    hand_computed(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_REF);
    hand_computed(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
    strided(ctx);
    errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
