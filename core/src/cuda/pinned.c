/* Page-locked (pinned) host memory and copies from it that do not block the host.
 *
 * Pinned blocks come from cudaHostAlloc and are cached: a freed block is kept, with
 * an event recorded on each of the context's two streams at the moment of the free,
 * and is handed out again only once both events have completed, i.e. once every
 * copy that was queued from it has read it. So the owner of a pinned tensor may drop
 * it as soon as a copy from it is queued. Blocks go back to the driver on
 * ln_cuda_empty_cache and at teardown (after the streams are idle).
 *
 * Two kinds of copy from pinned memory:
 *   ln_cuda_memcpy_h2d_pinned  on the compute stream, ordered like every other op
 *                              (what tensor:to("cuda") does from a pinned tensor);
 *   ln_cuda_memcpy_h2d_ahead   on the copy stream, so it overlaps the kernels queued
 *                              meanwhile (the loader copies batch k+1 while step k
 *                              computes). The copy first waits for the compute work
 *                              queued so far (its destination may be a cached block
 *                              that work still uses); the compute stream waits for
 *                              the copy only when ln_cuda_ticket_wait is called, just
 *                              before the data is used. */
#include <string.h>
#include "cuda_internal.h"

#define PINNED_ROUND ((size_t)4096)

struct ln_cuda_ticket {
    cudaEvent_t done; /* recorded on the copy stream after the copy */
};

static ln_status event_new(ln_ctx *ctx, cudaEvent_t *ev) {
    return ln_cuda_check(ctx, cudaEventCreateWithFlags(ev, cudaEventDisableTiming), "creating an event");
}

/* True when both of the block's events have completed (or were never recorded). */
static bool block_idle(const ln_pinned_block *b) {
    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaEventQuery(b->freed[i]);
        if (e == cudaErrorNotReady) return false;
        if (e != cudaSuccess) (void)cudaGetLastError(); /* a failed event: the stream is broken anyway */
    }
    return true;
}

static void block_release(ln_pinned_block *b) {
    (void)cudaFreeHost(b->ptr);
    for (int i = 0; i < 2; i++) (void)cudaEventDestroy(b->freed[i]);
}

ln_status ln_cuda_host_alloc(ln_ctx *ctx, int device, size_t nbytes, void **ptr, size_t *size) {
    *ptr = NULL;
    LN_TRY(ln_cuda_init(ctx, device));
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    ln_cuda_pinned *p = &s->pinned;
    if (nbytes == 0) nbytes = 1;
    if (nbytes > SIZE_MAX - PINNED_ROUND)
        return ln_fail(ctx, LN_ERR_NOMEM, "cuda: pinned host memory: %zu bytes is too large", nbytes);
    size_t want = (nbytes + PINNED_ROUND - 1) / PINNED_ROUND * PINNED_ROUND;
    /* best fit among idle cached blocks at most twice the request */
    ln_pinned_block *best = NULL;
    for (size_t i = 0; i < p->n; i++) {
        ln_pinned_block *b = &p->v[i];
        if (b->in_use || b->size < want || b->size / 2 > want) continue;
        if (best && best->size <= b->size) continue;
        if (block_idle(b)) best = b;
    }
    if (best) {
        best->in_use = true;
        p->cached -= best->size;
        p->in_use += best->size;
        *ptr = best->ptr;
        *size = best->size;
        return LN_OK;
    }
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 16;
        ln_pinned_block *v = realloc(p->v, nc * sizeof *v);
        if (!v) return ln_fail(ctx, LN_ERR_NOMEM, "cuda: out of memory growing the pinned-block table");
        p->v = v;
        p->cap = nc;
    }
    ln_pinned_block b = {0};
    b.size = want;
    LN_TRY(event_new(ctx, &b.freed[0]));
    ln_status st = event_new(ctx, &b.freed[1]);
    if (st == LN_OK) {
        cudaError_t e = cudaHostAlloc(&b.ptr, want, cudaHostAllocPortable);
        if (e != cudaSuccess) {
            b.ptr = NULL;
            st = ln_cuda_check(ctx, e, "allocating pinned host memory");
        }
    }
    if (st != LN_OK) {
        (void)cudaEventDestroy(b.freed[0]);
        if (b.freed[1]) (void)cudaEventDestroy(b.freed[1]);
        return st;
    }
    b.in_use = true;
    p->v[p->n++] = b;
    p->in_use += want;
    *ptr = b.ptr;
    *size = want;
    return LN_OK;
}

void ln_cuda_host_free(ln_ctx *ctx, void *ptr) {
    struct ln_cuda_state *s = ctx->cuda;
    if (!ptr || !s) return;
    (void)cudaSetDevice(s->device);
    ln_cuda_pinned *p = &s->pinned;
    for (size_t i = 0; i < p->n; i++) {
        ln_pinned_block *b = &p->v[i];
        if (b->ptr != ptr || !b->in_use) continue;
        /* A failed record leaves the event as it was (idle): then wait for both
         * streams here rather than risk handing out a block a copy still reads. */
        if (cudaEventRecord(b->freed[0], s->stream) != cudaSuccess ||
            cudaEventRecord(b->freed[1], s->copy_stream) != cudaSuccess) {
            (void)cudaGetLastError();
            (void)cudaStreamSynchronize(s->stream);
            (void)cudaStreamSynchronize(s->copy_stream);
            (void)cudaGetLastError();
        }
        b->in_use = false;
        p->in_use -= b->size;
        p->cached += b->size;
        return;
    }
}

void ln_cuda_pinned_release(struct ln_cuda_state *s, bool all) {
    ln_cuda_pinned *p = &s->pinned;
    size_t kept = 0;
    for (size_t i = 0; i < p->n; i++) {
        ln_pinned_block *b = &p->v[i];
        if (all || (!b->in_use && block_idle(b))) {
            if (!b->in_use) p->cached -= b->size;
            block_release(b);
        } else {
            p->v[kept++] = *b;
        }
    }
    p->n = kept;
    if (all) {
        free(p->v);
        memset(p, 0, sizeof *p);
    }
}

ln_status ln_cuda_memcpy_h2d_pinned(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes) {
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    if (nbytes == 0) return LN_OK;
    return ln_cuda_check(ctx, cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice, s->stream),
                         "copy pinned host to device");
}

ln_status ln_cuda_memcpy_h2d_ahead(ln_ctx *ctx, void *dst, const void *host_src, size_t nbytes,
                                   ln_cuda_ticket **ticket) {
    *ticket = NULL;
    struct ln_cuda_state *s;
    LN_TRY(ln_cuda_enter(ctx, &s));
    ln_cuda_ticket *t = calloc(1, sizeof *t);
    if (!t) return ln_fail(ctx, LN_ERR_NOMEM, "cuda: out of memory allocating a copy ticket");
    cudaEvent_t queued = NULL;
    ln_status st = event_new(ctx, &queued);
    if (st == LN_OK) st = event_new(ctx, &t->done);
    if (st == LN_OK) st = ln_cuda_check(ctx, cudaEventRecord(queued, s->stream), "recording an event");
    if (st == LN_OK)
        st = ln_cuda_check(ctx, cudaStreamWaitEvent(s->copy_stream, queued, 0), "ordering the copy stream");
    if (st == LN_OK && nbytes > 0)
        st = ln_cuda_check(ctx, cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice, s->copy_stream),
                           "copy pinned host to device ahead");
    if (st == LN_OK) st = ln_cuda_check(ctx, cudaEventRecord(t->done, s->copy_stream), "recording an event");
    if (queued) (void)cudaEventDestroy(queued); /* released once the wait on it is done */
    if (st != LN_OK) {
        /* nothing may touch dst before the copy stream is done with it */
        (void)cudaStreamSynchronize(s->copy_stream);
        (void)cudaGetLastError();
        if (t->done) (void)cudaEventDestroy(t->done);
        free(t);
        return st;
    }
    *ticket = t;
    return LN_OK;
}

ln_status ln_cuda_ticket_wait(ln_ctx *ctx, ln_cuda_ticket *t) {
    if (!t) return LN_OK;
    struct ln_cuda_state *s;
    ln_status st = ln_cuda_enter(ctx, &s);
    if (st == LN_OK)
        st = ln_cuda_check(ctx, cudaStreamWaitEvent(s->stream, t->done, 0), "waiting for a copy ahead");
    if (st != LN_OK && ctx->cuda) { /* the wait could not be queued: wait on the host */
        (void)cudaEventSynchronize(t->done);
        (void)cudaGetLastError();
    }
    (void)cudaEventDestroy(t->done);
    free(t);
    return st;
}
