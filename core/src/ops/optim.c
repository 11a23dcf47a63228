/* sgd_step: checks of the hyper-parameters (PyTorch's rules) and of the tensors, then
 * the in-place update of param and momentum_buf (see kernels/optim.h). No autograd.
 * param, grad and momentum_buf have one shape, float dtype and device; param and
 * momentum_buf may be strided views (updated through a contiguous copy then). */
#include <math.h>
#include "../dispatch.h"
#include "../kernels/optim.h"

static const char *const OP = "sgd_step";

static ln_status check_hyper(ln_ctx *ctx, const ln_sgd_params *p) {
    if (!(p->lr >= 0) || isinf(p->lr))
        return ln_fail(ctx, LN_ERR_ARG, "%s: learning rate must be finite and >= 0, got %g", OP, p->lr);
    if (!(p->momentum >= 0) || isinf(p->momentum))
        return ln_fail(ctx, LN_ERR_ARG, "%s: momentum must be finite and >= 0, got %g", OP, p->momentum);
    if (!(p->weight_decay >= 0) || isinf(p->weight_decay))
        return ln_fail(ctx, LN_ERR_ARG, "%s: weight_decay must be finite and >= 0, got %g", OP, p->weight_decay);
    if (!isfinite(p->dampening))
        return ln_fail(ctx, LN_ERR_ARG, "%s: dampening must be finite, got %g", OP, p->dampening);
    if (p->nesterov && (p->momentum <= 0 || p->dampening != 0))
        return ln_fail(ctx, LN_ERR_ARG, "%s: nesterov momentum requires momentum > 0 and dampening 0 "
                       "(got momentum %g, dampening %g)", OP, p->momentum, p->dampening);
    return LN_OK;
}

static ln_status check_same_shape(ln_ctx *ctx, const char *arg, const ln_tensor *t,
                                  const ln_tensor *param) {
    if (ln_tensor_same_shape(t, param)) return LN_OK;
    char a[300], b[300];
    ln_describe(t, a, sizeof a);
    ln_describe(param, b, sizeof b);
    return ln_fail(ctx, LN_ERR_SHAPE, "%s: '%s' %s must have the shape of 'param' %s", OP, arg, a, b);
}

ln_status ln_sgd_step(ln_ctx *ctx, ln_tensor *param, const ln_tensor *grad,
                      ln_tensor *momentum_buf, bool first_step, ln_sgd_params p) {
    LN_TRY(ln_check_float(ctx, OP, "param", param));
    LN_TRY(ln_check_not_null(ctx, OP, "grad", grad));
    LN_TRY(check_same_shape(ctx, "grad", grad, param));
    LN_TRY(check_hyper(ctx, &p));
    bool use_buf = p.momentum != 0;
    if (use_buf && !momentum_buf)
        return ln_fail(ctx, LN_ERR_ARG, "%s: momentum %g needs a 'momentum_buf' tensor", OP, p.momentum);
    if (!use_buf) momentum_buf = NULL; /* neither read nor written */
    if (momentum_buf) LN_TRY(check_same_shape(ctx, "momentum_buf", momentum_buf, param));
    ln_path path;
    ln_tensor *ts[3] = {param, (ln_tensor *)grad, momentum_buf};
    const char *names[3] = {"param", "grad", "momentum_buf"};
    LN_TRY(ln_pick_path(ctx, OP, 3, ts, names, &path));

    int64_t n = ln_tensor_numel(param);
    ln_tensor *pc = NULL, *gc = NULL, *bc = NULL;
    double *pb = NULL, *gb = NULL, *bb = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, param, &pc), done);
    LN_CHECK(st, ln_tensor_contiguous(ctx, grad, &gc), done);
    if (momentum_buf) LN_CHECK(st, ln_tensor_contiguous(ctx, momentum_buf, &bc), done);
    if (path == LN_PATH_CUDA) {
        LN_CHECK(st, ln_cuda_sgd_step(ctx, n, ln_f32(pc), ln_f32(gc), bc ? ln_f32(bc) : NULL, first_step, &p), done);
    } else if (path == LN_PATH_CPU) {
        ln_cpu_sgd_step(ctx, n, ln_f32(pc), ln_f32(gc), bc ? ln_f32(bc) : NULL, first_step, &p);
    } else {
        LN_CHECK(st, ln_ref_in(ctx, pc, &pb), done);
        LN_CHECK(st, ln_ref_in(ctx, gc, &gb), done);
        if (bc) LN_CHECK(st, ln_ref_in(ctx, bc, &bb), done);
        ln_ref_sgd_step(n, pb, gb, bb, first_step, &p);
        LN_CHECK(st, ln_ref_out(ctx, pc, pb), done);
        if (bc) LN_CHECK(st, ln_ref_out(ctx, bc, bb), done);
    }
    if (pc != param) LN_CHECK(st, ln_tensor_copy_(ctx, param, pc), done);
    if (bc && bc != momentum_buf) LN_CHECK(st, ln_tensor_copy_(ctx, momentum_buf, bc), done);
done:
    free(pb); free(gb); free(bb);
    ln_tensor_release(pc); ln_tensor_release(gc); ln_tensor_release(bc);
    return st;
}
