/* cross_entropy and topk_correct: finite-difference gradients (f64), fast vs reference
 * (f32), hand-computed values, numerical stability with large logits, the documented
 * tie rule of top-k, and argument and label errors. */
#include <math.h>
#include <string.h>
#include "testutil.h"

static ln_status xent_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_cross_entropy(ctx, in[0], (ln_tensor *)ud, out);
}

static double at(ln_ctx *ctx, const ln_tensor *t, int64_t i) {
    double v[64];
    if (ln_tensor_numel(t) > 64 || ln_tensor_to_f64(ctx, t, v) != LN_OK) return NAN;
    return v[i];
}

/* labels (N) i64 drawn uniformly from [0, C) */
static ln_tensor *rand_labels(ln_ctx *ctx, int64_t N, int64_t C) {
    ln_tensor *t = NULL;
    if (ln_tensor_empty(ctx, LN_I64, ln_cpu(), 1, &N, &t) != LN_OK) return NULL;
    int64_t *d = ln_tensor_data(t);
    for (int64_t i = 0; i < N; i++) d[i] = (int64_t)(ln_ctx_rand_u64(ctx) % (uint64_t)C);
    return t;
}

static ln_tensor *labels_of(ln_ctx *ctx, int64_t N, const double *v) {
    ln_tensor *t = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_I64, 1, &N, v, &t));
    return t;
}

static void xent_checks(ln_ctx *ctx) {
    int64_t shapes[][2] = {{4, 10}, {1, 3}, {3, 1}, {7, 5}, {300, 100}};
    for (size_t s = 0; s < 5; s++) {
        int64_t N = shapes[s][0], C = shapes[s][1];
        ln_tensor *labels = rand_labels(ctx, N, C);
        ln_tensor *x = tu_rand_uniform(ctx, LN_F64, 2, shapes[s], -4, 4);
        x->requires_grad = true;
        tu_gradcheck(ctx, xent_fn, labels, 1, &x, 1e-6, 1e-7, 300, "cross_entropy");
        ln_tensor_release(x);
        ln_tensor *xf = tu_rand_uniform(ctx, LN_F32, 2, shapes[s], -4, 4);
        xf->requires_grad = true;
        tu_compare_paths(ctx, xent_fn, labels, 1, &xf, 1e-5, 1e-6, "cross_entropy f32");
        ln_tensor_release(xf);
        ln_tensor_release(labels);
    }
}

/* logits [[0,0],[ln 3,0]], labels {0,1}: losses ln 2 and ln 4, mean 1.5 ln 2;
 * gradient rows (softmax - onehot)/2 = [-1/4, 1/4] and [3/8, -3/8]. */
static void xent_hand(ln_ctx *ctx, ln_dtype dt) {
    double tol = dt == LN_F32 ? 1e-6 : 1e-14;
    ln_tensor *x, *y, *labels = labels_of(ctx, 2, (double[]){0, 1});
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 2, (int64_t[]){2, 2}, (double[]){0, 0, log(3.0), 0}, &x));
    x->requires_grad = true;
    CHECK_OK(ctx, ln_cross_entropy(ctx, x, labels, &y));
    CHECK(y->ndim == 0 && y->dtype == dt, "cross_entropy returns a 0-d tensor of the logits' dtype");
    CHECK(fabs(at(ctx, y, 0) - 1.5 * log(2.0)) < tol, "cross_entropy value %.17g", at(ctx, y, 0));
    CHECK_OK(ctx, ln_backward(ctx, y, NULL, false));
    CHECK(x->grad && fabs(at(ctx, x->grad, 0) + 0.25) < tol && fabs(at(ctx, x->grad, 1) - 0.25) < tol &&
              fabs(at(ctx, x->grad, 2) - 0.375) < tol && fabs(at(ctx, x->grad, 3) + 0.375) < tol,
          "cross_entropy gradient");
    ln_tensor_release(y); ln_tensor_release(x);
    /* large logits stay finite (max subtraction): [1000, 0] -> 0 for label 0, 1000 for 1 */
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 2, (int64_t[]){2, 2}, (double[]){1000, 0, 1000, 0}, &x));
    CHECK_OK(ctx, ln_cross_entropy(ctx, x, labels, &y));
    CHECK(fabs(at(ctx, y, 0) - 500) < 1e-4, "cross_entropy with logits 1000: %g", at(ctx, y, 0));
    ln_tensor_release(y); ln_tensor_release(x);
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 2, (int64_t[]){2, 2}, (double[]){-1e4, -1e4, 3e4, 0}, &x));
    CHECK_OK(ctx, ln_cross_entropy(ctx, x, labels, &y));
    CHECK(fabs(at(ctx, y, 0) - (log(2.0) + 3e4) / 2) < 5e-3, "cross_entropy with logits 3e4: %g", at(ctx, y, 0));
    ln_tensor_release(y); ln_tensor_release(x);
    ln_tensor_release(labels);
}

static void topk_checks(ln_ctx *ctx, ln_dtype dt) {
    /* rows: [1,3,3,2] label 2 (ties the max with the lower index 1 ahead: rank 1),
     *       [1,3,3,2] label 1 (rank 0), [0,0,0,0] label 2 (rank 2),
     *       [5,NaN,4,1] label 0 (NaN ranks first: rank 1), [0,1,2,3] label 0 (rank 3) */
    double v[] = {1, 3, 3, 2, 1, 3, 3, 2, 0, 0, 0, 0, 5, NAN, 4, 1, 0, 1, 2, 3};
    ln_tensor *x, *labels = labels_of(ctx, 5, (double[]){2, 1, 2, 0, 0});
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 2, (int64_t[]){5, 4}, v, &x));
    int64_t want[5] = {0, 1, 3, 4, 5};
    for (int k = 1; k <= 4; k++) {
        int64_t got = -1;
        CHECK_OK(ctx, ln_topk_correct(ctx, x, labels, k, &got));
        CHECK(got == want[k], "topk_correct k=%d: got %lld want %lld", k, (long long)got, (long long)want[k]);
    }
    ln_tensor_release(x); ln_tensor_release(labels);
}

static void topk_fast_vs_ref(ln_ctx *ctx) {
    int64_t shp[2] = {257, 50};
    ln_tensor *x = tu_randn(ctx, LN_F32, 2, shp), *labels = rand_labels(ctx, 257, 50);
    /* coarse values make ties common */
    float *d = ln_tensor_data(x);
    for (int64_t i = 0; i < 257 * 50; i++) d[i] = roundf(d[i] * 2);
    int ks[] = {1, 5, 50};
    for (int i = 0; i < 3; i++) {
        int64_t a = -1, b = -2;
        CHECK_OK(ctx, ln_topk_correct(ctx, x, labels, ks[i], &a));
        ln_ctx_set_backend(ctx, LN_BACKEND_REF);
        CHECK_OK(ctx, ln_topk_correct(ctx, x, labels, ks[i], &b));
        ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
        CHECK(a == b && (ks[i] < 50 || a == 257), "topk_correct k=%d fast %lld vs reference %lld", ks[i],
              (long long)a, (long long)b);
    }
    ln_tensor_release(x); ln_tensor_release(labels);
}

/* Fails with LN_ERR_ARG and a message holding `want`. */
static void check_label_error(ln_ctx *ctx, ln_status st, const char *want) {
    CHECK(st == LN_ERR_ARG && strstr(ln_ctx_error(ctx), want), "bad label: status %s, message '%s' lacks '%s'",
          ln_status_name(st), ln_ctx_error(ctx), want);
    ln_ctx_clear_error(ctx);
}

static void errors(ln_ctx *ctx) {
    ln_tensor *x = tu_randn(ctx, LN_F32, 2, (int64_t[]){3, 4}), *y = NULL, *x3, *xi, *l32, *lf, *lshort, *l2d;
    ln_tensor *bad_hi = labels_of(ctx, 3, (double[]){0, 3, 4});
    ln_tensor *bad_neg = labels_of(ctx, 3, (double[]){-1, 0, 0});
    ln_tensor *good = labels_of(ctx, 3, (double[]){0, 3, 1});
    x3 = tu_randn(ctx, LN_F32, 3, (int64_t[]){3, 4, 1});
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 2, (int64_t[]){3, 4}, &xi));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I32, ln_cpu(), 1, (int64_t[]){3}, &l32));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){3}, &lf));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 1, (int64_t[]){2}, &lshort));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 2, (int64_t[]){3, 1}, &l2d));
    int64_t c = 99;
    check_label_error(ctx, ln_cross_entropy(ctx, x, bad_hi, &y), "labels[2] = 4");
    CHECK(y == NULL, "no output on failure");
    check_label_error(ctx, ln_cross_entropy(ctx, x, bad_neg, &y), "labels[0] = -1");
    check_label_error(ctx, ln_topk_correct(ctx, x, bad_hi, 1, &c), "labels[2] = 4");
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, x, l32, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, x, lf, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, x, lshort, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, x, l2d, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, x3, good, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, xi, good, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, NULL, good, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, x, NULL, &y), LN_ERR_ARG);
    CHECK(y == NULL, "no output on failure");
    CHECK_FAILS(ctx, ln_topk_correct(ctx, x, good, 0, &c), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_topk_correct(ctx, x, good, 5, &c), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_topk_correct(ctx, x, lshort, 1, &c), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_topk_correct(ctx, x, l32, 1, &c), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_topk_correct(ctx, x, good, 1, NULL), LN_ERR_ARG);
    CHECK(c == 0, "no count on failure");
    ln_tensor *ts[] = {x, x3, xi, l32, lf, lshort, l2d, bad_hi, bad_neg, good};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ln_tensor_release(ts[i]);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 5);
    xent_checks(ctx);
    xent_hand(ctx, LN_F64);
    xent_hand(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_REF);
    xent_hand(ctx, LN_F32);
    topk_checks(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
    topk_checks(ctx, LN_F32);
    topk_checks(ctx, LN_F64);
    topk_fast_vs_ref(ctx);
    errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
