/* relu, relu6, sigmoid: finite-difference gradients (f64), fast vs reference (f32),
 * and argument errors. */
#include "testutil.h"

typedef ln_status (*unary_op)(ln_ctx *, ln_tensor *, ln_tensor **);
static ln_status apply(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return (*(unary_op *)ud)(ctx, in[0], out);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 1);
    struct { const char *name; unary_op op; } ops[] = {
        {"relu", ln_relu}, {"relu6", ln_relu6}, {"sigmoid", ln_sigmoid}};
    int64_t shapes[][4] = {{2, 3, 4, 5}, {7, 1, 1, 1}, {1, 1, 33, 17}};
    for (size_t o = 0; o < 3; o++) {
        for (size_t s = 0; s < 3; s++) {
            /* values spread over (-8, 8) so relu6's upper kink is exercised; the
             * kinks themselves have probability ~0 of being within eps */
            ln_tensor *x = tu_rand_uniform(ctx, LN_F64, 4, shapes[s], -8, 8);
            x->requires_grad = true;
            tu_gradcheck(ctx, apply, &ops[o].op, 1, &x, 1e-6, 1e-6, 0, ops[o].name);
            ln_tensor_release(x);
            ln_tensor *xf = tu_rand_uniform(ctx, LN_F32, 4, shapes[s], -8, 8);
            xf->requires_grad = true;
            tu_compare_paths(ctx, apply, &ops[o].op, 1, &xf, 1e-5, 1e-6, ops[o].name);
            ln_tensor_release(xf);
        }
        /* a non-contiguous (transposed) input gives the same result as its copy */
        ln_tensor *x = tu_randn(ctx, LN_F32, 2, (int64_t[]){5, 6}), *xt, *xc, *y1, *y2;
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, x, 0, 1, &xt));
        CHECK_OK(ctx, ln_tensor_clone(ctx, xt, &xc));
        CHECK_OK(ctx, ops[o].op(ctx, xt, &y1));
        CHECK_OK(ctx, ops[o].op(ctx, xc, &y2));
        tu_check_close(ctx, y1, y2, 0, 0, "strided input");
        ln_tensor_release(x); ln_tensor_release(xt); ln_tensor_release(xc);
        ln_tensor_release(y1); ln_tensor_release(y2);
    }
    /* errors: integer input, NULL input */
    ln_tensor *xi, *y = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 1, (int64_t[]){3}, &xi));
    CHECK_FAILS(ctx, ln_relu(ctx, xi, &y), LN_ERR_DTYPE);
    CHECK(y == NULL, "no output on failure");
    CHECK_FAILS(ctx, ln_sigmoid(ctx, NULL, &y), LN_ERR_ARG);
    ln_tensor_release(xi);
    ln_ctx_release(ctx);
    return test_finish();
}
