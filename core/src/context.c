/* The context object: error buffer, RNG (xoshiro256** seeded through splitmix64),
 * grad mode, thread count, backend preference, and the lazily created CUDA state. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "internal.h"
#include "cuda/cuda_api.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

ln_ctx *ln_ctx_create(void) {
    ln_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->refcount = 1;
    ctx->grad_enabled = true;
    ctx->backend = LN_BACKEND_AUTO;
    ln_ctx_set_num_threads(ctx, 0);
    ln_ctx_manual_seed(ctx, 0);
    return ctx;
}

void ln_ctx_retain(ln_ctx *ctx) { if (ctx) ctx->refcount++; }

void ln_ctx_release(ln_ctx *ctx) {
    if (!ctx || --ctx->refcount > 0) return;
    if (ctx->cuda) ln_cuda_destroy(ctx->cuda);
    if (ctx->conv_cache_free) ctx->conv_cache_free(ctx->conv_cache);
    ln_cpu_cache_destroy(ctx);
    free(ctx);
}

const char *ln_ctx_error(const ln_ctx *ctx) { return ctx->error; }
void ln_ctx_clear_error(ln_ctx *ctx) { ctx->error[0] = '\0'; }

ln_status ln_fail(ln_ctx *ctx, ln_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    return code;
}

bool ln_ctx_grad_enabled(const ln_ctx *ctx) { return ctx->grad_enabled; }
bool ln_ctx_set_grad_enabled(ln_ctx *ctx, bool enabled) {
    bool prev = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return prev;
}

void ln_ctx_manual_seed(ln_ctx *ctx, uint64_t seed) {
    uint64_t x = seed;
    ctx->seed = seed;
    for (int i = 0; i < 4; i++) ctx->rng[i] = splitmix64(&x);
}
uint64_t ln_ctx_seed(const ln_ctx *ctx) { return ctx->seed; }

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ln_ctx_rand_u64(ln_ctx *ctx) {
    uint64_t *s = ctx->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

void ln_ctx_rng_get_state(const ln_ctx *ctx, uint64_t state[4]) { memcpy(state, ctx->rng, sizeof ctx->rng); }
void ln_ctx_rng_set_state(ln_ctx *ctx, const uint64_t state[4]) { memcpy(ctx->rng, state, sizeof ctx->rng); }

int ln_ctx_num_threads(const ln_ctx *ctx) { return ctx->num_threads; }
void ln_ctx_set_num_threads(ln_ctx *ctx, int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
#else
    n = 1;
#endif
    ctx->num_threads = n;
}

int ln_omp_threads_enter(const ln_ctx *ctx) {
#ifdef _OPENMP
    int prev = omp_get_max_threads();
    if (prev != ctx->num_threads) omp_set_num_threads(ctx->num_threads);
    return prev;
#else
    (void)ctx;
    return 1;
#endif
}

void ln_omp_threads_leave(int previous) {
#ifdef _OPENMP
    if (previous != omp_get_max_threads()) omp_set_num_threads(previous);
#else
    (void)previous;
#endif
}

void ln_ctx_set_oom_hook(ln_ctx *ctx, ln_oom_hook hook, void *ud) {
    ctx->oom_hook = hook;
    ctx->oom_ud = ud;
}

void ln_ctx_run_oom_hook(ln_ctx *ctx) {
    if (!ctx->oom_hook || ctx->in_oom_hook) return;
    ctx->in_oom_hook = true;
    ctx->oom_hook(ctx->oom_ud);
    ctx->in_oom_hook = false;
}

uint64_t ln_ctx_allocated_total(const ln_ctx *ctx) { return ctx->allocated_total; }

ln_backend_pref ln_ctx_backend(const ln_ctx *ctx) { return ctx->backend; }
void ln_ctx_set_backend(ln_ctx *ctx, ln_backend_pref pref) { ctx->backend = pref; }

bool ln_cuda_available(ln_ctx *ctx) { (void)ctx; return ln_cuda_compiled() && ln_cuda_count() > 0; }
int ln_cuda_device_count(ln_ctx *ctx) { (void)ctx; return ln_cuda_compiled() ? ln_cuda_count() : 0; }

void ln_ctx_set_cudnn_benchmark(ln_ctx *ctx, bool on) { ctx->cudnn_benchmark = on; }
bool ln_ctx_cudnn_benchmark(const ln_ctx *ctx) { return ctx->cudnn_benchmark; }
void ln_ctx_set_cudnn_deterministic(ln_ctx *ctx, bool on) { ctx->cudnn_deterministic = on; }
bool ln_ctx_cudnn_deterministic(const ln_ctx *ctx) { return ctx->cudnn_deterministic; }
