/* Backend selection and the double-buffer bridge of the reference kernels. */
#include <string.h>
#include "dispatch.h"

ln_status ln_pick_path(ln_ctx *ctx, const char *op, int n, ln_tensor *const *ts,
                       const char *const *names, ln_path *path) {
    LN_TRY(ln_check_compatible(ctx, op, n, ts, names));
    const ln_tensor *t = NULL;
    for (int i = 0; i < n && !t; i++) t = ts[i];
    if (!t) return ln_fail(ctx, LN_ERR_ARG, "%s: no tensor arguments", op);
    if (t->storage->device.type == LN_CUDA) {
        if (t->dtype != LN_F32)
            return ln_fail(ctx, LN_ERR_UNSUPPORTED, "%s: CUDA tensors must be f32, got %s", op,
                           ln_dtype_name(t->dtype));
        *path = LN_PATH_CUDA;
    } else if (t->dtype == LN_F32 && ctx->backend == LN_BACKEND_AUTO) {
        *path = LN_PATH_CPU;
    } else {
        *path = LN_PATH_REF;
    }
    return LN_OK;
}

ln_status ln_ref_buf(ln_ctx *ctx, int64_t numel, double **buf) {
    *buf = calloc((size_t)(numel > 0 ? numel : 1), sizeof(double));
    if (!*buf) return ln_fail(ctx, LN_ERR_NOMEM, "out of memory allocating %lld doubles", (long long)numel);
    return LN_OK;
}

ln_status ln_ref_in(ln_ctx *ctx, const ln_tensor *t, double **buf) {
    LN_TRY(ln_ref_buf(ctx, ln_tensor_numel(t), buf));
    ln_status st = ln_tensor_to_f64(ctx, t, *buf);
    if (st != LN_OK) { free(*buf); *buf = NULL; }
    return st;
}

ln_status ln_ref_out(ln_ctx *ctx, ln_tensor *t, const double *buf) {
    int64_t n = ln_tensor_numel(t);
    if (t->storage->device.type != LN_CPU || !ln_tensor_is_contiguous(t))
        return ln_fail(ctx, LN_ERR_STATE, "internal: ln_ref_out needs a contiguous CPU tensor");
    if (t->dtype == LN_F64) {
        memcpy(ln_tensor_data(t), buf, (size_t)n * sizeof(double));
    } else if (t->dtype == LN_F32) {
        float *d = ln_tensor_data(t);
        for (int64_t i = 0; i < n; i++) d[i] = (float)buf[i];
    } else {
        return ln_fail(ctx, LN_ERR_DTYPE, "internal: ln_ref_out needs a float tensor, got %s",
                       ln_dtype_name(t->dtype));
    }
    return LN_OK;
}
