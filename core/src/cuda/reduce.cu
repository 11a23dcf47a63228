/* CUDA sum (optionally of a product) and expand over a collapsed reduce layout
 * (kernels/reduce.h), f32 data with double accumulators, deterministic: every output
 * is summed in a fixed order by one thread or one block, never with atomics.
 *   one thread per output: when each output sums few values, or when the innermost
 *     dim is kept (neighbouring threads then read neighbouring values);
 *   one block per output: when each output sums many values and the outputs are few
 *     or the innermost dim is reduced (the block's threads read one run together),
 *     the block's partial sums combined by a fixed tree in shared memory. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/reduce.h"
}

#define RED_THREADS 256
#define RED_BLOCK_MIN 64 /* values per output from which a block sums each output */

/* Kept and reduced dims of the layout with their strides in the full tensor; small
 * index t runs row-major over the kept dims, r over the reduced dims. */
struct RedPlan {
    int n_kept, n_red;
    int64_t kshape[LN_MAX_DIMS], kstride[LN_MAX_DIMS];
    int64_t rshape[LN_MAX_DIMS], rstride[LN_MAX_DIMS];
    int64_t T, R; /* outputs, values per output */
};

static void plan_make(const ln_reduce_layout *lay, RedPlan *p) {
    int64_t f = 1, fs[LN_MAX_DIMS];
    for (int d = lay->ndim - 1; d >= 0; d--) {
        fs[d] = f;
        f *= lay->shape[d];
    }
    p->n_kept = p->n_red = 0;
    for (int d = 0; d < lay->ndim; d++) {
        if (lay->reduced[d]) {
            p->rshape[p->n_red] = lay->shape[d];
            p->rstride[p->n_red++] = fs[d];
        } else {
            p->kshape[p->n_kept] = lay->shape[d];
            p->kstride[p->n_kept++] = fs[d];
        }
    }
    p->T = lay->small_numel;
    p->R = lay->full_numel / lay->small_numel;
}

__device__ inline int64_t offset_of(int64_t idx, int nd, const int64_t *shape, const int64_t *stride) {
    int64_t off = 0;
    for (int k = nd - 1; k >= 0; k--) {
        off += (idx % shape[k]) * stride[k];
        idx /= shape[k];
    }
    return off;
}

/* full[o] or full[o] * w[o] (the product in f32, as on the CPU) */
__device__ inline double term(const float *full, const float *w, int64_t o) {
    return w ? (double)(full[o] * w[o]) : (double)full[o];
}

__global__ void sum_per_thread_kernel(RedPlan p, float alpha, const float *full, const float *w, float *small) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < p.T; t += stride) {
        int64_t base = offset_of(t, p.n_kept, p.kshape, p.kstride);
        double s = 0;
        for (int64_t r = 0; r < p.R; r++) s += term(full, w, base + offset_of(r, p.n_red, p.rshape, p.rstride));
        small[t] = (float)(alpha * s);
    }
}

__global__ void sum_per_block_kernel(RedPlan p, float alpha, const float *full, const float *w, float *small) {
    __shared__ double part[RED_THREADS];
    for (int64_t t = blockIdx.x; t < p.T; t += gridDim.x) {
        int64_t base = offset_of(t, p.n_kept, p.kshape, p.kstride);
        double s = 0;
        for (int64_t r = threadIdx.x; r < p.R; r += RED_THREADS)
            s += term(full, w, base + offset_of(r, p.n_red, p.rshape, p.rstride));
        part[threadIdx.x] = s;
        __syncthreads();
        for (int h = RED_THREADS / 2; h > 0; h >>= 1) {
            if ((int)threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
            __syncthreads();
        }
        if (threadIdx.x == 0) small[t] = (float)(alpha * part[0]);
        __syncthreads(); /* part[] is reused by the next output */
    }
}

__global__ void fill_kernel(int64_t n, float v, float *y) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) y[i] = v;
}

extern "C" ln_status ln_cuda_sum_prod(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                                      const float *w, float *small) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (lay->small_numel == 0) return LN_OK;
    if (lay->full_numel == 0) { /* empty sums are 0 (NaN for a mean: alpha is NaN) */
        fill_kernel<<<ln_cuda_blocks(lay->small_numel), LN_CUDA_BLOCK, 0, s->stream>>>(lay->small_numel,
                                                                                      alpha * 0.f, small);
        return ln_cuda_launched(ctx, "launching the empty sum");
    }
    RedPlan p;
    plan_make(lay, &p);
    bool inner_reduced = lay->ndim > 0 && lay->reduced[lay->ndim - 1];
    if (p.R >= RED_BLOCK_MIN && (inner_reduced || p.T < 4096)) {
        int64_t blocks = p.T < LN_CUDA_MAX_BLOCKS * 4 ? p.T : LN_CUDA_MAX_BLOCKS * 4;
        sum_per_block_kernel<<<(unsigned)blocks, RED_THREADS, 0, s->stream>>>(p, alpha, full, w, small);
    } else {
        sum_per_thread_kernel<<<ln_cuda_blocks(p.T), LN_CUDA_BLOCK, 0, s->stream>>>(p, alpha, full, w, small);
    }
    return ln_cuda_launched(ctx, "launching a sum");
}

extern "C" ln_status ln_cuda_sum(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                                 float *small) {
    return ln_cuda_sum_prod(ctx, lay, alpha, full, NULL, small);
}

/* ------------------------------------------------------------ expand */
/* The layout's dims with each one's stride in the small tensor (0 when reduced). */
struct ExpandPlan {
    int ndim;
    int64_t shape[LN_MAX_DIMS], ks[LN_MAX_DIMS];
};

__global__ void expand_kernel(int64_t n, ExpandPlan p, float alpha, const float *small, float *full) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        full[i] = alpha * small[offset_of(i, p.ndim, p.shape, p.ks)];
}

extern "C" ln_status ln_cuda_expand(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *small,
                                    float *full) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (lay->full_numel == 0) return LN_OK;
    ExpandPlan p;
    p.ndim = lay->ndim;
    int64_t k = 1;
    for (int d = lay->ndim - 1; d >= 0; d--) {
        p.shape[d] = lay->shape[d];
        p.ks[d] = lay->reduced[d] ? 0 : k;
        if (!lay->reduced[d]) k *= lay->shape[d];
    }
    expand_kernel<<<ln_cuda_blocks(lay->full_numel), LN_CUDA_BLOCK, 0, s->stream>>>(lay->full_numel, p, alpha,
                                                                                   small, full);
    return ln_cuda_launched(ctx, "launching an expand");
}
