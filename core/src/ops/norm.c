/* batch_norm2d: argument checks, statistics, the in-place running-statistics update
 * (PyTorch's rule), dispatch and autograd. x is (N,C,H,W); running_mean, running_var,
 * weight and bias are (C) and optional as described in lunet/ops.h.
 * Training: normalise with the batch mean and biased variance, then
 *   running_mean = (1-momentum)*running_mean + momentum*mean
 *   running_var  = (1-momentum)*running_var  + momentum*var*M/(M-1)   (M = N*H*W)
 * Eval: normalise with the running statistics. eps is added to the variance inside
 * the square root. The node's inputs are x, weight and bias; the running statistics
 * never receive a gradient. On CUDA everything stays on the device: the statistics
 * (mean, invstd, var in double) live in a device tensor the node saves, and the
 * running statistics are updated there. */
#include <math.h>
#include <string.h>
#include "../dispatch.h"
#include "../kernels/norm.h"

static const char *const OP = "batch_norm2d";

/* What backward needs besides x and weight: the statistics used, one value per
 * channel, kept in double whatever the dtype (on CUDA they are the saved device
 * tensor instead, and stats[] is empty). */
typedef struct bn_state {
    bool training;
    int64_t C;
    double *mean, *invstd; /* point into stats[] */
    double stats[];        /* mean[C] then invstd[C] */
} bn_state;

static ln_status bn_state_new(ln_ctx *ctx, int64_t C, bool training, bn_state **out) {
    bn_state *s = malloc(sizeof *s + (size_t)(2 * C + 1) * sizeof(double));
    if (!s) return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory for %lld channel statistics", OP, (long long)C);
    s->training = training;
    s->C = C;
    s->mean = s->stats;
    s->invstd = s->stats + C;
    *out = s;
    return LN_OK;
}

/* ------------------------------------------------------------ backward */
/* saved[0] = x (contiguous), saved[1] = weight (or NULL), on CUDA saved[2] = the
 * statistics (3C doubles on the device: mean, invstd, var) */
static ln_status bn_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                             ln_tensor **grad_in) {
    const bn_state *s = self->state;
    const ln_tensor *x = self->saved[0], *w = self->saved[1];
    int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    ln_path path;
    ln_tensor *ts[2] = {(ln_tensor *)x, (ln_tensor *)grad_out};
    const char *names[2] = {"x", "grad"};
    LN_TRY(ln_pick_path(ctx, OP, 2, ts, names, &path));
    ln_device dev = ln_tensor_device(x);
    if (ln_node_needs_grad(self, 0)) LN_TRY(ln_tensor_empty_like(ctx, x, &grad_in[0]));
    if (ln_node_needs_grad(self, 1)) LN_TRY(ln_tensor_empty(ctx, x->dtype, dev, 1, &C, &grad_in[1]));
    if (ln_node_needs_grad(self, 2)) LN_TRY(ln_tensor_empty(ctx, x->dtype, dev, 1, &C, &grad_in[2]));
    if (path == LN_PATH_CUDA) {
        const double *mean = ln_tensor_data(self->saved[2]);
        return ln_cuda_bn_bwd(ctx, N, C, HW, s->training, ln_f32(x), mean, mean + C, w ? ln_f32(w) : NULL,
                              ln_f32(grad_out), grad_in[0] ? ln_f32(grad_in[0]) : NULL,
                              grad_in[1] ? ln_f32(grad_in[1]) : NULL, grad_in[2] ? ln_f32(grad_in[2]) : NULL);
    }
    if (path == LN_PATH_CPU) {
        ln_cpu_bn_bwd(ctx, N, C, HW, s->training, ln_f32(x), s->mean, s->invstd,
                      w ? ln_f32(w) : NULL, ln_f32(grad_out),
                      grad_in[0] ? ln_f32(grad_in[0]) : NULL,
                      grad_in[1] ? ln_f32(grad_in[1]) : NULL,
                      grad_in[2] ? ln_f32(grad_in[2]) : NULL);
        return LN_OK;
    }
    double *xb = NULL, *wb = NULL, *gyb = NULL, *gxb = NULL, *gwb = NULL, *gbb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    LN_CHECK(st, ln_ref_in(ctx, grad_out, &gyb), done);
    if (w) LN_CHECK(st, ln_ref_in(ctx, w, &wb), done);
    if (grad_in[0]) LN_CHECK(st, ln_ref_buf(ctx, N * C * HW, &gxb), done);
    if (grad_in[1]) LN_CHECK(st, ln_ref_buf(ctx, C, &gwb), done);
    if (grad_in[2]) LN_CHECK(st, ln_ref_buf(ctx, C, &gbb), done);
    ln_ref_bn_bwd(N, C, HW, s->training, xb, s->mean, s->invstd, wb, gyb, gxb, gwb, gbb);
    if (gxb) LN_CHECK(st, ln_ref_out(ctx, grad_in[0], gxb), done);
    if (gwb) LN_CHECK(st, ln_ref_out(ctx, grad_in[1], gwb), done);
    if (gbb) LN_CHECK(st, ln_ref_out(ctx, grad_in[2], gbb), done);
done:
    free(xb); free(wb); free(gyb); free(gxb); free(gwb); free(gbb);
    return st;
}

/* ------------------------------------------------------------ checks */
/* A per-channel tensor (running stat, weight, bias) must be (C). */
static ln_status check_channels(ln_ctx *ctx, const char *arg, const ln_tensor *t,
                                const ln_tensor *x) {
    if (!t) return LN_OK;
    if (t->ndim == 1 && t->shape[0] == x->shape[1]) return LN_OK;
    char a[300], b[300];
    ln_describe(t, a, sizeof a);
    ln_describe(x, b, sizeof b);
    return ln_fail(ctx, LN_ERR_SHAPE, "%s: '%s' %s must be (C) = [%lld] for input 'x' %s with %lld channels",
                   OP, arg, a, (long long)x->shape[1], b, (long long)x->shape[1]);
}

static ln_status check_args(ln_ctx *ctx, ln_tensor *x, ln_tensor *rm, ln_tensor *rv,
                            ln_tensor *w, ln_tensor *b, bool training, double momentum,
                            double eps) {
    LN_TRY(ln_check_float(ctx, OP, "x", x));
    LN_TRY(ln_check_ndim(ctx, OP, "x", x, 4));
    if (!(eps >= 0) || isinf(eps))
        return ln_fail(ctx, LN_ERR_ARG, "%s: eps must be finite and >= 0, got %g", OP, eps);
    if (!(momentum >= 0 && momentum <= 1))
        return ln_fail(ctx, LN_ERR_ARG, "%s: momentum must be in [0, 1], got %g", OP, momentum);
    if (!rm != !rv)
        return ln_fail(ctx, LN_ERR_ARG, "%s: give both 'running_mean' and 'running_var' or neither (got %s only)",
                       OP, rm ? "running_mean" : "running_var");
    if (!training && !rm)
        return ln_fail(ctx, LN_ERR_ARG, "%s: eval mode (training = false) needs 'running_mean' and 'running_var'", OP);
    LN_TRY(check_channels(ctx, "running_mean", rm, x));
    LN_TRY(check_channels(ctx, "running_var", rv, x));
    LN_TRY(check_channels(ctx, "weight", w, x));
    LN_TRY(check_channels(ctx, "bias", b, x));
    if (training && x->shape[0] * x->shape[2] * x->shape[3] <= 1) {
        char a[300];
        ln_describe(x, a, sizeof a);
        return ln_fail(ctx, LN_ERR_SHAPE, "%s: expected more than 1 value per channel when training, got input 'x' %s",
                       OP, a);
    }
    return LN_OK;
}

/* ------------------------------------------------------------ forward */
/* y = batch norm of xc with the statistics in s (f64/ref or f32/cpu). */
static ln_status bn_apply(ln_ctx *ctx, ln_path path, const ln_tensor *xc, const ln_tensor *wc,
                          const ln_tensor *bc, const bn_state *s, ln_tensor *y) {
    int64_t N = xc->shape[0], C = xc->shape[1], HW = xc->shape[2] * xc->shape[3];
    if (path == LN_PATH_CPU) {
        ln_cpu_bn_fwd(ctx, N, C, HW, ln_f32(xc), s->mean, s->invstd, wc ? ln_f32(wc) : NULL,
                      bc ? ln_f32(bc) : NULL, ln_f32(y));
        return LN_OK;
    }
    double *xb = NULL, *wb = NULL, *bb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, xc, &xb), done);
    if (wc) LN_CHECK(st, ln_ref_in(ctx, wc, &wb), done);
    if (bc) LN_CHECK(st, ln_ref_in(ctx, bc, &bb), done);
    LN_CHECK(st, ln_ref_buf(ctx, N * C * HW, &yb), done);
    ln_ref_bn_fwd(N, C, HW, xb, s->mean, s->invstd, wb, bb, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    free(xb); free(wb); free(bb); free(yb);
    return st;
}

/* Batch mean into s->mean and biased variance into var[C]. */
static ln_status bn_batch_stats(ln_ctx *ctx, ln_path path, const ln_tensor *xc, bn_state *s,
                                double *var) {
    int64_t N = xc->shape[0], C = xc->shape[1], HW = xc->shape[2] * xc->shape[3];
    if (path == LN_PATH_CPU) {
        ln_cpu_bn_stats(ctx, N, C, HW, ln_f32(xc), s->mean, var);
        return LN_OK;
    }
    double *xb;
    LN_TRY(ln_ref_in(ctx, xc, &xb));
    ln_ref_bn_stats(N, C, HW, xb, s->mean, var);
    free(xb);
    return LN_OK;
}

/* running = (1-momentum)*running + momentum*stat, written back into t in place. */
static ln_status update_running(ln_ctx *ctx, ln_tensor *t, const double *stat, double scale,
                                double momentum) {
    int64_t C = t->shape[0];
    ln_tensor *tc = NULL;
    double *v = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, t, &tc), done);
    LN_CHECK(st, ln_ref_in(ctx, tc, &v), done);
    for (int64_t c = 0; c < C; c++) v[c] = (1 - momentum) * v[c] + momentum * stat[c] * scale;
    LN_CHECK(st, ln_ref_out(ctx, tc, v), done);
    if (tc != t) st = ln_tensor_copy_(ctx, t, tc);
done:
    free(v);
    ln_tensor_release(tc);
    return st;
}

/* The running statistics updated in place on the device from stats (3C doubles:
 * mean, invstd, var), through contiguous copies when they are strided views. */
static ln_status update_running_cuda(ln_ctx *ctx, ln_tensor *rm, ln_tensor *rv, const ln_tensor *stats,
                                     double unbias, double momentum) {
    int64_t C = rm->shape[0];
    const double *mean = ln_tensor_data(stats);
    ln_tensor *rmc = NULL, *rvc = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, rm, &rmc), done);
    LN_CHECK(st, ln_tensor_contiguous(ctx, rv, &rvc), done);
    LN_CHECK(st, ln_cuda_bn_update_running(ctx, C, momentum, unbias, mean, mean + 2 * C, ln_f32(rmc), ln_f32(rvc)),
             done);
    if (rmc != rm) LN_CHECK(st, ln_tensor_copy_(ctx, rm, rmc), done);
    if (rvc != rv) st = ln_tensor_copy_(ctx, rv, rvc);
done:
    ln_tensor_release(rmc);
    ln_tensor_release(rvc);
    return st;
}

static ln_status bn_forward_cuda(ln_ctx *ctx, ln_tensor *x, ln_tensor *rm, ln_tensor *rv, ln_tensor *weight,
                                 ln_tensor *bias, bool training, double momentum, double eps, ln_tensor **out) {
    int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3], M = N * HW;
    ln_tensor *xc = NULL, *wc = NULL, *bc = NULL, *rmc = NULL, *rvc = NULL, *stats = NULL, *y = NULL;
    bn_state *s = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), done);
    if (weight) LN_CHECK(st, ln_tensor_contiguous(ctx, weight, &wc), done);
    if (bias) LN_CHECK(st, ln_tensor_contiguous(ctx, bias, &bc), done);
    int64_t n_stats = 3 * C;
    LN_CHECK(st, ln_tensor_empty(ctx, LN_F64, ln_tensor_device(x), 1, &n_stats, &stats), done);
    double *mean = ln_tensor_data(stats), *invstd = mean + C, *var = mean + 2 * C;
    if (training) {
        LN_CHECK(st, ln_cuda_bn_train_stats(ctx, N, C, HW, eps, ln_f32(xc), mean, var, invstd), done);
    } else {
        LN_CHECK(st, ln_tensor_contiguous(ctx, rm, &rmc), done);
        LN_CHECK(st, ln_tensor_contiguous(ctx, rv, &rvc), done);
        LN_CHECK(st, ln_cuda_bn_eval_stats(ctx, C, eps, ln_f32(rmc), ln_f32(rvc), mean, invstd), done);
    }
    LN_CHECK(st, ln_tensor_empty_like(ctx, xc, &y), done);
    LN_CHECK(st, ln_cuda_bn_fwd(ctx, N, C, HW, ln_f32(xc), mean, invstd, wc ? ln_f32(wc) : NULL,
                                bc ? ln_f32(bc) : NULL, ln_f32(y)), done);
    ln_tensor *inputs[3] = {x, weight, bias};
    if (ln_any_requires_grad(ctx, 3, inputs)) {
        ln_node *n;
        LN_CHECK(st, bn_state_new(ctx, 0, training, &s), done);
        LN_CHECK(st, ln_node_attach(ctx, y, OP, bn_backward, 3, inputs, &n), done);
        LN_CHECK(st, ln_node_save(ctx, n, xc, NULL), done);
        LN_CHECK(st, ln_node_save(ctx, n, wc, NULL), done);
        LN_CHECK(st, ln_node_save(ctx, n, stats, NULL), done);
        ln_node_set_state_owned(n, s, free);
        s = NULL;
    }
    if (training && rm) LN_CHECK(st, update_running_cuda(ctx, rm, rv, stats, (double)M / (double)(M - 1), momentum),
                                 done);
done:
    free(s);
    ln_tensor_release(xc); ln_tensor_release(wc); ln_tensor_release(bc);
    ln_tensor_release(rmc); ln_tensor_release(rvc); ln_tensor_release(stats);
    if (st == LN_OK) *out = y;
    else ln_tensor_release(y);
    return st;
}

ln_status ln_batch_norm2d(ln_ctx *ctx, ln_tensor *x, ln_tensor *running_mean,
                          ln_tensor *running_var, ln_tensor *weight, ln_tensor *bias,
                          bool training, double momentum, double eps, ln_tensor **out) {
    *out = NULL;
    LN_TRY(check_args(ctx, x, running_mean, running_var, weight, bias, training, momentum, eps));
    ln_path path;
    ln_tensor *ts[5] = {x, running_mean, running_var, weight, bias};
    const char *names[5] = {"x", "running_mean", "running_var", "weight", "bias"};
    LN_TRY(ln_pick_path(ctx, OP, 5, ts, names, &path));
    if (path == LN_PATH_CUDA)
        return bn_forward_cuda(ctx, x, running_mean, running_var, weight, bias, training, momentum, eps, out);

    int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    ln_tensor *xc = NULL, *wc = NULL, *bc = NULL, *y = NULL;
    bn_state *s = NULL;
    double *var = NULL;
    ln_status st;
    LN_CHECK(st, bn_state_new(ctx, C, training, &s), fail);
    LN_CHECK(st, ln_ref_buf(ctx, C, &var), fail);
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    if (weight) LN_CHECK(st, ln_tensor_contiguous(ctx, weight, &wc), fail);
    if (bias) LN_CHECK(st, ln_tensor_contiguous(ctx, bias, &bc), fail);
    if (training) {
        LN_CHECK(st, bn_batch_stats(ctx, path, xc, s, var), fail);
    } else {
        LN_CHECK(st, ln_tensor_to_f64(ctx, running_mean, s->mean), fail);
        LN_CHECK(st, ln_tensor_to_f64(ctx, running_var, var), fail);
    }
    for (int64_t c = 0; c < C; c++) s->invstd[c] = 1.0 / sqrt(var[c] + eps);
    LN_CHECK(st, ln_tensor_empty_like(ctx, xc, &y), fail);
    LN_CHECK(st, bn_apply(ctx, path, xc, wc, bc, s, y), fail);

    const double *batch_mean = s->mean; /* stays valid: s lives on in y's node or until the end */
    ln_tensor *inputs[3] = {x, weight, bias};
    if (ln_any_requires_grad(ctx, 3, inputs)) {
        ln_node *n;
        LN_CHECK(st, ln_node_attach(ctx, y, OP, bn_backward, 3, inputs, &n), fail);
        LN_CHECK(st, ln_node_save(ctx, n, xc, NULL), fail);
        LN_CHECK(st, ln_node_save(ctx, n, wc, NULL), fail);
        ln_node_set_state_owned(n, s, free);
        s = NULL;
    }
    if (training && running_mean) {
        LN_CHECK(st, update_running(ctx, running_mean, batch_mean, 1.0, momentum), fail);
        LN_CHECK(st, update_running(ctx, running_var, var, (double)M / (double)(M - 1), momentum), fail);
    }
    free(s);
    free(var);
    ln_tensor_release(xc); ln_tensor_release(wc); ln_tensor_release(bc);
    *out = y;
    return LN_OK;
fail:
    free(s);
    free(var);
    ln_tensor_release(xc); ln_tensor_release(wc); ln_tensor_release(bc);
    ln_tensor_release(y);
    return st;
}
