/* The caching device allocator of a context's CUDA state.
 *
 * Requests are rounded up (to 512 B up to 1 MiB, to 2 MiB above) and served best-fit
 * from the free list when a cached block is at most 25% larger than the rounded
 * request; otherwise cudaMalloc is called. Freed blocks go back to the free list, not
 * to the driver. When cudaMalloc runs out of memory every cached block is returned to
 * the driver and the call is retried once; a second failure is LN_ERR_NOMEM with a
 * message giving the request and what is in use and cached. Blocks are not split.
 *
 * Why reuse is safe without events: all of a context's device work (kernels, copies,
 * memsets, cuBLAS, cuDNN) is issued to its one stream. (The one exception, the copies
 * ahead on the copy stream, is ordered by events both ways: see pinned.c.) A block freed on the host
 * while queued work still reads or writes it can be handed out at once, because
 * whatever its new owner does is enqueued on the same stream after that work, and a
 * stream runs in order. Memory goes back to the driver (cudaFree) only after
 * synchronising the stream.
 *
 * Bookkeeping: `live` (blocks handed out, sorted by pointer, so ln_cuda_free finds the
 * size) and `free_list` (sorted by size, for best-fit), both searched by bisection. */
#include <stdio.h>
#include <string.h>
#include "cuda_internal.h"

#define SMALL_LIMIT ((size_t)1 << 20)
#define SMALL_ROUND ((size_t)512)
#define LARGE_ROUND ((size_t)2 << 20)

static bool round_size(size_t n, size_t *out) {
    size_t g = n <= SMALL_LIMIT ? SMALL_ROUND : LARGE_ROUND;
    if (n == 0) n = 1;
    if (n > SIZE_MAX - g) return false;
    *out = (n + g - 1) / g * g;
    return true;
}

/* "1.50 GiB" */
static void format_bytes(size_t n, char *buf, size_t len) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) { v /= 1024.0; u++; }
    if (u == 0) snprintf(buf, len, "%zu B", n);
    else snprintf(buf, len, "%.2f %s", v, units[u]);
}

/* ---- sorted arrays ---- */
static bool reserve(ln_cuda_block **arr, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    ln_cuda_block *p = realloc(*arr, nc * sizeof *p);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

static void insert_at(ln_cuda_block *arr, size_t *n, size_t i, ln_cuda_block b) {
    memmove(arr + i + 1, arr + i, (*n - i) * sizeof *arr);
    arr[i] = b;
    (*n)++;
}

static void remove_at(ln_cuda_block *arr, size_t *n, size_t i) {
    memmove(arr + i, arr + i + 1, (*n - i - 1) * sizeof *arr);
    (*n)--;
}

/* First free-list index whose block is at least `size` bytes (upper: more than). */
static size_t free_bound(const ln_cuda_allocator *a, size_t size, bool upper) {
    size_t lo = 0, hi = a->n_free;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2, s = a->free_list[mid].size;
        if (s < size || (upper && s == size)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Index of ptr in the live list, or where it would be inserted. */
static size_t live_bound(const ln_cuda_allocator *a, const void *ptr) {
    size_t lo = 0, hi = a->n_live;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)a->live[mid].ptr < (uintptr_t)ptr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* ---- returning memory to the driver ---- */
/* Waits for the stream, then cudaFree's every cached block. Returns the first error
 * (freeing goes on past it). */
static cudaError_t release_cached(struct ln_cuda_state *s) {
    ln_cuda_allocator *a = &s->alloc;
    cudaError_t first = cudaStreamSynchronize(s->stream);
    for (size_t i = 0; i < a->n_free; i++) {
        cudaError_t err = cudaFree(a->free_list[i].ptr);
        if (first == cudaSuccess) first = err;
        a->stats.n_cuda_free++;
    }
    a->n_free = 0;
    a->stats.cached = 0;
    return first;
}

void ln_cuda_allocator_release_all(ln_cuda_allocator *a) {
    for (size_t i = 0; i < a->n_free; i++) (void)cudaFree(a->free_list[i].ptr);
    for (size_t i = 0; i < a->n_live; i++) (void)cudaFree(a->live[i].ptr);
    free(a->free_list);
    free(a->live);
    memset(a, 0, sizeof *a);
}

ln_status ln_cuda_empty_cache(ln_ctx *ctx) {
    if (!ctx->cuda) return LN_OK;
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    LN_TRY(ln_cuda_check(ctx, release_cached(s), "returning cached blocks to the driver"));
    ln_cuda_pinned_release(s, false);
    return LN_OK;
}

/* ---- allocation ---- */
static ln_status out_of_memory(ln_ctx *ctx, const struct ln_cuda_state *s, size_t requested,
                               size_t rounded, size_t cached_before) {
    char req[32], live[32], cached[32], dev[96] = "";
    format_bytes(rounded, req, sizeof req);
    format_bytes(s->alloc.stats.allocated, live, sizeof live);
    format_bytes(cached_before, cached, sizeof cached);
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        char f[32], t[32];
        format_bytes(free_b, f, sizeof f);
        format_bytes(total_b, t, sizeof t);
        snprintf(dev, sizeof dev, "; the device has %s free of %s", f, t);
    } else {
        (void)cudaGetLastError();
    }
    return ln_fail(ctx, LN_ERR_NOMEM,
                   "cuda:%d: out of memory allocating %s (%zu bytes requested); this context has %s "
                   "allocated and had %s cached (returned to the driver before retrying)%s",
                   s->device, req, requested, live, cached, dev);
}

/* cudaMalloc, and on running out of memory: run the context's out-of-memory hook (a
 * Lua GC), empty the cache and try once more. */
static ln_status device_alloc(ln_ctx *ctx, struct ln_cuda_state *s, size_t requested, size_t size,
                              void **ptr) {
    cudaError_t err = cudaMalloc(ptr, size);
    if (err == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        ln_ctx_run_oom_hook(ctx); /* the binding's GC may free blocks into the cache */
        size_t cached_before = s->alloc.stats.cached;
        LN_TRY(ln_cuda_check(ctx, release_cached(s), "returning cached blocks to the driver"));
        err = cudaMalloc(ptr, size);
        if (err == cudaErrorMemoryAllocation) {
            (void)cudaGetLastError();
            *ptr = NULL;
            return out_of_memory(ctx, s, requested, size, cached_before);
        }
    }
    if (err != cudaSuccess) *ptr = NULL;
    LN_TRY(ln_cuda_check(ctx, err, "cudaMalloc"));
    s->alloc.stats.n_cuda_malloc++;
    return LN_OK;
}

ln_status ln_cuda_malloc(ln_ctx *ctx, int device, size_t nbytes, void **ptr) {
    *ptr = NULL;
    LN_TRY(ln_cuda_init(ctx, device));
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    ln_cuda_allocator *a = &s->alloc;
    size_t size;
    if (!round_size(nbytes, &size))
        return ln_fail(ctx, LN_ERR_NOMEM, "cuda:%d: cannot allocate %zu bytes (too large)", s->device, nbytes);
    /* room to record the block first, so that no device memory can leak below */
    if (!reserve(&a->live, &a->cap_live, a->n_live + 1))
        return ln_fail(ctx, LN_ERR_NOMEM, "out of host memory recording a CUDA allocation");
    ln_cuda_block b = {NULL, size};
    size_t i = free_bound(a, size, false);
    if (i < a->n_free && a->free_list[i].size - size <= size / 4) {
        b = a->free_list[i];
        remove_at(a->free_list, &a->n_free, i);
        a->stats.cached -= b.size;
        a->stats.n_reused++;
    } else {
        LN_TRY(device_alloc(ctx, s, nbytes, size, &b.ptr));
    }
    insert_at(a->live, &a->n_live, live_bound(a, b.ptr), b);
    a->stats.allocated += b.size;
    if (a->stats.allocated > a->stats.peak_allocated) a->stats.peak_allocated = a->stats.allocated;
    *ptr = b.ptr;
    return LN_OK;
}

void ln_cuda_free(ln_ctx *ctx, int device, void *ptr) {
    (void)device; /* the context drives one device: its allocator holds every block */
    struct ln_cuda_state *s = ctx->cuda;
    if (!ptr || !s) return;
    ln_cuda_allocator *a = &s->alloc;
    size_t i = live_bound(a, ptr);
    if (i == a->n_live || a->live[i].ptr != ptr) return; /* not a block of this context */
    ln_cuda_block b = a->live[i];
    remove_at(a->live, &a->n_live, i);
    a->stats.allocated -= b.size;
    if (reserve(&a->free_list, &a->cap_free, a->n_free + 1)) {
        insert_at(a->free_list, &a->n_free, free_bound(a, b.size, true), b);
        a->stats.cached += b.size;
        return;
    }
    /* no host memory to remember the block: give it back now. Nothing to report to
     * (this runs from a release), and a failure would leave nothing else to do. */
    (void)cudaSetDevice(s->device);
    (void)cudaStreamSynchronize(s->stream);
    (void)cudaFree(b.ptr);
    (void)cudaGetLastError();
    a->stats.n_cuda_free++;
}

void ln_cuda_memory_stats(const ln_ctx *ctx, ln_cuda_mem_stats *out) {
    if (!ctx->cuda) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = ctx->cuda->alloc.stats;
    out->pinned_in_use = ctx->cuda->pinned.in_use;
    out->pinned_cached = ctx->cuda->pinned.cached;
}
