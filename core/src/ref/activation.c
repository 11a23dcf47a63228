/* Reference activations in double: the definitions the fast kernels are tested against. */
#include <math.h>
#include "../kernels/activation.h"

void ln_ref_act_fwd(ln_act a, int64_t n, const double *x, double *y) {
    for (int64_t i = 0; i < n; i++) {
        switch (a) {
        case LN_ACT_RELU: y[i] = x[i] > 0 ? x[i] : 0; break;
        case LN_ACT_RELU6: y[i] = x[i] < 0 ? 0 : x[i] > 6 ? 6 : x[i]; break;
        case LN_ACT_SIGMOID: y[i] = 1.0 / (1.0 + exp(-x[i])); break;
        }
    }
}

void ln_ref_act_bwd(ln_act a, int64_t n, const double *saved, const double *gy, double *gx) {
    for (int64_t i = 0; i < n; i++) {
        double s = saved[i];
        switch (a) {
        case LN_ACT_RELU: gx[i] = s > 0 ? gy[i] : 0; break;          /* s = y */
        case LN_ACT_RELU6: gx[i] = (s > 0 && s < 6) ? gy[i] : 0; break; /* s = x */
        case LN_ACT_SIGMOID: gx[i] = gy[i] * s * (1 - s); break;      /* s = y */
        }
    }
}
