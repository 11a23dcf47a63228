/* Inverted dropout: y = x * mask with mask[i] = 0 (probability p) or 1/(1-p), drawn
 * from the context RNG. The mask is saved for backward (gx = gy * mask). In eval
 * mode or with p = 0 the op is a differentiable copy. A CUDA mask is drawn on the host
 * (the CPU kernel) and copied to the device, so a seed gives the same mask, and the
 * same result, on every device. */
#include "../dispatch.h"
#include "../kernels/elementwise.h"

/* y = x * m elementwise on contiguous tensors of one shape. */
static ln_status mask_mul(ln_ctx *ctx, ln_path path, const ln_tensor *x, const ln_tensor *m,
                          ln_tensor *y) {
    if (path != LN_PATH_REF) {
        ln_bcast bc;
        ln_bcast_make(x->ndim, x->shape, x->shape, x->shape, &bc);
        if (path == LN_PATH_CUDA) return ln_cuda_binary_fwd(ctx, LN_BIN_MUL, &bc, ln_f32(x), ln_f32(m), ln_f32(y));
        ln_cpu_binary_fwd(ctx, LN_BIN_MUL, &bc, ln_f32(x), ln_f32(m), ln_f32(y));
        return LN_OK;
    }
    double *xb = NULL, *mb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    LN_CHECK(st, ln_ref_in(ctx, m, &mb), done);
    LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(y), &yb), done);
    ln_ref_binary_fwd(LN_BIN_MUL, x->ndim, x->shape, x->shape, x->shape, xb, mb, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    free(xb); free(mb); free(yb);
    return st;
}

/* A new mask tensor shaped like x (same dtype and device). */
static ln_status make_mask(ln_ctx *ctx, ln_path path, const ln_tensor *x, double p,
                           ln_tensor **mask) {
    int64_t n = ln_tensor_numel(x);
    if (path == LN_PATH_CUDA) { /* drawn on the host, then copied */
        ln_tensor *host;
        LN_TRY(ln_tensor_empty(ctx, LN_F32, ln_cpu(), x->ndim, x->shape, &host));
        ln_cpu_dropout_mask(ctx, n, p, ln_f32(host));
        ln_status st = ln_tensor_to_device(ctx, host, ln_tensor_device(x), mask);
        ln_tensor_release(host);
        return st;
    }
    LN_TRY(ln_tensor_empty_like(ctx, x, mask));
    if (path == LN_PATH_CPU) {
        ln_cpu_dropout_mask(ctx, n, p, ln_f32(*mask));
        return LN_OK;
    }
    double *mb = NULL;
    ln_status st = ln_ref_buf(ctx, n, &mb);
    if (st == LN_OK) {
        ln_ref_dropout_mask(ctx, n, p, mb);
        st = ln_ref_out(ctx, *mask, mb);
    }
    free(mb);
    if (st != LN_OK) { ln_tensor_release(*mask); *mask = NULL; }
    return st;
}

/* saved: the mask, or nothing (NULL slot) for the identity of eval mode / p = 0 */
static ln_status dropout_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                  ln_tensor **grad_in) {
    const ln_tensor *mask = self->saved[0];
    if (!mask) return ln_tensor_clone(ctx, grad_out, &grad_in[0]);
    ln_tensor *ts[2] = {(ln_tensor *)grad_out, (ln_tensor *)mask};
    const char *names[2] = {"grad", "mask"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "dropout", 2, ts, names, &path));
    LN_TRY(ln_tensor_empty_like(ctx, grad_out, &grad_in[0]));
    return mask_mul(ctx, path, grad_out, mask, grad_in[0]);
}

ln_status ln_dropout(ln_ctx *ctx, ln_tensor *x, double p, bool training, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, "dropout", "x", x));
    if (!(p >= 0 && p < 1))
        return ln_fail(ctx, LN_ERR_ARG, "dropout: probability p must be in [0, 1), got %g", p);
    bool active = training && p > 0;
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "dropout", 1, &x, (const char *const[]){"x"}, &path));
    ln_tensor *xc = NULL, *mask = NULL, *y = NULL;
    ln_status st;
    if (active) {
        LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
        LN_CHECK(st, make_mask(ctx, path, xc, p, &mask), fail);
        LN_CHECK(st, ln_tensor_empty_like(ctx, xc, &y), fail);
        LN_CHECK(st, mask_mul(ctx, path, xc, mask, y), fail);
    } else {
        LN_CHECK(st, ln_tensor_clone(ctx, x, &y), fail);
    }
    if (ln_any_requires_grad(ctx, 1, &x)) {
        ln_node *n;
        LN_CHECK(st, ln_node_attach(ctx, y, "dropout", dropout_backward, 1, &x, &n), fail);
        LN_CHECK(st, ln_node_save(ctx, n, mask, NULL), fail);
    }
    ln_tensor_release(xc);
    ln_tensor_release(mask);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xc);
    ln_tensor_release(mask);
    ln_tensor_release(y);
    return st;
}
