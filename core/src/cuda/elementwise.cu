/* Elementwise f32 kernels of the autograd engine: y += alpha * x (gradient
 * accumulation, ln_tensor_add_). x and y are contiguous with n elements; they may be
 * the same array. */
#include "cuda_internal.h"

__global__ void axpy_f32_kernel(int64_t n, float alpha, const float *x, float *y) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] += alpha * x[i];
}

extern "C" ln_status ln_cuda_axpy_f32(ln_ctx *ctx, int64_t n, float alpha, const float *x, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (n <= 0) return LN_OK;
    axpy_f32_kernel<<<ln_cuda_blocks(n), LN_CUDA_BLOCK, 0, s->stream>>>(n, alpha, x, y);
    return ln_cuda_check(ctx, cudaGetLastError(), "launching axpy");
}
