/* The C-callable face of the CUDA backend, used by tensor.c (memory) and by the op
 * files (kernels) through the dispatcher only. When lunet is built without CUDA,
 * cuda_stub.c implements these as errors (LN_ERR_DEVICE) and empty statistics. All
 * pointers are device pointers unless named host. Streams: every call runs on the
 * context's one stream; copies to the host synchronise it. A context drives one CUDA
 * device (the first one it is asked for): one process per GPU. */
#ifndef LUNET_CUDA_API_H
#define LUNET_CUDA_API_H

#include "../internal.h"

/* Lazily creates the CUDA state (device, stream, cuBLAS/cuDNN handles, allocator).
 * LN_ERR_DEVICE when the ordinal is not present ("cuda:3 requested but 1 device(s)
 * present"), LN_ERR_UNSUPPORTED when the context already drives another device. */
ln_status ln_cuda_init(ln_ctx *ctx, int device);
void ln_cuda_destroy(struct ln_cuda_state *state);
bool ln_cuda_compiled(void);
/* Number of usable devices; 0 when there is no driver or no device (never fails). */
int ln_cuda_count(void);

/* Caching allocator: sizes are rounded up and blocks reused best-fit. */
ln_status ln_cuda_malloc(ln_ctx *ctx, int device, size_t nbytes, void **ptr);
void ln_cuda_free(ln_ctx *ctx, int device, void *ptr);
/* Returns cached, unused blocks to the driver (after waiting for the stream). */
ln_status ln_cuda_empty_cache(ln_ctx *ctx);

typedef struct ln_cuda_mem_stats {
    size_t allocated;       /* bytes in blocks handed out (rounded sizes) */
    size_t cached;          /* bytes in free blocks kept for reuse */
    size_t peak_allocated;  /* high-water mark of `allocated` */
    int64_t n_cuda_malloc;  /* successful cudaMalloc calls */
    int64_t n_cuda_free;    /* cudaFree calls (cache emptied, OOM retry, teardown) */
    int64_t n_reused;       /* requests served from the cache */
} ln_cuda_mem_stats;
/* The allocator's counters; all zero before the first CUDA allocation. */
void ln_cuda_memory_stats(const ln_ctx *ctx, ln_cuda_mem_stats *out);

/* A scratch buffer of at least nbytes owned by the context (cuDNN/cuBLAS workspace),
 * valid until the next call that asks for a larger one. */
ln_status ln_cuda_workspace(ln_ctx *ctx, size_t nbytes, void **ptr);

ln_status ln_cuda_memcpy_h2d(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes);
ln_status ln_cuda_memcpy_d2h(ln_ctx *ctx, void *host_dst, const void *src, size_t nbytes);
ln_status ln_cuda_memcpy_d2d(ln_ctx *ctx, void *dst, const void *src, size_t nbytes);
ln_status ln_cuda_memset0(ln_ctx *ctx, void *dst, size_t nbytes);
/* Waits for the context's stream; LN_OK when no CUDA state exists yet. */
ln_status ln_cuda_synchronize(ln_ctx *ctx);
/* y[i] += alpha * x[i] for n contiguous f32 values (gradient accumulation). */
ln_status ln_cuda_axpy_f32(ln_ctx *ctx, int64_t n, float alpha, const float *x, float *y);

#endif
