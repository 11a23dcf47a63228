/* Reference pooling in double: max pooling by scanning each padded window with bounds
 * checks, global average pooling as a plain mean (see kernels/pool.h). */
#include <math.h>
#include "../kernels/pool.h"

void ln_ref_maxpool_fwd(int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        const ln_pool2d_params *p, const double *x, double *y, int64_t *idx) {
    for (int64_t pl = 0; pl < NC; pl++) {
        const double *xp = x + pl * H * W;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double best = -INFINITY;
                int64_t arg = -1;
                for (int64_t kh = 0; kh < p->kernel_h; kh++)
                    for (int64_t kw = 0; kw < p->kernel_w; kw++) {
                        int64_t ih = oh * p->stride_h - p->pad_h + kh;
                        int64_t iw = ow * p->stride_w - p->pad_w + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue; /* -inf padding */
                        double v = xp[ih * W + iw];
                        if (arg < 0 || v > best || isnan(v)) { best = v; arg = ih * W + iw; }
                    }
                int64_t o = pl * OH * OW + oh * OW + ow;
                y[o] = best;
                idx[o] = arg;
            }
    }
}

void ln_ref_maxpool_bwd(int64_t NC, int64_t HW, int64_t OHW, const int64_t *idx,
                        const double *gy, double *gx) {
    for (int64_t i = 0; i < NC * HW; i++) gx[i] = 0;
    for (int64_t pl = 0; pl < NC; pl++)
        for (int64_t o = 0; o < OHW; o++) gx[pl * HW + idx[pl * OHW + o]] += gy[pl * OHW + o];
}

void ln_ref_gap_fwd(int64_t NC, int64_t HW, const double *x, double *y) {
    for (int64_t pl = 0; pl < NC; pl++) {
        double s = 0;
        for (int64_t i = 0; i < HW; i++) s += x[pl * HW + i];
        y[pl] = s / (double)HW;
    }
}

void ln_ref_gap_bwd(int64_t NC, int64_t HW, const double *gy, double *gx) {
    for (int64_t pl = 0; pl < NC; pl++)
        for (int64_t i = 0; i < HW; i++) gx[pl * HW + i] = gy[pl] / (double)HW;
}
