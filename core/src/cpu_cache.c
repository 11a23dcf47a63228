/* The CPU block cache of a context. Large host buffers come back from the kernel as
 * fresh pages, and faulting them in costs more than most ops that write them (a 32 MiB
 * relu output: ~25 ms of page faults against ~6 ms of work on the test machine). So
 * freed blocks of 256 KiB or more are kept, in size classes of a quarter power of two,
 * and handed out again for a request of the same class. The cache holds at most
 * `limit` bytes of free blocks (oldest dropped first); an allocation that fails empties
 * it, runs the context's out-of-memory hook and retries. Built with sanitizers, the limit defaults to 0 so AddressSanitizer
 * still sees every use after free. Single-threaded, like the context that owns it. */
#include <string.h>
#include "internal.h"

#define CACHE_MIN ((size_t)256 << 10)
#ifdef LUNET_SANITIZE
#define CACHE_DEFAULT_LIMIT 0
#else
#define CACHE_DEFAULT_LIMIT ((size_t)1 << 30)
#endif

typedef struct cache_block { size_t size; void *ptr; } cache_block;

struct ln_cpu_cache {
    cache_block *blocks; /* free blocks, oldest first */
    size_t n, cap;
    size_t bytes, limit;
};

/* Rounds n up to its size class: 64-byte granularity below CACHE_MIN, above it the
 * next of 2^k * {1, 1.25, 1.5, 1.75} (at most 25% wasted). */
static size_t size_class(size_t n) {
    n = (n + 63) & ~(size_t)63;
    if (n < CACHE_MIN) return n;
    size_t p = (size_t)1 << (63 - __builtin_clzll(n)), q = p / 4;
    return (n + q - 1) / q * q;
}

static struct ln_cpu_cache *cache_of(ln_ctx *ctx) {
    if (!ctx->cpu_cache) {
        ctx->cpu_cache = calloc(1, sizeof *ctx->cpu_cache);
        if (ctx->cpu_cache) ctx->cpu_cache->limit = CACHE_DEFAULT_LIMIT;
    }
    return ctx->cpu_cache;
}

static void drop_oldest(struct ln_cpu_cache *c) {
    free(c->blocks[0].ptr);
    c->bytes -= c->blocks[0].size;
    memmove(c->blocks, c->blocks + 1, (c->n - 1) * sizeof *c->blocks);
    c->n--;
}

void ln_cpu_cache_empty(ln_ctx *ctx) {
    struct ln_cpu_cache *c = ctx->cpu_cache;
    while (c && c->n > 0) drop_oldest(c);
}

void ln_cpu_cache_destroy(ln_ctx *ctx) {
    ln_cpu_cache_empty(ctx);
    if (ctx->cpu_cache) free(ctx->cpu_cache->blocks);
    free(ctx->cpu_cache);
    ctx->cpu_cache = NULL;
}

void ln_ctx_set_cpu_cache_limit(ln_ctx *ctx, size_t bytes) {
    struct ln_cpu_cache *c = cache_of(ctx);
    if (!c) return;
    c->limit = bytes;
    while (c->n > 0 && c->bytes > c->limit) drop_oldest(c);
}

size_t ln_ctx_cpu_cache_bytes(const ln_ctx *ctx) { return ctx->cpu_cache ? ctx->cpu_cache->bytes : 0; }

ln_status ln_cpu_alloc(ln_ctx *ctx, size_t nbytes, void **ptr, size_t *size) {
    size_t sz = size_class(nbytes ? nbytes : 1);
    struct ln_cpu_cache *c = sz >= CACHE_MIN ? cache_of(ctx) : NULL;
    if (c) {
        for (size_t i = c->n; i-- > 0;) { /* newest first: its pages are likely warm */
            if (c->blocks[i].size != sz) continue;
            *ptr = c->blocks[i].ptr;
            *size = sz;
            c->bytes -= sz;
            memmove(c->blocks + i, c->blocks + i + 1, (c->n - i - 1) * sizeof *c->blocks);
            c->n--;
            return LN_OK;
        }
    }
    *ptr = aligned_alloc(64, sz);
    if (!*ptr) { /* let the binding collect dead tensors, drop the cache, try again */
        ln_ctx_run_oom_hook(ctx);
        ln_cpu_cache_empty(ctx);
        *ptr = aligned_alloc(64, sz);
    }
    if (!*ptr) return ln_fail(ctx, LN_ERR_NOMEM, "out of memory allocating %zu bytes on cpu", nbytes);
    *size = sz;
    return LN_OK;
}

void ln_cpu_free(ln_ctx *ctx, void *ptr, size_t size) {
    struct ln_cpu_cache *c = size >= CACHE_MIN ? ctx->cpu_cache : NULL;
    if (!c || size > c->limit) { free(ptr); return; }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 32;
        cache_block *g = realloc(c->blocks, cap * sizeof *g);
        if (!g) { free(ptr); return; }
        c->blocks = g;
        c->cap = cap;
    }
    c->blocks[c->n++] = (cache_block){size, ptr};
    c->bytes += size;
    while (c->bytes > c->limit) drop_oldest(c);
}
