/* relu, relu6, sigmoid: checks, dispatch and autograd. This file is the pattern every
 * op family follows: validate -> make inputs contiguous -> pick path -> run kernel ->
 * record a node that saves what backward needs. */
#include "../dispatch.h"
#include "../kernels/activation.h"

static const char *const act_names[] = {"relu", "relu6", "sigmoid"};

/* y = f(x) or gx = f'(saved) * gy on contiguous tensors of one shape. */
static ln_status act_run(ln_ctx *ctx, ln_act a, bool backward, const ln_tensor *in,
                         const ln_tensor *gy, ln_tensor *out) {
    ln_path path;
    ln_tensor *ts[3] = {(ln_tensor *)in, (ln_tensor *)gy, out};
    const char *names[3] = {"x", "grad", "out"};
    LN_TRY(ln_pick_path(ctx, act_names[a], 3, ts, names, &path));
    int64_t n = ln_tensor_numel(in);
    if (path == LN_PATH_CUDA) {
        return backward ? ln_cuda_act_bwd(ctx, a, n, ln_f32(in), ln_f32(gy), ln_f32(out))
                        : ln_cuda_act_fwd(ctx, a, n, ln_f32(in), ln_f32(out));
    }
    if (path == LN_PATH_CPU) {
        if (backward) ln_cpu_act_bwd(ctx, a, n, ln_f32(in), ln_f32(gy), ln_f32(out));
        else ln_cpu_act_fwd(ctx, a, n, ln_f32(in), ln_f32(out));
        return LN_OK;
    }
    double *xb = NULL, *gb = NULL, *ob = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, in, &xb), done);
    LN_CHECK(st, ln_ref_buf(ctx, n, &ob), done);
    if (backward) {
        LN_CHECK(st, ln_ref_in(ctx, gy, &gb), done);
        ln_ref_act_bwd(a, n, xb, gb, ob);
    } else {
        ln_ref_act_fwd(a, n, xb, ob);
    }
    st = ln_ref_out(ctx, out, ob);
done:
    free(xb); free(gb); free(ob);
    return st;
}

static ln_status act_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                              ln_tensor **grad_in) {
    ln_act a = *(const ln_act *)self->state;
    LN_TRY(ln_tensor_empty_like(ctx, grad_out, &grad_in[0]));
    return act_run(ctx, a, true, self->saved[0], grad_out, grad_in[0]);
}

static ln_status act_forward(ln_ctx *ctx, ln_act a, ln_tensor *x, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, act_names[a], "x", x));
    ln_tensor *xc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    LN_CHECK(st, ln_tensor_empty_like(ctx, xc, &y), fail);
    LN_CHECK(st, act_run(ctx, a, false, xc, NULL, y), fail);
    if (ln_any_requires_grad(ctx, 1, &x)) {
        ln_node *n;
        LN_CHECK(st, ln_node_record(ctx, y, act_names[a], act_backward, 1, &x, &a, sizeof a, &n), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_act_saves_output(a) ? y : xc, NULL), fail);
    }
    ln_tensor_release(xc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xc);
    ln_tensor_release(y);
    return st;
}

ln_status ln_relu(ln_ctx *ctx, ln_tensor *x, ln_tensor **out) { return act_forward(ctx, LN_ACT_RELU, x, out); }
ln_status ln_relu6(ln_ctx *ctx, ln_tensor *x, ln_tensor **out) { return act_forward(ctx, LN_ACT_RELU6, x, out); }
ln_status ln_sigmoid(ln_ctx *ctx, ln_tensor *x, ln_tensor **out) { return act_forward(ctx, LN_ACT_SIGMOID, x, out); }
