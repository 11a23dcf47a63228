/* cross_entropy and topk_correct: argument and label checks, dispatch, autograd.
 * logits are (N,C) f32/f64; labels are (N) i64 holding 0-based classes in [0,C) (a bad
 * label is an error naming its value and position). cross_entropy returns a 0-d
 * tensor of the logits' dtype, the batch mean of -log_softmax(logits)[label];
 * its node saves the logits and labels and recomputes the softmax in backward:
 * grad_logits = grad * (softmax - onehot) / N. The tie rule of topk_correct is in
 * kernels/loss.h. On CUDA the labels are checked on the device (one small copy back),
 * the loss stays a device scalar and the backward reads grad from the device. */
#include "../dispatch.h"
#include "../kernels/loss.h"

static const char *const XENT = "cross_entropy";
static const char *const TOPK = "topk_correct";

/* Checks logits (N,C) with N, C >= 1 and labels (N) i64 in [0,C) on the same device;
 * gives a contiguous labels tensor and the path for the logits. */
static ln_status check_inputs(ln_ctx *ctx, const char *op, ln_tensor *logits, ln_tensor *labels,
                              ln_tensor **labels_c, ln_path *path) {
    *labels_c = NULL;
    LN_TRY(ln_check_float(ctx, op, "logits", logits));
    LN_TRY(ln_check_ndim(ctx, op, "logits", logits, 2));
    LN_TRY(ln_check_dtype(ctx, op, "labels", labels, LN_I64));
    LN_TRY(ln_check_ndim(ctx, op, "labels", labels, 1));
    char a[300], b[300];
    ln_describe(logits, a, sizeof a);
    ln_describe(labels, b, sizeof b);
    int64_t N = logits->shape[0], C = logits->shape[1];
    if (N < 1 || C < 1)
        return ln_fail(ctx, LN_ERR_SHAPE, "%s: 'logits' %s must have at least one row and one class", op, a);
    if (labels->shape[0] != N)
        return ln_fail(ctx, LN_ERR_SHAPE, "%s: 'labels' %s must have one entry per row of 'logits' %s", op, b, a);
    if (!ln_device_eq(ln_tensor_device(labels), ln_tensor_device(logits)))
        return ln_fail(ctx, LN_ERR_DEVICE, "%s: 'labels' %s and 'logits' %s are on different devices", op, b, a);
    const char *name = "logits";
    LN_TRY(ln_pick_path(ctx, op, 1, &logits, &name, path));
    LN_TRY(ln_tensor_contiguous(ctx, labels, labels_c));
    const int64_t *l = ln_tensor_data(*labels_c);
    int64_t bad = -1, bad_value = 0;
    if (*path == LN_PATH_CUDA) {
        ln_status st = ln_cuda_check_labels(ctx, N, C, l, &bad, &bad_value);
        if (st != LN_OK) {
            ln_tensor_release(*labels_c);
            *labels_c = NULL;
            return st;
        }
    } else {
        for (int64_t i = 0; i < N && bad < 0; i++)
            if (l[i] < 0 || l[i] >= C) { bad = i; bad_value = l[i]; }
    }
    if (bad < 0) return LN_OK;
    ln_tensor_release(*labels_c);
    *labels_c = NULL;
    return ln_fail(ctx, LN_ERR_ARG, "%s: labels[%lld] = %lld is out of range [0, %lld) for 'logits' %s "
                   "(classes are 0-based)", op, (long long)bad, (long long)bad_value, (long long)C, a);
}

/* ------------------------------------------------------------ cross_entropy */
static ln_status xent_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                               ln_tensor **grad_in) {
    const ln_tensor *x = self->saved[0], *labels = self->saved[1];
    int64_t N = x->shape[0], C = x->shape[1];
    const int64_t *l = ln_tensor_data(labels);
    ln_path path;
    ln_tensor *ts[2] = {(ln_tensor *)x, (ln_tensor *)grad_out};
    const char *names[2] = {"logits", "grad"};
    LN_TRY(ln_pick_path(ctx, XENT, 2, ts, names, &path));
    LN_TRY(ln_tensor_empty_like(ctx, x, &grad_in[0]));
    if (path == LN_PATH_CUDA) /* grad_out is a 0-d device tensor, read by the kernel */
        return ln_cuda_xent_bwd(ctx, N, C, ln_f32(x), l, ln_f32(grad_out), ln_f32(grad_in[0]));
    double g;
    LN_TRY(ln_tensor_item(ctx, grad_out, &g));
    if (path == LN_PATH_CPU) {
        ln_cpu_xent_bwd(ctx, N, C, ln_f32(x), l, g / (double)N, ln_f32(grad_in[0]));
        return LN_OK;
    }
    double *xb = NULL, *gxb = NULL;
    ln_status st;
    LN_CHECK(st, ln_ref_in(ctx, x, &xb), done);
    LN_CHECK(st, ln_ref_buf(ctx, N * C, &gxb), done);
    ln_ref_xent_bwd(N, C, xb, l, g / (double)N, gxb);
    st = ln_ref_out(ctx, grad_in[0], gxb);
done:
    free(xb); free(gxb);
    return st;
}

ln_status ln_cross_entropy(ln_ctx *ctx, ln_tensor *logits, ln_tensor *labels, ln_tensor **out) {
    *out = NULL;
    ln_path path;
    ln_tensor *lc = NULL, *xc = NULL, *y = NULL;
    double *xb = NULL;
    ln_status st;
    LN_CHECK(st, check_inputs(ctx, XENT, logits, labels, &lc, &path), done);
    int64_t N = logits->shape[0], C = logits->shape[1];
    LN_CHECK(st, ln_tensor_contiguous(ctx, logits, &xc), done);
    int64_t no_dims = 0; /* a 0-d result reads no shape entry */
    LN_CHECK(st, ln_tensor_empty(ctx, logits->dtype, ln_tensor_device(logits), 0, &no_dims, &y), done);
    if (path == LN_PATH_CUDA) {
        LN_CHECK(st, ln_cuda_xent_fwd(ctx, N, C, ln_f32(xc), ln_tensor_data(lc), ln_f32(y)), done);
    } else {
        double loss;
        if (path == LN_PATH_CPU) {
            loss = ln_cpu_xent_fwd(ctx, N, C, ln_f32(xc), ln_tensor_data(lc));
        } else {
            LN_CHECK(st, ln_ref_in(ctx, xc, &xb), done);
            loss = ln_ref_xent_fwd(N, C, xb, ln_tensor_data(lc));
        }
        LN_CHECK(st, ln_ref_out(ctx, y, &loss), done);
    }
    if (ln_any_requires_grad(ctx, 1, &logits)) {
        ln_node *n;
        LN_CHECK(st, ln_node_attach(ctx, y, XENT, xent_backward, 1, &logits, &n), done);
        LN_CHECK(st, ln_node_save(ctx, n, xc, NULL), done);
        LN_CHECK(st, ln_node_save(ctx, n, lc, NULL), done);
    }
done:
    free(xb);
    ln_tensor_release(lc);
    ln_tensor_release(xc);
    if (st == LN_OK) *out = y;
    else ln_tensor_release(y);
    return st;
}

/* ------------------------------------------------------------ topk_correct */
ln_status ln_topk_correct(ln_ctx *ctx, ln_tensor *logits, ln_tensor *labels, int k,
                          int64_t *correct) {
    if (!correct) return ln_fail(ctx, LN_ERR_ARG, "%s: argument 'correct' must not be NULL", TOPK);
    *correct = 0;
    ln_path path;
    ln_tensor *lc = NULL, *xc = NULL;
    double *xb = NULL;
    ln_status st;
    LN_CHECK(st, check_inputs(ctx, TOPK, logits, labels, &lc, &path), done);
    int64_t N = logits->shape[0], C = logits->shape[1];
    if (k < 1 || k > C) {
        st = ln_fail(ctx, LN_ERR_ARG, "%s: k = %d must be in [1, %lld] (the number of classes)", TOPK, k,
                     (long long)C);
        goto done;
    }
    LN_CHECK(st, ln_tensor_contiguous(ctx, logits, &xc), done);
    if (path == LN_PATH_CUDA) {
        LN_CHECK(st, ln_cuda_topk_correct(ctx, N, C, ln_f32(xc), ln_tensor_data(lc), k, correct), done);
    } else if (path == LN_PATH_CPU) {
        *correct = ln_cpu_topk_correct(ctx, N, C, ln_f32(xc), ln_tensor_data(lc), k);
    } else {
        LN_CHECK(st, ln_ref_in(ctx, xc, &xb), done);
        *correct = ln_ref_topk_correct(N, C, xb, ln_tensor_data(lc), k);
    }
done:
    free(xb);
    ln_tensor_release(lc);
    ln_tensor_release(xc);
    return st;
}
