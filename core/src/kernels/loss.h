/* Classification loss and metric kernels: reference (double), fast CPU (f32), CUDA.
 * x holds logits (N,C), labels (N) 0-based classes already checked to lie in [0,C).
 * Cross-entropy: loss = mean_i (logsumexp(x_i) - x_i[label_i]), computed with the row
 * maximum subtracted; backward gx = scale * (softmax(x_i) - onehot(label_i)) where the
 * op passes scale = grad_out / N.
 * Top-k: a row counts when its label ranks among the first k of the row, ranking by
 * value descending, NaN above every number, equal values in class-index order (the
 * lower index first). So a label that ties the k-th largest logit counts only when
 * it has the lower index, and all-equal logits count only labels below k. */
#ifndef LUNET_KERNELS_LOSS_H
#define LUNET_KERNELS_LOSS_H

#include <math.h>
#include <stdint.h>
#include "../internal.h"

/* True when class j (value a) ranks before class l (value b) in the order above. */
static inline bool ln_rank_before(double a, int64_t j, double b, int64_t l) {
    bool an = isnan(a), bn = isnan(b);
    if (an || bn) return an && (!bn || j < l);
    return a > b || (a == b && j < l);
}

double ln_ref_xent_fwd(int64_t N, int64_t C, const double *x, const int64_t *labels);
void ln_ref_xent_bwd(int64_t N, int64_t C, const double *x, const int64_t *labels,
                     double scale, double *gx);
int64_t ln_ref_topk_correct(int64_t N, int64_t C, const double *x, const int64_t *labels,
                            int64_t k);

double ln_cpu_xent_fwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels);
void ln_cpu_xent_bwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels,
                     double scale, float *gx);
int64_t ln_cpu_topk_correct(ln_ctx *ctx, int64_t N, int64_t C, const float *x,
                            const int64_t *labels, int64_t k);

/* CUDA (cuda/loss.cu): x and labels on the device, N >= 1, C >= 1. check_labels sets
 * *bad to the first position whose label is outside [0,C) (and *bad_value to that
 * label), or -1; it waits for the device. xent_fwd writes the mean loss into the
 * device scalar *loss; xent_bwd reads grad_out from the device scalar *gy (scale =
 * *gy / N). topk_correct returns its count on the host (it waits). */
ln_status ln_cuda_check_labels(ln_ctx *ctx, int64_t N, int64_t C, const int64_t *labels,
                               int64_t *bad, int64_t *bad_value);
ln_status ln_cuda_xent_fwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels,
                           float *loss);
ln_status ln_cuda_xent_bwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels,
                           const float *gy, float *gx);
ln_status ln_cuda_topk_correct(ln_ctx *ctx, int64_t N, int64_t C, const float *x,
                               const int64_t *labels, int64_t k, int64_t *correct);

#endif
