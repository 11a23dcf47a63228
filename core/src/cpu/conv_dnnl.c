/* Fast CPU conv2d (f32) through oneDNN convolution primitives, as PyTorch's CPU path
 * does: each primitive is created with format `any`, so oneDNN picks its fastest
 * (usually channel-blocked, nChw8c on AVX2) layouts, and our plain NCHW tensors are
 * reordered into and out of those layouts around the call. Depthwise and grouped
 * convolutions go through the same primitives (oneDNN has direct kernels for them).
 *
 * Creating a primitive costs far more than running a small one, so the primitives and
 * their reorders are cached in the context (ctx->conv_cache, an LRU of CACHE_CAP
 * entries keyed by shape, parameters, direction and thread count). The buffers in the
 * primitives' layouts and the scratchpad are shared by all entries (calls never
 * overlap within one context) and grow to the largest size seen.
 *
 * Threads: every oneDNN call is bracketed by ln_omp_threads_enter/leave, so it runs
 * on ctx->num_threads (see internal.h). */
#include <omp.h>
#include <string.h>
#include <dnnl.h>
#include <dnnl_debug.h>
#include "../kernels/conv.h"

#define CACHE_CAP 64

typedef enum conv_kind { KIND_FWD = 0, KIND_BWD_DATA, KIND_BWD_WEIGHTS } conv_kind;

/* Shared buffers: the three tensor arguments in the primitive's layouts, and its
 * scratchpad. Argument i of every entry lives in slot i. */
enum { SLOT_SRC = 0, SLOT_WEI, SLOT_DST, SLOT_SCRATCH, N_SLOTS };

typedef struct conv_key {
    ln_conv_shape s;
    int64_t kind, bias, threads;
} conv_key;

/* One tensor argument of a primitive: user memory in plain layout and, when the
 * primitive wants another layout, the memory in that layout with the reorder between
 * them (user -> prim for inputs, prim -> user for outputs). */
typedef struct conv_arg {
    int dnnl_arg;
    bool is_output;
    dnnl_memory_t user;        /* plain layout; handle set per call */
    dnnl_memory_t prim;        /* primitive layout in the slot buffer, or NULL */
    dnnl_primitive_t reorder;  /* NULL when prim is NULL */
    dnnl_memory_desc_t md;     /* the primitive's layout */
    size_t bytes;              /* size of md */
} conv_arg;

typedef struct conv_entry {
    conv_key key;
    uint64_t last_use;
    dnnl_primitive_t conv;
    conv_arg arg[3];           /* by slot: src-like, weights-like, dst-like */
    int bias_arg;              /* DNNL_ARG_BIAS / DNNL_ARG_DIFF_BIAS, 0 when none */
    dnnl_memory_t bias;        /* plain (Cout) or NULL */
    dnnl_memory_t scratch;     /* NULL when the primitive needs no scratchpad */
    size_t scratch_bytes;
} conv_entry;

typedef struct conv_cache {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    conv_entry *entries[CACHE_CAP];
    int n_entries;
    uint64_t clock;
    void *slot[N_SLOTS];       /* 64-byte aligned, owned */
    size_t slot_bytes[N_SLOTS];
} conv_cache;

static const char *const kind_names[] = {"forward", "backward-data", "backward-weights"};

static ln_status dnnl_error(ln_ctx *ctx, dnnl_status_t ds, const char *what, const ln_conv_shape *s) {
    return ln_fail(ctx, LN_ERR_BACKEND,
                   "conv2d: oneDNN %s failed (%s) for x [%lld, %lld, %lld, %lld], w [%lld, %lld, "
                   "%lld, %lld], stride (%lld, %lld), padding (%lld, %lld), groups %lld",
                   what, dnnl_status2str(ds), (long long)s->n, (long long)s->cin, (long long)s->h,
                   (long long)s->w, (long long)s->cout, (long long)(s->cin / s->groups),
                   (long long)s->kh, (long long)s->kw, (long long)s->sh, (long long)s->sw,
                   (long long)s->ph, (long long)s->pw, (long long)s->groups);
}

/* Runs a dnnl call; on failure records the message in `st` and jumps to `label`. */
#define DN(call, what, label)                                                     \
    do {                                                                          \
        dnnl_status_t ds_ = (call);                                               \
        if (ds_ != dnnl_success) { st = dnnl_error(ctx, ds_, (what), s); goto label; } \
    } while (0)

/* ------------------------------------------------------------ cache lifetime */
static void entry_destroy(conv_entry *e) {
    if (!e) return;
    for (int i = 0; i < 3; i++) {
        dnnl_primitive_destroy(e->arg[i].reorder);
        dnnl_memory_destroy(e->arg[i].prim);
        dnnl_memory_destroy(e->arg[i].user);
    }
    dnnl_memory_destroy(e->bias);
    dnnl_memory_destroy(e->scratch);
    dnnl_primitive_destroy(e->conv);
    free(e);
}

static void cache_destroy(void *p) {
    conv_cache *c = p;
    if (!c) return;
    for (int i = 0; i < c->n_entries; i++) entry_destroy(c->entries[i]);
    for (int i = 0; i < N_SLOTS; i++) free(c->slot[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c);
}

static ln_status cache_get(ln_ctx *ctx, const ln_conv_shape *s, conv_cache **out) {
    if (ctx->conv_cache) { *out = ctx->conv_cache; return LN_OK; }
    ln_status st = LN_OK;
    conv_cache *c = calloc(1, sizeof *c);
    if (!c) return ln_fail(ctx, LN_ERR_NOMEM, "conv2d: out of memory creating the primitive cache");
    DN(dnnl_engine_create(&c->engine, dnnl_cpu, 0), "engine creation", fail);
    DN(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags), "stream creation", fail);
    ctx->conv_cache = c;
    ctx->conv_cache_free = cache_destroy;
    *out = c;
    return LN_OK;
fail:
    cache_destroy(c);
    return st;
}

static ln_status slot_reserve(ln_ctx *ctx, conv_cache *c, int slot, size_t bytes) {
    if (bytes <= c->slot_bytes[slot]) return LN_OK;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    free(c->slot[slot]);
    c->slot_bytes[slot] = 0;
    c->slot[slot] = aligned_alloc(64, rounded);
    if (!c->slot[slot])
        return ln_fail(ctx, LN_ERR_NOMEM, "conv2d: out of memory allocating a %zu-byte work buffer", bytes);
    c->slot_bytes[slot] = rounded;
    return LN_OK;
}

static ln_status entry_reserve(ln_ctx *ctx, conv_cache *c, const conv_entry *e) {
    for (int i = 0; i < 3; i++)
        if (e->arg[i].prim) LN_TRY(slot_reserve(ctx, c, i, e->arg[i].bytes));
    return slot_reserve(ctx, c, SLOT_SCRATCH, e->scratch_bytes);
}

/* ------------------------------------------------------------ entry creation */
static void plain_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims) {
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                             dnnl_abcd, dnnl_abcde};
    dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tags[ndims]);
}

static void any_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims) {
    dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, dnnl_format_tag_any);
}

/* Sets up argument `a` of entry e: user memory over `plain`, and when the primitive
 * descriptor pd wants another layout (query `q`), that memory and the reorder. */
static ln_status arg_init(ln_ctx *ctx, const ln_conv_shape *s, conv_cache *c, conv_arg *a,
                          int dnnl_arg, bool is_output, const dnnl_memory_desc_t *plain,
                          const_dnnl_primitive_desc_t pd, dnnl_query_t q) {
    ln_status st = LN_OK;
    dnnl_primitive_desc_t rpd = NULL;
    a->dnnl_arg = dnnl_arg;
    a->is_output = is_output;
    a->md = *dnnl_primitive_desc_query_md(pd, q, 0);
    a->bytes = dnnl_memory_desc_get_size(&a->md);
    DN(dnnl_memory_create(&a->user, plain, c->engine, DNNL_MEMORY_NONE), "memory creation", done);
    if (dnnl_memory_desc_equal(&a->md, plain)) return LN_OK;
    DN(dnnl_memory_create(&a->prim, &a->md, c->engine, DNNL_MEMORY_NONE), "memory creation", done);
    if (is_output)
        DN(dnnl_reorder_primitive_desc_create(&rpd, &a->md, c->engine, plain, c->engine, NULL),
           "reorder creation", done);
    else
        DN(dnnl_reorder_primitive_desc_create(&rpd, plain, c->engine, &a->md, c->engine, NULL),
           "reorder creation", done);
    DN(dnnl_primitive_create(&a->reorder, rpd), "reorder creation", done);
done:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return st;
}

static ln_status entry_create(ln_ctx *ctx, conv_cache *c, const conv_key *k, conv_entry **out) {
    const ln_conv_shape *s = &k->s;
    ln_status st = LN_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fwd_pd = NULL, bwd_pd = NULL;
    conv_entry *e = calloc(1, sizeof *e);
    if (!e) return ln_fail(ctx, LN_ERR_NOMEM, "conv2d: out of memory caching a primitive");
    e->key = *k;

    int64_t g = s->groups;
    /* dnnl_dims_t arrays throughout: the API reads DNNL_MAX_NDIMS entries */
    dnnl_dims_t xd = {s->n, s->cin, s->h, s->w}, yd = {s->n, s->cout, s->oh, s->ow};
    dnnl_dims_t wg = {g, s->cout / g, s->cin / g, s->kh, s->kw}, w1 = {s->cout, s->cin, s->kh, s->kw};
    dnnl_dims_t bd = {s->cout}, strides = {s->sh, s->sw}, pad = {s->ph, s->pw};
    int wn = g > 1 ? 5 : 4;
    const dnnl_dim_t *wdims = g > 1 ? wg : w1;
    dnnl_memory_desc_t x_plain, y_plain, w_plain, b_plain, x_any, y_any, w_any;
    plain_md(&x_plain, 4, xd); any_md(&x_any, 4, xd);
    plain_md(&y_plain, 4, yd); any_md(&y_any, 4, yd);
    plain_md(&w_plain, wn, wdims); any_md(&w_any, wn, wdims);
    plain_md(&b_plain, 1, bd);
    const dnnl_memory_desc_t *bias = k->bias ? &b_plain : NULL;

    DN(dnnl_primitive_attr_create(&attr), "attribute creation", fail);
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attribute creation", fail);
    dnnl_convolution_desc_t fd, bdsc;
    DN(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &x_any,
                                          &w_any, bias, &y_any, strides,
                                          pad, pad), "forward descriptor", fail);
    DN(dnnl_primitive_desc_create(&fwd_pd, &fd, attr, c->engine, NULL), "forward primitive descriptor", fail);
    const_dnnl_primitive_desc_t pd = fwd_pd;
    if (k->kind == KIND_FWD) {
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_SRC], DNNL_ARG_SRC, false, &x_plain, pd, dnnl_query_src_md), fail);
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_WEI], DNNL_ARG_WEIGHTS, false, &w_plain, pd, dnnl_query_weights_md), fail);
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_DST], DNNL_ARG_DST, true, &y_plain, pd, dnnl_query_dst_md), fail);
        e->bias_arg = DNNL_ARG_BIAS;
    } else if (k->kind == KIND_BWD_DATA) {
        DN(dnnl_convolution_backward_data_desc_init(&bdsc, dnnl_convolution_direct, &x_any, &w_any, &y_any,
                                                    strides, pad, pad), "backward-data descriptor", fail);
        DN(dnnl_primitive_desc_create(&bwd_pd, &bdsc, attr, c->engine, fwd_pd),
           "backward-data primitive descriptor", fail);
        pd = bwd_pd;
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_SRC], DNNL_ARG_DIFF_SRC, true, &x_plain, pd, dnnl_query_diff_src_md), fail);
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_WEI], DNNL_ARG_WEIGHTS, false, &w_plain, pd, dnnl_query_weights_md), fail);
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_DST], DNNL_ARG_DIFF_DST, false, &y_plain, pd, dnnl_query_diff_dst_md), fail);
    } else {
        DN(dnnl_convolution_backward_weights_desc_init(&bdsc, dnnl_convolution_direct, &x_any, &w_any, bias,
                                                       &y_any, strides, pad, pad), "backward-weights descriptor", fail);
        DN(dnnl_primitive_desc_create(&bwd_pd, &bdsc, attr, c->engine, fwd_pd),
           "backward-weights primitive descriptor", fail);
        pd = bwd_pd;
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_SRC], DNNL_ARG_SRC, false, &x_plain, pd, dnnl_query_src_md), fail);
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_WEI], DNNL_ARG_DIFF_WEIGHTS, true, &w_plain, pd, dnnl_query_diff_weights_md), fail);
        LN_CHECK(st, arg_init(ctx, s, c, &e->arg[SLOT_DST], DNNL_ARG_DIFF_DST, false, &y_plain, pd, dnnl_query_diff_dst_md), fail);
        e->bias_arg = DNNL_ARG_DIFF_BIAS;
    }
    if (k->bias) DN(dnnl_memory_create(&e->bias, &b_plain, c->engine, DNNL_MEMORY_NONE), "memory creation", fail);
    else e->bias_arg = 0;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (e->scratch_bytes)
        DN(dnnl_memory_create(&e->scratch, smd, c->engine, DNNL_MEMORY_NONE), "memory creation", fail);
    DN(dnnl_primitive_create(&e->conv, pd), kind_names[k->kind], fail);
    *out = e;
    goto done;
fail:
    entry_destroy(e);
done:
    if (bwd_pd) dnnl_primitive_desc_destroy(bwd_pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

/* The cached entry for this key, created (evicting the least recently used one when
 * the cache is full) if missing. */
static ln_status entry_get(ln_ctx *ctx, conv_cache *c, const ln_conv_shape *s, conv_kind kind,
                           bool bias, conv_entry **out) {
    conv_key k;
    memset(&k, 0, sizeof k);
    k.s = *s;
    k.kind = kind;
    k.bias = bias;
    k.threads = ctx->num_threads;
    for (int i = 0; i < c->n_entries; i++) {
        if (memcmp(&c->entries[i]->key, &k, sizeof k) == 0) {
            c->entries[i]->last_use = ++c->clock;
            *out = c->entries[i];
            return LN_OK;
        }
    }
    conv_entry *e;
    LN_TRY(entry_create(ctx, c, &k, &e));
    if (c->n_entries == CACHE_CAP) {
        int oldest = 0;
        for (int i = 1; i < c->n_entries; i++)
            if (c->entries[i]->last_use < c->entries[oldest]->last_use) oldest = i;
        entry_destroy(c->entries[oldest]);
        c->entries[oldest] = c->entries[--c->n_entries];
    }
    c->entries[c->n_entries++] = e;
    e->last_use = ++c->clock;
    *out = e;
    return LN_OK;
}

/* ------------------------------------------------------------ execution */
static ln_status reorder_run(ln_ctx *ctx, const ln_conv_shape *s, conv_cache *c, const conv_arg *a) {
    ln_status st = LN_OK;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a->is_output ? a->prim : a->user},
                               {DNNL_ARG_TO, a->is_output ? a->user : a->prim}};
    DN(dnnl_primitive_execute(a->reorder, c->stream, 2, args), "reorder", done);
done:
    return st;
}

/* Runs entry e on the plain buffers ptr[slot] (and bias). When `dst_ready` is set, the
 * dst-slot input is already in its slot buffer in e's layout (left by the previous
 * entry) and is not reordered again. The slots must have been reserved. */
static ln_status entry_run(ln_ctx *ctx, conv_cache *c, conv_entry *e, void *const ptr[3],
                           void *bias, bool dst_ready) {
    const ln_conv_shape *s = &e->key.s;
    ln_status st = LN_OK;
    dnnl_exec_arg_t args[5];
    int nargs = 0;
    for (int i = 0; i < 3; i++) {
        conv_arg *a = &e->arg[i];
        DN(dnnl_memory_set_data_handle(a->user, ptr[i]), "memory binding", done);
        if (a->prim) {
            DN(dnnl_memory_set_data_handle(a->prim, c->slot[i]), "memory binding", done);
            if (!a->is_output && !(i == SLOT_DST && dst_ready)) LN_TRY(reorder_run(ctx, s, c, a));
        }
        args[nargs++] = (dnnl_exec_arg_t){a->dnnl_arg, a->prim ? a->prim : a->user};
    }
    if (e->bias) {
        DN(dnnl_memory_set_data_handle(e->bias, bias), "memory binding", done);
        args[nargs++] = (dnnl_exec_arg_t){e->bias_arg, e->bias};
    }
    if (e->scratch) {
        DN(dnnl_memory_set_data_handle(e->scratch, c->slot[SLOT_SCRATCH]), "memory binding", done);
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    }
    DN(dnnl_primitive_execute(e->conv, c->stream, nargs, args), kind_names[e->key.kind], done);
    for (int i = 0; i < 3; i++)
        if (e->arg[i].prim && e->arg[i].is_output) LN_TRY(reorder_run(ctx, s, c, &e->arg[i]));
    DN(dnnl_stream_wait(c->stream), "stream wait", done);
done:
    return st;
}

/* gb[co] = sum over n, oy, ox of gy[n,co,oy,ox] (used when gw is not wanted) */
static void bias_grad(ln_ctx *ctx, const ln_conv_shape *s, const float *gy, float *gb) {
    int64_t plane = s->oh * s->ow;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
    for (int64_t co = 0; co < s->cout; co++) {
        double total = 0;
        for (int64_t n = 0; n < s->n; n++) {
            const float *p = gy + (n * s->cout + co) * plane;
            float acc = 0.f;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < plane; i++) acc += p[i];
            total += acc;
        }
        gb[co] = (float)total;
    }
}

ln_status ln_cpu_conv2d_fwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x, const float *w,
                            const float *b, float *y) {
    conv_cache *c = NULL;
    conv_entry *e = NULL;
    LN_TRY(cache_get(ctx, s, &c));
    int prev = ln_omp_threads_enter(ctx);
    ln_status st;
    LN_CHECK(st, entry_get(ctx, c, s, KIND_FWD, b != NULL, &e), done);
    LN_CHECK(st, entry_reserve(ctx, c, e), done);
    void *ptr[3] = {(void *)x, (void *)w, y};
    st = entry_run(ctx, c, e, ptr, (void *)b, false);
done:
    ln_omp_threads_leave(prev);
    return st;
}

ln_status ln_cpu_conv2d_bwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x, const float *w,
                            const float *gy, float *gx, float *gw, float *gb) {
    conv_cache *c = NULL;
    conv_entry *ed = NULL, *ew = NULL;
    LN_TRY(cache_get(ctx, s, &c));
    int prev = ln_omp_threads_enter(ctx);
    ln_status st = LN_OK;
    if (gx) LN_CHECK(st, entry_get(ctx, c, s, KIND_BWD_DATA, false, &ed), done);
    if (gw) LN_CHECK(st, entry_get(ctx, c, s, KIND_BWD_WEIGHTS, gb != NULL, &ew), done);
    if (ed) LN_CHECK(st, entry_reserve(ctx, c, ed), done);
    if (ew) LN_CHECK(st, entry_reserve(ctx, c, ew), done);
    if (ed) {
        void *ptr[3] = {gx, (void *)w, (void *)gy};
        LN_CHECK(st, entry_run(ctx, c, ed, ptr, NULL, false), done);
    }
    if (ew) {
        /* both want gy in the same layout: it is already in the dst slot */
        bool ready = ed && ed->arg[SLOT_DST].prim && ew->arg[SLOT_DST].prim &&
                     dnnl_memory_desc_equal(&ed->arg[SLOT_DST].md, &ew->arg[SLOT_DST].md);
        void *ptr[3] = {(void *)x, gw, (void *)gy};
        LN_CHECK(st, entry_run(ctx, c, ew, ptr, gb, ready), done);
    } else if (gb) {
        bias_grad(ctx, s, gy, gb);
    }
done:
    ln_omp_threads_leave(prev);
    return st;
}
