/* The CUDA entry points of a build without the CUDA toolkit: every call reports that
 * CUDA is not compiled in, and the allocator has nothing to report or release. Built
 * only when core/src/cuda/ is not compiled. (No CUDA tensor can exist in such a build,
 * so the kernel entry points are unreachable from the ops; they fail all the same.) */
#include <string.h>
#include "cuda/cuda_api.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "kernels/shape.h"

static ln_status no_cuda(ln_ctx *ctx) {
    return ln_fail(ctx, LN_ERR_DEVICE, "this lunet was built without CUDA; use device 'cpu'");
}

/* ---- state, memory, copies ---- */
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
ln_status ln_cuda_host_alloc(ln_ctx *ctx, int device, size_t nbytes, void **ptr, size_t *size) {
    (void)device; (void)nbytes; *ptr = NULL; *size = 0; return no_cuda(ctx);
}
void ln_cuda_host_free(ln_ctx *ctx, void *ptr) { (void)ctx; (void)ptr; }
ln_status ln_cuda_memcpy_h2d_pinned(ln_ctx *ctx, void *dst, const void *src, size_t n) { (void)dst; (void)src; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_memcpy_h2d_ahead(ln_ctx *ctx, void *dst, const void *src, size_t n, ln_cuda_ticket **ticket) {
    (void)dst; (void)src; (void)n; *ticket = NULL; return no_cuda(ctx);
}
ln_status ln_cuda_ticket_wait(ln_ctx *ctx, ln_cuda_ticket *ticket) { (void)ctx; (void)ticket; return LN_OK; }
ln_status ln_cuda_memcpy_h2d(ln_ctx *ctx, void *dst, const void *src, size_t n) { (void)dst; (void)src; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_memcpy_d2h(ln_ctx *ctx, void *dst, const void *src, size_t n) { (void)dst; (void)src; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_memcpy_d2d(ln_ctx *ctx, void *dst, const void *src, size_t n) { (void)dst; (void)src; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_memset0(ln_ctx *ctx, void *dst, size_t n) { (void)dst; (void)n; return no_cuda(ctx); }
ln_status ln_cuda_strided_copy(ln_ctx *ctx, size_t elem_size, int ndim, const int64_t *shape, void *dst,
                               const int64_t *dst_strides, const void *src, const int64_t *src_strides) {
    (void)elem_size; (void)ndim; (void)shape; (void)dst; (void)dst_strides; (void)src; (void)src_strides;
    return no_cuda(ctx);
}
ln_status ln_cuda_synchronize(ln_ctx *ctx) { (void)ctx; return LN_OK; }
ln_status ln_cuda_axpy_f32(ln_ctx *ctx, int64_t n, float alpha, const float *x, float *y) {
    (void)n; (void)alpha; (void)x; (void)y; return no_cuda(ctx);
}

/* ---- activations ---- */
ln_status ln_cuda_act_fwd(ln_ctx *ctx, ln_act a, int64_t n, const float *x, float *y) {
    (void)a; (void)n; (void)x; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_act_bwd(ln_ctx *ctx, ln_act a, int64_t n, const float *s, const float *gy, float *gx) {
    (void)a; (void)n; (void)s; (void)gy; (void)gx; return no_cuda(ctx);
}

/* ---- convolution ---- */
ln_status ln_cuda_conv2d_fwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x, const float *w, const float *b,
                             float *y) {
    (void)s; (void)x; (void)w; (void)b; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_conv2d_bwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x, const float *w, const float *gy,
                             float *gx, float *gw, float *gb) {
    (void)s; (void)x; (void)w; (void)gy; (void)gx; (void)gw; (void)gb; return no_cuda(ctx);
}
ln_status ln_cuda_conv1d_channels_fwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad, const float *x,
                                      const float *w, float *y) {
    (void)n; (void)c; (void)k; (void)pad; (void)x; (void)w; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_conv1d_channels_bwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad, const float *x,
                                      const float *w, const float *gy, float *gx, float *gw) {
    (void)n; (void)c; (void)k; (void)pad; (void)x; (void)w; (void)gy; (void)gx; (void)gw; return no_cuda(ctx);
}

/* ---- elementwise ---- */
ln_status ln_cuda_binary_fwd(ln_ctx *ctx, ln_binop op, const ln_bcast *bc, const float *a, const float *b,
                             float *y) {
    (void)op; (void)bc; (void)a; (void)b; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_binary_grad(ln_ctx *ctx, ln_binop op, int which, const ln_bcast *bc, const float *a,
                              const float *b, const float *gy, float *g) {
    (void)op; (void)which; (void)bc; (void)a; (void)b; (void)gy; (void)g; return no_cuda(ctx);
}
ln_status ln_cuda_affine(ln_ctx *ctx, int64_t n, const float *x, float scale, float shift, float *y) {
    (void)n; (void)x; (void)scale; (void)shift; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_pow_fwd(ln_ctx *ctx, int64_t n, const float *x, float p, float *y) {
    (void)n; (void)x; (void)p; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_pow_bwd(ln_ctx *ctx, int64_t n, const float *x, float p, const float *gy, float *gx) {
    (void)n; (void)x; (void)p; (void)gy; (void)gx; return no_cuda(ctx);
}

/* ---- linear algebra ---- */
ln_status ln_cuda_gemm(ln_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc;
    return no_cuda(ctx);
}
ln_status ln_cuda_fill_rows(ln_ctx *ctx, int64_t rows, int64_t cols, const float *bias, float *y) {
    (void)rows; (void)cols; (void)bias; (void)y; return no_cuda(ctx);
}

/* ---- losses ---- */
ln_status ln_cuda_check_labels(ln_ctx *ctx, int64_t N, int64_t C, const int64_t *labels, int64_t *bad,
                               int64_t *bad_value) {
    (void)N; (void)C; (void)labels; *bad = -1; *bad_value = 0; return no_cuda(ctx);
}
ln_status ln_cuda_xent_fwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels, float *loss) {
    (void)N; (void)C; (void)x; (void)labels; (void)loss; return no_cuda(ctx);
}
ln_status ln_cuda_xent_bwd(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels,
                           const float *gy, float *gx) {
    (void)N; (void)C; (void)x; (void)labels; (void)gy; (void)gx; return no_cuda(ctx);
}
ln_status ln_cuda_topk_correct(ln_ctx *ctx, int64_t N, int64_t C, const float *x, const int64_t *labels, int64_t k,
                               int64_t *correct) {
    (void)N; (void)C; (void)x; (void)labels; (void)k; *correct = 0; return no_cuda(ctx);
}

/* ---- normalisation ---- */
ln_status ln_cuda_bn_train_stats(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, double eps, const float *x,
                                 double *mean, double *var, double *invstd) {
    (void)N; (void)C; (void)HW; (void)eps; (void)x; (void)mean; (void)var; (void)invstd; return no_cuda(ctx);
}
ln_status ln_cuda_bn_eval_stats(ln_ctx *ctx, int64_t C, double eps, const float *running_mean,
                                const float *running_var, double *mean, double *invstd) {
    (void)C; (void)eps; (void)running_mean; (void)running_var; (void)mean; (void)invstd; return no_cuda(ctx);
}
ln_status ln_cuda_bn_update_running(ln_ctx *ctx, int64_t C, double momentum, double unbias, const double *mean,
                                    const double *var, float *running_mean, float *running_var) {
    (void)C; (void)momentum; (void)unbias; (void)mean; (void)var; (void)running_mean; (void)running_var;
    return no_cuda(ctx);
}
ln_status ln_cuda_bn_fwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, const float *x, const double *mean,
                         const double *invstd, const float *w, const float *b, float *y) {
    (void)N; (void)C; (void)HW; (void)x; (void)mean; (void)invstd; (void)w; (void)b; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_bn_bwd(ln_ctx *ctx, int64_t N, int64_t C, int64_t HW, bool training, const float *x,
                         const double *mean, const double *invstd, const float *w, const float *gy, float *gx,
                         float *gw, float *gb) {
    (void)N; (void)C; (void)HW; (void)training; (void)x; (void)mean; (void)invstd; (void)w; (void)gy; (void)gx;
    (void)gw; (void)gb;
    return no_cuda(ctx);
}

/* ---- optimiser ---- */
ln_status ln_cuda_sgd_step(ln_ctx *ctx, int64_t n, float *param, const float *grad, float *buf, bool first_step,
                           const ln_sgd_params *p) {
    (void)n; (void)param; (void)grad; (void)buf; (void)first_step; (void)p; return no_cuda(ctx);
}

/* ---- pooling ---- */
ln_status ln_cuda_maxpool_fwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              const ln_pool2d_params *p, const float *x, float *y, int64_t *idx) {
    (void)NC; (void)H; (void)W; (void)OH; (void)OW; (void)p; (void)x; (void)y; (void)idx; return no_cuda(ctx);
}
ln_status ln_cuda_maxpool_bwd(ln_ctx *ctx, int64_t NC, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              const ln_pool2d_params *p, const int64_t *idx, const float *gy, float *gx) {
    (void)NC; (void)H; (void)W; (void)OH; (void)OW; (void)p; (void)idx; (void)gy; (void)gx; return no_cuda(ctx);
}
ln_status ln_cuda_gap_fwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *x, float *y) {
    (void)NC; (void)HW; (void)x; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_gap_bwd(ln_ctx *ctx, int64_t NC, int64_t HW, const float *gy, float *gx) {
    (void)NC; (void)HW; (void)gy; (void)gx; return no_cuda(ctx);
}

/* ---- reductions ---- */
ln_status ln_cuda_sum(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full, float *small) {
    (void)lay; (void)alpha; (void)full; (void)small; return no_cuda(ctx);
}
ln_status ln_cuda_sum_prod(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *full,
                           const float *w, float *small) {
    (void)lay; (void)alpha; (void)full; (void)w; (void)small; return no_cuda(ctx);
}
ln_status ln_cuda_expand(ln_ctx *ctx, const ln_reduce_layout *lay, float alpha, const float *small, float *full) {
    (void)lay; (void)alpha; (void)small; (void)full; return no_cuda(ctx);
}

/* ---- shape ---- */
ln_status ln_cuda_cat(ln_ctx *ctx, int n, const float *const *xs, const int64_t *sizes, int64_t outer,
                      int64_t inner, float *y) {
    (void)n; (void)xs; (void)sizes; (void)outer; (void)inner; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_split(ln_ctx *ctx, int n, float *const *gs, const int64_t *sizes, int64_t outer, int64_t inner,
                        const float *gy) {
    (void)n; (void)gs; (void)sizes; (void)outer; (void)inner; (void)gy; return no_cuda(ctx);
}
ln_status ln_cuda_shortcut_fwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *x, float *y) {
    (void)d; (void)x; (void)y; return no_cuda(ctx);
}
ln_status ln_cuda_shortcut_bwd(ln_ctx *ctx, const ln_shortcut_dims *d, const float *gy, float *gx) {
    (void)d; (void)gy; (void)gx; return no_cuda(ctx);
}
