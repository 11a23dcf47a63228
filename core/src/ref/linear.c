/* Reference matrix products in double: the textbook triple loops. */
#include "../kernels/linear.h"

void ln_ref_matmul_fwd(int64_t m, int64_t k, int64_t n, const double *a, const double *b, double *y) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
            y[i * n + j] = s;
        }
}

void ln_ref_matmul_bwd(int64_t m, int64_t k, int64_t n, const double *a, const double *b,
                       const double *gy, double *ga, double *gb) {
    for (int64_t i = 0; ga && i < m; i++) /* ga[i,p] = sum_j gy[i,j] b[p,j] */
        for (int64_t p = 0; p < k; p++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++) s += gy[i * n + j] * b[p * n + j];
            ga[i * k + p] = s;
        }
    for (int64_t p = 0; gb && p < k; p++) /* gb[p,j] = sum_i a[i,p] gy[i,j] */
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t i = 0; i < m; i++) s += a[i * k + p] * gy[i * n + j];
            gb[p * n + j] = s;
        }
}

void ln_ref_linear_fwd(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                       const double *bias, double *y) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = bias ? bias[o] : 0;
            for (int64_t i = 0; i < in; i++) s += x[r * in + i] * w[o * in + i];
            y[r * out + o] = s;
        }
}

void ln_ref_linear_bwd(int64_t rows, int64_t in, int64_t out, const double *x, const double *w,
                       const double *gy, double *gx, double *gw, double *gbias) {
    for (int64_t r = 0; gx && r < rows; r++) /* gx[r,i] = sum_o gy[r,o] w[o,i] */
        for (int64_t i = 0; i < in; i++) {
            double s = 0;
            for (int64_t o = 0; o < out; o++) s += gy[r * out + o] * w[o * in + i];
            gx[r * in + i] = s;
        }
    for (int64_t o = 0; gw && o < out; o++) /* gw[o,i] = sum_r gy[r,o] x[r,i] */
        for (int64_t i = 0; i < in; i++) {
            double s = 0;
            for (int64_t r = 0; r < rows; r++) s += gy[r * out + o] * x[r * in + i];
            gw[o * in + i] = s;
        }
    for (int64_t o = 0; gbias && o < out; o++) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += gy[r * out + o];
        gbias[o] = s;
    }
}
