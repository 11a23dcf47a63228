/* Fast CPU elementwise kernels (f32). Binary ops walk the collapsed broadcast layout
 * row by row: the innermost collapsed dim is a run in which each input either
 * advances (stride 1) or stays put (stride 0, broadcast), and those cases get their
 * own vectorised loops. Rows, or pieces of rows when there are fewer rows than
 * threads, are shared out with OpenMP. */
#include <math.h>
#include "../kernels/elementwise.h"

#define LN_PAR_MIN 32768 /* below this many elements a single thread is faster */

void ln_bcast_make(int ndim, const int64_t *out_shape, const int64_t *a_shape,
                   const int64_t *b_shape, ln_bcast *bc) {
    int64_t sa = 1, sb = 1, fa[LN_MAX_DIMS], fb[LN_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) { /* contiguous strides, 0 where broadcast */
        fa[d] = a_shape[d] == 1 ? 0 : sa;
        fb[d] = b_shape[d] == 1 ? 0 : sb;
        sa *= a_shape[d];
        sb *= b_shape[d];
    }
    bc->ndim = 0;
    bc->numel = 1;
    for (int d = 0; d < ndim; d++) {
        int64_t n = out_shape[d];
        bc->numel *= n;
        if (n == 1) continue;
        int k = bc->ndim - 1;
        if (k >= 0 && bc->sa[k] == fa[d] * n && bc->sb[k] == fb[d] * n) {
            bc->shape[k] *= n;
            bc->sa[k] = fa[d];
            bc->sb[k] = fb[d];
        } else {
            bc->shape[k + 1] = n;
            bc->sa[k + 1] = fa[d];
            bc->sb[k + 1] = fb[d];
            bc->ndim++;
        }
    }
    if (bc->ndim == 0) { /* a single element */
        bc->ndim = 1;
        bc->shape[0] = 1;
        bc->sa[0] = bc->sb[0] = 0;
    }
}

/* One loop over n elements for given a/b strides; EXPR reads av, bv and gy[j] and its
 * value is stored in out[j]. */
#define LN_BIN_VARIANT(SA, SB, EXPR)                                   \
    _Pragma("omp simd") for (int64_t j = 0; j < n; j++) {              \
        const float av = a[j * (SA)], bv = b[j * (SB)];                \
        out[j] = (EXPR);                                               \
    }
#define LN_BIN_LOOP(EXPR)                                              \
    do {                                                               \
        if (sa == 1 && sb == 1) { LN_BIN_VARIANT(1, 1, EXPR) }         \
        else if (sa == 1 && sb == 0) { LN_BIN_VARIANT(1, 0, EXPR) }    \
        else if (sa == 0 && sb == 1) { LN_BIN_VARIANT(0, 1, EXPR) }    \
        else { LN_BIN_VARIANT(sa, sb, EXPR) }                          \
    } while (0)

static void fwd_run(ln_binop op, int64_t n, const float *restrict a, int64_t sa,
                    const float *restrict b, int64_t sb, float *restrict out) {
    switch (op) {
    case LN_BIN_ADD: LN_BIN_LOOP(av + bv); break;
    case LN_BIN_SUB: LN_BIN_LOOP(av - bv); break;
    case LN_BIN_MUL: LN_BIN_LOOP(av * bv); break;
    case LN_BIN_DIV: LN_BIN_LOOP(av / bv); break;
    }
}

/* One loop over n elements reading gy[j] and one operand p (stride sp) as pv. */
#define LN_ONE_VARIANT(SP, EXPR)                                       \
    _Pragma("omp simd") for (int64_t j = 0; j < n; j++) {              \
        const float pv = p[j * (SP)];                                  \
        out[j] = (EXPR);                                               \
    }
#define LN_ONE_LOOP(EXPR)                                              \
    do {                                                               \
        if (sp == 1) { LN_ONE_VARIANT(1, EXPR) }                       \
        else if (sp == 0) { LN_ONE_VARIANT(0, EXPR) }                  \
        else { LN_ONE_VARIANT(sp, EXPR) }                              \
    } while (0)

static void grad_run(ln_binop op, int which, int64_t n, const float *restrict a, int64_t sa,
                     const float *restrict b, int64_t sb, const float *restrict gy,
                     float *restrict out) {
    float sign = (op == LN_BIN_SUB && which == 1) ? -1.f : 1.f;
    if (op == LN_BIN_ADD || op == LN_BIN_SUB) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) out[j] = sign * gy[j];
    } else if (op == LN_BIN_DIV && which == 1) {
        LN_BIN_LOOP(-gy[j] * av / (bv * bv));
    } else { /* d/da of mul and div reads b; d/db of mul reads a */
        const float *restrict p = which == 0 ? b : a;
        int64_t sp = which == 0 ? sb : sa;
        if (op == LN_BIN_MUL) LN_ONE_LOOP(gy[j] * pv);
        else LN_ONE_LOOP(gy[j] / pv);
    }
}

/* Runs fwd_run (gy NULL) or grad_run over the layout: y and gy are contiguous. */
static void bin_walk(ln_ctx *ctx, ln_binop op, int which, const ln_bcast *bc, const float *a,
                     const float *b, const float *gy, float *y) {
    if (bc->numel == 0) return;
    int n = bc->ndim;
    int64_t L = bc->shape[n - 1], rows = bc->numel / L, isa = bc->sa[n - 1], isb = bc->sb[n - 1];
    int nt = bc->numel >= LN_PAR_MIN ? ctx->num_threads : 1;
    int64_t pieces = rows >= nt ? 1 : (nt + rows - 1) / rows, plen = (L + pieces - 1) / pieces;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t task = 0; task < rows * pieces; task++) {
        int64_t row = task / pieces, j0 = (task % pieces) * plen;
        int64_t j1 = j0 + plen < L ? j0 + plen : L;
        if (j0 >= j1) continue;
        int64_t oa = j0 * isa, ob = j0 * isb, idx = row;
        for (int d = n - 2; d >= 0; d--) {
            int64_t i = idx % bc->shape[d];
            idx /= bc->shape[d];
            oa += i * bc->sa[d];
            ob += i * bc->sb[d];
        }
        int64_t o = row * L + j0;
        const float *ap = a ? a + oa : NULL, *bp = b ? b + ob : NULL; /* NULL: not needed */
        if (gy) grad_run(op, which, j1 - j0, ap, isa, bp, isb, gy + o, y + o);
        else fwd_run(op, j1 - j0, ap, isa, bp, isb, y + o);
    }
}

void ln_cpu_binary_fwd(ln_ctx *ctx, ln_binop op, const ln_bcast *bc, const float *a,
                       const float *b, float *y) {
    bin_walk(ctx, op, 0, bc, a, b, NULL, y);
}

void ln_cpu_binary_grad(ln_ctx *ctx, ln_binop op, int which, const ln_bcast *bc,
                        const float *a, const float *b, const float *gy, float *g) {
    bin_walk(ctx, op, which, bc, a, b, gy, g);
}

void ln_cpu_affine(ln_ctx *ctx, int64_t n, const float *restrict x, float scale, float shift,
                   float *restrict y) {
    int nt = n >= LN_PAR_MIN ? ctx->num_threads : 1;
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale + shift;
}

void ln_cpu_pow_fwd(ln_ctx *ctx, int64_t n, const float *restrict x, float p, float *restrict y) {
    int nt = n >= LN_PAR_MIN ? ctx->num_threads : 1;
    if (p == 2.f) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];
    } else if (p == 1.f) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
    } else if (p == 0.5f) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = sqrtf(x[i]);
    } else {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = powf(x[i], p);
    }
}

void ln_cpu_pow_bwd(ln_ctx *ctx, int64_t n, const float *restrict x, float p,
                    const float *restrict gy, float *restrict gx) {
    int nt = n >= LN_PAR_MIN ? ctx->num_threads : 1;
    if (p == 0.f) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] = 0.f;
    } else if (p == 2.f) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] = 2.f * x[i] * gy[i];
    } else if (p == 1.f) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] = gy[i];
    } else {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * p * powf(x[i], p - 1.f);
    }
}

void ln_cpu_dropout_mask(ln_ctx *ctx, int64_t n, double p, float *mask) {
    float keep = (float)(1.0 / (1.0 - p));
    for (int64_t i = 0; i < n; i++) { /* sequential: the RNG stream defines the mask */
        double u = (double)(ln_ctx_rand_u64(ctx) >> 11) * (1.0 / 9007199254740992.0);
        mask[i] = u < p ? 0.f : keep;
    }
}
