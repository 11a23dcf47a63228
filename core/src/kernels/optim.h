/* Optimiser update kernels, in place on n contiguous values: reference (double) and
 * fast CPU and CUDA (f32). SGD with PyTorch's semantics (torch.optim.SGD):
 *   g = grad + weight_decay * param
 *   if momentum != 0:
 *       buf = first_step ? g : momentum * buf + (1 - dampening) * g
 *       g = nesterov ? g + momentum * buf : buf
 *   param -= lr * g
 * buf is not read or written when momentum == 0 (it may then be NULL). */
#ifndef LUNET_KERNELS_OPTIM_H
#define LUNET_KERNELS_OPTIM_H

#include <stdint.h>
#include "../internal.h"

void ln_ref_sgd_step(int64_t n, double *param, const double *grad, double *buf,
                     bool first_step, const ln_sgd_params *p);
void ln_cpu_sgd_step(ln_ctx *ctx, int64_t n, float *param, const float *grad, float *buf,
                     bool first_step, const ln_sgd_params *p);
/* One fused kernel on device pointers (cuda/optim.cu). */
ln_status ln_cuda_sgd_step(ln_ctx *ctx, int64_t n, float *param, const float *grad, float *buf,
                           bool first_step, const ln_sgd_params *p);

#endif
