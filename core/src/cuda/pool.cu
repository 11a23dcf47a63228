/* CUDA pooling (f32) with the semantics of kernels/pool.h and the arithmetic of
 * cpu/pool.c. Max pooling: one thread per output scanning its clipped window in
 * row-major order (first maximum on ties, a NaN wins), the argmax kept as an i64 flat
 * index within the plane. Its backward gathers instead of scattering: one thread per
 * input element adds, in output order, the gradients of the windows whose argmax it
 * is, so overlapping windows need no atomics and the sums are deterministic (and in
 * the CPU's order). Global average pooling: a warp per plane, summed in double. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/pool.h"
}

/* Plane geometry and the pooling parameters, passed by value. */
struct PoolDims {
    int64_t NC, H, W, OH, OW;
    int64_t kh, kw, sh, sw, ph, pw;
};

static PoolDims pool_dims(int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW, const ln_pool2d_params *p) {
    PoolDims d = {NC, H, W, OH, OW, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_h, p->pad_w};
    return d;
}

__global__ void maxpool_fwd_kernel(PoolDims d, const float *x, float *y, int64_t *idx) {
    int64_t total = d.NC * d.OH * d.OW, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        int64_t ow = o % d.OW, t = o / d.OW;
        int64_t oh = t % d.OH, pl = t / d.OH;
        const float *xp = x + pl * d.H * d.W;
        int64_t h0 = oh * d.sh - d.ph, w0 = ow * d.sw - d.pw;
        int64_t hs = h0 > 0 ? h0 : 0, he = h0 + d.kh < d.H ? h0 + d.kh : d.H;
        int64_t ws = w0 > 0 ? w0 : 0, we = w0 + d.kw < d.W ? w0 + d.kw : d.W;
        /* padding <= kernel/2 guarantees every window holds an input element */
        int64_t arg = hs * d.W + ws;
        float best = xp[arg];
        for (int64_t ih = hs; ih < he; ih++)
            for (int64_t iw = ws; iw < we; iw++) {
                float v = xp[ih * d.W + iw];
                if (v > best || isnan(v)) { best = v; arg = ih * d.W + iw; }
            }
        y[o] = best;
        if (idx) idx[o] = arg;
    }
}

/* One thread per input element (pl, ih, iw): the outputs whose windows hold it are
 * oh in [ceil((ih+ph-kh+1)/sh), floor((ih+ph)/sh)] (likewise ow), clipped to the grid. */
__global__ void maxpool_bwd_kernel(PoolDims d, const int64_t *idx, const float *gy, float *gx) {
    int64_t total = d.NC * d.H * d.W, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        int64_t iw = i % d.W, t = i / d.W;
        int64_t ih = t % d.H, pl = t / d.H;
        int64_t ah = ih + d.ph - d.kh, aw = iw + d.pw - d.kw;
        int64_t oh0 = ah < 0 ? 0 : ah / d.sh + 1, ow0 = aw < 0 ? 0 : aw / d.sw + 1;
        int64_t oh1 = (ih + d.ph) / d.sh, ow1 = (iw + d.pw) / d.sw;
        if (oh1 > d.OH - 1) oh1 = d.OH - 1;
        if (ow1 > d.OW - 1) ow1 = d.OW - 1;
        int64_t self = ih * d.W + iw, base = pl * d.OH * d.OW;
        float acc = 0.f;
        for (int64_t oh = oh0; oh <= oh1; oh++)
            for (int64_t ow = ow0; ow <= ow1; ow++) {
                int64_t o = base + oh * d.OW + ow;
                if (idx[o] == self) acc += gy[o];
            }
        gx[i] = acc;
    }
}

extern "C" ln_status ln_cuda_maxpool_fwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                         const ln_pool2d_params *p, const float *x, float *y, int64_t *idx) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    int64_t total = NC * OH * OW;
    if (total == 0) return LN_OK;
    maxpool_fwd_kernel<<<ln_cuda_blocks(total), LN_CUDA_BLOCK, 0, s->stream>>>(pool_dims(NC, H, W, OH, OW, p), x, y,
                                                                               idx);
    return ln_cuda_launched(ctx, "launching max_pool2d");
}

extern "C" ln_status ln_cuda_maxpool_bwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                         const ln_pool2d_params *p, const int64_t *idx, const float *gy, float *gx) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    int64_t total = NC * H * W;
    if (total == 0) return LN_OK;
    maxpool_bwd_kernel<<<ln_cuda_blocks(total), LN_CUDA_BLOCK, 0, s->stream>>>(pool_dims(NC, H, W, OH, OW, p), idx,
                                                                               gy, gx);
    return ln_cuda_launched(ctx, "launching max_pool2d backward");
}

/* ------------------------------------------------------------ global average */
/* A warp per plane: lanes sum strided values in double, then a shuffle tree. */
__global__ void gap_fwd_kernel(int64_t NC, int64_t HW, const float *x, float *y) {
    int lane = threadIdx.x & 31;
    int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t pl = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; pl < NC; pl += warps) {
        const float *xp = x + pl * HW;
        double s = 0;
        for (int64_t i = lane; i < HW; i += 32) s += xp[i];
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) y[pl] = (float)(s / (double)HW);
    }
}

__global__ void gap_bwd_kernel(int64_t total, int64_t HW, float inv, const float *gy, float *gx) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride)
        gx[i] = gy[i / HW] * inv;
}

extern "C" ln_status ln_cuda_gap_fwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *x, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (NC == 0) return LN_OK;
    /* whole warps: every lane of a warp reaches the shuffles */
    gap_fwd_kernel<<<ln_cuda_blocks(NC * 32), LN_CUDA_BLOCK, 0, s->stream>>>(NC, HW, x, y);
    return ln_cuda_launched(ctx, "launching global_avg_pool2d");
}

extern "C" ln_status ln_cuda_gap_bwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *gy, float *gx) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    int64_t total = NC * HW;
    if (total == 0) return LN_OK;
    gap_bwd_kernel<<<ln_cuda_blocks(total), LN_CUDA_BLOCK, 0, s->stream>>>(total, HW, 1.f / (float)HW, gy, gx);
    return ln_cuda_launched(ctx, "launching global_avg_pool2d backward");
}
