/* CUDA data movement: the strided copy behind contiguous()/clone()/copy_() of device
 * views (1-, 4- and 8-byte elements, up to LN_MAX_DIMS dims), cat and its backward split (each
 * input one 2-D strided copy), and the option-A shortcut forward and backward (see
 * kernels/shape.h for the layouts). All asynchronous on the context's stream. */
#include "cuda_internal.h"
extern "C" {
#include "../kernels/shape.h"
}

/* A copy's extents and the element strides of both sides, after collapsing. */
struct CopyDims {
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    int64_t ds[LN_MAX_DIMS], ss[LN_MAX_DIMS];
};

template <typename T>
__global__ void strided_copy_kernel(int64_t n, CopyDims d, T *dst, const T *src) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        int64_t rem = i, od = 0, os = 0;
        for (int k = d.ndim - 1; k >= 0; k--) {
            int64_t e = rem % d.shape[k];
            rem /= d.shape[k];
            od += e * d.ds[k];
            os += e * d.ss[k];
        }
        dst[od] = src[os];
    }
}

/* Drops size-1 dims and merges neighbours that are contiguous on both sides, so e.g.
 * a narrowed (N, C', H, W) view becomes (N, C'*H*W). Returns the element count. */
static int64_t collapse(int ndim, const int64_t *shape, const int64_t *ds, const int64_t *ss, CopyDims *d) {
    int64_t n = 1;
    d->ndim = 0;
    for (int k = 0; k < ndim; k++) {
        n *= shape[k];
        if (shape[k] == 1) continue;
        int j = d->ndim - 1;
        if (j >= 0 && d->ds[j] == ds[k] * shape[k] && d->ss[j] == ss[k] * shape[k]) {
            d->shape[j] *= shape[k];
            d->ds[j] = ds[k];
            d->ss[j] = ss[k];
        } else {
            d->shape[j + 1] = shape[k];
            d->ds[j + 1] = ds[k];
            d->ss[j + 1] = ss[k];
            d->ndim++;
        }
    }
    if (d->ndim == 0) { /* one element */
        d->ndim = 1;
        d->shape[0] = 1;
        d->ds[0] = d->ss[0] = 1;
    }
    return n;
}

static ln_status copy_run(ln_ctx *ctx, cudaStream_t st, size_t es, int ndim, const int64_t *shape, void *dst,
                          const int64_t *ds, const void *src, const int64_t *ss) {
    CopyDims d;
    int64_t n = collapse(ndim, shape, ds, ss, &d);
    if (n == 0) return LN_OK;
    if (d.ndim == 1 && d.ds[0] == 1 && d.ss[0] == 1)
        return ln_cuda_check(ctx, cudaMemcpyAsync(dst, src, (size_t)n * es, cudaMemcpyDeviceToDevice, st),
                             "strided copy (contiguous run)");
    unsigned g = ln_cuda_blocks(n);
    switch (es) {
    case 1: strided_copy_kernel<uint8_t><<<g, LN_CUDA_BLOCK, 0, st>>>(n, d, (uint8_t *)dst, (const uint8_t *)src); break;
    case 4: strided_copy_kernel<uint32_t><<<g, LN_CUDA_BLOCK, 0, st>>>(n, d, (uint32_t *)dst, (const uint32_t *)src); break;
    case 8: strided_copy_kernel<uint64_t><<<g, LN_CUDA_BLOCK, 0, st>>>(n, d, (uint64_t *)dst, (const uint64_t *)src); break;
    default: return ln_fail(ctx, LN_ERR_ARG, "internal: strided copy of %zu-byte elements", es);
    }
    return ln_cuda_launched(ctx, "launching the strided copy");
}

extern "C" ln_status ln_cuda_strided_copy(ln_ctx *ctx, size_t elem_size, int ndim, const int64_t *shape,
                                          void *dst, const int64_t *dst_strides, const void *src,
                                          const int64_t *src_strides) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    return copy_run(ctx, s->stream, elem_size, ndim, shape, dst, dst_strides, src, src_strides);
}

/* ------------------------------------------------------------ cat / split */
/* Input i, viewed as (outer, sizes[i]*inner), is the column block starting at column
 * off_i*inner of the output viewed as (outer, total*inner). */
static ln_status cat_split(ln_ctx *ctx, bool split, int n, float *const *parts, const int64_t *sizes,
                           int64_t outer, int64_t inner, float *whole) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    int64_t total = 0, off = 0;
    for (int i = 0; i < n; i++) total += sizes[i];
    for (int i = 0; i < n; i++) {
        int64_t width = sizes[i] * inner;
        int64_t shape[2] = {outer, width}, part_st[2] = {width, 1}, whole_st[2] = {total * inner, 1};
        float *w = whole + off * inner;
        off += sizes[i];
        if (!parts[i]) continue;
        if (split) LN_TRY(copy_run(ctx, s->stream, sizeof(float), 2, shape, parts[i], part_st, w, whole_st));
        else LN_TRY(copy_run(ctx, s->stream, sizeof(float), 2, shape, w, whole_st, parts[i], part_st));
    }
    return LN_OK;
}

extern "C" ln_status ln_cuda_cat(ln_ctx *ctx, int n, const float *const *xs, const int64_t *sizes,
                                 int64_t outer, int64_t inner, float *y) {
    return cat_split(ctx, false, n, (float *const *)xs, sizes, outer, inner, y);
}

extern "C" ln_status ln_cuda_split(ln_ctx *ctx, int n, float *const *gs, const int64_t *sizes,
                                   int64_t outer, int64_t inner, const float *gy) {
    return cat_split(ctx, true, n, gs, sizes, outer, inner, (float *)gy);
}

/* ------------------------------------------------------------ shortcut_a */
/* One thread per output element (n, c+pad, i, j). */
__global__ void shortcut_fwd_kernel(int64_t total, ln_shortcut_dims d, const float *x, float *y) {
    int64_t oc = d.c + 2 * d.pad, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        int64_t j = o % d.ow, t = o / d.ow;
        int64_t i = t % d.oh;
        t /= d.oh;
        int64_t c = t % oc - d.pad, n = t / oc;
        y[o] = (c < 0 || c >= d.c) ? 0.f : x[((n * d.c + c) * d.h + i * d.stride) * d.w + j * d.stride];
    }
}

/* One thread per input element (n, c, h, w): the gradient of a sampled position, 0
 * elsewhere. h/stride < oh because oh = ceil(h_in/stride). */
__global__ void shortcut_bwd_kernel(int64_t total, ln_shortcut_dims d, const float *gy, float *gx) {
    int64_t oc = d.c + 2 * d.pad, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += stride) {
        int64_t w = o % d.w, t = o / d.w;
        int64_t h = t % d.h;
        t /= d.h;
        int64_t c = t % d.c, n = t / d.c;
        bool hit = h % d.stride == 0 && w % d.stride == 0;
        gx[o] = hit ? gy[((n * oc + c + d.pad) * d.oh + h / d.stride) * d.ow + w / d.stride] : 0.f;
    }
}

extern "C" ln_status ln_cuda_shortcut_fwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *x, float *y) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    int64_t total = d->n * (d->c + 2 * d->pad) * d->oh * d->ow;
    if (total <= 0) return LN_OK;
    shortcut_fwd_kernel<<<ln_cuda_blocks(total), LN_CUDA_BLOCK, 0, s->stream>>>(total, *d, x, y);
    return ln_cuda_launched(ctx, "launching shortcut_a forward");
}

extern "C" ln_status ln_cuda_shortcut_bwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *gy, float *gx) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    int64_t total = d->n * d->c * d->h * d->w;
    if (total <= 0) return LN_OK;
    shortcut_bwd_kernel<<<ln_cuda_blocks(total), LN_CUDA_BLOCK, 0, s->stream>>>(total, *d, gy, gx);
    return ln_cuda_launched(ctx, "launching shortcut_a backward");
}
