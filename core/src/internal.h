/* Private to core/src: the context's layout, argument-check helpers and the TRY macro.
 * Nothing here is part of the public C API. */
#ifndef LUNET_INTERNAL_H
#define LUNET_INTERNAL_H

#include <stdlib.h>
#include "lunet/lunet.h"

#define LN_ERRBUF 1024

struct ln_cuda_state; /* defined in cuda/ when built with CUDA */

struct ln_ctx {
    int64_t refcount;
    char error[LN_ERRBUF];
    bool grad_enabled;
    ln_backend_pref backend;
    int num_threads;
    uint64_t seed;
    uint64_t rng[4];               /* xoshiro256** state */
    uint64_t backward_epoch;       /* marks nodes visited by one backward pass */
    struct ln_cuda_state *cuda;    /* lazily created; NULL until a CUDA call */
    bool cudnn_benchmark;          /* see ln_ctx_set_cudnn_benchmark */
    bool cudnn_deterministic;      /* see ln_ctx_set_cudnn_deterministic */
    uint64_t allocated_total;      /* bytes of every storage ever allocated (GC pacing) */
    ln_oom_hook oom_hook;          /* see ln_ctx_set_oom_hook; run by ln_ctx_run_oom_hook */
    void *oom_ud;
    bool in_oom_hook;
    struct ln_cpu_cache *cpu_cache; /* freed host blocks kept for reuse (cpu_cache.c) */
    void *conv_cache;              /* oneDNN conv primitives (cpu/conv_dnnl.c); NULL until used */
    void (*conv_cache_free)(void *cache); /* set with conv_cache; called by ln_ctx_release */
};

/* Evaluates a ln_status expression and returns it from the enclosing function if
 * it failed. Use only where nothing needs releasing on failure. */
#define LN_TRY(expr) do { ln_status ln_try_s_ = (expr); if (ln_try_s_ != LN_OK) return ln_try_s_; } while (0)
/* Same, but jumps to a cleanup label after storing the status in `st`. */
#define LN_CHECK(st, expr, label) do { (st) = (expr); if ((st) != LN_OK) goto label; } while (0)

/* ---- argument checks: each names the op and the argument in its message ---- */
ln_status ln_check_not_null(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t);
ln_status ln_check_float(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t);
ln_status ln_check_dtype(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t,
                         ln_dtype dt);
ln_status ln_check_ndim(ln_ctx *ctx, const char *op, const char *arg, const ln_tensor *t,
                        int ndim);
/* Same dtype and device for all non-NULL tensors. */
ln_status ln_check_compatible(ln_ctx *ctx, const char *op, int n, ln_tensor *const *ts,
                              const char *const *names);
/* "x [2, 3]" style description of a tensor for messages. */
void ln_describe(const ln_tensor *t, char *buf, size_t n);

/* Overflow-checked product of a shape; false on overflow or negative extent. */
bool ln_shape_numel(int ndim, const int64_t *shape, int64_t *numel);
void ln_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);

/* oneDNN (Debian's build runs on OpenMP) takes its thread count from the calling
 * thread's OpenMP max-threads setting, when a primitive is created and when it runs.
 * Bracket each oneDNN call with these to use ctx->num_threads and give the caller its
 * own setting back. */
int ln_omp_threads_enter(const ln_ctx *ctx); /* returns the caller's setting */
void ln_omp_threads_leave(int previous);

/* Runs the context's out-of-memory hook, if any (not re-entered from inside it). */
void ln_ctx_run_oom_hook(ln_ctx *ctx);

/* Host memory through the context's block cache (cpu_cache.c). *size receives the
 * block's real size, which ln_cpu_free needs back. */
ln_status ln_cpu_alloc(ln_ctx *ctx, size_t nbytes, void **ptr, size_t *size);
void ln_cpu_free(ln_ctx *ctx, void *ptr, size_t size);
void ln_cpu_cache_destroy(ln_ctx *ctx);

static inline int ln_min_i(int a, int b) { return a < b ? a : b; }

#endif
