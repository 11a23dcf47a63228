/* Reference cross-entropy and top-k counting in double (see kernels/loss.h). */
#include "../kernels/loss.h"

/* log(sum(exp(row))) with the maximum subtracted. */
static double logsumexp(int64_t C, const double *row) {
    double m = row[0], s = 0;
    for (int64_t j = 1; j < C; j++) if (row[j] > m) m = row[j];
    for (int64_t j = 0; j < C; j++) s += exp(row[j] - m);
    return m + log(s);
}

double ln_ref_xent_fwd(int64_t N, int64_t C, const double *x, const int64_t *labels) {
    double total = 0;
    for (int64_t i = 0; i < N; i++) total += logsumexp(C, x + i * C) - x[i * C + labels[i]];
    return total / (double)N;
}

void ln_ref_xent_bwd(int64_t N, int64_t C, const double *x, const int64_t *labels,
                     double scale, double *gx) {
    for (int64_t i = 0; i < N; i++) {
        double lse = logsumexp(C, x + i * C);
        for (int64_t j = 0; j < C; j++)
            gx[i * C + j] = scale * (exp(x[i * C + j] - lse) - (j == labels[i] ? 1.0 : 0.0));
    }
}

int64_t ln_ref_topk_correct(int64_t N, int64_t C, const double *x, const int64_t *labels,
                            int64_t k) {
    int64_t correct = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t l = labels[i], rank = 0;
        for (int64_t j = 0; j < C; j++)
            if (ln_rank_before(x[i * C + j], j, x[i * C + l], l)) rank++;
        if (rank < k) correct++;
    }
    return correct;
}
