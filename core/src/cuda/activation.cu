/* CUDA relu, relu6 and sigmoid (f32), forward and backward, computing exactly what
 * the CPU kernels (cpu/activation.c) compute. Forward: y[i] = f(x[i]). Backward:
 * gx[i] = gy[i] * f'(.) from `saved` (y for relu and sigmoid, x for relu6). All arrays
 * are contiguous with n elements. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/activation.h"
}

struct Relu {
    __device__ static float fwd(float x) { return x > 0.f ? x : 0.f; }
    __device__ static float bwd(float y, float g) { return y > 0.f ? g : 0.f; }
};
struct Relu6 {
    __device__ static float fwd(float x) { return fminf(fmaxf(x, 0.f), 6.f); }
    __device__ static float bwd(float x, float g) { return (x > 0.f && x < 6.f) ? g : 0.f; }
};
struct Sigmoid {
    __device__ static float fwd(float x) { return 1.f / (1.f + expf(-x)); }
    __device__ static float bwd(float y, float g) { return g * y * (1.f - y); }
};

template <class F>
__global__ void act_fwd_kernel(int64_t n, const float *x, float *y) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = F::fwd(x[i]);
}

template <class F>
__global__ void act_bwd_kernel(int64_t n, const float *saved, const float *gy, float *gx) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        gx[i] = F::bwd(saved[i], gy[i]);
}

template <class F>
static void launch(cudaStream_t st, bool backward, int64_t n, const float *in, const float *gy, float *out) {
    if (backward) act_bwd_kernel<F><<<ln_cuda_blocks(n), LN_CUDA_BLOCK, 0, st>>>(n, in, gy, out);
    else act_fwd_kernel<F><<<ln_cuda_blocks(n), LN_CUDA_BLOCK, 0, st>>>(n, in, out);
}

static ln_status act(ln_ctx *ctx, ln_act a, bool backward, int64_t n, const float *in, const float *gy,
                     float *out) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (n <= 0) return LN_OK;
    switch (a) {
    case LN_ACT_RELU: launch<Relu>(s->stream, backward, n, in, gy, out); break;
    case LN_ACT_RELU6: launch<Relu6>(s->stream, backward, n, in, gy, out); break;
    case LN_ACT_SIGMOID: launch<Sigmoid>(s->stream, backward, n, in, gy, out); break;
    default: return ln_fail(ctx, LN_ERR_ARG, "internal: unknown activation %d", (int)a);
    }
    return ln_cuda_check(ctx, cudaGetLastError(), backward ? "launching activation backward"
                                                           : "launching activation forward");
}

extern "C" ln_status ln_cuda_act_fwd(ln_ctx *ctx, ln_act a, int64_t n, const float *x, float *y) {
    return act(ctx, a, false, n, x, NULL, y);
}

extern "C" ln_status ln_cuda_act_bwd(ln_ctx *ctx, ln_act a, int64_t n, const float *saved,
                                     const float *gy, float *gx) {
    return act(ctx, a, true, n, saved, gy, gx);
}
