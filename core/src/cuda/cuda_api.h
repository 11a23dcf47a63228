/* The C-callable face of the CUDA backend, used by tensor.c (memory) and by the op
 * files (kernels) through the dispatcher only. When lunet is built without CUDA,
 * cuda_stub.c implements these as LN_ERR_UNSUPPORTED. All pointers are device
 * pointers unless named host. Streams: every call runs on the context's stream. */
#ifndef LUNET_CUDA_API_H
#define LUNET_CUDA_API_H

#include "../internal.h"

/* Lazily creates the CUDA state (device, stream, cuBLAS/cuDNN handles, allocator). */
ln_status ln_cuda_init(ln_ctx *ctx, int device);
void ln_cuda_destroy(struct ln_cuda_state *state);
bool ln_cuda_compiled(void);
int ln_cuda_count(void);

/* Caching allocator: sizes are rounded up and blocks reused best-fit. */
ln_status ln_cuda_malloc(ln_ctx *ctx, int device, size_t nbytes, void **ptr);
void ln_cuda_free(ln_ctx *ctx, int device, void *ptr);
/* Returns cached, unused blocks to the driver. */
void ln_cuda_empty_cache(ln_ctx *ctx);

ln_status ln_cuda_memcpy_h2d(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes);
ln_status ln_cuda_memcpy_d2h(ln_ctx *ctx, void *host_dst, const void *src, size_t nbytes);
ln_status ln_cuda_memcpy_d2d(ln_ctx *ctx, void *dst, const void *src, size_t nbytes);
ln_status ln_cuda_memset0(ln_ctx *ctx, void *dst, size_t nbytes);
ln_status ln_cuda_synchronize(ln_ctx *ctx);
/* y[i] += alpha * x[i] for n contiguous f32 values (gradient accumulation). */
ln_status ln_cuda_axpy_f32(ln_ctx *ctx, int64_t n, float alpha, const float *x, float *y);

#endif
