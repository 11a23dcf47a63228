/* Fast CPU cross-entropy and top-k counting (f32), parallel over rows, the per-row
 * max, exp-sum and gradient loops vectorised; the batch sum is kept in double. */
#include "../kernels/loss.h"

#define LN_PAR_MIN 16384 /* below this many logits a single thread is faster */

static inline int threads_for(const ln_ctx *ctx, int64_t n) {
    return n >= LN_PAR_MIN ? ctx->num_threads : 1;
}

/* log(sum(exp(row))) with the maximum subtracted, in f32. */
static float logsumexp_f32(int64_t C, const float *restrict row) {
    float m = row[0], s = 0.f;
#pragma omp simd reduction(max : m)
    for (int64_t j = 1; j < C; j++) m = row[j] > m ? row[j] : m;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < C; j++) s += expf(row[j] - m);
    return m + logf(s);
}

double ln_cpu_xent_fwd(ln_ctx *ctx, int64_t N, int64_t C, const float *restrict x,
                       const int64_t *restrict labels) {
    double total = 0;
#pragma omp parallel for num_threads(threads_for(ctx, N * C)) schedule(static) reduction(+ : total)
    for (int64_t i = 0; i < N; i++)
        total += (double)logsumexp_f32(C, x + i * C) - (double)x[i * C + labels[i]];
    return total / (double)N;
}

void ln_cpu_xent_bwd(ln_ctx *ctx, int64_t N, int64_t C, const float *restrict x,
                     const int64_t *restrict labels, double scale, float *restrict gx) {
    float sc = (float)scale;
#pragma omp parallel for num_threads(threads_for(ctx, N * C)) schedule(static)
    for (int64_t i = 0; i < N; i++) {
        const float *row = x + i * C;
        float *g = gx + i * C, lse = logsumexp_f32(C, row);
#pragma omp simd
        for (int64_t j = 0; j < C; j++) g[j] = sc * expf(row[j] - lse);
        g[labels[i]] -= sc;
    }
}

int64_t ln_cpu_topk_correct(ln_ctx *ctx, int64_t N, int64_t C, const float *restrict x,
                            const int64_t *restrict labels, int64_t k) {
    int64_t correct = 0;
#pragma omp parallel for num_threads(threads_for(ctx, N * C)) schedule(static) reduction(+ : correct)
    for (int64_t i = 0; i < N; i++) {
        const float *row = x + i * C;
        int64_t l = labels[i], rank = 0;
        for (int64_t j = 0; j < C && rank < k; j++)
            if (ln_rank_before(row[j], j, row[l], l)) rank++;
        if (rank < k) correct++;
    }
    return correct;
}
