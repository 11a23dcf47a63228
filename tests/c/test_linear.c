/* matmul and linear: known values, finite-difference gradients (f64) with transposed,
 * narrowed and every-other-column operands, fast (SGEMM) vs reference (f32), errors. */
#include <math.h>
#include <string.h>
#include "testutil.h"

static ln_status apply_matmul(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    return ln_matmul(ctx, in[0], in[1], out);
}

static ln_status apply_linear(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    return ln_linear(ctx, in[0], in[1], in[2], out);
}

/* B @ B^T with the transpose from ln_transpose */
static ln_status apply_gram(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    ln_tensor *bt;
    ln_status st = ln_transpose(ctx, in[0], 0, 1, &bt);
    if (st != LN_OK) return st;
    st = ln_matmul(ctx, in[0], bt, out);
    ln_tensor_release(bt);
    return st;
}

/* A 2-D operand of shape (r,c) that requires grad, laid out as `kind`: 0 contiguous, 1 transposed view,
 * 2 narrowed columns of a wider matrix, 3 every other column (needs a copy for GEMM). */
static ln_tensor *operand(ln_ctx *ctx, ln_dtype dt, int64_t r, int64_t c, int kind) {
    ln_tensor *base, *v = NULL;
    switch (kind) {
    case 1:
        base = tu_randn(ctx, dt, 2, (int64_t[]){c, r});
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, base, 0, 1, &v));
        break;
    case 2:
        base = tu_randn(ctx, dt, 2, (int64_t[]){r, c + 3});
        CHECK_OK(ctx, ln_tensor_narrow_view(ctx, base, 1, 2, c, &v));
        break;
    case 3:
        base = tu_randn(ctx, dt, 2, (int64_t[]){r, 2 * c});
        CHECK_OK(ctx, ln_tensor_detach(ctx, base, &v));
        v->shape[1] = c;
        v->strides[1] = 2;
        break;
    default:
        base = tu_randn(ctx, dt, 2, (int64_t[]){r, c});
        CHECK_OK(ctx, ln_tensor_detach(ctx, base, &v));
        break;
    }
    ln_tensor_release(base);
    v->requires_grad = true;
    return v;
}

static void known_values(ln_ctx *ctx) {
    ln_tensor *a, *b, *y, *w, *bias;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, &a));
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 2, (int64_t[]){3, 2}, (double[]){1, 0, 0, 1, 1, 1}, &b));
    CHECK_OK(ctx, ln_matmul(ctx, a, b, &y));
    double v[4];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, y, v));
    CHECK(v[0] == 4 && v[1] == 5 && v[2] == 10 && v[3] == 11, "matmul values");
    ln_tensor_release(y);
    /* linear: x (2,3), w (2,3) = b^T, bias (2) */
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, b, 0, 1, &w));
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 1, (int64_t[]){2}, (double[]){10, 20}, &bias));
    CHECK_OK(ctx, ln_linear(ctx, a, w, bias, &y));
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, y, v));
    CHECK(v[0] == 14 && v[1] == 25 && v[2] == 20 && v[3] == 31, "linear values");
    ln_tensor_release(y);
    ln_tensor *all[] = {a, b, w, bias};
    for (size_t i = 0; i < 4; i++) ln_tensor_release(all[i]);
    /* an empty inner dimension gives zeros, on both paths, and gradients flow */
    for (int ref = 0; ref < 2; ref++) {
        ln_ctx_set_backend(ctx, ref ? LN_BACKEND_REF : LN_BACKEND_AUTO);
        CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){2, 0}, &a));
        CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){0, 2}, &b));
        CHECK_OK(ctx, ln_tensor_full(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){2, 2}, 7, &y));
        a->requires_grad = b->requires_grad = true;
        ln_tensor *p;
        CHECK_OK(ctx, ln_matmul(ctx, a, b, &p));
        CHECK_OK(ctx, ln_tensor_to_f64(ctx, p, v));
        CHECK(v[0] == 0 && v[1] == 0 && v[2] == 0 && v[3] == 0, "empty matmul is zeros");
        CHECK_OK(ctx, ln_backward(ctx, p, y, false));
        CHECK(a->grad && b->grad && ln_tensor_numel(a->grad) == 0, "empty matmul gradients");
        ln_tensor_release(p); ln_tensor_release(a); ln_tensor_release(b); ln_tensor_release(y);
    }
    ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
}

static void matmul_checks(ln_ctx *ctx) {
    int64_t dims[][3] = {{3, 4, 5}, {1, 3, 1}, {5, 1, 4}, {4, 6, 1}};
    for (size_t d = 0; d < 4; d++)
        for (int ka = 0; ka < 4; ka++)
            for (int kb = 0; kb < 4; kb++) {
                char what[64];
                snprintf(what, sizeof what, "matmul %zu layouts %d,%d", d, ka, kb);
                ln_tensor *in[2] = {operand(ctx, LN_F64, dims[d][0], dims[d][1], ka),
                                    operand(ctx, LN_F64, dims[d][1], dims[d][2], kb)};
                in[0]->requires_grad = in[1]->requires_grad = true;
                tu_gradcheck(ctx, apply_matmul, NULL, 2, in, 1e-6, 1e-7, 0, what);
                in[kb & 1]->requires_grad = false; /* one input constant */
                tu_gradcheck(ctx, apply_matmul, NULL, 2, in, 1e-6, 1e-7, 0, what);
                ln_tensor_release(in[0]); ln_tensor_release(in[1]);
                in[0] = operand(ctx, LN_F32, dims[d][0], dims[d][1], ka);
                in[1] = operand(ctx, LN_F32, dims[d][1], dims[d][2], kb);
                in[0]->requires_grad = in[1]->requires_grad = true;
                tu_compare_paths(ctx, apply_matmul, NULL, 2, in, 1e-5, 1e-5, what);
                ln_tensor_release(in[0]); ln_tensor_release(in[1]);
            }
    /* B @ B^T built with ln_transpose */
    ln_tensor *b = tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 7});
    b->requires_grad = true;
    tu_gradcheck(ctx, apply_gram, NULL, 1, &b, 1e-6, 1e-7, 0, "B @ B^T");
    ln_tensor_release(b);
    /* big enough for a threaded SGEMM, with transposed operands */
    for (int k = 0; k < 2; k++) {
        ln_tensor *in[2] = {operand(ctx, LN_F32, 96, 256, k), operand(ctx, LN_F32, 256, 80, 1 - k)};
        in[0]->requires_grad = in[1]->requires_grad = true;
        tu_compare_paths(ctx, apply_matmul, NULL, 2, in, 1e-4, 1e-4, "matmul big");
        ln_tensor_release(in[0]); ln_tensor_release(in[1]);
    }
    b = tu_randn(ctx, LN_F32, 2, (int64_t[]){64, 300});
    b->requires_grad = true;
    tu_compare_paths(ctx, apply_gram, NULL, 1, &b, 1e-4, 1e-4, "B @ B^T big");
    ln_tensor_release(b);
}

static void linear_checks(ln_ctx *ctx) {
    int64_t dims[][3] = {{4, 5, 3}, {1, 3, 2}, {6, 1, 1}}; /* N, in, out */
    for (size_t d = 0; d < 3; d++)
        for (int kx = 0; kx < 4; kx++)
            for (int kw = 0; kw < 4; kw++)
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    char what[64];
                    snprintf(what, sizeof what, "linear %zu layouts %d,%d bias %d", d, kx, kw, with_bias);
                    ln_tensor *in[3] = {operand(ctx, LN_F64, dims[d][0], dims[d][1], kx),
                                        operand(ctx, LN_F64, dims[d][2], dims[d][1], kw),
                                        with_bias ? tu_randn(ctx, LN_F64, 1, &dims[d][2]) : NULL};
                    for (int i = 0; i < 3; i++) if (in[i]) in[i]->requires_grad = true;
                    tu_gradcheck(ctx, apply_linear, NULL, 3, in, 1e-6, 1e-7, 0, what);
                    for (int i = 0; i < 3; i++) ln_tensor_release(in[i]);
                    in[0] = operand(ctx, LN_F32, dims[d][0], dims[d][1], kx);
                    in[1] = operand(ctx, LN_F32, dims[d][2], dims[d][1], kw);
                    in[2] = with_bias ? tu_randn(ctx, LN_F32, 1, &dims[d][2]) : NULL;
                    for (int i = 0; i < 3; i++) if (in[i]) in[i]->requires_grad = true;
                    tu_compare_paths(ctx, apply_linear, NULL, 3, in, 1e-5, 1e-5, what);
                    for (int i = 0; i < 3; i++) ln_tensor_release(in[i]);
                }
    /* only the weight requires grad (frozen input), and a big batch */
    ln_tensor *in[3] = {tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 4}), operand(ctx, LN_F64, 2, 4, 0),
                        tu_randn(ctx, LN_F64, 1, (int64_t[]){2})};
    tu_gradcheck(ctx, apply_linear, NULL, 3, in, 1e-6, 1e-7, 0, "linear, weight only");
    in[1]->requires_grad = false;
    in[2]->requires_grad = true;
    tu_gradcheck(ctx, apply_linear, NULL, 3, in, 1e-6, 1e-7, 0, "linear, bias only");
    in[0]->requires_grad = true;
    in[2]->requires_grad = false;
    tu_gradcheck(ctx, apply_linear, NULL, 3, in, 1e-6, 1e-7, 0, "linear, input only");
    for (int i = 0; i < 3; i++) ln_tensor_release(in[i]);
    in[0] = tu_randn(ctx, LN_F32, 2, (int64_t[]){512, 256});
    in[1] = tu_randn(ctx, LN_F32, 2, (int64_t[]){100, 256});
    in[2] = tu_randn(ctx, LN_F32, 1, (int64_t[]){100});
    for (int i = 0; i < 3; i++) in[i]->requires_grad = true;
    tu_compare_paths(ctx, apply_linear, NULL, 3, in, 1e-4, 1e-4, "linear big");
    for (int i = 0; i < 3; i++) ln_tensor_release(in[i]);
}

static void errors(ln_ctx *ctx) {
    ln_tensor *a = tu_randn(ctx, LN_F32, 2, (int64_t[]){3, 4}), *b = tu_randn(ctx, LN_F32, 2, (int64_t[]){5, 2});
    ln_tensor *a3 = tu_randn(ctx, LN_F32, 3, (int64_t[]){3, 4, 1}), *d = tu_randn(ctx, LN_F64, 2, (int64_t[]){4, 2});
    ln_tensor *bias = tu_randn(ctx, LN_F32, 1, (int64_t[]){3}), *bias2 = tu_randn(ctx, LN_F32, 2, (int64_t[]){1, 5});
    ln_tensor *i64, *y = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 2, (int64_t[]){4, 2}, &i64));
    CHECK(ln_matmul(ctx, a, b, &y) == LN_ERR_SHAPE && strstr(ln_ctx_error(ctx), "[3, 4]") &&
          strstr(ln_ctx_error(ctx), "[5, 2]"), "matmul shape message: %s", ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    CHECK_FAILS(ctx, ln_matmul(ctx, a3, b, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_matmul(ctx, a, d, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_matmul(ctx, a, i64, &y), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_matmul(ctx, NULL, b, &y), LN_ERR_ARG);
    /* linear: x (3,4) with w (5,2): in-features differ; bias length and rank */
    CHECK_FAILS(ctx, ln_linear(ctx, a, b, NULL, &y), LN_ERR_SHAPE);
    ln_tensor *w = tu_randn(ctx, LN_F32, 2, (int64_t[]){5, 4});
    CHECK_FAILS(ctx, ln_linear(ctx, a, w, bias, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_linear(ctx, a, w, bias2, &y), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_linear(ctx, a, NULL, NULL, &y), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_linear(ctx, a3, w, NULL, &y), LN_ERR_SHAPE);
    CHECK(y == NULL, "no output on failure");
    ln_tensor *all[] = {a, b, a3, d, bias, bias2, i64, w};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ln_tensor_release(all[i]);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 11);
    known_values(ctx);
    matmul_checks(ctx);
    linear_checks(ctx);
    errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
