/* add, sub, mul, div (numpy broadcasting), affine_scalar and pow_scalar: checks,
 * dispatch and autograd. The gradient of a broadcast input is the output gradient
 * (times the partial derivative) summed over the dimensions it was broadcast along,
 * which the reduce kernels do. */
#include <string.h>
#include "../dispatch.h"
#include "../kernels/elementwise.h"
#include "../kernels/reduce.h"

static const char *const bin_names[] = {"add", "sub", "mul", "div"};

/* Shapes of one binary op, all aligned to ndim dims (leading 1s); a_ndim and b_ndim
 * give the inputs' own ranks, so input k's shape is the last k_ndim aligned dims. */
typedef struct bin_state {
    ln_binop op;
    int ndim, a_ndim, b_ndim;
    int64_t out[LN_MAX_DIMS], as[LN_MAX_DIMS], bs[LN_MAX_DIMS];
} bin_state;

static ln_status broadcast_shapes(ln_ctx *ctx, const ln_tensor *a, const ln_tensor *b,
                                  bin_state *s) {
    s->ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    s->a_ndim = a->ndim;
    s->b_ndim = b->ndim;
    for (int d = 0; d < s->ndim; d++) {
        int da = d - (s->ndim - a->ndim), db = d - (s->ndim - b->ndim);
        s->as[d] = da >= 0 ? a->shape[da] : 1;
        s->bs[d] = db >= 0 ? b->shape[db] : 1;
        if (s->as[d] == s->bs[d] || s->bs[d] == 1) {
            s->out[d] = s->as[d];
        } else if (s->as[d] == 1) {
            s->out[d] = s->bs[d];
        } else {
            char sa[256], sb[256];
            ln_shape_format(a->ndim, a->shape, sa, sizeof sa);
            ln_shape_format(b->ndim, b->shape, sb, sizeof sb);
            return ln_fail(ctx, LN_ERR_SHAPE,
                           "%s: shapes of 'a' %s and 'b' %s cannot be broadcast together "
                           "(aligned dimension %d: %lld vs %lld)",
                           bin_names[s->op], sa, sb, d, (long long)s->as[d], (long long)s->bs[d]);
        }
    }
    return LN_OK;
}

static const int64_t *input_shape(const bin_state *s, int which, int *ndim) {
    *ndim = which == 0 ? s->a_ndim : s->b_ndim;
    return (which == 0 ? s->as : s->bs) + (s->ndim - *ndim);
}

/* y = a op b on contiguous tensors; y has the broadcast shape. */
static ln_status bin_forward_run(ln_ctx *ctx, ln_path path, const bin_state *s,
                                 const ln_tensor *a, const ln_tensor *b, ln_tensor *y) {
    if (path != LN_PATH_REF) {
        ln_bcast bc;
        ln_bcast_make(s->ndim, s->out, s->as, s->bs, &bc);
        if (path == LN_PATH_CUDA) return ln_cuda_binary_fwd(ctx, s->op, &bc, ln_f32(a), ln_f32(b), ln_f32(y));
        ln_cpu_binary_fwd(ctx, s->op, &bc, ln_f32(a), ln_f32(b), ln_f32(y));
        return LN_OK;
    }
    double *ab = NULL, *bb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, a, &ab), done);
    LN_CHECK(st, ln_ref_in(ctx, b, &bb), done);
    LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(y), &yb), done);
    ln_ref_binary_fwd(s->op, s->ndim, s->out, s->as, s->bs, ab, bb, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    free(ab); free(bb); free(yb);
    return st;
}

/* The f32 kernels of the fast paths (CPU or CUDA), one call each. */
static ln_status fast_sum(ln_ctx *ctx, ln_path path, const ln_reduce_layout *lay, float alpha,
                          const float *full, const float *w, float *small) {
    if (path == LN_PATH_CUDA) return ln_cuda_sum_prod(ctx, lay, alpha, full, w, small);
    ln_cpu_sum_prod(ctx, lay, alpha, full, w, small);
    return LN_OK;
}

static ln_status fast_affine(ln_ctx *ctx, ln_path path, int64_t n, const float *x, float scale,
                             float shift, float *y) {
    if (path == LN_PATH_CUDA) return ln_cuda_affine(ctx, n, x, scale, shift, y);
    ln_cpu_affine(ctx, n, x, scale, shift, y);
    return LN_OK;
}

static ln_status fast_grad(ln_ctx *ctx, ln_path path, ln_binop op, int which, const ln_bcast *bc,
                           const float *a, const float *b, const float *gy, float *g) {
    if (path == LN_PATH_CUDA) return ln_cuda_binary_grad(ctx, op, which, bc, a, b, gy, g);
    ln_cpu_binary_grad(ctx, op, which, bc, a, b, gy, g);
    return LN_OK;
}

/* Fast-path (CPU or CUDA) gradient of input `which` into g (that input's shape). */
static ln_status bin_grad_fast(ln_ctx *ctx, ln_path path, const bin_state *s, int which,
                               const ln_tensor *a, const ln_tensor *b, const ln_tensor *gy,
                               ln_tensor *g) {
    const int64_t *in = which == 0 ? s->as : s->bs;
    bool reduced[LN_MAX_DIMS], broadcast = false;
    for (int d = 0; d < s->ndim; d++) {
        reduced[d] = in[d] != s->out[d];
        broadcast = broadcast || reduced[d];
    }
    ln_reduce_layout lay;
    ln_reduce_layout_make(s->ndim, s->out, reduced, &lay);
    if (s->op == LN_BIN_ADD || s->op == LN_BIN_SUB) {
        float sign = (s->op == LN_BIN_SUB && which == 1) ? -1.f : 1.f;
        if (broadcast) return fast_sum(ctx, path, &lay, sign, ln_f32(gy), NULL, ln_f32(g));
        return fast_affine(ctx, path, ln_tensor_numel(g), ln_f32(gy), sign, 0.f, ln_f32(g));
    }
    const int64_t *other = which == 0 ? s->bs : s->as;
    bool other_full = true;
    for (int d = 0; d < s->ndim; d++) other_full = other_full && other[d] == s->out[d];
    if (broadcast && s->op == LN_BIN_MUL && other_full) /* g = sum(gy * other), fused */
        return fast_sum(ctx, path, &lay, 1.f, ln_f32(gy), ln_f32(which == 0 ? b : a), ln_f32(g));
    ln_bcast bc;
    ln_bcast_make(s->ndim, s->out, s->as, s->bs, &bc);
    const float *ap = a ? ln_f32(a) : NULL, *bp = b ? ln_f32(b) : NULL;
    if (!broadcast) return fast_grad(ctx, path, s->op, which, &bc, ap, bp, ln_f32(gy), ln_f32(g));
    ln_tensor *full;
    LN_TRY(ln_tensor_empty_like(ctx, gy, &full));
    ln_status st = fast_grad(ctx, path, s->op, which, &bc, ap, bp, ln_f32(gy), ln_f32(full));
    if (st == LN_OK) st = fast_sum(ctx, path, &lay, 1.f, ln_f32(full), NULL, ln_f32(g));
    ln_tensor_release(full);
    return st;
}

static ln_status bin_grad_ref(ln_ctx *ctx, const bin_state *s, const ln_tensor *a,
                              const ln_tensor *b, const ln_tensor *gy, ln_tensor *ga,
                              ln_tensor *gb) {
    double *ab = NULL, *bb = NULL, *gyb = NULL, *gab = NULL, *gbb = NULL;
    ln_status st;
    if (a) LN_CHECK(st, ln_ref_in(ctx, a, &ab), done);
    if (b) LN_CHECK(st, ln_ref_in(ctx, b, &bb), done);
    LN_CHECK(st, ln_ref_in(ctx, gy, &gyb), done);
    if (ga) LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(ga), &gab), done);
    if (gb) LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(gb), &gbb), done);
    ln_ref_binary_bwd(s->op, s->ndim, s->out, s->as, s->bs, ab, bb, gyb, gab, gbb);
    if (ga) LN_CHECK(st, ln_ref_out(ctx, ga, gab), done);
    if (gb) LN_CHECK(st, ln_ref_out(ctx, gb, gbb), done);
done:
    free(ab); free(bb); free(gyb); free(gab); free(gbb);
    return st;
}

/* saved, for mul and div only: a (contiguous) when b needs grad, b when a needs grad
 * or for div; NULL slots otherwise */
static ln_status bin_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                              ln_tensor **grad_in) {
    const bin_state *s = self->state;
    bool uses_values = s->op == LN_BIN_MUL || s->op == LN_BIN_DIV;
    const ln_tensor *a = uses_values ? self->saved[0] : NULL;
    const ln_tensor *b = uses_values ? self->saved[1] : NULL;
    ln_tensor *ts[3] = {(ln_tensor *)grad_out, (ln_tensor *)a, (ln_tensor *)b};
    const char *names[3] = {"grad", "a", "b"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, bin_names[s->op], 3, ts, names, &path));
    for (int i = 0; i < 2; i++) {
        if (!ln_node_needs_grad(self, i)) continue;
        int nd;
        const int64_t *shape = input_shape(s, i, &nd);
        LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, ln_tensor_device(grad_out), nd, shape,
                               &grad_in[i]));
        if (path != LN_PATH_REF) LN_TRY(bin_grad_fast(ctx, path, s, i, a, b, grad_out, grad_in[i]));
    }
    if (path == LN_PATH_REF) return bin_grad_ref(ctx, s, a, b, grad_out, grad_in[0], grad_in[1]);
    return LN_OK;
}

static ln_status binary(ln_ctx *ctx, ln_binop op, ln_tensor *a, ln_tensor *b, ln_tensor **out) {
    const char *name = bin_names[op];
    *out = NULL;
    LN_TRY(ln_check_float(ctx, name, "a", a));
    LN_TRY(ln_check_float(ctx, name, "b", b));
    ln_tensor *ts[2] = {a, b};
    const char *names[2] = {"a", "b"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, name, 2, ts, names, &path));
    bin_state s = {.op = op};
    LN_TRY(broadcast_shapes(ctx, a, b, &s));
    ln_tensor *ac = NULL, *bc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, a, &ac), fail);
    LN_CHECK(st, ln_tensor_contiguous(ctx, b, &bc), fail);
    LN_CHECK(st, ln_tensor_empty(ctx, a->dtype, ln_tensor_device(a), s.ndim, s.out, &y), fail);
    LN_CHECK(st, bin_forward_run(ctx, path, &s, ac, bc, y), fail);
    if (ln_any_requires_grad(ctx, 2, ts)) {
        ln_node *n;
        LN_CHECK(st, ln_node_record(ctx, y, name, bin_backward, 2, ts, &s, sizeof s, &n), fail);
        if (op == LN_BIN_MUL || op == LN_BIN_DIV) { /* only what the wanted grads read */
            bool ga = ln_node_needs_grad(n, 0), gb = ln_node_needs_grad(n, 1);
            LN_CHECK(st, ln_node_save(ctx, n, gb ? ac : NULL, NULL), fail);
            LN_CHECK(st, ln_node_save(ctx, n, ga || op == LN_BIN_DIV ? bc : NULL, NULL), fail);
        }
    }
    ln_tensor_release(ac);
    ln_tensor_release(bc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(ac);
    ln_tensor_release(bc);
    ln_tensor_release(y);
    return st;
}

ln_status ln_add(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out) { return binary(ctx, LN_BIN_ADD, a, b, out); }
ln_status ln_sub(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out) { return binary(ctx, LN_BIN_SUB, a, b, out); }
ln_status ln_mul(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out) { return binary(ctx, LN_BIN_MUL, a, b, out); }
ln_status ln_div(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out) { return binary(ctx, LN_BIN_DIV, a, b, out); }

/* ------------------------------------------------------------ scalar ops */
typedef enum scalar_kind { SC_AFFINE = 0, SC_POW } scalar_kind;
typedef struct scalar_state { scalar_kind kind; double p1, p2; } scalar_state;
static const char *const scalar_names[] = {"affine_scalar", "pow_scalar"};

/* Forward (gy NULL): y = f(x). Backward: y = f'(x) * gy. All contiguous, one shape.
 * affine's backward does not read x (pass gy as x). */
static ln_status scalar_run(ln_ctx *ctx, const scalar_state *s, const ln_tensor *x,
                            const ln_tensor *gy, ln_tensor *y) {
    const char *name = scalar_names[s->kind];
    ln_tensor *ts[3] = {(ln_tensor *)x, (ln_tensor *)gy, y};
    const char *names[3] = {"a", "grad", "out"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, name, 3, ts, names, &path));
    int64_t n = ln_tensor_numel(y);
    if (path == LN_PATH_CUDA) {
        if (s->kind == SC_AFFINE) /* backward: gy * scale */
            return ln_cuda_affine(ctx, n, ln_f32(gy ? gy : x), (float)s->p1, gy ? 0.f : (float)s->p2, ln_f32(y));
        return gy ? ln_cuda_pow_bwd(ctx, n, ln_f32(x), (float)s->p1, ln_f32(gy), ln_f32(y))
                  : ln_cuda_pow_fwd(ctx, n, ln_f32(x), (float)s->p1, ln_f32(y));
    }
    if (path == LN_PATH_CPU) {
        if (s->kind == SC_AFFINE && !gy) ln_cpu_affine(ctx, n, ln_f32(x), (float)s->p1, (float)s->p2, ln_f32(y));
        else if (s->kind == SC_AFFINE) ln_cpu_affine(ctx, n, ln_f32(gy), (float)s->p1, 0.f, ln_f32(y));
        else if (!gy) ln_cpu_pow_fwd(ctx, n, ln_f32(x), (float)s->p1, ln_f32(y));
        else ln_cpu_pow_bwd(ctx, n, ln_f32(x), (float)s->p1, ln_f32(gy), ln_f32(y));
        return LN_OK;
    }
    double *xb = NULL, *gb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    if (gy) LN_CHECK(st, ln_ref_in(ctx, gy, &gb), done);
    LN_CHECK(st, ln_ref_buf(ctx, n, &yb), done);
    if (s->kind == SC_AFFINE && !gy) ln_ref_affine(n, xb, s->p1, s->p2, yb);
    else if (s->kind == SC_AFFINE) ln_ref_affine(n, gb, s->p1, 0, yb);
    else if (!gy) ln_ref_pow_fwd(n, xb, s->p1, yb);
    else ln_ref_pow_bwd(n, xb, s->p1, gb, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    free(xb); free(gb); free(yb);
    return st;
}

/* saved: x (contiguous) for pow, nothing for affine */
static ln_status scalar_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                 ln_tensor **grad_in) {
    const scalar_state *s = self->state;
    const ln_tensor *x = s->kind == SC_POW ? self->saved[0] : grad_out;
    LN_TRY(ln_tensor_empty_like(ctx, grad_out, &grad_in[0]));
    return scalar_run(ctx, s, x, grad_out, grad_in[0]);
}

static ln_status scalar_op(ln_ctx *ctx, scalar_state s, ln_tensor *x, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, scalar_names[s.kind], "a", x));
    ln_tensor *xc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, ln_tensor_contiguous(ctx, x, &xc), fail);
    LN_CHECK(st, ln_tensor_empty_like(ctx, xc, &y), fail);
    LN_CHECK(st, scalar_run(ctx, &s, xc, NULL, y), fail);
    if (ln_any_requires_grad(ctx, 1, &x)) {
        ln_node *n;
        LN_CHECK(st, ln_node_record(ctx, y, scalar_names[s.kind], scalar_backward, 1, &x, &s, sizeof s, &n), fail);
        if (s.kind == SC_POW) LN_CHECK(st, ln_node_save(ctx, n, xc, NULL), fail);
    }
    ln_tensor_release(xc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xc);
    ln_tensor_release(y);
    return st;
}

ln_status ln_affine_scalar(ln_ctx *ctx, ln_tensor *a, double scale, double shift, ln_tensor **out) {
    scalar_state s = {SC_AFFINE, scale, shift};
    return scalar_op(ctx, s, a, out);
}

ln_status ln_pow_scalar(ln_ctx *ctx, ln_tensor *a, double exponent, ln_tensor **out) {
    scalar_state s = {SC_POW, exponent, 0};
    return scalar_op(ctx, s, a, out);
}
