/* Fast CPU sum and expand (f32 data, double accumulators) over a collapsed layout.
 * Two shapes of work, chosen by the innermost collapsed dimension:
 *   innermost reduced: each small element sums contiguous runs (vectorised), the
 *     small elements are shared out between threads (or, when there are fewer of
 *     them than threads, the runs of each one are);
 *   innermost kept:    each small row accumulates whole full rows, in chunks of
 *     LN_RED_CHUNK columns that are shared out between threads. */
#include <string.h>
#include "../kernels/reduce.h"

#define LN_PAR_MIN 32768  /* below this many elements a single thread is faster */
#define LN_RED_CHUNK 512  /* columns accumulated at once when the innermost dim is kept */

void ln_reduce_layout_make(int ndim, const int64_t *shape, const bool *reduced,
                           ln_reduce_layout *lay) {
    lay->ndim = 0;
    lay->full_numel = 1;
    lay->small_numel = 1;
    for (int d = 0; d < ndim; d++) {
        lay->full_numel *= shape[d];
        if (!reduced[d]) lay->small_numel *= shape[d];
        if (shape[d] == 1) continue;
        if (lay->ndim > 0 && lay->reduced[lay->ndim - 1] == reduced[d]) {
            lay->shape[lay->ndim - 1] *= shape[d];
        } else {
            lay->shape[lay->ndim] = shape[d];
            lay->reduced[lay->ndim] = reduced[d];
            lay->ndim++;
        }
    }
}

/* Strides of the collapsed dims in the full tensor and in the small tensor (0 for
 * reduced dims), plus the lists of kept and reduced dims before the innermost one. */
typedef struct red_plan {
    int64_t fs[LN_MAX_DIMS], ks[LN_MAX_DIMS];
    int kept[LN_MAX_DIMS], red[LN_MAX_DIMS];
    int n_kept, n_red;
    int64_t inner;       /* extent of the innermost collapsed dim */
    bool inner_reduced;
} red_plan;

static void plan_make(const ln_reduce_layout *lay, red_plan *p) {
    int n = lay->ndim;
    int64_t f = 1, k = 1;
    for (int d = n - 1; d >= 0; d--) {
        p->fs[d] = f;
        f *= lay->shape[d];
        p->ks[d] = lay->reduced[d] ? 0 : k;
        if (!lay->reduced[d]) k *= lay->shape[d];
    }
    p->n_kept = p->n_red = 0;
    for (int d = 0; d < n - 1; d++) {
        if (lay->reduced[d]) p->red[p->n_red++] = d;
        else p->kept[p->n_kept++] = d;
    }
    p->inner = lay->shape[n - 1];
    p->inner_reduced = lay->reduced[n - 1];
}

/* Full-tensor offset of index idx taken row-major over the listed dims. */
static inline int64_t offset_over(int64_t idx, int nd, const int *dims, const int64_t *shape,
                                  const int64_t *fs) {
    int64_t off = 0;
    for (int i = nd - 1; i >= 0; i--) {
        int d = dims[i];
        off += (idx % shape[d]) * fs[d];
        idx /= shape[d];
    }
    return off;
}

/* sum of x[i] (w NULL) or of x[i] * w[i] */
static inline double run_sum(const float *x, const float *w, int64_t n) {
    double s = 0;
    if (w) {
#pragma omp simd reduction(+:s)
        for (int64_t i = 0; i < n; i++) s += x[i] * w[i];
    } else {
#pragma omp simd reduction(+:s)
        for (int64_t i = 0; i < n; i++) s += x[i];
    }
    return s;
}

/* Innermost dim reduced: small[t] = alpha * sum over the outer reduced combinations r
 * of the contiguous run of `inner` values at base(t) + off(r) (times w's, if any). */
static void sum_inner_reduced(ln_ctx *ctx, const ln_reduce_layout *lay, const red_plan *p,
                              float alpha, const float *full, const float *w, float *small) {
    int64_t T = lay->small_numel, L = p->inner, R = lay->full_numel / (T * L);
    int nt = lay->full_numel >= LN_PAR_MIN ? ctx->num_threads : 1;
    if (T >= nt) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            int64_t base = offset_over(t, p->n_kept, p->kept, lay->shape, p->fs);
            double s = 0;
            for (int64_t r = 0; r < R; r++) {
                int64_t o = base + offset_over(r, p->n_red, p->red, lay->shape, p->fs);
                s += run_sum(full + o, w ? w + o : NULL, L);
            }
            small[t] = (float)(alpha * s);
        }
        return;
    }
    /* few outputs: share the runs of each one out, cut into pieces when too few */
    int64_t pieces = R >= nt ? 1 : (nt + R - 1) / R, plen = (L + pieces - 1) / pieces;
    for (int64_t t = 0; t < T; t++) {
        int64_t base = offset_over(t, p->n_kept, p->kept, lay->shape, p->fs);
        double s = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+:s)
        for (int64_t task = 0; task < R * pieces; task++) {
            int64_t r = task / pieces, j0 = (task % pieces) * plen;
            int64_t j1 = j0 + plen < L ? j0 + plen : L;
            int64_t o = base + offset_over(r, p->n_red, p->red, lay->shape, p->fs) + j0;
            if (j0 < j1) s += run_sum(full + o, w ? w + o : NULL, j1 - j0);
        }
        small[t] = (float)(alpha * s);
    }
}

/* Innermost dim kept: small row t (inner values) = alpha * sum over reduced
 * combinations r of the full row at base(t) + off(r) (times w's, if any). */
static void sum_inner_kept(ln_ctx *ctx, const ln_reduce_layout *lay, const red_plan *p,
                           float alpha, const float *full, const float *w, float *small) {
    int64_t L = p->inner, rows = lay->small_numel / L, R = lay->full_numel / lay->small_numel;
    int64_t chunks = (L + LN_RED_CHUNK - 1) / LN_RED_CHUNK;
    int nt = lay->full_numel >= LN_PAR_MIN ? ctx->num_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t task = 0; task < rows * chunks; task++) {
        int64_t t = task / chunks, j0 = (task % chunks) * LN_RED_CHUNK;
        int64_t len = L - j0 < LN_RED_CHUNK ? L - j0 : LN_RED_CHUNK;
        int64_t base = offset_over(t, p->n_kept, p->kept, lay->shape, p->fs) + j0;
        double acc[LN_RED_CHUNK];
        for (int64_t j = 0; j < len; j++) acc[j] = 0;
        for (int64_t r = 0; r < R; r++) {
            int64_t o = base + offset_over(r, p->n_red, p->red, lay->shape, p->fs);
            const float *src = full + o;
            if (w) {
                const float *ws = w + o;
#pragma omp simd
                for (int64_t j = 0; j < len; j++) acc[j] += src[j] * ws[j];
            } else {
#pragma omp simd
                for (int64_t j = 0; j < len; j++) acc[j] += src[j];
            }
        }
        float *dst = small + t * L + j0;
        for (int64_t j = 0; j < len; j++) dst[j] = (float)(alpha * acc[j]);
    }
}

void ln_cpu_sum_prod(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                     const float *w, float *small) {
    if (lay->full_numel == 0) { /* empty sums are 0 (NaN for a mean, as alpha is NaN) */
        for (int64_t i = 0; i < lay->small_numel; i++) small[i] = alpha * 0.f;
        return;
    }
    if (lay->ndim == 0) { small[0] = alpha * full[0] * (w ? w[0] : 1.f); return; }
    red_plan p;
    plan_make(lay, &p);
    if (p.inner_reduced) sum_inner_reduced(ctx, lay, &p, alpha, full, w, small);
    else sum_inner_kept(ctx, lay, &p, alpha, full, w, small);
}

void ln_cpu_sum(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                float *small) {
    ln_cpu_sum_prod(ctx, lay, alpha, full, NULL, small);
}

void ln_cpu_expand(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *small,
                   float *full) {
    if (lay->full_numel == 0) return;
    if (lay->ndim == 0) { full[0] = alpha * small[0]; return; }
    red_plan p;
    plan_make(lay, &p);
    int n = lay->ndim;
    int64_t L = p.inner, rows = lay->full_numel / L;
    int nt = lay->full_numel >= LN_PAR_MIN ? ctx->num_threads : 1;
    /* rows cut into pieces when there are fewer rows than threads */
    int64_t pieces = rows >= nt ? 1 : (nt + rows - 1) / rows, plen = (L + pieces - 1) / pieces;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t task = 0; task < rows * pieces; task++) {
        int64_t row = task / pieces, j0 = (task % pieces) * plen;
        int64_t j1 = j0 + plen < L ? j0 + plen : L;
        int64_t koff = 0, idx = row;
        for (int d = n - 2; d >= 0; d--) {
            koff += (idx % lay->shape[d]) * p.ks[d];
            idx /= lay->shape[d];
        }
        float *dst = full + row * L;
        if (p.inner_reduced) {
            float v = alpha * small[koff];
#pragma omp simd
            for (int64_t j = j0; j < j1; j++) dst[j] = v;
        } else {
            const float *src = small + koff;
#pragma omp simd
            for (int64_t j = j0; j < j1; j++) dst[j] = alpha * src[j];
        }
    }
}
