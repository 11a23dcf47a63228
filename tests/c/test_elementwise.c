/* add, sub, mul, div with broadcasting; affine_scalar, pow_scalar and dropout:
 * known values, finite-difference gradients (f64) over broadcasting patterns and
 * strided inputs, fast vs reference (f32), and argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

typedef ln_status (*binary_op)(ln_ctx *, ln_tensor *, ln_tensor *, ln_tensor **);
static ln_status apply_binary(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return (*(binary_op *)ud)(ctx, in[0], in[1], out);
}

typedef struct scalar_args { bool pow; double p1, p2; } scalar_args;
static ln_status apply_scalar(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const scalar_args *s = ud;
    return s->pow ? ln_pow_scalar(ctx, in[0], s->p1, out) : ln_affine_scalar(ctx, in[0], s->p1, s->p2, out);
}

/* dropout with a fixed seed, so that every call draws the same mask */
static ln_status apply_dropout(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    ln_ctx_manual_seed(ctx, 99);
    return ln_dropout(ctx, in[0], *(double *)ud, true, out);
}

static ln_tensor *values(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape, const double *v) {
    ln_tensor *t = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, ndim, shape, v, &t));
    return t;
}

static int check_values(ln_ctx *ctx, const ln_tensor *t, int n, const double *want, const char *what) {
    double got[64];
    if (!CHECK(ln_tensor_numel(t) == n && n <= 64, "%s: wrong element count", what)) return 0;
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, t, got));
    for (int i = 0; i < n; i++)
        if (!CHECK(fabs(got[i] - want[i]) < 1e-12, "%s: element %d is %g, want %g", what, i, got[i], want[i]))
            return 0;
    return 1;
}

static void known_values(ln_ctx *ctx) {
    ln_tensor *a = values(ctx, LN_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    ln_tensor *row = values(ctx, LN_F64, 1, (int64_t[]){3}, (double[]){10, 20, 30});
    ln_tensor *col = values(ctx, LN_F64, 2, (int64_t[]){2, 1}, (double[]){2, 4});
    ln_tensor *sc = values(ctx, LN_F64, 0, NULL, (double[]){0.5});
    ln_tensor *y;
    CHECK_OK(ctx, ln_add(ctx, a, row, &y));
    check_values(ctx, y, 6, (double[]){11, 22, 33, 14, 25, 36}, "add row broadcast");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_sub(ctx, row, a, &y));
    check_values(ctx, y, 6, (double[]){9, 18, 27, 6, 15, 24}, "sub broadcast on a");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_mul(ctx, col, row, &y));
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 3, "outer product shape");
    check_values(ctx, y, 6, (double[]){20, 40, 60, 40, 80, 120}, "mul outer product");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_div(ctx, a, sc, &y));
    check_values(ctx, y, 6, (double[]){2, 4, 6, 8, 10, 12}, "div by 0-d scalar");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_add(ctx, sc, sc, &y));
    CHECK(y->ndim == 0, "scalar + scalar is 0-d");
    check_values(ctx, y, 1, (double[]){1}, "scalar + scalar");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_affine_scalar(ctx, a, 2, -1, &y));
    check_values(ctx, y, 6, (double[]){1, 3, 5, 7, 9, 11}, "affine_scalar");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_pow_scalar(ctx, a, 2, &y));
    check_values(ctx, y, 6, (double[]){1, 4, 9, 16, 25, 36}, "pow_scalar");
    ln_tensor_release(y);
    /* the known broadcast gradient: d/d row of sum(a + row) is the column count */
    row->requires_grad = true;
    CHECK_OK(ctx, ln_add(ctx, a, row, &y));
    ln_tensor *ones;
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F64, ln_cpu(), 2, (int64_t[]){2, 3}, 1, &ones));
    CHECK_OK(ctx, ln_backward(ctx, y, ones, false));
    check_values(ctx, row->grad, 3, (double[]){2, 2, 2}, "broadcast gradient sums rows");
    ln_tensor *all[] = {a, row, col, sc, y, ones};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ln_tensor_release(all[i]);
}

typedef struct shape_pair { int na; int64_t a[4]; int nb; int64_t b[4]; } shape_pair;

static const shape_pair pairs[] = {
    {3, {2, 3, 4}, 3, {2, 3, 4}},          /* same shape */
    {4, {2, 3, 4, 5}, 4, {1, 3, 1, 1}},    /* channel broadcast */
    {4, {2, 3, 4, 5}, 3, {3, 1, 1}},       /* channel broadcast, lower rank */
    {4, {1, 3, 1, 1}, 4, {2, 3, 2, 3}},    /* broadcast on a */
    {0, {0}, 2, {2, 3}},                   /* 0-d scalar on a */
    {2, {3, 4}, 0, {0}},                   /* 0-d scalar on b */
    {2, {4, 1}, 2, {1, 5}},                /* both broadcast */
    {3, {2, 3, 4}, 1, {4}},                /* trailing */
    {3, {2, 1, 4}, 3, {2, 3, 1}},          /* mixed middle/last */
};

/* values in +-[0.5, 2] (random signs), so div stays smooth */
static ln_tensor *divisor(ln_ctx *ctx, ln_dtype dt, int n, const int64_t *shape) {
    ln_tensor *m = tu_rand_uniform(ctx, dt, n, shape, 0.5, 2), *out = NULL;
    int64_t numel = ln_tensor_numel(m);
    double *v = malloc((size_t)numel * sizeof *v);
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, m, v));
    for (int64_t i = 0; i < numel; i++)
        if (ln_ctx_rand_u64(ctx) & 1) v[i] = -v[i];
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, n, shape, v, &out));
    free(v);
    ln_tensor_release(m);
    return out;
}

static void binary_checks(ln_ctx *ctx) {
    struct { const char *name; binary_op op; } ops[] = {
        {"add", ln_add}, {"sub", ln_sub}, {"mul", ln_mul}, {"div", ln_div}};
    for (size_t o = 0; o < 4; o++) {
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            char what[64];
            snprintf(what, sizeof what, "%s pair %zu", ops[o].name, p);
            ln_tensor *in[2];
            in[0] = tu_randn(ctx, LN_F64, pairs[p].na, pairs[p].a);
            in[1] = divisor(ctx, LN_F64, pairs[p].nb, pairs[p].b);
            in[0]->requires_grad = in[1]->requires_grad = true;
            tu_gradcheck(ctx, apply_binary, &ops[o].op, 2, in, 1e-6, 1e-6, 0, what);
            /* only one input requiring grad (each way round) */
            for (int c = 0; c < 2; c++) {
                in[c]->requires_grad = false;
                in[1 - c]->requires_grad = true;
                tu_gradcheck(ctx, apply_binary, &ops[o].op, 2, in, 1e-6, 1e-6, 0, what);
            }
            ln_tensor_release(in[0]);
            ln_tensor_release(in[1]);
            in[0] = tu_randn(ctx, LN_F32, pairs[p].na, pairs[p].a);
            in[1] = divisor(ctx, LN_F32, pairs[p].nb, pairs[p].b);
            in[0]->requires_grad = in[1]->requires_grad = true;
            tu_compare_paths(ctx, apply_binary, &ops[o].op, 2, in, 1e-5, 1e-6, what);
            in[p % 2]->requires_grad = false;
            tu_compare_paths(ctx, apply_binary, &ops[o].op, 2, in, 1e-5, 1e-6, what);
            ln_tensor_release(in[0]);
            ln_tensor_release(in[1]);
        }
        /* strided inputs: a transposed view and a narrowed view */
        ln_tensor *base = tu_randn(ctx, LN_F64, 2, (int64_t[]){5, 4}), *bb = divisor(ctx, LN_F64, 2, (int64_t[]){4, 7});
        ln_tensor *in[2];
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, base, 0, 1, &in[0]));   /* (4,5) */
        CHECK_OK(ctx, ln_tensor_narrow_view(ctx, bb, 1, 1, 5, &in[1]));     /* (4,5) */
        in[0]->requires_grad = in[1]->requires_grad = true;
        tu_gradcheck(ctx, apply_binary, &ops[o].op, 2, in, 1e-6, 1e-6, 0, "strided inputs");
        ln_tensor_release(in[0]); ln_tensor_release(in[1]);
        ln_tensor_release(base); ln_tensor_release(bb);
        /* large enough for the threaded kernels: same shape, channel, bias-like, scalar */
        const shape_pair big[] = {
            {4, {8, 16, 16, 16}, 4, {8, 16, 16, 16}},
            {4, {8, 16, 16, 16}, 4, {1, 16, 1, 1}},
            {2, {4096, 12}, 1, {12}},
            {2, {300, 200}, 0, {0}},
            {2, {3, 20000}, 2, {3, 1}},
        };
        for (size_t p = 0; p < sizeof big / sizeof big[0]; p++) {
            char what[64];
            snprintf(what, sizeof what, "%s big %zu", ops[o].name, p);
            in[0] = tu_randn(ctx, LN_F32, big[p].na, big[p].a);
            in[1] = divisor(ctx, LN_F32, big[p].nb, big[p].b);
            in[0]->requires_grad = in[1]->requires_grad = true;
            tu_compare_paths(ctx, apply_binary, &ops[o].op, 2, in, 1e-4, 1e-3, what);
            ln_tensor_release(in[0]);
            ln_tensor_release(in[1]);
        }
    }
}

static void scalar_checks(ln_ctx *ctx) {
    scalar_args cases[] = {{false, 2.5, -1}, {false, -1, 0.25}, {true, 2, 0}, {true, 3, 0},
                           {true, 0.5, 0}, {true, -1.5, 0}, {true, 1, 0}, {true, 0, 0}};
    int64_t shapes[][3] = {{2, 3, 4}, {1, 1, 7}, {64, 32, 32}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t s = 0; s < 3; s++) {
            char what[64];
            snprintf(what, sizeof what, "%s(%g) shape %zu", cases[c].pow ? "pow" : "affine", cases[c].p1, s);
            ln_tensor *x = tu_rand_uniform(ctx, LN_F64, 3, shapes[s], 0.5, 2);
            x->requires_grad = true;
            tu_gradcheck(ctx, apply_scalar, &cases[c], 1, &x, 1e-6, 1e-6, 50, what);
            ln_tensor_release(x);
            x = tu_rand_uniform(ctx, LN_F32, 3, shapes[s], 0.5, 2);
            x->requires_grad = true;
            tu_compare_paths(ctx, apply_scalar, &cases[c], 1, &x, 1e-5, 1e-6, what);
            ln_tensor_release(x);
        }
    }
    /* pow with an integer exponent on negative values, strided input */
    ln_tensor *base = tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 5}), *xt;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, base, 0, 1, &xt));
    xt->requires_grad = true;
    tu_gradcheck(ctx, apply_scalar, &(scalar_args){true, 3, 0}, 1, &xt, 1e-6, 1e-6, 0, "pow 3 strided");
    tu_gradcheck(ctx, apply_scalar, &(scalar_args){false, 3, 1}, 1, &xt, 1e-6, 1e-6, 0, "affine strided");
    ln_tensor_release(xt);
    ln_tensor_release(base);
}

static void dropout_checks(ln_ctx *ctx) {
    /* statistics and values: each element is 0 or x/(1-p) */
    ln_tensor *x = tu_rand_uniform(ctx, LN_F32, 2, (int64_t[]){100, 100}, 1, 2), *y;
    CHECK_OK(ctx, ln_dropout(ctx, x, 0.3, true, &y));
    double *xv = malloc(10000 * sizeof *xv), *yv = malloc(10000 * sizeof *yv);
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, x, xv));
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, y, yv));
    int zeros = 0, bad = 0;
    for (int i = 0; i < 10000; i++) {
        if (yv[i] == 0) zeros++;
        else if (fabs(yv[i] - xv[i] / 0.7) > 1e-5) bad++;
    }
    CHECK(bad == 0, "dropout keeps values scaled by 1/(1-p) (%d bad)", bad);
    CHECK(zeros > 2700 && zeros < 3300, "dropout drops about p of the elements (%d of 10000)", zeros);
    ln_tensor_release(y);
    /* eval mode and p = 0 are copies, and differentiable */
    x->requires_grad = true;
    for (int mode = 0; mode < 2; mode++) {
        CHECK_OK(ctx, mode ? ln_dropout(ctx, x, 0.5, false, &y) : ln_dropout(ctx, x, 0, true, &y));
        CHECK(y != x && y->storage != x->storage, "dropout as identity returns a copy");
        CHECK_OK(ctx, ln_tensor_to_f64(ctx, y, yv));
        int same = 1;
        for (int i = 0; i < 10000; i++) same = same && yv[i] == xv[i];
        CHECK(same, "dropout as identity keeps the values");
        ln_tensor *s;
        CHECK_OK(ctx, ln_sum(ctx, y, -1, false, &s));
        CHECK_OK(ctx, ln_backward(ctx, s, NULL, false));
        CHECK_OK(ctx, ln_tensor_to_f64(ctx, x->grad, yv));
        int ones = 1;
        for (int i = 0; i < 10000; i++) ones = ones && yv[i] == 1;
        CHECK(ones, "dropout as identity passes the gradient through");
        ln_tensor_release(x->grad);
        x->grad = NULL;
        ln_tensor_release(s);
        ln_tensor_release(y);
    }
    free(xv);
    free(yv);
    ln_tensor_release(x);
    /* gradients through the mask, and the same mask on both paths for one seed */
    double probs[] = {0.2, 0.5, 0.9};
    for (int i = 0; i < 3; i++) {
        ln_tensor *xd = tu_randn(ctx, LN_F64, 3, (int64_t[]){3, 4, 5});
        xd->requires_grad = true;
        tu_gradcheck(ctx, apply_dropout, &probs[i], 1, &xd, 1e-6, 1e-6, 0, "dropout");
        ln_tensor_release(xd);
        ln_tensor *xf = tu_randn(ctx, LN_F32, 2, (int64_t[]){200, 300});
        xf->requires_grad = true;
        tu_compare_paths(ctx, apply_dropout, &probs[i], 1, &xf, 1e-6, 1e-7, "dropout");
        ln_tensor_release(xf);
    }
    /* errors: p outside [0, 1), integer input */
    ln_tensor *xe = tu_randn(ctx, LN_F32, 1, (int64_t[]){4}), *xi, *ye = NULL;
    CHECK_FAILS(ctx, ln_dropout(ctx, xe, 1.0, true, &ye), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_dropout(ctx, xe, -0.1, true, &ye), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_dropout(ctx, xe, NAN, false, &ye), LN_ERR_ARG);
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 1, (int64_t[]){4}, &xi));
    CHECK_FAILS(ctx, ln_dropout(ctx, xi, 0.5, true, &ye), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_dropout(ctx, NULL, 0.5, true, &ye), LN_ERR_ARG);
    CHECK(ye == NULL, "no output on failure");
    ln_tensor_release(xe);
    ln_tensor_release(xi);
}

static void error_checks(ln_ctx *ctx) {
    ln_tensor *a = tu_randn(ctx, LN_F32, 2, (int64_t[]){2, 3});
    ln_tensor *b = tu_randn(ctx, LN_F32, 1, (int64_t[]){4});
    ln_tensor *d = tu_randn(ctx, LN_F64, 2, (int64_t[]){2, 3}), *i, *y = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 2, (int64_t[]){2, 3}, &i));
    CHECK_FAILS(ctx, ln_add(ctx, a, b, &y), LN_ERR_SHAPE);
    CHECK(y == NULL, "no output on shape error");
    CHECK(ln_mul(ctx, a, b, &y) == LN_ERR_SHAPE && strstr(ln_ctx_error(ctx), "[2, 3]") &&
          strstr(ln_ctx_error(ctx), "[4]"), "shape message names both shapes: %s", ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    CHECK_FAILS(ctx, ln_sub(ctx, a, d, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_div(ctx, a, i, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_add(ctx, NULL, a, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_add(ctx, a, NULL, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_affine_scalar(ctx, i, 1, 0, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_pow_scalar(ctx, NULL, 2, &y), LN_ERR_ARG);
    CHECK(y == NULL, "no output on failure");
    ln_tensor_release(a); ln_tensor_release(b); ln_tensor_release(d); ln_tensor_release(i);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 3);
    known_values(ctx);
    binary_checks(ctx);
    scalar_checks(ctx);
    dropout_checks(ctx);
    error_checks(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
