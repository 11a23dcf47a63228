/* The C-callable face of the CUDA backend, used by tensor.c (memory) and by the op
 * files (kernels) through the dispatcher only. When lunet is built without CUDA,
 * cuda_stub.c implements these as errors (LN_ERR_DEVICE) and empty statistics. All
 * pointers are device pointers unless named host. Streams: every call runs on the
 * context's stream, except the copies ahead from pinned memory, which run on its copy
 * stream (pinned.c); copies to the host synchronise the stream. A context drives one CUDA
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
/* ln_cuda_empty_cache, ln_cuda_memory_stats (and ln_cuda_mem_stats) and
 * ln_cuda_synchronize are public: lunet/context.h. */

/* A scratch buffer of at least nbytes owned by the context (cuDNN/cuBLAS workspace),
 * valid until the next call that asks for a larger one. */
ln_status ln_cuda_workspace(ln_ctx *ctx, size_t nbytes, void **ptr);

/* Pinned (page-locked) host memory, cached (pinned.c); initialises the CUDA state of
 * `device` when needed. *size is the block's rounded size. Freeing is safe while
 * copies from the block are queued: it is reused only after they have run. */
ln_status ln_cuda_host_alloc(ln_ctx *ctx, int device, size_t nbytes, void **ptr, size_t *size);
void ln_cuda_host_free(ln_ctx *ctx, void *ptr);
/* A copy from pinned memory on the context's stream, without waiting for it. */
ln_status ln_cuda_memcpy_h2d_pinned(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes);
/* A copy from pinned memory on the copy stream, overlapping the compute work queued
 * after it; dst must not be used (read, written or freed) before
 * ln_cuda_ticket_wait(ticket) has made the compute stream wait for the copy. The
 * ticket is freed by ln_cuda_ticket_wait, which must be called exactly once. */
typedef struct ln_cuda_ticket ln_cuda_ticket;
ln_status ln_cuda_memcpy_h2d_ahead(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes,
                                   ln_cuda_ticket **ticket);
ln_status ln_cuda_ticket_wait(ln_ctx *ctx, ln_cuda_ticket *ticket);

ln_status ln_cuda_memcpy_h2d(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes);
ln_status ln_cuda_memcpy_d2h(ln_ctx *ctx, void *host_dst, const void *src, size_t nbytes);
ln_status ln_cuda_memcpy_d2d(ln_ctx *ctx, void *dst, const void *src, size_t nbytes);
ln_status ln_cuda_memset0(ln_ctx *ctx, void *dst, size_t nbytes);
/* dst = src elementwise for two views of one shape (ndim dims, strides in elements,
 * any non-negative strides; dst and src point at element 0 of each view) with
 * elements of elem_size bytes (1, 4 or 8): the device-side strided copy behind
 * contiguous(), clone() and copy_() of CUDA views. Asynchronous. */
ln_status ln_cuda_strided_copy(ln_ctx *ctx, size_t elem_size, int ndim, const int64_t *shape,
                               void *dst, const int64_t *dst_strides, const void *src,
                               const int64_t *src_strides);
/* y[i] += alpha * x[i] for n contiguous f32 values (gradient accumulation). */
ln_status ln_cuda_axpy_f32(ln_ctx *ctx, int64_t n, float alpha, const float *x, float *y);

#endif
