/* Fast CPU SGD step (f32): the update of kernels/optim.h with the branches on the
 * hyper-parameters taken once outside the loops, each loop SIMD and OpenMP parallel. */
#include "../kernels/optim.h"

#define LN_PAR_MIN 65536 /* below this many elements a single thread is faster */

void ln_cpu_sgd_step(ln_ctx *ctx, int64_t n, float *restrict param, const float *restrict grad,
                     float *restrict buf, bool first_step, const ln_sgd_params *p) {
    int nt = n >= LN_PAR_MIN ? ctx->num_threads : 1;
    float lr = (float)p->lr, wd = (float)p->weight_decay, mom = (float)p->momentum;
    float keep = (float)(1 - p->dampening);
    if (p->momentum == 0) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) param[i] -= lr * (grad[i] + wd * param[i]);
    } else if (first_step) {
        if (p->nesterov) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; i++) {
                float g = grad[i] + wd * param[i];
                buf[i] = g;
                param[i] -= lr * (g + mom * g);
            }
        } else {
#pragma omp parallel for simd num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n; i++) {
                float g = grad[i] + wd * param[i];
                buf[i] = g;
                param[i] -= lr * g;
            }
        }
    } else if (p->nesterov) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float g = grad[i] + wd * param[i];
            float b = mom * buf[i] + keep * g;
            buf[i] = b;
            param[i] -= lr * (g + mom * b);
        }
    } else {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float g = grad[i] + wd * param[i];
            float b = mom * buf[i] + keep * g;
            buf[i] = b;
            param[i] -= lr * b;
        }
    }
}
