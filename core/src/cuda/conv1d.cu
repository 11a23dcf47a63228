/* CUDA 1-D convolution across channels (ECA), f32: x, y, gy, gx are (N,C), w and gw
 * are (K) with K = 2*pad + 1 (kernels/conv.h). The problem is tiny, so one thread
 * per output value, summing its taps in the CPU kernel's order; the weight gradient
 * is one block per tap, summed in double by a fixed tree. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/conv.h"
}

#define GW_THREADS 256

/* y[i,o] = sum_j w[j] * x[i, o+j-pad] (flip: gx[i,o] = sum_j w[j] * gy[i, o-j+pad]) */
__global__ void conv1d_kernel(int64_t n, int64_t c, int64_t k, int64_t pad, bool flip, const float *in,
                              const float *w, float *out) {
    int64_t total = n * c, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        int64_t o = t % c;
        const float *row = in + (t - o);
        float acc = 0.f;
        for (int64_t j = 0; j < k; j++) {
            int64_t src = flip ? o - (j - pad) : o + (j - pad);
            if (src >= 0 && src < c) acc += w[j] * row[src];
        }
        out[t] = acc;
    }
}

/* gw[j] = sum over i and o of x[i, o+j-pad] * gy[i, o]; block j */
__global__ void conv1d_gw_kernel(int64_t n, int64_t c, int64_t pad, const float *x, const float *gy, float *gw) {
    __shared__ double part[GW_THREADS];
    int64_t j = blockIdx.x, shift = j - pad;
    double s = 0;
    for (int64_t t = threadIdx.x; t < n * c; t += GW_THREADS) {
        int64_t o = t % c, src = o + shift;
        if (src >= 0 && src < c) s += (double)(x[t - o + src] * gy[t]);
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int h = GW_THREADS / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) gw[j] = (float)part[0];
}

extern "C" ln_status ln_cuda_conv1d_channels_fwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                                 const float *x, const float *w, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (n * c == 0) return LN_OK;
    conv1d_kernel<<<ln_cuda_blocks(n * c), LN_CUDA_BLOCK, 0, s->stream>>>(n, c, k, pad, false, x, w, y);
    return ln_cuda_launched(ctx, "launching conv1d_channels");
}

extern "C" ln_status ln_cuda_conv1d_channels_bwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                                 const float *x, const float *w, const float *gy, float *gx,
                                                 float *gw) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (gx && n * c > 0) {
        conv1d_kernel<<<ln_cuda_blocks(n * c), LN_CUDA_BLOCK, 0, s->stream>>>(n, c, k, pad, true, gy, w, gx);
        LN_TRY(ln_cuda_launched(ctx, "launching conv1d_channels backward"));
    }
    if (gw && k > 0) {
        if (k > 0x7fffffff) return ln_fail(ctx, LN_ERR_UNSUPPORTED, "conv1d_channels: kernel too large for CUDA");
        conv1d_gw_kernel<<<(unsigned)k, GW_THREADS, 0, s->stream>>>(n, c, pad, x, gy, gw);
        LN_TRY(ln_cuda_launched(ctx, "launching conv1d_channels backward"));
    }
    return LN_OK;
}
