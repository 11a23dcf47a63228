/* The one explicit context object: error message, RNG, thread count, autograd mode,
 * backend preference and (when compiled and present) the CUDA device state.
 * Nothing in lunet keeps process-wide mutable state; everything hangs off a ctx.
 * A ctx is reference counted because every storage it allocates keeps it alive. */
#ifndef LUNET_CONTEXT_H
#define LUNET_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef struct ln_ctx ln_ctx;

/* Which kernels CPU ops run: AUTO = fast f32 kernels (reference for f64),
 * REF = always the plain reference kernels (the test oracle). */
typedef enum ln_backend_pref { LN_BACKEND_AUTO = 0, LN_BACKEND_REF = 1 } ln_backend_pref;

/* Returns NULL only when out of memory. */
ln_ctx *ln_ctx_create(void);
void ln_ctx_retain(ln_ctx *ctx);
void ln_ctx_release(ln_ctx *ctx);

/* Last failure message; "" when none. Valid until the next failing call. */
const char *ln_ctx_error(const ln_ctx *ctx);
void ln_ctx_clear_error(ln_ctx *ctx);
/* Records a failure message (printf-style) and returns code; used by every layer. */
ln_status ln_fail(ln_ctx *ctx, ln_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

bool ln_ctx_grad_enabled(const ln_ctx *ctx);
/* Returns the previous value so callers can restore it. */
bool ln_ctx_set_grad_enabled(ln_ctx *ctx, bool enabled);

void ln_ctx_manual_seed(ln_ctx *ctx, uint64_t seed);
uint64_t ln_ctx_seed(const ln_ctx *ctx);
/* Next raw 64-bit value of the context's CPU RNG (xoshiro256**). */
uint64_t ln_ctx_rand_u64(ln_ctx *ctx);
/* RNG state save/restore (4 words) for checkpoints. */
void ln_ctx_rng_get_state(const ln_ctx *ctx, uint64_t state[4]);
void ln_ctx_rng_set_state(ln_ctx *ctx, const uint64_t state[4]);

int ln_ctx_num_threads(const ln_ctx *ctx);
void ln_ctx_set_num_threads(ln_ctx *ctx, int n); /* n <= 0: all cores */

ln_backend_pref ln_ctx_backend(const ln_ctx *ctx);
void ln_ctx_set_backend(ln_ctx *ctx, ln_backend_pref pref);

/* Freed host blocks of 256 KiB or more are kept for reuse, up to `bytes` in all
 * (default 1 GiB; 0 disables the cache). Setting it frees what is over the limit. */
void ln_ctx_set_cpu_cache_limit(ln_ctx *ctx, size_t bytes);
size_t ln_ctx_cpu_cache_bytes(const ln_ctx *ctx);
void ln_cpu_cache_empty(ln_ctx *ctx);
/* Bytes of all tensor storage allocated so far (host and device), ever growing: a
 * garbage-collected binding paces its collector by the growth of this number. */
uint64_t ln_ctx_allocated_total(const ln_ctx *ctx);

/* Called when an allocation (host or device) fails, before the caches are emptied and
 * the allocation retried once: a garbage-collected binding runs a full collection
 * there, so that tensors only its collector knows to be dead give their memory back. */
typedef void (*ln_oom_hook)(void *ud);
void ln_ctx_set_oom_hook(ln_ctx *ctx, ln_oom_hook hook, void *ud);

/* CUDA: whether this build has CUDA and a device is usable; device count. */
bool ln_cuda_available(ln_ctx *ctx);
int ln_cuda_device_count(ln_ctx *ctx);

/* How conv2d picks its cuDNN algorithms (CUDA only; both off by default). benchmark:
 * time the candidates once per shape (cudnnFind*) instead of asking cuDNN's
 * heuristics. deterministic: only algorithms whose results do not change from run to
 * run (no atomics). Choices are cached per shape and per setting. */
void ln_ctx_set_cudnn_benchmark(ln_ctx *ctx, bool on);
bool ln_ctx_cudnn_benchmark(const ln_ctx *ctx);
void ln_ctx_set_cudnn_deterministic(ln_ctx *ctx, bool on);
bool ln_ctx_cudnn_deterministic(const ln_ctx *ctx);

/* The context's CUDA caching allocator. */
typedef struct ln_cuda_mem_stats {
    size_t allocated;       /* bytes in blocks handed out (rounded sizes) */
    size_t cached;          /* bytes in free blocks kept for reuse */
    size_t peak_allocated;  /* high-water mark of `allocated` */
    int64_t n_cuda_malloc;  /* successful cudaMalloc calls */
    int64_t n_cuda_free;    /* cudaFree calls (cache emptied, OOM retry, teardown) */
    int64_t n_reused;       /* requests served from the cache */
    size_t pinned_in_use;   /* pinned host bytes held by tensors (loader batches...) */
    size_t pinned_cached;   /* pinned host bytes kept for reuse */
} ln_cuda_mem_stats;
/* The allocator's counters; all zero before the first CUDA allocation (and always in
 * a build without CUDA). */
void ln_cuda_memory_stats(const ln_ctx *ctx, ln_cuda_mem_stats *out);
/* Returns cached, unused blocks (device, and pinned host) to the driver (after waiting for the stream); LN_OK
 * when no CUDA state exists. */
ln_status ln_cuda_empty_cache(ln_ctx *ctx);
/* Waits for all work queued on the context's stream; LN_OK when no CUDA state exists
 * (kernel errors of earlier asynchronous launches surface here). */
ln_status ln_cuda_synchronize(ln_ctx *ctx);

#endif
