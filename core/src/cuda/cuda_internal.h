/* Private to core/src/cuda: the per-context CUDA state, the caching allocator's
 * bookkeeping, launch geometry, and the helpers that turn CUDA / cuBLAS / cuDNN return
 * codes into a ln_status with a message. Included by the .c files and the .cu kernel
 * files alike (C linkage for everything lunet declares). */
#ifndef LUNET_CUDA_INTERNAL_H
#define LUNET_CUDA_INTERNAL_H

/* The C headers lunet's headers pull in, included first so that the extern "C"
 * block below does not wrap C++ standard-library wrappers when compiled by nvcc. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cuda_runtime_api.h>
#include <cublas_v2.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "cuda_api.h"

/* One device allocation: the pointer cudaMalloc returned and its rounded size. */
typedef struct ln_cuda_block {
    void *ptr;
    size_t size;
} ln_cuda_block;

/* The caching allocator of one device (a context drives one device, so these are the
 * per-device free lists). Both arrays are kept sorted for binary search. */
typedef struct ln_cuda_allocator {
    ln_cuda_block *free_list; /* cached blocks, sorted by size */
    size_t n_free, cap_free;
    ln_cuda_block *live;      /* blocks handed out, sorted by pointer */
    size_t n_live, cap_live;
    ln_cuda_mem_stats stats;
} ln_cuda_allocator;

/* One pinned host block (pinned.c): `freed` are recorded on the compute and the copy
 * stream when the block is freed; it is reused once both have completed. */
typedef struct ln_pinned_block {
    void *ptr;
    size_t size;
    bool in_use;
    cudaEvent_t freed[2];
} ln_pinned_block;

/* The pinned host blocks of a context, in use or cached (unsorted: a loader holds a
 * handful). in_use and cached are byte totals. */
typedef struct ln_cuda_pinned {
    ln_pinned_block *v;
    size_t n, cap;
    size_t in_use, cached;
} ln_cuda_pinned;

/* Returns idle cached pinned blocks to the driver, or with `all` every block (teardown,
 * after both streams are idle). */
void ln_cuda_pinned_release(struct ln_cuda_state *s, bool all);

/* cuDNN descriptors and chosen algorithms per conv2d shape (conv_cudnn.c). */
struct ln_conv_cache;
void ln_conv_cache_destroy(struct ln_conv_cache *cache);

/* Owned by ctx->cuda; created by ln_cuda_init, freed by ln_cuda_destroy. */
struct ln_cuda_state {
    int device;
    int sm_count;          /* multiprocessors of the device (sizes the reduction grids) */
    cudaStream_t stream;   /* non-blocking stream: all of the context's work but... */
    cudaStream_t copy_stream; /* ...the copies ahead from pinned memory (pinned.c) */
    cublasHandle_t cublas; /* bound to stream */
    cudnnHandle_t cudnn;   /* bound to stream */
    void *workspace;       /* a block of the allocator; grows, never shrinks */
    size_t workspace_size;
    ln_cuda_allocator alloc;
    struct ln_conv_cache *conv_cache; /* NULL until the first conv2d */
    ln_cuda_pinned pinned;
};

/* The context's state with its device made current. LN_ERR_STATE when no CUDA
 * tensor was ever created on this context (no device pointer can exist then). */
ln_status ln_cuda_enter(ln_ctx *ctx, struct ln_cuda_state **state);

/* LN_OK for success; otherwise records "cuda: <what>: <error string> (<name>)" and
 * returns LN_ERR_NOMEM for allocation failures, LN_ERR_DEVICE for a missing driver
 * or device, LN_ERR_BACKEND for anything else. Clears CUDA's last-error state. */
ln_status ln_cuda_check(ln_ctx *ctx, cudaError_t err, const char *what);
ln_status ln_cublas_check(ln_ctx *ctx, cublasStatus_t st, const char *what);
ln_status ln_cudnn_check(ln_ctx *ctx, cudnnStatus_t st, const char *what);

/* The status of the kernel launch just made: "cuda: launching <what>: ...". */
static inline ln_status ln_cuda_launched(ln_ctx *ctx, const char *what) {
    return ln_cuda_check(ctx, cudaGetLastError(), what);
}

/* Returns every block, live or cached, to the driver (state teardown). */
void ln_cuda_allocator_release_all(ln_cuda_allocator *a);

/* Launch geometry of the elementwise kernels: grid-stride loops of LN_CUDA_BLOCK
 * threads per block over at most LN_CUDA_MAX_BLOCKS blocks (n > 0). */
#define LN_CUDA_BLOCK 256
#define LN_CUDA_MAX_BLOCKS 4096
static inline unsigned ln_cuda_blocks(int64_t n) {
    int64_t b = (n + LN_CUDA_BLOCK - 1) / LN_CUDA_BLOCK;
    return (unsigned)(b < LN_CUDA_MAX_BLOCKS ? b : LN_CUDA_MAX_BLOCKS);
}

/* Scratch device memory for one call's intermediate results, from the caching
 * allocator. Freeing it right after the kernels that use it are queued is safe: its
 * next owner's work is queued behind them on the same stream (allocator.c). */
static inline ln_status ln_cuda_scratch(ln_ctx *ctx, size_t nbytes, void **ptr) {
    return ln_cuda_malloc(ctx, ctx->cuda->device, nbytes, ptr);
}
static inline void ln_cuda_scratch_free(ln_ctx *ctx, void *ptr) {
    ln_cuda_free(ctx, ctx->cuda->device, ptr);
}

#ifdef __cplusplus
}
#endif

#endif
