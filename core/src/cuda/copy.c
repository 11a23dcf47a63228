/* Copies between host and device and device fills, all on the context's stream.
 * Copies to the host synchronise the stream (the caller reads the data next). Copies
 * from the host also wait: callers free their host buffer as soon as we return, and
 * CUDA only promises that a copy from pageable memory has read its source by the time
 * the stream has run it. Device-to-device copies and fills stay asynchronous. */
#include "cuda_internal.h"

static ln_status copy(ln_ctx *ctx, void *dst, const void *src, size_t nbytes, enum cudaMemcpyKind kind,
                      const char *what) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (nbytes == 0) return LN_OK;
    LN_TRY(ln_cuda_check(ctx, cudaMemcpyAsync(dst, src, nbytes, kind, s->stream), what));
    if (kind == cudaMemcpyDeviceToDevice) return LN_OK;
    return ln_cuda_check(ctx, cudaStreamSynchronize(s->stream), what);
}

ln_status ln_cuda_memcpy_h2d(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes) {
    return copy(ctx, dst, host_src, nbytes, cudaMemcpyHostToDevice, "copy host to device");
}

ln_status ln_cuda_memcpy_d2h(ln_ctx *ctx, void *host_dst, const void *src, size_t nbytes) {
    return copy(ctx, host_dst, src, nbytes, cudaMemcpyDeviceToHost, "copy device to host");
}

ln_status ln_cuda_memcpy_d2d(ln_ctx *ctx, void *dst, const void *src, size_t nbytes) {
    return copy(ctx, dst, src, nbytes, cudaMemcpyDeviceToDevice, "copy device to device");
}

ln_status ln_cuda_memset0(ln_ctx *ctx, void *dst, size_t nbytes) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (nbytes == 0) return LN_OK;
    return ln_cuda_check(ctx, cudaMemsetAsync(dst, 0, nbytes, s->stream), "memset");
}
