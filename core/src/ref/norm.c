/* Reference batch normalisation in double: two-pass statistics and the textbook
 * forward and backward formulas (see kernels/norm.h). */
#include "../kernels/norm.h"

void ln_ref_bn_stats(int64_t N, int64_t C, int64_t HW, const double *x, double *mean,
                     double *var) {
    double M = (double)(N * HW);
    for (int64_t c = 0; c < C; c++) {
        double s = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) s += x[(n * C + c) * HW + i];
        double m = s / M, ss = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                double d = x[(n * C + c) * HW + i] - m;
                ss += d * d;
            }
        mean[c] = m;
        var[c] = ss / M;
    }
}

void ln_ref_bn_fwd(int64_t N, int64_t C, int64_t HW, const double *x, const double *mean,
                   const double *invstd, const double *w, const double *b, double *y) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            double wc = w ? w[c] : 1, bc = b ? b[c] : 0;
            for (int64_t i = 0; i < HW; i++) {
                int64_t k = (n * C + c) * HW + i;
                y[k] = (x[k] - mean[c]) * invstd[c] * wc + bc;
            }
        }
}

void ln_ref_bn_bwd(int64_t N, int64_t C, int64_t HW, bool training, const double *x,
                   const double *mean, const double *invstd, const double *w,
                   const double *gy, double *gx, double *gw, double *gb) {
    double M = (double)(N * HW);
    for (int64_t c = 0; c < C; c++) {
        double sdy = 0, sdyx = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t k = (n * C + c) * HW + i;
                sdy += gy[k];
                sdyx += gy[k] * (x[k] - mean[c]) * invstd[c];
            }
        if (gb) gb[c] = sdy;
        if (gw) gw[c] = sdyx;
        if (!gx) continue;
        double scale = (w ? w[c] : 1) * invstd[c];
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t k = (n * C + c) * HW + i;
                double xhat = (x[k] - mean[c]) * invstd[c];
                gx[k] = training ? scale * (gy[k] - sdy / M - xhat * sdyx / M) : scale * gy[k];
            }
    }
}
