/* The CUDA state of a context: device selection, its stream, the cuBLAS and cuDNN
 * handles bound to that stream, the workspace, stream synchronisation, and the
 * conversion of vendor return codes into ln_status with a message. */
#include <stdio.h>
#include "cuda_internal.h"

bool ln_cuda_compiled(void) { return true; }

int ln_cuda_count(void) {
    int n = 0;
    /* no driver or no device (e.g. a build machine) is an error here: it means 0 */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

ln_status ln_cuda_check(ln_ctx *ctx, cudaError_t err, const char *what) {
    if (err == cudaSuccess) return LN_OK;
    (void)cudaGetLastError(); /* clear the non-sticky error so later calls start clean */
    ln_status code = LN_ERR_BACKEND;
    switch (err) {
    case cudaErrorMemoryAllocation:
        code = LN_ERR_NOMEM;
        break;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
        code = LN_ERR_DEVICE;
        break;
    default:
        break;
    }
    return ln_fail(ctx, code, "cuda: %s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

ln_status ln_cublas_check(ln_ctx *ctx, cublasStatus_t st, const char *what) {
    if (st == CUBLAS_STATUS_SUCCESS) return LN_OK;
    return ln_fail(ctx, st == CUBLAS_STATUS_ALLOC_FAILED ? LN_ERR_NOMEM : LN_ERR_BACKEND,
                   "cublas: %s: %s (%s)", what, cublasGetStatusString(st), cublasGetStatusName(st));
}

ln_status ln_cudnn_check(ln_ctx *ctx, cudnnStatus_t st, const char *what) {
    if (st == CUDNN_STATUS_SUCCESS) return LN_OK;
    char detail[512];
    cudnnGetLastErrorString(detail, sizeof detail);
    return ln_fail(ctx, st == CUDNN_STATUS_ALLOC_FAILED ? LN_ERR_NOMEM : LN_ERR_BACKEND,
                   "cudnn: %s: %s%s%s", what, cudnnGetErrorString(st), detail[0] ? ": " : "", detail);
}

/* The ordinal is not one of the present devices; the message says how many there are
 * and, when the count itself failed, why (no driver, driver too old...). */
static ln_status device_missing(ln_ctx *ctx, int device) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return ln_fail(ctx, LN_ERR_DEVICE, "cuda:%d requested but 0 device(s) present (%s)", device,
                       cudaGetErrorString(err));
    }
    return ln_fail(ctx, LN_ERR_DEVICE, "cuda:%d requested but %d device(s) present", device, count);
}

ln_status ln_cuda_init(ln_ctx *ctx, int device) {
    struct ln_cuda_state *s = ctx->cuda;
    if (s && s->device == device) return LN_OK;
    if (device < 0 || device >= ln_cuda_count()) return device_missing(ctx, device);
    if (s)
        return ln_fail(ctx, LN_ERR_UNSUPPORTED,
                       "cuda:%d requested but this context already drives cuda:%d; a context uses one "
                       "CUDA device (run one process per GPU)", device, s->device);
    s = calloc(1, sizeof *s);
    if (!s) return ln_fail(ctx, LN_ERR_NOMEM, "out of memory allocating the CUDA state");
    s->device = device;
    ln_status st;
    LN_CHECK(st, ln_cuda_check(ctx, cudaSetDevice(device), "cudaSetDevice"), fail);
    LN_CHECK(st, ln_cuda_check(ctx, cudaDeviceGetAttribute(&s->sm_count, cudaDevAttrMultiProcessorCount, device),
                               "querying the multiprocessor count"), fail);
    LN_CHECK(st, ln_cuda_check(ctx, cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking),
                               "creating the stream"), fail);
    LN_CHECK(st, ln_cuda_check(ctx, cudaStreamCreateWithFlags(&s->copy_stream, cudaStreamNonBlocking),
                               "creating the copy stream"), fail);
    LN_CHECK(st, ln_cublas_check(ctx, cublasCreate(&s->cublas), "creating the handle"), fail);
    LN_CHECK(st, ln_cublas_check(ctx, cublasSetStream(s->cublas, s->stream), "binding the stream"), fail);
    /* full f32 GEMMs (no TF32), so results match the CPU within float rounding */
    LN_CHECK(st, ln_cublas_check(ctx, cublasSetMathMode(s->cublas, CUBLAS_DEFAULT_MATH), "setting the math mode"),
             fail);
    LN_CHECK(st, ln_cudnn_check(ctx, cudnnCreate(&s->cudnn), "creating the handle"), fail);
    LN_CHECK(st, ln_cudnn_check(ctx, cudnnSetStream(s->cudnn, s->stream), "binding the stream"), fail);
    ctx->cuda = s;
    return LN_OK;
fail:
    ln_cuda_destroy(s);
    return st;
}

/* Teardown has nobody to report to: each call's status is deliberately discarded, and
 * a failing one leaves nothing more to undo. Also takes partially built states. */
void ln_cuda_destroy(struct ln_cuda_state *s) {
    if (!s) return;
    (void)cudaSetDevice(s->device);
    if (s->stream) (void)cudaStreamSynchronize(s->stream);
    if (s->copy_stream) (void)cudaStreamSynchronize(s->copy_stream);
    ln_cuda_allocator_release_all(&s->alloc); /* the workspace is one of its blocks */
    ln_cuda_pinned_release(s, true);
    ln_conv_cache_destroy(s->conv_cache);
    if (s->cudnn) (void)cudnnDestroy(s->cudnn);
    if (s->cublas) (void)cublasDestroy(s->cublas);
    if (s->stream) (void)cudaStreamDestroy(s->stream);
    if (s->copy_stream) (void)cudaStreamDestroy(s->copy_stream);
    (void)cudaGetLastError();
    free(s);
}

ln_status ln_cuda_enter(ln_ctx *ctx, struct ln_cuda_state **state) {
    *state = ctx->cuda;
    if (!*state)
        return ln_fail(ctx, LN_ERR_STATE, "internal: CUDA call on a context without CUDA state");
    /* cheap when already current; needed when several contexts drive several devices */
    return ln_cuda_check(ctx, cudaSetDevice((*state)->device), "cudaSetDevice");
}

ln_status ln_cuda_synchronize(ln_ctx *ctx) {
    if (!ctx->cuda) return LN_OK;
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    return ln_cuda_check(ctx, cudaStreamSynchronize(s->stream), "synchronizing the stream");
}

ln_status ln_cuda_workspace(ln_ctx *ctx, size_t nbytes, void **ptr) {
    *ptr = NULL;
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (nbytes > s->workspace_size || !s->workspace) {
        /* the old block goes back to the cache first, so an OOM retry can reclaim it */
        ln_cuda_free(ctx, s->device, s->workspace);
        s->workspace = NULL;
        s->workspace_size = 0;
        LN_TRY(ln_cuda_malloc(ctx, s->device, nbytes, &s->workspace));
        s->workspace_size = nbytes;
    }
    *ptr = s->workspace;
    return LN_OK;
}
