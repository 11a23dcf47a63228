/* Argument checks shared by all ops. Messages name the op, the argument and shapes. */
#include <stdio.h>
#include <string.h>
#include "internal.h"

void ln_describe(const ln_tensor *t, char *buf, size_t n) {
    char shp[256], dev[32];
    ln_shape_format(t->ndim, t->shape, shp, sizeof shp);
    ln_device_format(t->storage->device, dev, sizeof dev);
    snprintf(buf, n, "%s %s on %s", shp, ln_dtype_name(t->dtype), dev);
}

ln_status ln_check_not_null(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t) {
    if (!t) return ln_fail(ctx, LN_ERR_ARG, "%s: argument '%s' must be a tensor", op, arg);
    return LN_OK;
}

ln_status ln_check_float(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t) {
    LN_TRY(ln_check_not_null(ctx, op, arg, t));
    if (!ln_dtype_is_float(t->dtype))
        return ln_fail(ctx, LN_ERR_DTYPE, "%s: argument '%s' must be a floating tensor (f32 or f64), got %s",
                       op, arg, ln_dtype_name(t->dtype));
    return LN_OK;
}

ln_status ln_check_dtype(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t,
                         ln_dtype dt) {
    LN_TRY(ln_check_not_null(ctx, op, arg, t));
    if (t->dtype != dt)
        return ln_fail(ctx, LN_ERR_DTYPE, "%s: argument '%s' must be %s, got %s", op, arg,
                       ln_dtype_name(dt), ln_dtype_name(t->dtype));
    return LN_OK;
}

ln_status ln_check_ndim(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t,
                        int ndim) {
    LN_TRY(ln_check_not_null(ctx, op, arg, t));
    if (t->ndim != ndim) {
        char shp[256];
        ln_shape_format(t->ndim, t->shape, shp, sizeof shp);
        return ln_fail(ctx, LN_ERR_SHAPE, "%s: argument '%s' must be %d-dimensional, got shape %s",
                       op, arg, ndim, shp);
    }
    return LN_OK;
}

ln_status ln_check_compatible(ln_ctx *ctx, const char *op, int n, ln_tensor *const *ts,
                              const char *const *names) {
    const ln_tensor *first = NULL;
    int fi = 0;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (!first) { first = ts[i]; fi = i; continue; }
        char a[300], b[300];
        if (!ln_device_eq(ts[i]->storage->device, first->storage->device)) {
            ln_describe(first, a, sizeof a);
            ln_describe(ts[i], b, sizeof b);
            return ln_fail(ctx, LN_ERR_DEVICE,
                           "%s: arguments '%s' (%s) and '%s' (%s) are on different devices",
                           op, names[fi], a, names[i], b);
        }
        if (ts[i]->dtype != first->dtype) {
            ln_describe(first, a, sizeof a);
            ln_describe(ts[i], b, sizeof b);
            return ln_fail(ctx, LN_ERR_DTYPE, "%s: arguments '%s' (%s) and '%s' (%s) have different dtypes",
                           op, names[fi], a, names[i], b);
        }
    }
    return LN_OK;
}

bool ln_shape_numel(int ndim, const int64_t *shape, int64_t *numel) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return false;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return false;
        n *= shape[i];
    }
    *numel = n;
    return true;
}

void ln_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}
