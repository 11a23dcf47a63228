/* CUDA SGD step (f32, in place, one fused kernel): the update of kernels/optim.h with
 * the arithmetic of cpu/optim.c. param, grad and buf are contiguous with n values;
 * buf is neither read nor written when momentum is 0. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/optim.h"
}

struct SgdArgs {
    float lr, wd, mom, keep;
    bool use_buf, first, nesterov;
};

__global__ void sgd_kernel(int64_t n, SgdArgs a, float *param, const float *grad, float *buf) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float g = grad[i] + a.wd * param[i];
        if (a.use_buf) {
            float b = a.first ? g : a.mom * buf[i] + a.keep * g;
            buf[i] = b;
            g = a.nesterov ? g + a.mom * b : b;
        }
        param[i] -= a.lr * g;
    }
}

extern "C" ln_status ln_cuda_sgd_step(ln_ctx *ctx, int64_t n, float *param, const float *grad, float *buf,
                                      bool first_step, const ln_sgd_params *p) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (n <= 0) return LN_OK;
    SgdArgs a = {(float)p->lr, (float)p->weight_decay, (float)p->momentum, (float)(1 - p->dampening),
                 p->momentum != 0, first_step, p->nesterov};
    sgd_kernel<<<ln_cuda_blocks(n), LN_CUDA_BLOCK, 0, s->stream>>>(n, a, param, grad, buf);
    return ln_cuda_launched(ctx, "launching sgd_step");
}
