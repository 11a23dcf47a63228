/* CUDA cross-entropy and top-k counting (f32 logits (N,C), i64 labels (N) on the
 * device), with the arithmetic of cpu/loss.c: a warp per row computes the row's
 * maximum and log-sum-exp in f32; the batch loss is summed in double by one block in
 * a fixed order (deterministic) and written to a device scalar, so the forward never
 * waits for the device. Labels are checked on the device: the first bad position
 * (atomicMin) and its value come back to the host. */
#include <math.h>
#include "cuda_internal.h"
extern "C" {
#include "../kernels/loss.h"
}

#define ROWS_PER_BLOCK (LN_CUDA_BLOCK / 32)

/* ------------------------------------------------------------ labels */
__global__ void labels_check_kernel(int64_t N, int64_t C, const int64_t *labels, unsigned long long *first_bad) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < N; i += stride) {
        int64_t l = labels[i];
        if (l < 0 || l >= C) atomicMin(first_bad, (unsigned long long)i);
    }
}

/* out[0] = first bad position (or N), out[1] = its label */
__global__ void labels_report_kernel(int64_t N, const int64_t *labels, const unsigned long long *first_bad,
                                     int64_t *out) {
    unsigned long long b = *first_bad;
    out[0] = b < (unsigned long long)N ? (int64_t)b : N;
    out[1] = b < (unsigned long long)N ? labels[b] : 0;
}

extern "C" ln_status ln_cuda_check_labels(ln_ctx *ctx, int64_t N, int64_t C, const int64_t *labels, int64_t *bad,
                                          int64_t *bad_value) {
    struct ln_cuda_state *s;
    *bad = -1;
    *bad_value = 0;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (N <= 0) return LN_OK;
    char *scratch;
    LN_TRY(ln_cuda_scratch(ctx, 3 * sizeof(int64_t), (void **)&scratch));
    unsigned long long *first = (unsigned long long *)scratch;
    int64_t *out = (int64_t *)(scratch + sizeof(int64_t)), host[2] = {0, 0};
    ln_status st = ln_cuda_check(ctx, cudaMemsetAsync(first, 0xff, sizeof *first, s->stream), "memset");
    if (st == LN_OK) {
        labels_check_kernel<<<ln_cuda_blocks(N), LN_CUDA_BLOCK, 0, s->stream>>>(N, C, labels, first);
        st = ln_cuda_launched(ctx, "launching the label check");
    }
    if (st == LN_OK) {
        labels_report_kernel<<<1, 1, 0, s->stream>>>(N, labels, first, out);
        st = ln_cuda_launched(ctx, "launching the label check");
    }
    if (st == LN_OK) st = ln_cuda_memcpy_d2h(ctx, host, out, sizeof host);
    ln_cuda_scratch_free(ctx, scratch);
    if (st == LN_OK && host[0] < N) {
        *bad = host[0];
        *bad_value = host[1];
    }
    return st;
}

/* ------------------------------------------------------------ cross-entropy */
/* log(sum(exp(row))) with the row maximum subtracted, in f32, by the whole warp. */
__device__ inline float warp_logsumexp(int64_t C, const float *row, int lane) {
    float m = row[0];
    for (int64_t j = lane; j < C; j += 32) m = row[j] > m ? row[j] : m;
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    float sum = 0.f;
    for (int64_t j = lane; j < C; j += 32) sum += expf(row[j] - m);
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    return m + logf(sum);
}

/* loss[i] = logsumexp(x_i) - x_i[label_i], a warp per row */
__global__ void xent_rows_kernel(int64_t N, int64_t C, const float *x, const int64_t *labels, double *loss) {
    int lane = threadIdx.x & 31;
    int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < N; i += warps) {
        const float *row = x + i * C;
        float lse = warp_logsumexp(C, row, lane);
        if (lane == 0) loss[i] = (double)lse - (double)row[labels[i]];
    }
}

/* out = (float)(sum(loss) / N), one block, fixed order */
__global__ void xent_mean_kernel(int64_t N, const double *loss, float *out) {
    __shared__ double part[LN_CUDA_BLOCK];
    double s = 0;
    for (int64_t i = threadIdx.x; i < N; i += LN_CUDA_BLOCK) s += loss[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int h = LN_CUDA_BLOCK / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = (float)(part[0] / (double)N);
}

/* Blocks of ROWS_PER_BLOCK warps for N rows (at least one: a grid is never empty). */
static unsigned row_blocks(int64_t N) {
    int64_t b = (N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
    return (unsigned)(b < 1 ? 1 : b < LN_CUDA_MAX_BLOCKS ? b : LN_CUDA_MAX_BLOCKS);
}

extern "C" ln_status ln_cuda_xent_fwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels,
                                      float *loss) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    double *rows;
    LN_TRY(ln_cuda_scratch(ctx, (size_t)N * sizeof(double), (void **)&rows));
    xent_rows_kernel<<<row_blocks(N), LN_CUDA_BLOCK, 0, s->stream>>>(N, C, x, labels, rows);
    ln_status st = ln_cuda_launched(ctx, "launching cross_entropy");
    if (st == LN_OK) {
        xent_mean_kernel<<<1, LN_CUDA_BLOCK, 0, s->stream>>>(N, rows, loss);
        st = ln_cuda_launched(ctx, "launching cross_entropy");
    }
    ln_cuda_scratch_free(ctx, rows);
    return st;
}

/* gx = sc * (softmax(x_i) - onehot(label_i)) with sc = gy / N, a warp per row */
__global__ void xent_bwd_kernel(int64_t N, int64_t C, const float *x, const int64_t *labels, const float *gy,
                                float *gx) {
    int lane = threadIdx.x & 31;
    int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    float sc = (float)((double)*gy / (double)N);
    for (int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < N; i += warps) {
        const float *row = x + i * C;
        float *g = gx + i * C, lse = warp_logsumexp(C, row, lane);
        int64_t l = labels[i];
        for (int64_t j = lane; j < C; j += 32) {
            float v = sc * expf(row[j] - lse);
            if (j == l) v -= sc;
            g[j] = v;
        }
    }
}

extern "C" ln_status ln_cuda_xent_bwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels,
                                      const float *gy, float *gx) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    xent_bwd_kernel<<<row_blocks(N), LN_CUDA_BLOCK, 0, s->stream>>>(N, C, x, labels, gy, gx);
    return ln_cuda_launched(ctx, "launching cross_entropy backward");
}

/* ------------------------------------------------------------ top-k */
/* ln_rank_before of kernels/loss.h, for the device. */
__device__ inline bool rank_before(float a, int64_t j, float b, int64_t l) {
    bool an = isnan(a), bn = isnan(b);
    if (an || bn) return an && (!bn || j < l);
    return a > b || (a == b && j < l);
}

/* A row counts when fewer than k classes rank before its label. */
__global__ void topk_kernel(int64_t N, int64_t C, const float *x, const int64_t *labels, int64_t k,
                            unsigned long long *correct) {
    int lane = threadIdx.x & 31;
    int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < N; i += warps) {
        const float *row = x + i * C;
        int64_t l = labels[i];
        float v = row[l];
        long long rank = 0;
        for (int64_t j = lane; j < C; j += 32) rank += rank_before(row[j], j, v, l);
        for (int off = 16; off > 0; off >>= 1) rank += __shfl_xor_sync(0xffffffffu, rank, off);
        if (lane == 0 && rank < k) atomicAdd(correct, 1ULL);
    }
}

extern "C" ln_status ln_cuda_topk_correct(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels,
                                          int64_t k, int64_t *correct) {
    struct ln_cuda_state *s;
    *correct = 0;
    LN_TRY(ln_cuda_enter(ctx, &s));
    unsigned long long *count, host = 0;
    LN_TRY(ln_cuda_scratch(ctx, sizeof *count, (void **)&count));
    ln_status st = ln_cuda_check(ctx, cudaMemsetAsync(count, 0, sizeof *count, s->stream), "memset");
    if (st == LN_OK) {
        topk_kernel<<<row_blocks(N), LN_CUDA_BLOCK, 0, s->stream>>>(N, C, x, labels, k, count);
        st = ln_cuda_launched(ctx, "launching topk_correct");
    }
    if (st == LN_OK) st = ln_cuda_memcpy_d2h(ctx, &host, count, sizeof host);
    ln_cuda_scratch_free(ctx, count);
    if (st == LN_OK) *correct = (int64_t)host;
    return st;
}
