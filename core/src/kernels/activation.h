/* Pointwise activations: reference (double), fast CPU (f32) and CUDA (f32) kernels.
 * Forward: y[i] = f(x[i]). Backward: gx[i] = gy[i] * f'(.) where the derivative is
 * computed from `saved`, which is x for relu6 and y for relu and sigmoid.
 * All arrays are contiguous with n elements. */
#ifndef LUNET_KERNELS_ACTIVATION_H
#define LUNET_KERNELS_ACTIVATION_H

#include <stdint.h>
#include "../internal.h"

typedef enum ln_act { LN_ACT_RELU = 0, LN_ACT_RELU6, LN_ACT_SIGMOID } ln_act;

/* which tensor the backward needs: true -> output y, false -> input x */
static inline bool ln_act_saves_output(ln_act a) { return a != LN_ACT_RELU6; }

void ln_ref_act_fwd(ln_act a, int64_t n, const double *x, double *y);
void ln_ref_act_bwd(ln_act a, int64_t n, const double *saved, const double *gy, double *gx);

void ln_cpu_act_fwd(ln_ctx *ctx, ln_act a, int64_t n, const float *x, float *y);
void ln_cpu_act_bwd(ln_ctx *ctx, ln_act a, int64_t n, const float *saved, const float *gy, float *gx);

ln_status ln_cuda_act_fwd(ln_ctx *ctx, ln_act a, int64_t n, const float *x, float *y);
ln_status ln_cuda_act_bwd(ln_ctx *ctx, ln_act a, int64_t n, const float *saved, const float *gy, float *gx);

#endif
