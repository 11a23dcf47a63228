/* Elementwise f32 kernels: y += alpha * x (gradient accumulation, ln_tensor_add_),
 * the broadcasting binary ops and their per-input gradients (over the collapsed
 * layout of kernels/elementwise.h, up to LN_MAX_DIMS dims), a*scale+shift and x^p.
 * Each computes what the CPU kernel (cpu/elementwise.c) computes, element by element.
 * Contiguous arrays; grid-stride loops. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/elementwise.h"
}

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
    return ln_cuda_launched(ctx, "launching axpy");
}

/* ------------------------------------------------------------ binary ops */
/* Offsets into a and b of output element i (Flat: no broadcasting, both i). */
template <bool Flat>
__device__ inline void bcast_offsets(const ln_bcast &bc, int64_t i, int64_t *oa, int64_t *ob) {
    if (Flat) { *oa = i; *ob = i; return; }
    int64_t a = 0, b = 0;
    for (int d = bc.ndim - 1; d >= 0; d--) {
        int64_t e = i % bc.shape[d];
        i /= bc.shape[d];
        a += e * bc.sa[d];
        b += e * bc.sb[d];
    }
    *oa = a;
    *ob = b;
}

__device__ inline float bin_apply(ln_binop op, float a, float b) {
    switch (op) {
    case LN_BIN_ADD: return a + b;
    case LN_BIN_SUB: return a - b;
    case LN_BIN_MUL: return a * b;
    default: return a / b;
    }
}

/* gy * d(a op b)/d(input which), reading only the operands that derivative needs. */
__device__ inline float bin_deriv(ln_binop op, int which, const float *a, int64_t oa, const float *b, int64_t ob,
                                  float gy) {
    if (op == LN_BIN_ADD) return gy;
    if (op == LN_BIN_SUB) return which == 1 ? -1.f * gy : gy;
    if (op == LN_BIN_DIV && which == 1) { float av = a[oa], bv = b[ob]; return -gy * av / (bv * bv); }
    if (op == LN_BIN_MUL) return which == 0 ? gy * b[ob] : gy * a[oa];
    return gy / b[ob]; /* div, d/da */
}

template <bool Flat>
__global__ void binary_fwd_kernel(ln_bcast bc, ln_binop op, const float *a, const float *b, float *y) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < bc.numel; i += stride) {
        int64_t oa, ob;
        bcast_offsets<Flat>(bc, i, &oa, &ob);
        y[i] = bin_apply(op, a[oa], b[ob]);
    }
}

template <bool Flat>
__global__ void binary_grad_kernel(ln_bcast bc, ln_binop op, int which, const float *a, const float *b,
                                   const float *gy, float *g) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < bc.numel; i += stride) {
        int64_t oa, ob;
        bcast_offsets<Flat>(bc, i, &oa, &ob);
        g[i] = bin_deriv(op, which, a, oa, b, ob, gy[i]);
    }
}

/* The layout needs no index arithmetic: one dim where both inputs advance. */
static bool bcast_flat(const ln_bcast *bc) { return bc->ndim == 1 && bc->sa[0] == 1 && bc->sb[0] == 1; }

extern "C" ln_status ln_cuda_binary_fwd(ln_ctx *ctx, ln_binop op, const ln_bcast *bc, const float *a,
                                        const float *b, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (bc->numel <= 0) return LN_OK;
    unsigned g = ln_cuda_blocks(bc->numel);
    if (bcast_flat(bc)) binary_fwd_kernel<true><<<g, LN_CUDA_BLOCK, 0, s->stream>>>(*bc, op, a, b, y);
    else binary_fwd_kernel<false><<<g, LN_CUDA_BLOCK, 0, s->stream>>>(*bc, op, a, b, y);
    return ln_cuda_launched(ctx, "launching a binary op");
}

extern "C" ln_status ln_cuda_binary_grad(ln_ctx *ctx, ln_binop op, int which, const ln_bcast *bc,
                                         const float *a, const float *b, const float *gy, float *g) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (bc->numel <= 0) return LN_OK;
    unsigned gr = ln_cuda_blocks(bc->numel);
    if (bcast_flat(bc)) binary_grad_kernel<true><<<gr, LN_CUDA_BLOCK, 0, s->stream>>>(*bc, op, which, a, b, gy, g);
    else binary_grad_kernel<false><<<gr, LN_CUDA_BLOCK, 0, s->stream>>>(*bc, op, which, a, b, gy, g);
    return ln_cuda_launched(ctx, "launching a binary op gradient");
}

/* ------------------------------------------------------------ scalar ops */
__global__ void affine_kernel(int64_t n, const float *x, float scale, float shift, float *y) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = x[i] * scale + shift;
}

/* y = x^p, with the CPU kernel's exact special cases for p = 2, 1 and 0.5. */
__global__ void pow_fwd_kernel(int64_t n, const float *x, float p, float *y) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = x[i];
        y[i] = p == 2.f ? v * v : p == 1.f ? v : p == 0.5f ? sqrtf(v) : powf(v, p);
    }
}

/* gx = gy * p * x^(p-1); 0 for p = 0; special cases p = 2 and 1 as on the CPU. */
__global__ void pow_bwd_kernel(int64_t n, const float *x, float p, const float *gy, float *gx) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = x[i], g = gy[i];
        gx[i] = p == 0.f ? 0.f : p == 2.f ? 2.f * v * g : p == 1.f ? g : g * p * powf(v, p - 1.f);
    }
}

extern "C" ln_status ln_cuda_affine(ln_ctx *ctx, int64_t n, const float *x, float scale, float shift, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (n <= 0) return LN_OK;
    affine_kernel<<<ln_cuda_blocks(n), LN_CUDA_BLOCK, 0, s->stream>>>(n, x, scale, shift, y);
    return ln_cuda_launched(ctx, "launching affine_scalar");
}

extern "C" ln_status ln_cuda_pow_fwd(ln_ctx *ctx, int64_t n, const float *x, float p, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (n <= 0) return LN_OK;
    pow_fwd_kernel<<<ln_cuda_blocks(n), LN_CUDA_BLOCK, 0, s->stream>>>(n, x, p, y);
    return ln_cuda_launched(ctx, "launching pow_scalar");
}

extern "C" ln_status ln_cuda_pow_bwd(ln_ctx *ctx, int64_t n, const float *x, float p, const float *gy,
                                     float *gx) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (n <= 0) return LN_OK;
    pow_bwd_kernel<<<ln_cuda_blocks(n), LN_CUDA_BLOCK, 0, s->stream>>>(n, x, p, gy, gx);
    return ln_cuda_launched(ctx, "launching pow_scalar backward");
}
