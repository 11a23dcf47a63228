/* max_pool2d and global_avg_pool2d: argument checks, dispatch and autograd.
 * max_pool2d follows PyTorch (dilation 1, floor mode): x (N,C,H,W) ->
 * (N,C,OH,OW), OH = (H + 2*pad_h - kernel_h)/stride_h + 1, implicit -inf padding of at
 * most half the kernel; backward routes each output gradient to its window's argmax
 * (the first maximum on ties), saved as an i64 index tensor (N,C,OH,OW) on the input's
 * device.
 * global_avg_pool2d: (N,C,H,W) -> (N,C,1,1) mean over H*W. */
#include "../dispatch.h"
#include "../kernels/pool.h"

static const char *const MAXPOOL = "max_pool2d";
static const char *const GAP = "global_avg_pool2d";

/* ------------------------------------------------------------ max_pool2d */
typedef struct maxpool_state { int64_t H, W; ln_pool2d_params p; } maxpool_state;

static ln_status maxpool_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                  ln_tensor **grad_in) {
    const maxpool_state *s = self->state;
    const ln_tensor *idx = self->saved[0];
    int64_t N = grad_out->shape[0], C = grad_out->shape[1];
    int64_t OHW = grad_out->shape[2] * grad_out->shape[3], HW = s->H * s->W;
    ln_path path;
    ln_tensor *g = (ln_tensor *)grad_out;
    const char *name = "grad";
    LN_TRY(ln_pick_path(ctx, MAXPOOL, 1, &g, &name, &path));
    int64_t shape[4] = {N, C, s->H, s->W};
    LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, ln_tensor_device(grad_out), 4, shape, &grad_in[0]));
    const int64_t *ip = ln_tensor_data(idx);
    if (path == LN_PATH_CUDA)
        return ln_cuda_maxpool_bwd(ctx, N * C, s->H, s->W, grad_out->shape[2], grad_out->shape[3], &s->p, ip,
                                   ln_f32(grad_out), ln_f32(grad_in[0]));
    if (path == LN_PATH_CPU) {
        ln_cpu_maxpool_bwd(ctx, N * C, HW, OHW, ip, ln_f32(grad_out), ln_f32(grad_in[0]));
        return LN_OK;
    }
    double *gyb = NULL, *gxb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, grad_out, &gyb), done);
    LN_CHECK(st, ln_ref_buf(ctx, N * C * HW, &gxb), done);
    ln_ref_maxpool_bwd(N * C, HW, OHW, ip, gyb, gxb);
    st = ln_ref_out(ctx, grad_in[0], gxb);
done:
    free(gyb); free(gxb);
    return st;
}

static ln_status check_pool_params(ln_ctx *ctx, const ln_tensor *x, ln_pool2d_params p,
                                   int64_t *OH, int64_t *OW) {
    if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 || p.pad_w < 0)
        return ln_fail(ctx, LN_ERR_ARG, "%s: kernel (%dx%d) and stride (%dx%d) must be >= 1 and padding (%dx%d) >= 0",
                       MAXPOOL, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w);
    if (p.pad_h > p.kernel_h / 2 || p.pad_w > p.kernel_w / 2)
        return ln_fail(ctx, LN_ERR_ARG, "%s: padding (%dx%d) must be at most half the kernel size (%dx%d)",
                       MAXPOOL, p.pad_h, p.pad_w, p.kernel_h, p.kernel_w);
    int64_t H = x->shape[2], W = x->shape[3];
    int64_t eh = H + 2 * (int64_t)p.pad_h - p.kernel_h, ew = W + 2 * (int64_t)p.pad_w - p.kernel_w;
    if (eh < 0 || ew < 0) {
        char a[300];
        ln_describe(x, a, sizeof a);
        return ln_fail(ctx, LN_ERR_SHAPE, "%s: input 'x' %s is too small for kernel %dx%d with padding %dx%d",
                       MAXPOOL, a, p.kernel_h, p.kernel_w, p.pad_h, p.pad_w);
    }
    *OH = eh / p.stride_h + 1;
    *OW = ew / p.stride_w + 1;
    return LN_OK;
}

ln_status ln_max_pool2d(ln_ctx *ctx, ln_tensor *x, ln_pool2d_params p, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, MAXPOOL, "x", x));
    LN_TRY(ln_check_ndim(ctx, MAXPOOL, "x", x, 4));
    int64_t OH = 0, OW = 0;
    LN_TRY(check_pool_params(ctx, x, p, &OH, &OW));
    ln_path path;
    const char *name = "x";
    LN_TRY(ln_pick_path(ctx, MAXPOOL, 1, &x, &name, &path));

    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t oshape[4] = {N, C, OH, OW};
    bool grad = ln_any_requires_grad(ctx, 1, &x);
    ln_tensor *xc = NULL, *y = NULL, *idx = NULL;
    double *xb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), done);
    LN_CHECK(st, ln_tensor_empty(ctx, x->dtype, ln_tensor_device(x), 4, oshape, &y), done);
    if (grad || path == LN_PATH_REF)
        LN_CHECK(st, ln_tensor_empty(ctx, LN_I64, ln_tensor_device(x), 4, oshape, &idx), done);
    if (path == LN_PATH_CUDA) {
        LN_CHECK(st, ln_cuda_maxpool_fwd(ctx, N * C, H, W, OH, OW, &p, ln_f32(xc), ln_f32(y),
                                         idx ? ln_tensor_data(idx) : NULL), done);
    } else if (path == LN_PATH_CPU) {
        ln_cpu_maxpool_fwd(ctx, N * C, H, W, OH, OW, &p, ln_f32(xc), ln_f32(y),
                           idx ? ln_tensor_data(idx) : NULL);
    } else {
        LN_CHECK(st, ln_ref_in(ctx, xc, &xb), done);
        LN_CHECK(st, ln_ref_buf(ctx, N * C * OH * OW, &yb), done);
        ln_ref_maxpool_fwd(N * C, H, W, OH, OW, &p, xb, yb, ln_tensor_data(idx));
        LN_CHECK(st, ln_ref_out(ctx, y, yb), done);
    }
    if (grad) {
        ln_node *n;
        maxpool_state s = {H, W, p};
        LN_CHECK(st, ln_node_record(ctx, y, MAXPOOL, maxpool_backward, 1, &x, &s, sizeof s, &n), done);
        LN_CHECK(st, ln_node_save(ctx, n, idx, NULL), done);
    }
done:
    free(xb); free(yb);
    ln_tensor_release(xc);
    ln_tensor_release(idx);
    if (st == LN_OK) *out = y;
    else ln_tensor_release(y);
    return st;
}

/* ------------------------------------------------------------ global_avg_pool2d */
typedef struct gap_state { int64_t H, W; } gap_state;

/* y (NC) = mean of x (NC,HW), or gx (NC,HW) = gy (NC) / HW, on contiguous tensors. */
static ln_status gap_run(ln_ctx *ctx, bool backward, int64_t NC, int64_t HW,
                         const ln_tensor *in, ln_tensor *out) {
    ln_path path;
    ln_tensor *ts[2] = {(ln_tensor *)in, out};
    const char *names[2] = {backward ? "grad" : "x", "out"};
    LN_TRY(ln_pick_path(ctx, GAP, 2, ts, names, &path));
    if (path == LN_PATH_CUDA)
        return backward ? ln_cuda_gap_bwd(ctx, NC, HW, ln_f32(in), ln_f32(out))
                        : ln_cuda_gap_fwd(ctx, NC, HW, ln_f32(in), ln_f32(out));
    if (path == LN_PATH_CPU) {
        if (backward) ln_cpu_gap_bwd(ctx, NC, HW, ln_f32(in), ln_f32(out));
        else ln_cpu_gap_fwd(ctx, NC, HW, ln_f32(in), ln_f32(out));
        return LN_OK;
    }
    double *ib = NULL, *ob = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, in, &ib), done);
    LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(out), &ob), done);
    if (backward) ln_ref_gap_bwd(NC, HW, ib, ob);
    else ln_ref_gap_fwd(NC, HW, ib, ob);
    st = ln_ref_out(ctx, out, ob);
done:
    free(ib); free(ob);
    return st;
}

static ln_status gap_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                              ln_tensor **grad_in) {
    const gap_state *s = self->state;
    int64_t shape[4] = {grad_out->shape[0], grad_out->shape[1], s->H, s->W};
    LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, ln_tensor_device(grad_out), 4, shape, &grad_in[0]));
    return gap_run(ctx, true, shape[0] * shape[1], s->H * s->W, grad_out, grad_in[0]);
}

ln_status ln_global_avg_pool2d(ln_ctx *ctx, ln_tensor *x, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, GAP, "x", x));
    LN_TRY(ln_check_ndim(ctx, GAP, "x", x, 4));
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (H * W == 0) {
        char a[300];
        ln_describe(x, a, sizeof a);
        return ln_fail(ctx, LN_ERR_SHAPE, "%s: input 'x' %s has no spatial elements to average", GAP, a);
    }
    int64_t oshape[4] = {N, C, 1, 1};
    ln_tensor *xc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    LN_CHECK(st, ln_tensor_empty(ctx, x->dtype, ln_tensor_device(x), 4, oshape, &y), fail);
    LN_CHECK(st, gap_run(ctx, false, N * C, H * W, xc, y), fail);
    if (ln_any_requires_grad(ctx, 1, &x)) {
        ln_node *n;
        gap_state s = {H, W};
        LN_CHECK(st, ln_node_record(ctx, y, GAP, gap_backward, 1, &x, &s, sizeof s, &n), fail);
    }
    ln_tensor_release(xc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xc);
    ln_tensor_release(y);
    return st;
}
