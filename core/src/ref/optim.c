/* Reference SGD step in double: the update of kernels/optim.h, one element at a time. */
#include "../kernels/optim.h"

void ln_ref_sgd_step(int64_t n, double *param, const double *grad, double *buf,
                     bool first_step, const ln_sgd_params *p) {
    for (int64_t i = 0; i < n; i++) {
        double g = grad[i] + p->weight_decay * param[i];
        if (p->momentum != 0) {
            buf[i] = first_step ? g : p->momentum * buf[i] + (1 - p->dampening) * g;
            g = p->nesterov ? g + p->momentum * buf[i] : buf[i];
        }
        param[i] -= p->lr * g;
    }
}
