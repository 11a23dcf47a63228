/* conv2d on cuDNN (f32, NCHW): forward, backward data, backward filter and the bias
 * gradient, with groups (depthwise included) through cudnnSetConvolutionGroupCount.
 *
 * Math: the convolution descriptor asks for CUDNN_FMA_MATH, so no TF32 tensor-core
 * kernel runs on f32 data (cuDNN's default math would allow TF32 on Ampere and newer)
 * and results match the CPU within f32 rounding; candidates reporting tensor-op math
 * are skipped as well.
 *
 * Algorithms: per shape and direction, the first candidate of cuDNN's heuristics
 * (cudnnGet*_v7) that succeeds within LN_CONV_WS_LIMIT bytes of workspace, or with
 * ctx->cudnn_benchmark the fastest one measured by cudnnFind*Ex; with
 * ctx->cudnn_deterministic only deterministic ones. When no candidate qualifies, the
 * deterministic classic (implicit GEMM forward, algorithm 1 backward) is used. The
 * descriptors and choices live in a small table in the CUDA state (the conv cache),
 * keyed by the full ln_conv_shape and the two flags, replaced round-robin when full.
 * Workspaces come from ln_cuda_workspace. */
#include <limits.h>
#include <string.h>
#include "cuda_internal.h"
#include "../kernels/conv.h"
#include "../kernels/reduce.h"

#define LN_CONV_CACHE_SIZE 128
#define LN_CONV_WS_LIMIT ((size_t)1 << 30)

typedef struct conv_entry {
    bool used;
    ln_conv_shape key;
    bool benchmark, deterministic;
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    bool has_fwd, has_bwd_data, has_bwd_filter;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
} conv_entry;

struct ln_conv_cache {
    conv_entry e[LN_CONV_CACHE_SIZE];
    int next; /* the slot replaced when the table is full */
};

/* Teardown: nothing to report to, so statuses are discarded. */
static void entry_clear(conv_entry *e) {
    if (e->x) (void)cudnnDestroyTensorDescriptor(e->x);
    if (e->y) (void)cudnnDestroyTensorDescriptor(e->y);
    if (e->b) (void)cudnnDestroyTensorDescriptor(e->b);
    if (e->w) (void)cudnnDestroyFilterDescriptor(e->w);
    if (e->conv) (void)cudnnDestroyConvolutionDescriptor(e->conv);
    memset(e, 0, sizeof *e);
}

void ln_conv_cache_destroy(struct ln_conv_cache *cache) {
    if (!cache) return;
    for (int i = 0; i < LN_CONV_CACHE_SIZE; i++) entry_clear(&cache->e[i]);
    free(cache);
}

static bool same_key(const conv_entry *e, const ln_conv_shape *k, bool bench, bool det) {
    const ln_conv_shape *a = &e->key;
    return e->used && e->benchmark == bench && e->deterministic == det && a->n == k->n && a->cin == k->cin &&
           a->h == k->h && a->w == k->w && a->cout == k->cout && a->kh == k->kh && a->kw == k->kw &&
           a->oh == k->oh && a->ow == k->ow && a->sh == k->sh && a->sw == k->sw && a->ph == k->ph &&
           a->pw == k->pw && a->groups == k->groups;
}

/* Every extent and parameter within the int range of cuDNN's 4-d descriptors. */
static ln_status check_int_range(ln_ctx *ctx, const ln_conv_shape *s) {
    const int64_t v[] = {s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw, s->oh, s->ow,
                         s->sh, s->sw, s->ph, s->pw, s->groups};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] < 0 || v[i] > INT_MAX)
            return ln_fail(ctx, LN_ERR_UNSUPPORTED, "conv2d: extent or parameter %lld beyond the int range of cuDNN",
                           (long long)v[i]);
    return LN_OK;
}

static ln_status entry_init(ln_ctx *ctx, conv_entry *e, const ln_conv_shape *s) {
    LN_TRY(ln_cudnn_check(ctx, cudnnCreateTensorDescriptor(&e->x), "creating a tensor descriptor"));
    LN_TRY(ln_cudnn_check(ctx, cudnnCreateTensorDescriptor(&e->y), "creating a tensor descriptor"));
    LN_TRY(ln_cudnn_check(ctx, cudnnCreateTensorDescriptor(&e->b), "creating a tensor descriptor"));
    LN_TRY(ln_cudnn_check(ctx, cudnnCreateFilterDescriptor(&e->w), "creating a filter descriptor"));
    LN_TRY(ln_cudnn_check(ctx, cudnnCreateConvolutionDescriptor(&e->conv), "creating a convolution descriptor"));
    LN_TRY(ln_cudnn_check(ctx, cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)s->n,
                                                          (int)s->cin, (int)s->h, (int)s->w),
                          "describing the conv2d input"));
    LN_TRY(ln_cudnn_check(ctx, cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)s->n,
                                                          (int)s->cout, (int)s->oh, (int)s->ow),
                          "describing the conv2d output"));
    LN_TRY(ln_cudnn_check(ctx, cudnnSetTensor4dDescriptor(e->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                                          (int)s->cout, 1, 1),
                          "describing the conv2d bias"));
    LN_TRY(ln_cudnn_check(ctx, cudnnSetFilter4dDescriptor(e->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)s->cout,
                                                          (int)(s->cin / s->groups), (int)s->kh, (int)s->kw),
                          "describing the conv2d weight"));
    LN_TRY(ln_cudnn_check(ctx, cudnnSetConvolution2dDescriptor(e->conv, (int)s->ph, (int)s->pw, (int)s->sh,
                                                               (int)s->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                                               CUDNN_DATA_FLOAT),
                          "describing the convolution"));
    LN_TRY(ln_cudnn_check(ctx, cudnnSetConvolutionGroupCount(e->conv, (int)s->groups), "setting the group count"));
    LN_TRY(ln_cudnn_check(ctx, cudnnSetConvolutionMathType(e->conv, CUDNN_FMA_MATH), "setting the math type"));
    int n, c, h, w;
    LN_TRY(ln_cudnn_check(ctx, cudnnGetConvolution2dForwardOutputDim(e->conv, e->x, e->w, &n, &c, &h, &w),
                          "computing the conv2d output shape"));
    if (n != s->n || c != s->cout || h != s->oh || w != s->ow)
        return ln_fail(ctx, LN_ERR_BACKEND, "cudnn: conv2d output shape [%d, %d, %d, %d] differs from lunet's "
                       "[%lld, %lld, %lld, %lld]", n, c, h, w, (long long)s->n, (long long)s->cout,
                       (long long)s->oh, (long long)s->ow);
    return LN_OK;
}

/* The table entry of shape s under the context's flags, created on first use. */
static ln_status conv_entry_get(ln_ctx *ctx, struct ln_cuda_state *st, const ln_conv_shape *s, conv_entry **out) {
    LN_TRY(check_int_range(ctx, s));
    bool bench = ctx->cudnn_benchmark, det = ctx->cudnn_deterministic;
    if (!st->conv_cache) {
        st->conv_cache = calloc(1, sizeof *st->conv_cache);
        if (!st->conv_cache) return ln_fail(ctx, LN_ERR_NOMEM, "conv2d: out of memory for the algorithm cache");
    }
    struct ln_conv_cache *c = st->conv_cache;
    for (int i = 0; i < LN_CONV_CACHE_SIZE; i++)
        if (same_key(&c->e[i], s, bench, det)) { *out = &c->e[i]; return LN_OK; }
    int slot = -1;
    for (int i = 0; i < LN_CONV_CACHE_SIZE && slot < 0; i++)
        if (!c->e[i].used) slot = i;
    if (slot < 0) {
        slot = c->next;
        c->next = (c->next + 1) % LN_CONV_CACHE_SIZE;
    }
    conv_entry *e = &c->e[slot];
    entry_clear(e);
    ln_status status = entry_init(ctx, e, s);
    if (status != LN_OK) { entry_clear(e); return status; }
    e->used = true;
    e->key = *s;
    e->benchmark = bench;
    e->deterministic = det;
    *out = e;
    return LN_OK;
}

/* ------------------------------------------------------------ algorithm choice */
/* One candidate of any direction (the three cuDNN perf structs share these fields). */
typedef struct candidate {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} candidate;

#define TO_CANDIDATES(perf, n, out)                                                        \
    for (int i_ = 0; i_ < (n); i_++) {                                                      \
        (out)[i_] = (candidate){(int)(perf)[i_].algo, (perf)[i_].status, (perf)[i_].memory, \
                                (perf)[i_].determinism, (perf)[i_].mathType};              \
    }

/* Index of the first usable candidate (they come best first), or -1. */
static int pick(const candidate *c, int n, bool deterministic, size_t limit) {
    for (int i = 0; i < n; i++) {
        if (c[i].status != CUDNN_STATUS_SUCCESS || c[i].memory > limit) continue;
        if (deterministic && c[i].determinism != CUDNN_DETERMINISTIC) continue;
        if (c[i].math == CUDNN_TENSOR_OP_MATH || c[i].math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
        return i;
    }
    return -1;
}

/* The largest workspace, within the limit, that any algorithm of a direction needs
 * (what cudnnFind*Ex is given to try them all). */
static size_t find_ws_fwd(cudnnHandle_t h, const conv_entry *e) {
    size_t most = 0;
    for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; a++) {
        size_t sz = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(h, e->x, e->w, e->conv, e->y, (cudnnConvolutionFwdAlgo_t)a,
                                                    &sz) == CUDNN_STATUS_SUCCESS && sz <= LN_CONV_WS_LIMIT && sz > most)
            most = sz;
    }
    return most;
}

static size_t find_ws_bwd_data(cudnnHandle_t h, const conv_entry *e) {
    size_t most = 0;
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; a++) {
        size_t sz = 0;
        if (cudnnGetConvolutionBackwardDataWorkspaceSize(h, e->w, e->y, e->conv, e->x,
                                                         (cudnnConvolutionBwdDataAlgo_t)a,
                                                         &sz) == CUDNN_STATUS_SUCCESS && sz <= LN_CONV_WS_LIMIT && sz > most)
            most = sz;
    }
    return most;
}

static size_t find_ws_bwd_filter(cudnnHandle_t h, const conv_entry *e) {
    size_t most = 0;
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT; a++) {
        size_t sz = 0;
        if (cudnnGetConvolutionBackwardFilterWorkspaceSize(h, e->x, e->y, e->conv, e->w,
                                                           (cudnnConvolutionBwdFilterAlgo_t)a,
                                                           &sz) == CUDNN_STATUS_SUCCESS && sz <= LN_CONV_WS_LIMIT && sz > most)
            most = sz;
    }
    return most;
}

/* The benchmark searches run the candidates on the call's own buffers: y (forward),
 * gx and gw (backward) are outputs about to be overwritten anyway. */
static ln_status choose_fwd(ln_ctx *ctx, struct ln_cuda_state *st, conv_entry *e, const float *x, const float *w,
                            float *y) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    candidate c[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    if (e->benchmark) {
        size_t ws_size = find_ws_fwd(st->cudnn, e);
        void *ws;
        LN_TRY(ln_cuda_workspace(ctx, ws_size, &ws));
        LN_TRY(ln_cudnn_check(ctx, cudnnFindConvolutionForwardAlgorithmEx(st->cudnn, e->x, x, e->w, w, e->conv, e->y, y,
                                                                          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf,
                                                                          ws, ws_size),
                              "timing the conv2d forward algorithms"));
    } else {
        LN_TRY(ln_cudnn_check(ctx, cudnnGetConvolutionForwardAlgorithm_v7(st->cudnn, e->x, e->w, e->conv, e->y,
                                                                          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
                              "choosing the conv2d forward algorithm"));
    }
    TO_CANDIDATES(perf, n, c);
    int i = pick(c, n, e->deterministic, LN_CONV_WS_LIMIT);
    e->fwd = i >= 0 ? perf[i].algo : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    LN_TRY(ln_cudnn_check(ctx, cudnnGetConvolutionForwardWorkspaceSize(st->cudnn, e->x, e->w, e->conv, e->y, e->fwd,
                                                                       &e->fwd_ws),
                          "sizing the conv2d forward workspace"));
    e->has_fwd = true;
    return LN_OK;
}

static ln_status choose_bwd_data(ln_ctx *ctx, struct ln_cuda_state *st, conv_entry *e, const float *w,
                                 const float *gy, float *gx) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    candidate c[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    if (e->benchmark) {
        size_t ws_size = find_ws_bwd_data(st->cudnn, e);
        void *ws;
        LN_TRY(ln_cuda_workspace(ctx, ws_size, &ws));
        LN_TRY(ln_cudnn_check(ctx, cudnnFindConvolutionBackwardDataAlgorithmEx(
                                       st->cudnn, e->w, w, e->y, gy, e->conv, e->x, gx,
                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, ws, ws_size),
                              "timing the conv2d backward-data algorithms"));
    } else {
        LN_TRY(ln_cudnn_check(ctx, cudnnGetConvolutionBackwardDataAlgorithm_v7(
                                       st->cudnn, e->w, e->y, e->conv, e->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                       &n, perf),
                              "choosing the conv2d backward-data algorithm"));
    }
    TO_CANDIDATES(perf, n, c);
    int i = pick(c, n, e->deterministic, LN_CONV_WS_LIMIT);
    e->bwd_data = i >= 0 ? perf[i].algo : CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    LN_TRY(ln_cudnn_check(ctx, cudnnGetConvolutionBackwardDataWorkspaceSize(st->cudnn, e->w, e->y, e->conv, e->x,
                                                                            e->bwd_data, &e->bwd_data_ws),
                          "sizing the conv2d backward-data workspace"));
    e->has_bwd_data = true;
    return LN_OK;
}

static ln_status choose_bwd_filter(ln_ctx *ctx, struct ln_cuda_state *st, conv_entry *e, const float *x,
                                   const float *gy, float *gw) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    candidate c[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0;
    if (e->benchmark) {
        size_t ws_size = find_ws_bwd_filter(st->cudnn, e);
        void *ws;
        LN_TRY(ln_cuda_workspace(ctx, ws_size, &ws));
        LN_TRY(ln_cudnn_check(ctx, cudnnFindConvolutionBackwardFilterAlgorithmEx(
                                       st->cudnn, e->x, x, e->y, gy, e->conv, e->w, gw,
                                       CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf, ws, ws_size),
                              "timing the conv2d backward-filter algorithms"));
    } else {
        LN_TRY(ln_cudnn_check(ctx, cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                                       st->cudnn, e->x, e->y, e->conv, e->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                       &n, perf),
                              "choosing the conv2d backward-filter algorithm"));
    }
    TO_CANDIDATES(perf, n, c);
    int i = pick(c, n, e->deterministic, LN_CONV_WS_LIMIT);
    e->bwd_filter = i >= 0 ? perf[i].algo : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    LN_TRY(ln_cudnn_check(ctx, cudnnGetConvolutionBackwardFilterWorkspaceSize(st->cudnn, e->x, e->y, e->conv, e->w,
                                                                              e->bwd_filter, &e->bwd_filter_ws),
                          "sizing the conv2d backward-filter workspace"));
    e->has_bwd_filter = true;
    return LN_OK;
}

/* ------------------------------------------------------------ entry points */
/* A problem with an empty tensor: cuDNN takes no zero extents. y (or gx, gw) is all
 * zeros, plus the bias; gb is the sum of gy, which has no elements unless only the
 * input channels are missing. */
static bool conv_empty(const ln_conv_shape *s) {
    return s->n * s->cin * s->h * s->w == 0 || s->cout * s->oh * s->ow == 0;
}

ln_status ln_cuda_conv2d_fwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x, const float *w, const float *b,
                             float *y) {
    struct ln_cuda_state *st;
    LN_TRY(ln_cuda_enter(ctx, &st));
    const float one = 1.f, zero = 0.f;
    int64_t ny = s->n * s->cout * s->oh * s->ow;
    if (conv_empty(s)) {
        LN_TRY(ln_cuda_memset0(ctx, y, (size_t)ny * sizeof(float)));
        if (!b || ny == 0) return LN_OK;
        cudnnTensorDescriptor_t bd = NULL, yd = NULL;
        cudnnStatus_t cs = cudnnCreateTensorDescriptor(&bd);
        if (cs == CUDNN_STATUS_SUCCESS) cs = cudnnCreateTensorDescriptor(&yd);
        if (cs == CUDNN_STATUS_SUCCESS)
            cs = cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)s->cout, 1, 1);
        if (cs == CUDNN_STATUS_SUCCESS)
            cs = cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)s->n, (int)s->cout,
                                            (int)s->oh, (int)s->ow);
        if (cs == CUDNN_STATUS_SUCCESS) cs = cudnnAddTensor(st->cudnn, &one, bd, b, &one, yd, y);
        if (bd) (void)cudnnDestroyTensorDescriptor(bd);
        if (yd) (void)cudnnDestroyTensorDescriptor(yd);
        return ln_cudnn_check(ctx, cs, "adding the conv2d bias");
    }
    conv_entry *e;
    LN_TRY(conv_entry_get(ctx, st, s, &e));
    if (!e->has_fwd) LN_TRY(choose_fwd(ctx, st, e, x, w, y));
    void *ws;
    LN_TRY(ln_cuda_workspace(ctx, e->fwd_ws, &ws));
    LN_TRY(ln_cudnn_check(ctx, cudnnConvolutionForward(st->cudnn, &one, e->x, x, e->w, w, e->conv, e->fwd, ws,
                                                       e->fwd_ws, &zero, e->y, y),
                          "conv2d forward"));
    if (b) LN_TRY(ln_cudnn_check(ctx, cudnnAddTensor(st->cudnn, &one, e->b, b, &one, e->y, y), "adding the conv2d bias"));
    return LN_OK;
}

ln_status ln_cuda_conv2d_bwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x, const float *w, const float *gy,
                             float *gx, float *gw, float *gb) {
    struct ln_cuda_state *st;
    LN_TRY(ln_cuda_enter(ctx, &st));
    const float one = 1.f, zero = 0.f;
    if (conv_empty(s)) {
        if (gx) LN_TRY(ln_cuda_memset0(ctx, gx, (size_t)(s->n * s->cin * s->h * s->w) * sizeof(float)));
        if (gw) LN_TRY(ln_cuda_memset0(ctx, gw, (size_t)(s->cout * (s->cin / s->groups) * s->kh * s->kw) * sizeof(float)));
        if (!gb) return LN_OK;
        ln_reduce_layout lay; /* gb[c] = sum of gy over n, h, w */
        int64_t shape[3] = {s->n, s->cout, s->oh * s->ow};
        ln_reduce_layout_make(3, shape, (const bool[]){true, false, true}, &lay);
        return ln_cuda_sum(ctx, &lay, 1.f, gy, gb);
    }
    conv_entry *e;
    LN_TRY(conv_entry_get(ctx, st, s, &e));
    void *ws;
    if (gx) {
        if (!e->has_bwd_data) LN_TRY(choose_bwd_data(ctx, st, e, w, gy, gx));
        LN_TRY(ln_cuda_workspace(ctx, e->bwd_data_ws, &ws));
        LN_TRY(ln_cudnn_check(ctx, cudnnConvolutionBackwardData(st->cudnn, &one, e->w, w, e->y, gy, e->conv,
                                                                e->bwd_data, ws, e->bwd_data_ws, &zero, e->x, gx),
                              "conv2d backward data"));
    }
    if (gw) {
        if (!e->has_bwd_filter) LN_TRY(choose_bwd_filter(ctx, st, e, x, gy, gw));
        LN_TRY(ln_cuda_workspace(ctx, e->bwd_filter_ws, &ws));
        LN_TRY(ln_cudnn_check(ctx, cudnnConvolutionBackwardFilter(st->cudnn, &one, e->x, x, e->y, gy, e->conv,
                                                                  e->bwd_filter, ws, e->bwd_filter_ws, &zero, e->w,
                                                                  gw),
                              "conv2d backward filter"));
    }
    if (gb)
        LN_TRY(ln_cudnn_check(ctx, cudnnConvolutionBackwardBias(st->cudnn, &one, e->y, gy, &zero, e->b, gb),
                              "conv2d bias gradient"));
    return LN_OK;
}
