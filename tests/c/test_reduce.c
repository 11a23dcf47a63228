/* sum and mean: known values (all elements, along a dim, keepdim, 0-d and empty
 * inputs), finite-difference gradients (f64), fast vs reference (f32), errors. */
#include <math.h>
#include "testutil.h"

typedef struct red_args { bool mean; int dim; bool keepdim; } red_args;
static ln_status apply(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const red_args *r = ud;
    return r->mean ? ln_mean(ctx, in[0], r->dim, r->keepdim, out)
                   : ln_sum(ctx, in[0], r->dim, r->keepdim, out);
}

static void expect(ln_ctx *ctx, ln_tensor *y, int ndim, const int64_t *shape, const double *want,
                   const char *what) {
    bool ok = y && y->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = y->shape[d] == shape[d];
    if (!CHECK(ok, "%s: wrong result shape", what)) return;
    double got[16];
    int64_t n = ln_tensor_numel(y);
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, y, got));
    for (int64_t i = 0; i < n; i++)
        CHECK(fabs(got[i] - want[i]) < 1e-12, "%s: element %lld is %g, want %g", what, (long long)i, got[i], want[i]);
}

static void known_values(ln_ctx *ctx) {
    ln_tensor *x, *y;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, &x));
    CHECK_OK(ctx, ln_sum(ctx, x, -1, false, &y));
    expect(ctx, y, 0, NULL, (double[]){21}, "sum all");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_sum(ctx, x, 0, false, &y));
    expect(ctx, y, 1, (int64_t[]){3}, (double[]){5, 7, 9}, "sum dim 0");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_sum(ctx, x, 1, true, &y));
    expect(ctx, y, 2, (int64_t[]){2, 1}, (double[]){6, 15}, "sum dim 1 keepdim");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_mean(ctx, x, 1, false, &y));
    expect(ctx, y, 1, (int64_t[]){2}, (double[]){2, 5}, "mean dim 1");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_mean(ctx, x, -1, true, &y));
    expect(ctx, y, 0, NULL, (double[]){3.5}, "mean all (0-d even with keepdim)");
    ln_tensor_release(y);
    ln_tensor_release(x);
    /* a 0-d input, an empty input */
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F32, ln_cpu(), 0, NULL, 4, &x));
    CHECK_OK(ctx, ln_mean(ctx, x, -1, false, &y));
    expect(ctx, y, 0, NULL, (double[]){4}, "mean of 0-d");
    ln_tensor_release(y);
    ln_tensor_release(x);
    for (int ref = 0; ref < 2; ref++) {
        ln_ctx_set_backend(ctx, ref ? LN_BACKEND_REF : LN_BACKEND_AUTO);
        CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){0, 3}, &x));
        CHECK_OK(ctx, ln_sum(ctx, x, 0, false, &y));
        expect(ctx, y, 1, (int64_t[]){3}, (double[]){0, 0, 0}, "sum over an empty dim");
        ln_tensor_release(y);
        double m;
        CHECK_OK(ctx, ln_mean(ctx, x, -1, false, &y));
        CHECK_OK(ctx, ln_tensor_item(ctx, y, &m));
        CHECK(isnan(m), "mean of an empty tensor is NaN (%g)", m);
        ln_tensor_release(y);
        ln_tensor_release(x);
    }
    ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
}

static void gradients(ln_ctx *ctx) {
    int64_t shape[4] = {2, 3, 4, 5};
    for (int mean = 0; mean < 2; mean++)
        for (int dim = -1; dim < 4; dim++)
            for (int keep = 0; keep < 2; keep++) {
                red_args r = {mean, dim, keep};
                char what[64];
                snprintf(what, sizeof what, "%s dim %d keepdim %d", mean ? "mean" : "sum", dim, keep);
                ln_tensor *x = tu_randn(ctx, LN_F64, 4, shape);
                x->requires_grad = true;
                tu_gradcheck(ctx, apply, &r, 1, &x, 1e-6, 1e-6, 0, what);
                ln_tensor_release(x);
                x = tu_randn(ctx, LN_F32, 4, shape);
                x->requires_grad = true;
                tu_compare_paths(ctx, apply, &r, 1, &x, 1e-5, 1e-6, what);
                ln_tensor_release(x);
            }
    /* strided input: a transposed view */
    ln_tensor *base = tu_randn(ctx, LN_F64, 3, (int64_t[]){4, 3, 5}), *xt;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, base, 0, 2, &xt));
    xt->requires_grad = true;
    for (int dim = -1; dim < 3; dim++)
        tu_gradcheck(ctx, apply, &(red_args){dim == 1, dim, true}, 1, &xt, 1e-6, 1e-6, 0, "strided");
    ln_tensor_release(xt);
    ln_tensor_release(base);
    /* large: every kernel shape (inner kept with several column chunks, inner
     * reduced with many or one outputs) with threads */
    struct { int nd; int64_t s[4]; int dim; } big[] = {
        {2, {64, 1000}, 0}, {2, {64, 1000}, 1}, {4, {8, 16, 32, 32}, 1},
        {4, {8, 16, 32, 32}, 3}, {4, {8, 16, 32, 32}, -1}, {3, {2, 3, 40000}, 2},
        {3, {1, 1, 70000}, 0}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        for (int mean = 0; mean < 2; mean++) {
            red_args r = {mean, big[i].dim, false};
            char what[64];
            snprintf(what, sizeof what, "big %zu %s", i, mean ? "mean" : "sum");
            ln_tensor *x = tu_randn(ctx, LN_F32, big[i].nd, big[i].s);
            x->requires_grad = true;
            tu_compare_paths(ctx, apply, &r, 1, &x, 1e-5, 1e-4, what);
            ln_tensor_release(x);
        }
}

static void errors(ln_ctx *ctx) {
    ln_tensor *x = tu_randn(ctx, LN_F32, 2, (int64_t[]){2, 3}), *xi, *y = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 1, (int64_t[]){3}, &xi));
    CHECK_FAILS(ctx, ln_sum(ctx, x, 2, false, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_mean(ctx, xi, -1, false, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_sum(ctx, NULL, 0, false, &y), LN_ERR_ARG);
    CHECK(y == NULL, "no output on failure");
    ln_tensor_release(x);
    ln_tensor_release(xi);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 5);
    known_values(ctx);
    gradients(ctx);
    errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
