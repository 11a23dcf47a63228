/* The autograd engine: accumulation into leaves across uses and across backward calls,
 * no_grad, leaves, backward twice (an error), retain_graph, and seed checks. */
#include "testutil.h"

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    double v[4] = {-1, 2, -3, 4};
    ln_tensor *x;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F64, 1, (int64_t[]){4}, v, &x));
    x->requires_grad = true;

    /* relu(x) then sigmoid(relu(x)): chain rule through two nodes */
    ln_tensor *r, *s;
    CHECK_OK(ctx, ln_relu(ctx, x, &r));
    CHECK_OK(ctx, ln_sigmoid(ctx, r, &s));
    CHECK(s->requires_grad && s->grad_fn != NULL, "result records a node");
    ln_tensor *ones;
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F64, ln_cpu(), 1, (int64_t[]){4}, 1.0, &ones));
    CHECK_OK(ctx, ln_backward(ctx, s, ones, false));
    double g[4];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, x->grad, g));
    CHECK(g[0] == 0 && g[2] == 0 && g[1] > 0.1 && g[1] < 0.11, "chain rule through relu and sigmoid (%g)", g[1]);
    /* second backward through a freed graph is an error, not a crash */
    CHECK_FAILS(ctx, ln_backward(ctx, s, ones, false), LN_ERR_STATE);

    /* accumulation across backward calls: grads add up */
    ln_tensor *r2;
    CHECK_OK(ctx, ln_relu(ctx, x, &r2));
    CHECK_OK(ctx, ln_backward(ctx, r2, ones, true));
    CHECK_OK(ctx, ln_backward(ctx, r2, ones, false)); /* retain_graph allowed a second */
    double g2[4];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, x->grad, g2));
    CHECK(g2[1] == g[1] + 2 && g2[0] == 0, "gradients accumulate across calls");

    /* no_grad: nothing recorded */
    bool prev = ln_ctx_set_grad_enabled(ctx, false);
    ln_tensor *r3;
    CHECK_OK(ctx, ln_relu(ctx, x, &r3));
    CHECK(!r3->requires_grad && r3->grad_fn == NULL, "no_grad records nothing");
    ln_ctx_set_grad_enabled(ctx, prev);
    CHECK_FAILS(ctx, ln_backward(ctx, r3, ones, false), LN_ERR_STATE);

    /* seed checks: non-scalar without gradient, wrong gradient shape */
    ln_tensor *r4, *bad;
    CHECK_OK(ctx, ln_relu(ctx, x, &r4));
    CHECK_FAILS(ctx, ln_backward(ctx, r4, NULL, false), LN_ERR_STATE);
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F64, ln_cpu(), 1, (int64_t[]){3}, &bad));
    CHECK_FAILS(ctx, ln_backward(ctx, r4, bad, false), LN_ERR_SHAPE);

    /* backward on a leaf accumulates the seed into its own grad */
    ln_tensor *leaf;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F64, ln_cpu(), 0, NULL, &leaf));
    leaf->requires_grad = true;
    CHECK_OK(ctx, ln_backward(ctx, leaf, NULL, false));
    double lg;
    CHECK_OK(ctx, ln_tensor_item(ctx, leaf->grad, &lg));
    CHECK(lg == 1, "leaf backward seeds 1");

    ln_tensor *all[] = {x, r, s, ones, r2, r3, r4, bad, leaf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ln_tensor_release(all[i]);
    ln_ctx_release(ctx);
    return test_finish();
}
