/* conv2d and conv1d across channels (ECA): argument checks, dispatch and autograd.
 * Forward saves the (contiguous) input for the weight gradient and the weight for the
 * input gradient, each only when that gradient will be wanted. */
#include <stdio.h>
#include "../dispatch.h"
#include "../kernels/conv.h"

/* ================================================================ conv2d */

typedef struct conv2d_state {
    ln_conv_shape s;
} conv2d_state;

static ln_status conv2d_check(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, ln_tensor *b,
                              ln_conv2d_params p, ln_conv_shape *s, ln_path *path) {
    static const char *const names[3] = {"x", "w", "b"};
    LN_TRY(ln_check_float(ctx, "conv2d", "x", x));
    LN_TRY(ln_check_float(ctx, "conv2d", "w", w));
    LN_TRY(ln_check_ndim(ctx, "conv2d", "x", x, 4));
    LN_TRY(ln_check_ndim(ctx, "conv2d", "w", w, 4));
    if (b) LN_TRY(ln_check_ndim(ctx, "conv2d", "b", b, 1));
    ln_tensor *ts[3] = {x, w, b};
    LN_TRY(ln_pick_path(ctx, "conv2d", 3, ts, names, path));

    char xs[256], ws[256];
    ln_shape_format(4, x->shape, xs, sizeof xs);
    ln_shape_format(4, w->shape, ws, sizeof ws);
    if (p.stride_h < 1 || p.stride_w < 1)
        return ln_fail(ctx, LN_ERR_ARG, "conv2d: stride must be >= 1, got (%d, %d)", p.stride_h, p.stride_w);
    if (p.pad_h < 0 || p.pad_w < 0)
        return ln_fail(ctx, LN_ERR_ARG, "conv2d: padding must be >= 0, got (%d, %d)", p.pad_h, p.pad_w);
    if (p.groups < 1)
        return ln_fail(ctx, LN_ERR_ARG, "conv2d: groups must be >= 1, got %d", p.groups);
    int64_t cin = x->shape[1], cout = w->shape[0], g = p.groups;
    if (cin % g != 0)
        return ln_fail(ctx, LN_ERR_SHAPE, "conv2d: groups %d does not divide the %lld channels of input 'x' %s",
                       p.groups, (long long)cin, xs);
    if (cout % g != 0)
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "conv2d: groups %d does not divide the %lld output channels of weight 'w' %s",
                       p.groups, (long long)cout, ws);
    if (w->shape[1] * g != cin)
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "conv2d: input 'x' has %lld channels %s but weight 'w' expects %lld (groups %d) %s",
                       (long long)cin, xs, (long long)(w->shape[1] * g), p.groups, ws);
    if (b && b->shape[0] != cout) {
        char bs[64];
        ln_shape_format(1, b->shape, bs, sizeof bs);
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "conv2d: bias 'b' %s must have one value per output channel of weight 'w' %s",
                       bs, ws);
    }
    int64_t hp = x->shape[2] + 2 * (int64_t)p.pad_h, wp = x->shape[3] + 2 * (int64_t)p.pad_w;
    if (w->shape[2] < 1 || w->shape[3] < 1 || w->shape[2] > hp || w->shape[3] > wp)
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "conv2d: kernel %lldx%lld of weight 'w' %s does not fit the padded input "
                       "%lldx%lld of 'x' %s (padding %d, %d)",
                       (long long)w->shape[2], (long long)w->shape[3], ws, (long long)hp, (long long)wp,
                       xs, p.pad_h, p.pad_w);
    *s = (ln_conv_shape){
        .n = x->shape[0], .cin = cin, .h = x->shape[2], .w = x->shape[3],
        .cout = cout, .kh = w->shape[2], .kw = w->shape[3],
        .oh = (hp - w->shape[2]) / p.stride_h + 1, .ow = (wp - w->shape[3]) / p.stride_w + 1,
        .sh = p.stride_h, .sw = p.stride_w, .ph = p.pad_h, .pw = p.pad_w, .groups = g};
    return LN_OK;
}

/* The fast kernels need every tensor non-empty; empty problems go to the reference. */
static bool conv2d_empty(const ln_conv_shape *s) {
    return s->n * s->cin * s->h * s->w == 0 || s->cout * s->oh * s->ow == 0;
}

static ln_status conv2d_fwd_run(ln_ctx *ctx, ln_path path, const ln_conv_shape *s, const ln_tensor *x,
                                const ln_tensor *w, const ln_tensor *b, ln_tensor *y) {
    if (path == LN_PATH_CUDA) /* handles empty problems itself */
        return ln_cuda_conv2d_fwd(ctx, s, ln_f32(x), ln_f32(w), b ? ln_f32(b) : NULL, ln_f32(y));
    if (path == LN_PATH_CPU && !conv2d_empty(s))
        return ln_cpu_conv2d_fwd(ctx, s, ln_f32(x), ln_f32(w), b ? ln_f32(b) : NULL, ln_f32(y));
    double *xb = NULL, *wb = NULL, *bb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    LN_CHECK(st, ln_ref_in(ctx, w, &wb), done);
    if (b) LN_CHECK(st, ln_ref_in(ctx, b, &bb), done);
    LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(y), &yb), done);
    ln_ref_conv2d_fwd(s, xb, wb, bb, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    free(xb); free(wb); free(bb); free(yb);
    return st;
}

/* x (saved input) is NULL when gw is not wanted, w when gx is not wanted. */
static ln_status conv2d_bwd_run(ln_ctx *ctx, ln_path path, const ln_conv_shape *s, const ln_tensor *x,
                                const ln_tensor *w, const ln_tensor *gy, ln_tensor *gx, ln_tensor *gw,
                                ln_tensor *gb) {
    if (path == LN_PATH_CUDA)
        return ln_cuda_conv2d_bwd(ctx, s, x ? ln_f32(x) : NULL, w ? ln_f32(w) : NULL, ln_f32(gy),
                                  gx ? ln_f32(gx) : NULL, gw ? ln_f32(gw) : NULL, gb ? ln_f32(gb) : NULL);
    if (path == LN_PATH_CPU && !conv2d_empty(s))
        return ln_cpu_conv2d_bwd(ctx, s, x ? ln_f32(x) : NULL, w ? ln_f32(w) : NULL, ln_f32(gy),
                                 gx ? ln_f32(gx) : NULL, gw ? ln_f32(gw) : NULL, gb ? ln_f32(gb) : NULL);
    double *xb = NULL, *wb = NULL, *gyb = NULL, *gxb = NULL, *gwb = NULL, *gbb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, gy, &gyb), done);
    if (x) LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    if (w) LN_CHECK(st, ln_ref_in(ctx, w, &wb), done);
    if (gx) LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(gx), &gxb), done);
    if (gw) LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(gw), &gwb), done);
    if (gb) LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(gb), &gbb), done);
    ln_ref_conv2d_bwd(s, xb, wb, gyb, gxb, gwb, gbb);
    if (gx) LN_CHECK(st, ln_ref_out(ctx, gx, gxb), done);
    if (gw) LN_CHECK(st, ln_ref_out(ctx, gw, gwb), done);
    if (gb) st = ln_ref_out(ctx, gb, gbb);
done:
    free(xb); free(wb); free(gyb); free(gxb); free(gwb); free(gbb);
    return st;
}

/* saved[0] = x (or NULL), saved[1] = w (or NULL) */
static ln_status conv2d_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                 ln_tensor **grad_in) {
    static const char *const names[3] = {"grad", "x", "w"};
    const ln_conv_shape *s = &((const conv2d_state *)self->state)->s;
    const ln_tensor *x = self->saved[0], *w = self->saved[1];
    ln_tensor *ts[3] = {(ln_tensor *)grad_out, (ln_tensor *)x, (ln_tensor *)w};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "conv2d backward", 3, ts, names, &path));
    ln_tensor *gx = NULL, *gw = NULL, *gb = NULL;
    ln_status st;
    ln_device dev = ln_tensor_device(grad_out);
    int64_t xshape[4] = {s->n, s->cin, s->h, s->w};
    int64_t wshape[4] = {s->cout, s->cin / s->groups, s->kh, s->kw};
    if (ln_node_needs_grad(self, 0))
        LN_CHECK(st, ln_tensor_empty(ctx, grad_out->dtype, dev, 4, xshape, &gx), fail);
    if (ln_node_needs_grad(self, 1))
        LN_CHECK(st, ln_tensor_empty(ctx, grad_out->dtype, dev, 4, wshape, &gw), fail);
    if (ln_node_needs_grad(self, 2))
        LN_CHECK(st, ln_tensor_empty(ctx, grad_out->dtype, dev, 1, &s->cout, &gb), fail);
    LN_CHECK(st, conv2d_bwd_run(ctx, path, s, x, w, grad_out, gx, gw, gb), fail);
    grad_in[0] = gx;
    grad_in[1] = gw;
    grad_in[2] = gb;
    return LN_OK;
fail:
    ln_tensor_release(gx);
    ln_tensor_release(gw);
    ln_tensor_release(gb);
    return st;
}

ln_status ln_conv2d(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, ln_tensor *b, ln_conv2d_params p,
                    ln_tensor **out) {
    *out = NULL;
    conv2d_state state;
    ln_path path;
    LN_TRY(conv2d_check(ctx, x, w, b, p, &state.s, &path));
    const ln_conv_shape *s = &state.s;
    ln_tensor *xc = NULL, *wc = NULL, *bc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    LN_CHECK(st, ln_tensor_contiguous(ctx, w, &wc), fail);
    if (b) LN_CHECK(st, ln_tensor_contiguous(ctx, b, &bc), fail);
    int64_t yshape[4] = {s->n, s->cout, s->oh, s->ow};
    LN_CHECK(st, ln_tensor_empty(ctx, x->dtype, ln_tensor_device(x), 4, yshape, &y), fail);
    LN_CHECK(st, conv2d_fwd_run(ctx, path, s, xc, wc, bc, y), fail);
    ln_tensor *inputs[3] = {x, w, b};
    if (ln_any_requires_grad(ctx, 3, inputs)) {
        ln_node *n;
        LN_CHECK(st, ln_node_record(ctx, y, "conv2d", conv2d_backward, 3, inputs, &state, sizeof state, &n), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 1) ? xc : NULL, NULL), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 0) ? wc : NULL, NULL), fail);
    }
    ln_tensor_release(xc);
    ln_tensor_release(wc);
    ln_tensor_release(bc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xc);
    ln_tensor_release(wc);
    ln_tensor_release(bc);
    ln_tensor_release(y);
    return st;
}

/* ================================================================ conv1d across channels */

typedef struct conv1d_state {
    int64_t n, c, k, pad;
    int w_ndim; /* 1: w is (K), 3: w is (1,1,K) */
} conv1d_state;

static ln_status conv1d_check(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, int pad,
                              conv1d_state *s, ln_path *path) {
    static const char *const names[2] = {"x", "w"};
    LN_TRY(ln_check_float(ctx, "conv1d_channels", "x", x));
    LN_TRY(ln_check_float(ctx, "conv1d_channels", "w", w));
    char xs[256], ws[256];
    ln_shape_format(x->ndim, x->shape, xs, sizeof xs);
    ln_shape_format(w->ndim, w->shape, ws, sizeof ws);
    bool x_ok = x->ndim == 2 || (x->ndim == 4 && x->shape[2] == 1 && x->shape[3] == 1);
    if (!x_ok)
        return ln_fail(ctx, LN_ERR_SHAPE, "conv1d_channels: input 'x' must be (N,C) or (N,C,1,1), got %s", xs);
    bool w_ok = w->ndim == 1 || (w->ndim == 3 && w->shape[0] == 1 && w->shape[1] == 1);
    if (!w_ok)
        return ln_fail(ctx, LN_ERR_SHAPE, "conv1d_channels: weight 'w' must be (K) or (1,1,K), got %s", ws);
    ln_tensor *ts[2] = {x, w};
    LN_TRY(ln_pick_path(ctx, "conv1d_channels", 2, ts, names, path));
    if (pad < 0)
        return ln_fail(ctx, LN_ERR_ARG, "conv1d_channels: padding must be >= 0, got %d", pad);
    int64_t k = w->shape[w->ndim - 1];
    if (k != 2 * (int64_t)pad + 1)
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "conv1d_channels: kernel size %lld of weight 'w' %s with padding %d does not keep "
                       "the shape of 'x' %s (needs kernel size 2*pad+1 = %d)",
                       (long long)k, ws, pad, xs, 2 * pad + 1);
    *s = (conv1d_state){.n = x->shape[0], .c = x->shape[1], .k = k, .pad = pad, .w_ndim = w->ndim};
    return LN_OK;
}

/* saved[0] = x (or NULL), saved[1] = w (or NULL) */
static ln_status conv1d_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                 ln_tensor **grad_in) {
    static const char *const names[3] = {"grad", "x", "w"};
    const conv1d_state *s = self->state;
    const ln_tensor *x = self->saved[0], *w = self->saved[1];
    ln_tensor *ts[3] = {(ln_tensor *)grad_out, (ln_tensor *)x, (ln_tensor *)w};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "conv1d_channels backward", 3, ts, names, &path));
    ln_tensor *gx = NULL, *gw = NULL;
    double *xb = NULL, *wb = NULL, *gyb = NULL, *gxb = NULL, *gwb = NULL;
    ln_status st;
    /* gx takes the shape of grad_out, which is that of x */
    if (ln_node_needs_grad(self, 0)) LN_CHECK(st, ln_tensor_empty_like(ctx, grad_out, &gx), done);
    int64_t wshape[3] = {1, 1, s->k};
    if (ln_node_needs_grad(self, 1))
        LN_CHECK(st, ln_tensor_empty(ctx, grad_out->dtype, ln_tensor_device(grad_out), s->w_ndim,
                                     wshape + 3 - s->w_ndim, &gw), done);
    if (path == LN_PATH_CUDA) {
        st = ln_cuda_conv1d_channels_bwd(ctx, s->n, s->c, s->k, s->pad, x ? ln_f32(x) : NULL,
                                         w ? ln_f32(w) : NULL, ln_f32(grad_out), gx ? ln_f32(gx) : NULL,
                                         gw ? ln_f32(gw) : NULL);
        goto done;
    }
    if (path == LN_PATH_CPU) {
        ln_cpu_conv1d_channels_bwd(ctx, s->n, s->c, s->k, s->pad, x ? ln_f32(x) : NULL,
                                   w ? ln_f32(w) : NULL, ln_f32(grad_out), gx ? ln_f32(gx) : NULL,
                                   gw ? ln_f32(gw) : NULL);
        st = LN_OK;
        goto done;
    }
    LN_CHECK(st, ln_ref_in(ctx, grad_out, &gyb), done);
    if (x) LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    if (w) LN_CHECK(st, ln_ref_in(ctx, w, &wb), done);
    if (gx) LN_CHECK(st, ln_ref_buf(ctx, s->n * s->c, &gxb), done);
    if (gw) LN_CHECK(st, ln_ref_buf(ctx, s->k, &gwb), done);
    ln_ref_conv1d_channels_bwd(s->n, s->c, s->k, s->pad, xb, wb, gyb, gxb, gwb);
    if (gx) LN_CHECK(st, ln_ref_out(ctx, gx, gxb), done);
    if (gw) st = ln_ref_out(ctx, gw, gwb);
done:
    free(xb); free(wb); free(gyb); free(gxb); free(gwb);
    if (st != LN_OK) {
        ln_tensor_release(gx);
        ln_tensor_release(gw);
        return st;
    }
    grad_in[0] = gx;
    grad_in[1] = gw;
    return LN_OK;
}

ln_status ln_conv1d_channels(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, int pad, ln_tensor **out) {
    *out = NULL;
    conv1d_state s;
    ln_path path;
    LN_TRY(conv1d_check(ctx, x, w, pad, &s, &path));
    ln_tensor *xc = NULL, *wc = NULL, *y = NULL;
    double *xb = NULL, *wb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    LN_CHECK(st, ln_tensor_contiguous(ctx, w, &wc), fail);
    LN_CHECK(st, ln_tensor_empty_like(ctx, xc, &y), fail);
    if (path == LN_PATH_CUDA) {
        LN_CHECK(st, ln_cuda_conv1d_channels_fwd(ctx, s.n, s.c, s.k, s.pad, ln_f32(xc), ln_f32(wc), ln_f32(y)),
                 fail);
    } else if (path == LN_PATH_CPU) {
        ln_cpu_conv1d_channels_fwd(ctx, s.n, s.c, s.k, s.pad, ln_f32(xc), ln_f32(wc), ln_f32(y));
    } else {
        LN_CHECK(st, ln_ref_in(ctx, xc, &xb), fail);
        LN_CHECK(st, ln_ref_in(ctx, wc, &wb), fail);
        LN_CHECK(st, ln_ref_buf(ctx, s.n * s.c, &yb), fail);
        ln_ref_conv1d_channels_fwd(s.n, s.c, s.k, s.pad, xb, wb, yb);
        LN_CHECK(st, ln_ref_out(ctx, y, yb), fail);
    }
    ln_tensor *inputs[2] = {x, w};
    if (ln_any_requires_grad(ctx, 2, inputs)) {
        ln_node *n;
        LN_CHECK(st, ln_node_record(ctx, y, "conv1d_channels", conv1d_backward, 2, inputs, &s, sizeof s, &n), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 1) ? xc : NULL, NULL), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 0) ? wc : NULL, NULL), fail);
    }
    st = LN_OK;
    goto done;
fail:
    ln_tensor_release(y);
    y = NULL;
done:
    free(xb); free(wb); free(yb);
    ln_tensor_release(xc);
    ln_tensor_release(wc);
    *out = y;
    return st;
}
