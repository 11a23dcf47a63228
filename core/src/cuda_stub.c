/* The CUDA entry points of a build without the CUDA toolkit: every call reports that
 * CUDA is not compiled in, and the allocator has nothing to report or release. Built
 * only when core/src/cuda/ is not compiled. */
#include <string.h>
#include "cuda/cuda_api.h"
#include "kernels/activation.h"

static ln_status no_cuda(ln_ctx *ctx) {
    return ln_fail(ctx, LN_ERR_DEVICE, "this lunet was built without CUDA; use device 'cpu'");
}

bool ln_cuda_compiled(void) { return false; }
int ln_cuda_count(void) { return 0; }
ln_status ln_cuda_init(ln_ctx *ctx, int device) { (void)device; return no_cuda(ctx); }
void ln_cuda_destroy(struct ln_cuda_state *state) { (void)state; }
ln_status ln_cuda_malloc(ln_ctx *ctx, int device, size_t nbytes, void **ptr) {
    (void)device; (void)nbytes; *ptr = NULL; return no_cuda(ctx);
}
void ln_cuda_free(ln_ctx *ctx, int device, void *ptr) { (void)ctx; (void)device; (void)ptr; }
ln_status ln_cuda_empty_cache(ln_ctx *ctx) { (void)ctx; return LN_OK; }
void ln_cuda_memory_stats(const ln_ctx *ctx, ln_cuda_mem_stats *out) { (void)ctx; memset(out, 0, sizeof *out); }
ln_status ln_cuda_workspace(ln_ctx *ctx, size_t nbytes, void **ptr) { (void)nbytes; *ptr = NULL; return no_cuda(ctx); }
ln_status ln_cuda_memcpy_h2d(ln_ctx *ctx, void *dst, const void *src, size_t n) { (void)dst; (void)src; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_memcpy_d2h(ln_ctx *ctx, void *dst, const void *src, size_t n) { (void)dst; (void)src; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_memcpy_d2d(ln_ctx *ctx, void *dst, const void *src, size_t n) { (void)dst; (void)src; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_memset0(ln_ctx *ctx, void *dst, size_t n) { (void)dst; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_synchronize(ln_ctx *ctx) { (void)ctx; return LN_OK; }
ln_status ln_cuda_axpy_f32(ln_ctx *ctx, int64_t n, float alpha, const float *x, float *y) {
    (void)n; (void)alpha; (void)x; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_act_fwd(ln_ctx *ctx, ln_act a, int64_t n, const float *x, float *y) {
    (void)a; (void)n; (void)x; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_act_bwd(ln_ctx *ctx, ln_act a, int64_t n, const float *s, const float *gy, float *gx) {
    (void)a; (void)n; (void)s; (void)gy; (void)gx; return no_cuda(ctx);
}
