/* Reference elementwise kernels in double: one loop over the output in row-major
 * order, each input read through its broadcast index. Gradients of broadcast inputs
 * are accumulated (+=) element by element into their own shape. */
#include <math.h>
#include <string.h>
#include "../kernels/elementwise.h"

/* Index into a contiguous input of shape in_shape (aligned to ndim) of output element i. */
static int64_t bcast_index(int ndim, const int64_t *out_shape, const int64_t *in_shape, int64_t i) {
    int64_t k = 0, stride = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t idx = i % out_shape[d];
        i /= out_shape[d];
        if (in_shape[d] != 1) k += idx * stride;
        stride *= in_shape[d];
    }
    return k;
}

static int64_t numel_of(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

static double apply(ln_binop op, double a, double b) {
    switch (op) {
    case LN_BIN_ADD: return a + b;
    case LN_BIN_SUB: return a - b;
    case LN_BIN_MUL: return a * b;
    case LN_BIN_DIV: return a / b;
    }
    return NAN;
}

void ln_ref_binary_fwd(ln_binop op, int ndim, const int64_t *out_shape, const int64_t *a_shape,
                       const int64_t *b_shape, const double *a, const double *b, double *y) {
    int64_t n = numel_of(ndim, out_shape);
    for (int64_t i = 0; i < n; i++)
        y[i] = apply(op, a[bcast_index(ndim, out_shape, a_shape, i)],
                     b[bcast_index(ndim, out_shape, b_shape, i)]);
}

void ln_ref_binary_bwd(ln_binop op, int ndim, const int64_t *out_shape, const int64_t *a_shape,
                       const int64_t *b_shape, const double *a, const double *b,
                       const double *gy, double *ga, double *gb) {
    int64_t n = numel_of(ndim, out_shape);
    if (ga) memset(ga, 0, (size_t)numel_of(ndim, a_shape) * sizeof *ga);
    if (gb) memset(gb, 0, (size_t)numel_of(ndim, b_shape) * sizeof *gb);
    for (int64_t i = 0; i < n; i++) {
        int64_t ia = bcast_index(ndim, out_shape, a_shape, i);
        int64_t ib = bcast_index(ndim, out_shape, b_shape, i);
        if (ga) { /* d(a op b)/da */
            double d = op == LN_BIN_MUL ? b[ib] : op == LN_BIN_DIV ? 1 / b[ib] : 1;
            ga[ia] += gy[i] * d;
        }
        if (gb) { /* d(a op b)/db */
            double d = 1;
            switch (op) {
            case LN_BIN_ADD: d = 1; break;
            case LN_BIN_SUB: d = -1; break;
            case LN_BIN_MUL: d = a[ia]; break;
            case LN_BIN_DIV: d = -a[ia] / (b[ib] * b[ib]); break;
            }
            gb[ib] += gy[i] * d;
        }
    }
}

void ln_ref_affine(int64_t n, const double *x, double scale, double shift, double *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale + shift;
}

void ln_ref_pow_fwd(int64_t n, const double *x, double p, double *y) {
    for (int64_t i = 0; i < n; i++) y[i] = pow(x[i], p);
}

void ln_ref_pow_bwd(int64_t n, const double *x, double p, const double *gy, double *gx) {
    for (int64_t i = 0; i < n; i++) gx[i] = p == 0 ? 0 : gy[i] * p * pow(x[i], p - 1);
}

void ln_ref_dropout_mask(ln_ctx *ctx, int64_t n, double p, double *mask) {
    double keep = 1.0 / (1.0 - p);
    for (int64_t i = 0; i < n; i++) {
        double u = (double)(ln_ctx_rand_u64(ctx) >> 11) * (1.0 / 9007199254740992.0);
        mask[i] = u < p ? 0 : keep;
    }
}
