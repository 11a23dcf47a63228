/* Differentiable shape ops. reshape, transpose, narrow and contiguous return views
 * that may share storage with their input (reshape of a non-contiguous tensor views a
 * contiguous copy); they work on any dtype and device. cat and shortcut_a move data
 * through the shape kernels. Backward: reshape back, transpose back, narrow -> zeros
 * with the gradient placed in the slice, contiguous -> identity, cat -> slices,
 * shortcut_a -> the middle channels scattered into the strided positions. */
#include <stdio.h>
#include <string.h>
#include "../dispatch.h"
#include "../kernels/shape.h"

/* ------------------------------------------------------------ views */
/* State of reshape and narrow: the input's shape, and narrow's (dim, start). */
typedef struct view_state {
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    int dim, d1;
    int64_t start;
} view_state;

static view_state view_state_of(const ln_tensor *x, int dim, int d1, int64_t start) {
    view_state s = {.ndim = x->ndim, .dim = dim, .d1 = d1, .start = start};
    memcpy(s.shape, x->shape, sizeof s.shape);
    return s;
}

/* Attaches a node with state s to the view y of x when x requires grad. */
static ln_status view_record(ln_ctx *ctx, ln_tensor *x, ln_tensor *y, const char *name,
                             ln_backward_fn fn, const view_state *s) {
    if (!ln_any_requires_grad(ctx, 1, &x)) return LN_OK;
    ln_node *n;
    return ln_node_record(ctx, y, name, fn, 1, &x, s, sizeof *s, &n);
}

/* Hands out y, or releases it when recording failed. */
static ln_status view_finish(ln_status st, ln_tensor *y, ln_tensor **out) {
    if (st != LN_OK) { ln_tensor_release(y); return st; }
    *out = y;
    return LN_OK;
}

static ln_status reshape_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                  ln_tensor **grad_in) {
    const view_state *s = self->state;
    ln_tensor *v;
    LN_TRY(ln_tensor_view(ctx, grad_out, s->ndim, s->shape, &v));
    ln_status st = ln_tensor_clone(ctx, v, &grad_in[0]);
    ln_tensor_release(v);
    return st;
}

ln_status ln_reshape(ln_ctx *ctx, ln_tensor *x, int ndim, const int64_t *shape, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_not_null(ctx, "reshape", "x", x));
    if (!shape && ndim > 0) return ln_fail(ctx, LN_ERR_ARG, "reshape: argument 'shape' is NULL");
    ln_tensor *xc, *y;
    LN_TRY(ln_tensor_contiguous(ctx, x, &xc));
    ln_status st = ln_tensor_view(ctx, xc, ndim, shape, &y);
    ln_tensor_release(xc);
    if (st != LN_OK) return st;
    view_state s = view_state_of(x, 0, 0, 0);
    return view_finish(view_record(ctx, x, y, "reshape", reshape_backward, &s), y, out);
}

static ln_status transpose_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                    ln_tensor **grad_in) {
    const view_state *s = self->state;
    ln_tensor *v;
    LN_TRY(ln_tensor_transpose_view(ctx, grad_out, s->dim, s->d1, &v));
    ln_status st = ln_tensor_clone(ctx, v, &grad_in[0]);
    ln_tensor_release(v);
    return st;
}

ln_status ln_transpose(ln_ctx *ctx, ln_tensor *x, int d0, int d1, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_not_null(ctx, "transpose", "x", x));
    ln_tensor *y;
    LN_TRY(ln_tensor_transpose_view(ctx, x, d0, d1, &y));
    view_state s = view_state_of(x, d0, d1, 0);
    return view_finish(view_record(ctx, x, y, "transpose", transpose_backward, &s), y, out);
}

static ln_status narrow_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                 ln_tensor **grad_in) {
    const view_state *s = self->state;
    ln_tensor *g, *slice;
    LN_TRY(ln_tensor_zeros(ctx, grad_out->dtype, ln_tensor_device(grad_out), s->ndim, s->shape, &g));
    ln_status st = ln_tensor_narrow_view(ctx, g, s->dim, s->start, grad_out->shape[s->dim], &slice);
    if (st == LN_OK) st = ln_tensor_copy_(ctx, slice, grad_out);
    ln_tensor_release(slice);
    if (st != LN_OK) { ln_tensor_release(g); return st; }
    grad_in[0] = g;
    return LN_OK;
}

ln_status ln_narrow(ln_ctx *ctx, ln_tensor *x, int dim, int64_t start, int64_t length,
                    ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_not_null(ctx, "narrow", "x", x));
    ln_tensor *y;
    LN_TRY(ln_tensor_narrow_view(ctx, x, dim, start, length, &y));
    view_state s = view_state_of(x, dim, 0, start);
    return view_finish(view_record(ctx, x, y, "narrow", narrow_backward, &s), y, out);
}

static ln_status contiguous_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                     ln_tensor **grad_in) {
    (void)self;
    return ln_tensor_clone(ctx, grad_out, &grad_in[0]);
}

ln_status ln_contiguous(ln_ctx *ctx, ln_tensor *x, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_not_null(ctx, "contiguous", "x", x));
    ln_tensor *y;
    /* a new tensor object even when x is contiguous: the node must not land on x */
    if (ln_tensor_is_contiguous(x)) LN_TRY(ln_tensor_detach(ctx, x, &y));
    else LN_TRY(ln_tensor_clone(ctx, x, &y));
    view_state s = view_state_of(x, 0, 0, 0);
    return view_finish(view_record(ctx, x, y, "contiguous", contiguous_backward, &s), y, out);
}

/* ------------------------------------------------------------ cat */
/* The output's shape and how it splits: input i has the output's shape with
 * sizes[i] at dim. Allocated with n sizes. */
typedef struct cat_state {
    int ndim, dim, n;
    int64_t shape[LN_MAX_DIMS];
    int64_t outer, inner;
    int64_t sizes[];
} cat_state;

static ln_status cat_split_run(ln_ctx *ctx, ln_path path, const cat_state *s,
                               const ln_tensor *gy, ln_tensor **gs) {
    if (path != LN_PATH_REF) {
        float **ptrs = calloc((size_t)s->n, sizeof *ptrs);
        if (!ptrs) return ln_fail(ctx, LN_ERR_NOMEM, "cat: out of memory");
        for (int i = 0; i < s->n; i++) ptrs[i] = gs[i] ? ln_f32(gs[i]) : NULL;
        ln_status st = LN_OK;
        if (path == LN_PATH_CUDA) st = ln_cuda_split(ctx, s->n, ptrs, s->sizes, s->outer, s->inner, ln_f32(gy));
        else ln_cpu_split(ctx, s->n, ptrs, s->sizes, s->outer, s->inner, ln_f32(gy));
        free(ptrs);
        return st;
    }
    double **bufs = calloc((size_t)s->n, sizeof *bufs), *gb = NULL;
    if (!bufs) return ln_fail(ctx, LN_ERR_NOMEM, "cat: out of memory");
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, gy, &gb), done);
    for (int i = 0; i < s->n; i++)
        if (gs[i]) LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(gs[i]), &bufs[i]), done);
    ln_ref_split(s->n, bufs, s->sizes, s->outer, s->inner, gb);
    for (int i = 0; i < s->n; i++)
        if (gs[i]) LN_CHECK(st, ln_ref_out(ctx, gs[i], bufs[i]), done);
done:
    for (int i = 0; i < s->n; i++) free(bufs[i]);
    free(bufs);
    free(gb);
    return st;
}

static ln_status cat_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                              ln_tensor **grad_in) {
    const cat_state *s = self->state;
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "cat", 1, (ln_tensor *const[]){(ln_tensor *)grad_out},
                        (const char *const[]){"grad"}, &path));
    for (int i = 0; i < s->n; i++) {
        if (!ln_node_needs_grad(self, i)) continue;
        int64_t shape[LN_MAX_DIMS];
        memcpy(shape, s->shape, sizeof shape);
        shape[s->dim] = s->sizes[i];
        LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, ln_tensor_device(grad_out), s->ndim, shape,
                               &grad_in[i]));
    }
    return cat_split_run(ctx, path, s, grad_out, grad_in);
}

/* Checks the inputs of cat and fills s (shape, sizes, outer, inner). */
static ln_status cat_check(ln_ctx *ctx, int n, ln_tensor *const *xs, int dim, cat_state *s,
                           ln_path *path) {
    char name[32], a[256], b[256];
    for (int i = 0; i < n; i++) {
        /* tensors are named by ordinal ("tensor 2"), not by a C or Lua index */
        snprintf(name, sizeof name, "tensor %d", i + 1);
        LN_TRY(ln_check_float(ctx, "cat", name, xs[i]));
        ln_tensor *pair[2] = {xs[0], xs[i]};
        const char *names[2] = {"tensor 1", name};
        LN_TRY(ln_check_compatible(ctx, "cat", 2, pair, names));
    }
    LN_TRY(ln_pick_path(ctx, "cat", 1, xs, (const char *const[]){"tensor 1"}, path));
    const ln_tensor *x0 = xs[0];
    if (dim < 0 || dim >= x0->ndim) {
        ln_shape_format(x0->ndim, x0->shape, a, sizeof a);
        return ln_fail(ctx, LN_ERR_ARG, "cat: dimension out of range for %d-dimensional tensors of shape %s",
                       x0->ndim, a);
    }
    s->ndim = x0->ndim;
    s->dim = dim;
    s->n = n;
    memcpy(s->shape, x0->shape, sizeof s->shape);
    s->shape[dim] = 0;
    for (int i = 0; i < n; i++) {
        const ln_tensor *x = xs[i];
        bool ok = x->ndim == x0->ndim;
        for (int d = 0; ok && d < x->ndim; d++) ok = d == dim || x->shape[d] == x0->shape[d];
        if (!ok) {
            ln_shape_format(x0->ndim, x0->shape, a, sizeof a);
            ln_shape_format(x->ndim, x->shape, b, sizeof b);
            return ln_fail(ctx, LN_ERR_SHAPE,
                           "cat: tensor %d has shape %s but tensor 1 has shape %s; shapes must agree "
                           "except along the concatenation dimension", i + 1, b, a);
        }
        s->sizes[i] = x->shape[dim];
        s->shape[dim] += x->shape[dim];
    }
    s->outer = 1;
    s->inner = 1;
    for (int d = 0; d < dim; d++) s->outer *= s->shape[d];
    for (int d = dim + 1; d < s->ndim; d++) s->inner *= s->shape[d];
    return LN_OK;
}

/* y = cat of the contiguous xc[0..n). */
static ln_status cat_run(ln_ctx *ctx, ln_path path, const cat_state *s, ln_tensor *const *xc,
                         ln_tensor *y) {
    if (path != LN_PATH_REF) {
        const float **ptrs = calloc((size_t)s->n, sizeof *ptrs);
        if (!ptrs) return ln_fail(ctx, LN_ERR_NOMEM, "cat: out of memory");
        for (int i = 0; i < s->n; i++) ptrs[i] = ln_f32(xc[i]);
        ln_status st = LN_OK;
        if (path == LN_PATH_CUDA) st = ln_cuda_cat(ctx, s->n, ptrs, s->sizes, s->outer, s->inner, ln_f32(y));
        else ln_cpu_cat(ctx, s->n, ptrs, s->sizes, s->outer, s->inner, ln_f32(y));
        free(ptrs);
        return st;
    }
    double **bufs = calloc((size_t)s->n, sizeof *bufs), *yb = NULL;
    if (!bufs) return ln_fail(ctx, LN_ERR_NOMEM, "cat: out of memory");
    ln_status st;
    for (int i = 0; i < s->n; i++) LN_CHECK(st, ln_ref_in(ctx, xc[i], &bufs[i]), done);
    LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(y), &yb), done);
    ln_ref_cat(s->n, (const double *const *)bufs, s->sizes, s->outer, s->inner, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    for (int i = 0; i < s->n; i++) free(bufs[i]);
    free(bufs);
    free(yb);
    return st;
}

ln_status ln_cat(ln_ctx *ctx, int n, ln_tensor *const *xs, int dim, ln_tensor **out) {
    *out = NULL;
    if (n < 1 || !xs) return ln_fail(ctx, LN_ERR_ARG, "cat: needs at least one tensor, got %d", n);
    size_t state_size = sizeof(cat_state) + (size_t)n * sizeof(int64_t);
    cat_state *s = calloc(1, state_size);
    ln_tensor **xc = calloc((size_t)n, sizeof *xc), *y = NULL;
    ln_status st = LN_OK;
    if (!s || !xc) { st = ln_fail(ctx, LN_ERR_NOMEM, "cat: out of memory"); goto done; }
    ln_path path;
    LN_CHECK(st, cat_check(ctx, n, xs, dim, s, &path), done);
    for (int i = 0; i < n; i++) LN_CHECK(st, ln_tensor_contiguous(ctx, xs[i], &xc[i]), done);
    LN_CHECK(st, ln_tensor_empty(ctx, xs[0]->dtype, ln_tensor_device(xs[0]), s->ndim, s->shape, &y), done);
    LN_CHECK(st, cat_run(ctx, path, s, xc, y), done);
    if (ln_any_requires_grad(ctx, n, xs)) {
        ln_node *node;
        LN_CHECK(st, ln_node_attach(ctx, y, "cat", cat_backward, n, xs, &node), done);
        ln_node_set_state_owned(node, s, free);
        s = NULL;
    }
done:
    for (int i = 0; xc && i < n; i++) ln_tensor_release(xc[i]);
    free(xc);
    free(s);
    if (st != LN_OK) ln_tensor_release(y);
    else *out = y;
    return st;
}

/* ------------------------------------------------------------ shortcut_a */
static ln_status shortcut_run(ln_ctx *ctx, const ln_shortcut_dims *d, bool backward,
                              const ln_tensor *src, ln_tensor *dst) {
    ln_tensor *ts[2] = {(ln_tensor *)src, dst};
    const char *names[2] = {backward ? "grad" : "x", "out"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "shortcut_a", 2, ts, names, &path));
    if (path == LN_PATH_CUDA)
        return backward ? ln_cuda_shortcut_bwd(ctx, d, ln_f32(src), ln_f32(dst))
                        : ln_cuda_shortcut_fwd(ctx, d, ln_f32(src), ln_f32(dst));
    if (path == LN_PATH_CPU) {
        if (backward) ln_cpu_shortcut_bwd(ctx, d, ln_f32(src), ln_f32(dst));
        else ln_cpu_shortcut_fwd(ctx, d, ln_f32(src), ln_f32(dst));
        return LN_OK;
    }
    double *sb = NULL, *db = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, src, &sb), done);
    LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(dst), &db), done);
    if (backward) ln_ref_shortcut_bwd(d, sb, db);
    else ln_ref_shortcut_fwd(d, sb, db);
    st = ln_ref_out(ctx, dst, db);
done:
    free(sb); free(db);
    return st;
}

static ln_status shortcut_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                   ln_tensor **grad_in) {
    const ln_shortcut_dims *d = self->state;
    int64_t shape[4] = {d->n, d->c, d->h, d->w};
    LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, ln_tensor_device(grad_out), 4, shape, &grad_in[0]));
    return shortcut_run(ctx, d, true, grad_out, grad_in[0]);
}

ln_status ln_shortcut_a(ln_ctx *ctx, ln_tensor *x, int stride, int64_t pad, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, "shortcut_a", "x", x));
    LN_TRY(ln_check_ndim(ctx, "shortcut_a", "x", x, 4));
    if (stride < 1)
        return ln_fail(ctx, LN_ERR_ARG, "shortcut_a: stride must be at least 1, got %d", stride);
    if (pad < 0 || pad > ((int64_t)1 << 30))
        return ln_fail(ctx, LN_ERR_ARG, "shortcut_a: pad must be in [0, 2^30], got %lld", (long long)pad);
    ln_shortcut_dims d = {.n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
                          .pad = pad, .stride = stride};
    d.oh = (d.h + stride - 1) / stride;
    d.ow = (d.w + stride - 1) / stride;
    int64_t shape[4] = {d.n, d.c + 2 * pad, d.oh, d.ow};
    ln_tensor *xc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    LN_CHECK(st, ln_tensor_empty(ctx, x->dtype, ln_tensor_device(x), 4, shape, &y), fail);
    LN_CHECK(st, shortcut_run(ctx, &d, false, xc, y), fail);
    if (ln_any_requires_grad(ctx, 1, &x)) {
        ln_node *n;
        LN_CHECK(st, ln_node_record(ctx, y, "shortcut_a", shortcut_backward, 1, &x, &d, sizeof d, &n), fail);
    }
    ln_tensor_release(xc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xc);
    ln_tensor_release(y);
    return st;
}
