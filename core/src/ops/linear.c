/* matmul and linear: checks, dispatch and autograd. On the fast paths (oneDNN on the
 * CPU, cuBLAS on CUDA) operands go to SGEMM as they lie when their layout allows
 * (row-major, or a transposed view of a row-major matrix, e.g. B^T from
 * ln_transpose), so B @ B^T copies nothing; other strided operands are made
 * contiguous first. */
#include "../dispatch.h"
#include "../kernels/linear.h"
#include "../kernels/reduce.h"

/* How a 2-D tensor t (r,c) lies for GEMM: row-major with row stride ld (trans false),
 * or as the row-major transpose (c,r) with row stride ld (trans true). False when
 * neither (then it needs a contiguous copy). */
static bool gemm_layout(const ln_tensor *t, bool *trans, int64_t *ld) {
    int64_t r = t->shape[0], c = t->shape[1], s0 = t->strides[0], s1 = t->strides[1];
    if ((c <= 1 || s1 == 1) && (r <= 1 || s0 >= c)) {
        *trans = false;
        *ld = r <= 1 ? (c > 1 ? c : 1) : s0;
        return *ld >= 1;
    }
    if ((r <= 1 || s0 == 1) && (c <= 1 || s1 >= r)) {
        *trans = true;
        *ld = c <= 1 ? (r > 1 ? r : 1) : s1;
        return *ld >= 1;
    }
    return false;
}

/* t itself (retained) when GEMM can read it as it lies, else a contiguous copy. */
static ln_status gemm_ready(ln_ctx *ctx, ln_tensor *t, ln_tensor **out) {
    bool trans;
    int64_t ld;
    if (gemm_layout(t, &trans, &ld)) {
        ln_tensor_retain(t);
        *out = t;
        return LN_OK;
    }
    return ln_tensor_clone(ctx, t, out);
}

/* Layout of a gemm_ready tensor (always succeeds for those). */
typedef struct gemm_arg { const float *p; bool trans; int64_t ld; } gemm_arg;
static gemm_arg gemm_arg_of(const ln_tensor *t) {
    gemm_arg g = {ln_f32(t), false, 1};
    gemm_layout(t, &g.trans, &g.ld);
    return g;
}

/* The row-major SGEMM of a fast path (see ln_cpu_gemm in kernels/linear.h). */
static ln_status fast_gemm(ln_ctx *ctx, ln_path path, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                           float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                           float *c, int64_t ldc) {
    if (path == LN_PATH_CUDA) return ln_cuda_gemm(ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return ln_cpu_gemm(ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ------------------------------------------------------------ matmul */
/* y (M,N) = a (M,K) @ b (K,N); a, b gemm_ready, y contiguous. */
static ln_status matmul_run(ln_ctx *ctx, ln_path path, const ln_tensor *a, const ln_tensor *b,
                            ln_tensor *y) {
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    if (path != LN_PATH_REF) {
        gemm_arg ga = gemm_arg_of(a), gb = gemm_arg_of(b);
        return fast_gemm(ctx, path, ga.trans, gb.trans, m, n, k, 1.f, ga.p, ga.ld, gb.p, gb.ld, 0.f,
                         ln_f32(y), n);
    }
    double *ab = NULL, *bb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, a, &ab), done);
    LN_CHECK(st, ln_ref_in(ctx, b, &bb), done);
    LN_CHECK(st, ln_ref_buf(ctx, m * n, &yb), done);
    ln_ref_matmul_fwd(m, k, n, ab, bb, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    free(ab); free(bb); free(yb);
    return st;
}

/* saved: a (gemm_ready) when b needs grad, b when a needs grad; NULL slots otherwise */
static ln_status matmul_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                 ln_tensor **grad_in) {
    const ln_tensor *a = self->saved[0], *b = self->saved[1];
    bool need_a = ln_node_needs_grad(self, 0), need_b = ln_node_needs_grad(self, 1);
    int64_t m = grad_out->shape[0], n = grad_out->shape[1], k = a ? a->shape[1] : b->shape[0];
    ln_tensor *ts[3] = {(ln_tensor *)grad_out, (ln_tensor *)a, (ln_tensor *)b};
    const char *names[3] = {"grad", "a", "b"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "matmul", 3, ts, names, &path));
    ln_device dev = ln_tensor_device(grad_out);
    if (need_a) LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, dev, 2, (int64_t[]){m, k}, &grad_in[0]));
    if (need_b) LN_TRY(ln_tensor_empty(ctx, grad_out->dtype, dev, 2, (int64_t[]){k, n}, &grad_in[1]));
    if (path != LN_PATH_REF) {
        const float *gy = ln_f32(grad_out);
        if (need_a) { /* (M,K) = gy (M,N) @ b^T */
            gemm_arg gb = gemm_arg_of(b);
            LN_TRY(fast_gemm(ctx, path, false, !gb.trans, m, k, n, 1.f, gy, n, gb.p, gb.ld, 0.f,
                             ln_f32(grad_in[0]), k));
        }
        if (need_b) { /* (K,N) = a^T (K,M) @ gy */
            gemm_arg ga = gemm_arg_of(a);
            LN_TRY(fast_gemm(ctx, path, !ga.trans, false, k, n, m, 1.f, ga.p, ga.ld, gy, n, 0.f,
                             ln_f32(grad_in[1]), n));
        }
        return LN_OK;
    }
    double *ab = NULL, *bb = NULL, *gyb = NULL, *gab = NULL, *gbb = NULL;
    ln_status st;
    if (a) LN_CHECK(st, ln_ref_in(ctx, a, &ab), done);
    if (b) LN_CHECK(st, ln_ref_in(ctx, b, &bb), done);
    LN_CHECK(st, ln_ref_in(ctx, grad_out, &gyb), done);
    if (need_a) LN_CHECK(st, ln_ref_buf(ctx, m * k, &gab), done);
    if (need_b) LN_CHECK(st, ln_ref_buf(ctx, k * n, &gbb), done);
    ln_ref_matmul_bwd(m, k, n, ab, bb, gyb, gab, gbb);
    if (need_a) LN_CHECK(st, ln_ref_out(ctx, grad_in[0], gab), done);
    if (need_b) LN_CHECK(st, ln_ref_out(ctx, grad_in[1], gbb), done);
done:
    free(ab); free(bb); free(gyb); free(gab); free(gbb);
    return st;
}

ln_status ln_matmul(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out) {
    *out = NULL;
    LN_TRY(ln_check_float(ctx, "matmul", "a", a));
    LN_TRY(ln_check_float(ctx, "matmul", "b", b));
    ln_tensor *ts[2] = {a, b};
    const char *names[2] = {"a", "b"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "matmul", 2, ts, names, &path));
    LN_TRY(ln_check_ndim(ctx, "matmul", "a", a, 2));
    LN_TRY(ln_check_ndim(ctx, "matmul", "b", b, 2));
    if (a->shape[1] != b->shape[0]) {
        char sa[256], sb[256];
        ln_shape_format(2, a->shape, sa, sizeof sa);
        ln_shape_format(2, b->shape, sb, sizeof sb);
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "matmul: 'a' %s has %lld columns but 'b' %s has %lld rows", sa,
                       (long long)a->shape[1], sb, (long long)b->shape[0]);
    }
    ln_tensor *ar = NULL, *br = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, gemm_ready(ctx, a, &ar), fail);
    LN_CHECK(st, gemm_ready(ctx, b, &br), fail);
    LN_CHECK(st, ln_tensor_empty(ctx, a->dtype, ln_tensor_device(a), 2,
                                 (int64_t[]){a->shape[0], b->shape[1]}, &y), fail);
    LN_CHECK(st, matmul_run(ctx, path, ar, br, y), fail);
    if (ln_any_requires_grad(ctx, 2, ts)) {
        ln_node *n;
        LN_CHECK(st, ln_node_attach(ctx, y, "matmul", matmul_backward, 2, ts, &n), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 1) ? ar : NULL, NULL), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 0) ? br : NULL, NULL), fail);
    }
    ln_tensor_release(ar);
    ln_tensor_release(br);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(ar);
    ln_tensor_release(br);
    ln_tensor_release(y);
    return st;
}

/* ------------------------------------------------------------ linear */
/* y (N,out) = x (N,in) @ w^T + bias; x, w gemm_ready, bias contiguous or NULL. */
static ln_status linear_run(ln_ctx *ctx, ln_path path, const ln_tensor *x, const ln_tensor *w,
                            const ln_tensor *bias, ln_tensor *y) {
    int64_t rows = x->shape[0], in = x->shape[1], out = w->shape[0];
    if (path != LN_PATH_REF) {
        gemm_arg gx = gemm_arg_of(x), gw = gemm_arg_of(w);
        if (bias && path == LN_PATH_CUDA) LN_TRY(ln_cuda_fill_rows(ctx, rows, out, ln_f32(bias), ln_f32(y)));
        else if (bias) ln_cpu_fill_rows(ctx, rows, out, ln_f32(bias), ln_f32(y));
        return fast_gemm(ctx, path, gx.trans, !gw.trans, rows, out, in, 1.f, gx.p, gx.ld, gw.p, gw.ld,
                         bias ? 1.f : 0.f, ln_f32(y), out);
    }
    double *xb = NULL, *wb = NULL, *bb = NULL, *yb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    LN_CHECK(st, ln_ref_in(ctx, w, &wb), done);
    if (bias) LN_CHECK(st, ln_ref_in(ctx, bias, &bb), done);
    LN_CHECK(st, ln_ref_buf(ctx, rows * out, &yb), done);
    ln_ref_linear_fwd(rows, in, out, xb, wb, bb, yb);
    st = ln_ref_out(ctx, y, yb);
done:
    free(xb); free(wb); free(bb); free(yb);
    return st;
}

/* The sizes of one linear call: rows (N), in and out features. */
typedef struct linear_dims { int64_t rows, in, out; } linear_dims;

static ln_status linear_backward_fast(ln_ctx *ctx, ln_path path, linear_dims d, const ln_tensor *x,
                                      const ln_tensor *w, const ln_tensor *grad_out,
                                      ln_tensor **grad_in) {
    const float *gy = ln_f32(grad_out);
    if (grad_in[0]) { /* (N,in) = gy (N,out) @ w (out,in) */
        gemm_arg gw = gemm_arg_of(w);
        LN_TRY(fast_gemm(ctx, path, false, gw.trans, d.rows, d.in, d.out, 1.f, gy, d.out, gw.p, gw.ld,
                         0.f, ln_f32(grad_in[0]), d.in));
    }
    if (grad_in[1]) { /* (out,in) = gy^T (out,N) @ x (N,in) */
        gemm_arg gx = gemm_arg_of(x);
        LN_TRY(fast_gemm(ctx, path, true, gx.trans, d.out, d.in, d.rows, 1.f, gy, d.out, gx.p, gx.ld,
                         0.f, ln_f32(grad_in[1]), d.in));
    }
    if (grad_in[2]) { /* column sums of gy */
        ln_reduce_layout lay;
        ln_reduce_layout_make(2, grad_out->shape, (const bool[]){true, false}, &lay);
        if (path == LN_PATH_CUDA) return ln_cuda_sum(ctx, &lay, 1.f, gy, ln_f32(grad_in[2]));
        ln_cpu_sum(ctx, &lay, 1.f, gy, ln_f32(grad_in[2]));
    }
    return LN_OK;
}

static ln_status linear_backward_ref(ln_ctx *ctx, linear_dims d, const ln_tensor *x,
                                     const ln_tensor *w, const ln_tensor *grad_out,
                                     ln_tensor **grad_in) {
    double *xb = NULL, *wb = NULL, *gyb = NULL, *g[3] = {NULL, NULL, NULL};
    ln_status st = LN_OK;
    if (x) LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    if (w) LN_CHECK(st, ln_ref_in(ctx, w, &wb), done);
    LN_CHECK(st, ln_ref_in(ctx, grad_out, &gyb), done);
    for (int i = 0; i < 3; i++)
        if (grad_in[i]) LN_CHECK(st, ln_ref_buf(ctx, ln_tensor_numel(grad_in[i]), &g[i]), done);
    ln_ref_linear_bwd(d.rows, d.in, d.out, xb, wb, gyb, g[0], g[1], g[2]);
    for (int i = 0; i < 3; i++)
        if (grad_in[i]) LN_CHECK(st, ln_ref_out(ctx, grad_in[i], g[i]), done);
done:
    free(xb); free(wb); free(gyb);
    for (int i = 0; i < 3; i++) free(g[i]);
    return st;
}

/* saved: x (gemm_ready) when w needs grad, w when x needs grad; NULL slots otherwise */
static ln_status linear_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                                 ln_tensor **grad_in) {
    const ln_tensor *x = self->saved[0], *w = self->saved[1];
    linear_dims d = {grad_out->shape[0], x ? x->shape[1] : w ? w->shape[1] : 0, grad_out->shape[1]};
    ln_tensor *ts[3] = {(ln_tensor *)grad_out, (ln_tensor *)x, (ln_tensor *)w};
    const char *names[3] = {"grad", "x", "w"};
    ln_path path;
    LN_TRY(ln_pick_path(ctx, "linear", 3, ts, names, &path));
    ln_device dev = ln_tensor_device(grad_out);
    ln_dtype dt = grad_out->dtype;
    if (ln_node_needs_grad(self, 0))
        LN_TRY(ln_tensor_empty(ctx, dt, dev, 2, (int64_t[]){d.rows, d.in}, &grad_in[0]));
    if (ln_node_needs_grad(self, 1))
        LN_TRY(ln_tensor_empty(ctx, dt, dev, 2, (int64_t[]){d.out, d.in}, &grad_in[1]));
    if (ln_node_needs_grad(self, 2)) LN_TRY(ln_tensor_empty(ctx, dt, dev, 1, &d.out, &grad_in[2]));
    return path != LN_PATH_REF ? linear_backward_fast(ctx, path, d, x, w, grad_out, grad_in)
                               : linear_backward_ref(ctx, d, x, w, grad_out, grad_in);
}

static ln_status linear_check(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, ln_tensor *b,
                              ln_path *path) {
    LN_TRY(ln_check_float(ctx, "linear", "x", x));
    LN_TRY(ln_check_float(ctx, "linear", "w", w));
    if (b) LN_TRY(ln_check_float(ctx, "linear", "b", b));
    ln_tensor *ts[3] = {x, w, b};
    const char *names[3] = {"x", "w", "b"};
    LN_TRY(ln_pick_path(ctx, "linear", 3, ts, names, path));
    LN_TRY(ln_check_ndim(ctx, "linear", "x", x, 2));
    LN_TRY(ln_check_ndim(ctx, "linear", "w", w, 2));
    if (b) LN_TRY(ln_check_ndim(ctx, "linear", "b", b, 1));
    char sx[256], sw[256];
    ln_shape_format(x->ndim, x->shape, sx, sizeof sx);
    ln_shape_format(w->ndim, w->shape, sw, sizeof sw);
    if (x->shape[1] != w->shape[1])
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "linear: input 'x' has %lld features %s but weight 'w' expects %lld %s",
                       (long long)x->shape[1], sx, (long long)w->shape[1], sw);
    if (b && b->shape[0] != w->shape[0])
        return ln_fail(ctx, LN_ERR_SHAPE,
                       "linear: bias 'b' has %lld entries but weight 'w' %s has %lld outputs",
                       (long long)b->shape[0], sw, (long long)w->shape[0]);
    return LN_OK;
}

ln_status ln_linear(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, ln_tensor *b, ln_tensor **out) {
    *out = NULL;
    ln_path path;
    LN_TRY(linear_check(ctx, x, w, b, &path));
    ln_tensor *xr = NULL, *wr = NULL, *bc = NULL, *y = NULL;
    ln_status st;
    LN_CHECK(st, gemm_ready(ctx, x, &xr), fail);
    LN_CHECK(st, gemm_ready(ctx, w, &wr), fail);
    if (b) LN_CHECK(st, ln_tensor_contiguous(ctx, b, &bc), fail);
    LN_CHECK(st, ln_tensor_empty(ctx, x->dtype, ln_tensor_device(x), 2,
                                 (int64_t[]){x->shape[0], w->shape[0]}, &y), fail);
    LN_CHECK(st, linear_run(ctx, path, xr, wr, bc, y), fail);
    ln_tensor *ts[3] = {x, w, b};
    if (ln_any_requires_grad(ctx, 3, ts)) {
        ln_node *n;
        LN_CHECK(st, ln_node_attach(ctx, y, "linear", linear_backward, 3, ts, &n), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 1) ? xr : NULL, NULL), fail);
        LN_CHECK(st, ln_node_save(ctx, n, ln_node_needs_grad(n, 0) ? wr : NULL, NULL), fail);
    }
    ln_tensor_release(xr);
    ln_tensor_release(wr);
    ln_tensor_release(bc);
    *out = y;
    return LN_OK;
fail:
    ln_tensor_release(xr);
    ln_tensor_release(wr);
    ln_tensor_release(bc);
    ln_tensor_release(y);
    return st;
}
