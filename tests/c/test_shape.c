/* reshape, transpose, narrow, contiguous, cat and shortcut_a: values, view semantics,
 * finite-difference gradients (f64) with strided inputs, fast vs reference (f32) for
 * the data-moving ops, and argument errors. */
#include <stdlib.h>
#include "testutil.h"

typedef struct shape_args { int kind; int ndim; int64_t shape[4]; int d0, d1; int64_t start, len; } shape_args;
enum { K_RESHAPE, K_TRANSPOSE, K_NARROW, K_CONTIGUOUS };

/* The op, then a differentiable copy: views share the input's storage, and the
 * gradient checker perturbs the input in place between calls. */
static ln_status apply_view(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const shape_args *a = ud;
    ln_tensor *v;
    ln_status st;
    switch (a->kind) {
    case K_RESHAPE: st = ln_reshape(ctx, in[0], a->ndim, a->shape, &v); break;
    case K_TRANSPOSE: st = ln_transpose(ctx, in[0], a->d0, a->d1, &v); break;
    case K_NARROW: st = ln_narrow(ctx, in[0], a->d0, a->start, a->len, &v); break;
    default: st = ln_contiguous(ctx, in[0], &v); break;
    }
    if (st != LN_OK) return st;
    st = ln_affine_scalar(ctx, v, 1, 0, out);
    ln_tensor_release(v);
    return st;
}

typedef struct cat_args { int n; int dim; } cat_args;
static ln_status apply_cat(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const cat_args *c = ud;
    return ln_cat(ctx, c->n, in, c->dim, out);
}

typedef struct sc_args { int stride; int64_t pad; } sc_args;
static ln_status apply_shortcut(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const sc_args *s = ud;
    return ln_shortcut_a(ctx, in[0], s->stride, s->pad, out);
}

static double *values_of(ln_ctx *ctx, const ln_tensor *t) {
    double *v = malloc((size_t)(ln_tensor_numel(t) + 1) * sizeof *v);
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, t, v));
    return v;
}

static void views(ln_ctx *ctx) {
    ln_tensor *x = tu_randn(ctx, LN_F64, 3, (int64_t[]){2, 3, 4}), *y, *t;
    double *xv = values_of(ctx, x);
    /* reshape of a contiguous tensor is a view; -1 is inferred */
    CHECK_OK(ctx, ln_reshape(ctx, x, 2, (int64_t[]){-1, 4}, &y));
    CHECK(y->ndim == 2 && y->shape[0] == 6 && y->storage == x->storage, "reshape views contiguous input");
    ln_tensor_release(y);
    /* reshape of a transposed view copies, in the view's row-major order */
    CHECK_OK(ctx, ln_transpose(ctx, x, 0, 2, &t));
    CHECK(t->shape[0] == 4 && t->shape[2] == 2 && t->storage == x->storage, "transpose is a view");
    CHECK_OK(ctx, ln_reshape(ctx, t, 1, (int64_t[]){24}, &y));
    double *yv = values_of(ctx, y);
    int ok = 1;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) ok = ok && yv[(i * 3 + j) * 2 + k] == xv[(k * 3 + j) * 4 + i];
    CHECK(ok && ln_tensor_is_contiguous(y), "reshape of a transposed tensor");
    free(yv);
    ln_tensor_release(y);
    /* contiguous: a new tensor object either way; no node lands on the input */
    x->requires_grad = true;
    CHECK_OK(ctx, ln_contiguous(ctx, x, &y));
    CHECK(y != x && x->grad_fn == NULL && y->grad_fn != NULL, "contiguous of a contiguous leaf");
    ln_tensor_release(y);
    CHECK_OK(ctx, ln_contiguous(ctx, t, &y));
    CHECK(ln_tensor_is_contiguous(y) && y->storage != t->storage, "contiguous of a view copies");
    ln_tensor_release(y);
    /* narrow picks the slice */
    CHECK_OK(ctx, ln_narrow(ctx, x, 2, 1, 2, &y));
    yv = values_of(ctx, y);
    CHECK(yv[0] == xv[1] && yv[1] == xv[2] && yv[2] == xv[5], "narrow values");
    free(yv);
    ln_tensor_release(y);
    free(xv);
    ln_tensor_release(t);

    /* gradients, on a contiguous and on a strided (transposed) input */
    shape_args cases[] = {
        {K_RESHAPE, 2, {6, 4}, 0, 0, 0, 0}, {K_RESHAPE, 4, {4, 1, 3, 2}, 0, 0, 0, 0},
        {K_TRANSPOSE, 0, {0}, 0, 2, 0, 0}, {K_TRANSPOSE, 0, {0}, 1, 1, 0, 0},
        {K_NARROW, 0, {0}, 0, 0, 1, 1}, {K_NARROW, 0, {0}, 1, 0, 1, 2}, {K_NARROW, 0, {0}, 2, 0, 1, 2},
        {K_CONTIGUOUS, 0, {0}, 0, 0, 0, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ln_tensor *base = tu_randn(ctx, LN_F64, 3, (int64_t[]){2, 3, 4}), *tv;
        base->requires_grad = true;
        tu_gradcheck(ctx, apply_view, &cases[c], 1, &base, 1e-6, 1e-8, 0, "view op");
        base->requires_grad = false;
        /* strided: a (2,3,4) transposed view of a (4,3,2) tensor */
        ln_tensor *other = tu_randn(ctx, LN_F64, 3, (int64_t[]){4, 3, 2});
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, other, 0, 2, &tv));
        tv->requires_grad = true;
        tu_gradcheck(ctx, apply_view, &cases[c], 1, &tv, 1e-6, 1e-8, 0, "view op, strided input");
        ln_tensor_release(tv);
        ln_tensor_release(other);
        ln_tensor_release(base);
    }
    /* errors */
    x->requires_grad = false;
    CHECK_FAILS(ctx, ln_reshape(ctx, x, 0, NULL, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_reshape(ctx, x, 2, (int64_t[]){5, 5}, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_reshape(ctx, x, 2, NULL, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_transpose(ctx, x, 0, 3, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_narrow(ctx, x, 1, 2, 2, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_narrow(ctx, NULL, 1, 0, 1, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_contiguous(ctx, NULL, &y), LN_ERR_ARG);
    ln_tensor_release(x);
}

static void cat_checks(ln_ctx *ctx) {
    /* known values: [[1,2],[3,4]] cat [[5],[6]] along 1 */
    ln_tensor *a, *b, *y;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F64, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4}, &a));
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F64, 2, (int64_t[]){2, 1}, (double[]){5, 6}, &b));
    CHECK_OK(ctx, ln_cat(ctx, 2, (ln_tensor *[]){a, b}, 1, &y));
    double *yv = values_of(ctx, y);
    CHECK(y->shape[0] == 2 && y->shape[1] == 3 && yv[0] == 1 && yv[2] == 5 && yv[3] == 3 && yv[5] == 6,
          "cat values");
    free(yv);
    ln_tensor_release(y);
    ln_tensor_release(a);
    ln_tensor_release(b);

    /* gradients: three inputs of different sizes (one empty) along each dim */
    for (int dim = 0; dim < 3; dim++) {
        int64_t s0[3] = {2, 3, 4}, s1[3] = {2, 3, 4}, s2[3] = {2, 3, 4};
        s0[dim] = 1; s1[dim] = 3; s2[dim] = 0;
        ln_tensor *in[3] = {tu_randn(ctx, LN_F64, 3, s0), tu_randn(ctx, LN_F64, 3, s1), tu_randn(ctx, LN_F64, 3, s2)};
        for (int i = 0; i < 3; i++) in[i]->requires_grad = true;
        cat_args c = {3, dim};
        tu_gradcheck(ctx, apply_cat, &c, 3, in, 1e-6, 1e-8, 0, "cat");
        in[1]->requires_grad = false; /* only some inputs need grad */
        tu_gradcheck(ctx, apply_cat, &c, 3, in, 1e-6, 1e-8, 0, "cat, input 1 constant");
        for (int i = 0; i < 3; i++) ln_tensor_release(in[i]);
        for (int i = 0; i < 3; i++) {
            in[i] = tu_randn(ctx, LN_F32, 3, i == 0 ? s0 : i == 1 ? s1 : s2);
            in[i]->requires_grad = true;
        }
        tu_compare_paths(ctx, apply_cat, &c, 3, in, 0, 0, "cat");
        for (int i = 0; i < 3; i++) ln_tensor_release(in[i]);
    }
    /* strided inputs and a large channel cat (threads) */
    ln_tensor *base = tu_randn(ctx, LN_F64, 2, (int64_t[]){5, 3}), *in[2];
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, base, 0, 1, &in[0])); /* (3,5) */
    in[1] = tu_randn(ctx, LN_F64, 2, (int64_t[]){2, 5});
    in[0]->requires_grad = in[1]->requires_grad = true;
    tu_gradcheck(ctx, apply_cat, &(cat_args){2, 0}, 2, in, 1e-6, 1e-8, 0, "cat strided");
    ln_tensor_release(in[0]); ln_tensor_release(in[1]); ln_tensor_release(base);
    in[0] = tu_randn(ctx, LN_F32, 4, (int64_t[]){8, 16, 16, 16});
    in[1] = tu_randn(ctx, LN_F32, 4, (int64_t[]){8, 24, 16, 16});
    in[0]->requires_grad = in[1]->requires_grad = true;
    tu_compare_paths(ctx, apply_cat, &(cat_args){2, 1}, 2, in, 0, 0, "cat big");
    /* errors */
    ln_tensor *d = tu_randn(ctx, LN_F64, 4, (int64_t[]){8, 16, 16, 16}), *bad = tu_randn(ctx, LN_F32, 4, (int64_t[]){8, 16, 15, 16});
    y = NULL;
    CHECK_FAILS(ctx, ln_cat(ctx, 2, (ln_tensor *[]){in[0], bad}, 1, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_cat(ctx, 2, (ln_tensor *[]){in[0], d}, 1, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_cat(ctx, 2, (ln_tensor *[]){in[0], NULL}, 1, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_cat(ctx, 2, in, 4, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_cat(ctx, 0, in, 0, &y), LN_ERR_ARG);
    CHECK(y == NULL, "no output on failure");
    ln_tensor_release(in[0]); ln_tensor_release(in[1]); ln_tensor_release(d); ln_tensor_release(bad);
}

static void shortcut_checks(ln_ctx *ctx) {
    /* known values: x (1,1,3,3) = 0..8, stride 2, pad 1 -> (1,3,2,2) */
    double v[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    ln_tensor *x, *y;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F64, 4, (int64_t[]){1, 1, 3, 3}, v, &x));
    CHECK_OK(ctx, ln_shortcut_a(ctx, x, 2, 1, &y));
    double *yv = values_of(ctx, y), want[12] = {0, 0, 0, 0, 0, 2, 6, 8, 0, 0, 0, 0};
    int ok = y->shape[1] == 3 && y->shape[2] == 2 && y->shape[3] == 2;
    for (int i = 0; ok && i < 12; i++) ok = yv[i] == want[i];
    CHECK(ok, "shortcut_a values");
    free(yv);
    ln_tensor_release(y);
    ln_tensor_release(x);
    sc_args cases[] = {{1, 0}, {2, 1}, {2, 2}, {3, 1}, {2, 0}};
    int64_t shapes[][4] = {{2, 3, 5, 4}, {1, 2, 6, 6}, {3, 4, 7, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t s = 0; s < 3; s++) {
            x = tu_randn(ctx, LN_F64, 4, shapes[s]);
            x->requires_grad = true;
            tu_gradcheck(ctx, apply_shortcut, &cases[c], 1, &x, 1e-6, 1e-8, 0, "shortcut_a");
            ln_tensor_release(x);
            x = tu_randn(ctx, LN_F32, 4, shapes[s]);
            x->requires_grad = true;
            tu_compare_paths(ctx, apply_shortcut, &cases[c], 1, &x, 0, 0, "shortcut_a");
            ln_tensor_release(x);
        }
    /* strided input, and a CIFAR-sized one with threads */
    ln_tensor *base = tu_randn(ctx, LN_F64, 4, (int64_t[]){2, 3, 4, 6}), *xt;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, base, 2, 3, &xt));
    xt->requires_grad = true;
    tu_gradcheck(ctx, apply_shortcut, &cases[1], 1, &xt, 1e-6, 1e-8, 0, "shortcut_a strided");
    ln_tensor_release(xt);
    ln_tensor_release(base);
    x = tu_randn(ctx, LN_F32, 4, (int64_t[]){16, 16, 32, 32});
    x->requires_grad = true;
    tu_compare_paths(ctx, apply_shortcut, &(sc_args){2, 8}, 1, &x, 0, 0, "shortcut_a big");
    /* errors */
    ln_tensor *x3 = tu_randn(ctx, LN_F32, 3, (int64_t[]){2, 3, 4});
    y = NULL;
    CHECK_FAILS(ctx, ln_shortcut_a(ctx, x3, 2, 1, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_shortcut_a(ctx, x, 0, 1, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_shortcut_a(ctx, x, 2, -1, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_shortcut_a(ctx, NULL, 2, 1, &y), LN_ERR_ARG);
    CHECK(y == NULL, "no output on failure");
    ln_tensor_release(x3);
    ln_tensor_release(x);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 7);
    views(ctx);
    cat_checks(ctx);
    shortcut_checks(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
