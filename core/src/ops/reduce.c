/* sum and mean over all elements (0-d result) or along one dimension (keepdim as in
 * PyTorch): checks, dispatch and autograd. Backward broadcasts the output gradient
 * back over the reduced dimension(s), scaled by 1/count for the mean. */
#include <math.h>
#include "../dispatch.h"
#include "../kernels/reduce.h"

/* The reduction of one call: x's shape with its reduced flags, and alpha
 * (1 for sum, 1/count for mean). */
typedef struct red_state {
    const char *name;
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    bool reduced[LN_MAX_DIMS];
    double alpha;
} red_state;

/* Forward: small = alpha * sum(full). Backward (expand): full = alpha * small.
 * full is x-shaped and small is out-shaped; both contiguous. */
static ln_status red_run(ln_ctx *ctx, const red_state *s, bool expand, const ln_tensor *src,
                         ln_tensor *dst) {
    ln_tensor *ts[2] = {(ln_tensor *)src, dst};
    const char *names[2] = {expand ? "grad" : "x", "out"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, s->name, 2, ts, names, &path));
    if (path != LN_PATH_REF) {
        ln_reduce_layout lay;
        ln_reduce_layout_make(s->ndim, s->shape, s->reduced, &lay);
        if (path == LN_PATH_CUDA)
            return expand ? ln_cuda_expand(ctx, &lay, (float)s->alpha, ln_f32(src), ln_f32(dst))
                          : ln_cuda_sum(ctx, &lay, (float)s->alpha, ln_f32(src), ln_f32(dst));
        if (expand) ln_cpu_expand(ctx, &lay, (float)s->alpha, ln_f32(src), ln_f32(dst));
        else ln_cpu_sum(ctx, &lay, (float)s->alpha, ln_f32(src), ln_f32(dst));
        return LN_OK;
    }
    double *sb = NULL, *db = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, src, &sb), done);
    LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(dst), &db), done);
    if (expand) ln_ref_expand(s->ndim, s->shape, s->reduced, s->alpha, sb, db);
    else ln_ref_sum(s->ndim, s->shape, s->reduced, s->alpha, sb, db);
    st = ln_ref_out(ctx, dst, db);
done:
    free(sb); free(db);
    return st;
}

static ln_status red_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                              ln_tensor **grad_in) {
    const red_state *s = self->state;
    LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, ln_tensor_device(grad_out), s->ndim, s->shape,
                           &grad_in[0]));
    return red_run(ctx, s, true, grad_out, grad_in[0]);
}

static ln_status reduce(ln_ctx *ctx, const char *name, bool mean, ln_tensor *x, int dim,
                        bool keepdim, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, name, "x", x));
    if (dim >= x->ndim) {
        char shp[256];
        ln_shape_format(x->ndim, x->shape, shp, sizeof shp);
        return ln_fail(ctx, LN_ERR_ARG,
                       "%s: dimension %d out of range for 'x' of shape %s (use a negative dim to reduce all elements)",
                       name, dim, shp);
    }
    red_state s = {.name = name, .ndim = x->ndim};
    int out_ndim = 0;
    int64_t out_shape[LN_MAX_DIMS], count = 1;
    for (int d = 0; d < x->ndim; d++) {
        s.shape[d] = x->shape[d];
        s.reduced[d] = dim < 0 || d == dim;
        if (s.reduced[d]) count *= x->shape[d];
        if (!s.reduced[d]) out_shape[out_ndim++] = x->shape[d];
        else if (dim >= 0 && keepdim) out_shape[out_ndim++] = 1;
    }
    s.alpha = !mean ? 1.0 : count > 0 ? 1.0 / (double)count : NAN;
    ln_tensor *xc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    LN_CHECK(st, ln_tensor_empty(ctx, x->dtype, ln_tensor_device(x), out_ndim, out_shape, &y), fail);
    LN_CHECK(st, red_run(ctx, &s, false, xc, y), fail);
    if (ln_any_requires_grad(ctx, 1, &x)) {
        ln_node *n;
        LN_CHECK(st, ln_node_record(ctx, y, name, red_backward, 1, &x, &s, sizeof s, &n), fail);
    }
    ln_tensor_release(xc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xc);
    ln_tensor_release(y);
    return st;
}

ln_status ln_sum(ln_ctx *ctx, ln_tensor *x, int dim, bool keepdim, ln_tensor **out) {
    return reduce(ctx, "sum", false, x, dim, keepdim, out);
}

ln_status ln_mean(ln_ctx *ctx, ln_tensor *x, int dim, bool keepdim, ln_tensor **out) {
    return reduce(ctx, "mean", true, x, dim, keepdim, out);
}
