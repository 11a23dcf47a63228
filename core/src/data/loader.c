/* The batch loader: worker threads (pthreads) fill a ring of `prefetch` batch slots
 * in host memory while the caller consumes earlier batches.
 *
 * Work is handed out one sample at a time, in epoch order: position p of the epoch
 * goes to row p % B of batch p / B, and a worker may only claim a position whose batch
 * has a slot (batches next_batch .. next_batch + slots - 1), so at most `slots`
 * batches are in memory besides those the caller holds. The tensors of a slot are
 * allocated by the caller's thread (the only one that touches the ln_ctx) when the
 * slot is (re)assigned; workers only write into their memory, and the slot's tensors
 * are handed to the caller as they are (no copy).
 *
 * Determinism: the order is a permutation drawn from (seed, epoch); the sample at
 * position p is index perm[p], transformed with the stream ln_image_rng_seed(seed,
 * epoch, index). When it is bad, replacement attempt k (1, 2...) takes index
 * mix(seed, epoch, p, k) mod N with the stream ln_image_rng_seed(mix(seed, p, k),
 * epoch, index). Which files are bad depends on the files only, so every batch is the
 * same whatever the number of workers and their timing.
 *
 * On a CUDA device (opts.device): the slots are pinned host memory, and next() hands
 * out device tensors. When batch k is handed out, the copy of batch k+1 is queued on
 * the CUDA copy stream, so it overlaps the work the caller queues for batch k; the
 * compute stream is made to wait for a batch's copy when that batch is handed out
 * (cuda/pinned.c). The counters then run one batch ahead of the caller.
 *
 * Locking: one mutex guards the ring, the counters and the epoch state; work_cv wakes
 * workers (new work, stop), done_cv wakes the caller (a slot complete, workers idle).
 * The bad-sample marks are atomic bytes read without the lock. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "dataset.h"
#include "../cuda/cuda_api.h"

#define MAX_ATTEMPTS 64 /* bad samples in a row before the run stops */

typedef struct slot {
    ln_tensor *images, *labels, *indices; /* owned; NULL when unassigned */
    int64_t rows;                         /* samples in the batch it holds */
    int64_t remaining;                    /* samples not finished yet */
} slot;

/* The next batch on the device, its copies queued (opts.device CUDA only). */
typedef struct ahead {
    ln_tensor *images, *labels, *indices; /* owned; device, device, host */
    ln_cuda_ticket *t_images, *t_labels;
    bool valid;                           /* holds a batch */
    bool end;                             /* the epoch has no more batches */
} ahead;

typedef struct worker {
    struct ln_loader *ld;
    ln_data_scratch scratch;
} worker;

struct ln_loader {
    ln_ctx *ctx;             /* retained: the context of the device copies */
    ln_dataset *ds;          /* retained */
    ln_loader_opts o;
    int nworkers;
    pthread_t *threads;
    worker *workers;         /* nworkers entries, or 1 for loading in the caller */
    int started;             /* threads running */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    bool stop;

    /* epoch state */
    bool active;
    int64_t epoch;
    int64_t *perm;           /* size entries */
    int64_t nbatches, total; /* batches and samples of the epoch */
    int64_t next_pos;        /* next position to claim */
    int64_t limit_batch;     /* positions of batches below this have a slot */
    int64_t next_batch;      /* next batch to hand out */
    int64_t busy;            /* workers inside a sample */
    int nslots;
    slot *slots;
    ln_status fatal;         /* set by a worker when the run cannot go on */
    char fatal_msg[1024];

    atomic_uchar *bad;       /* size entries: 1 once a sample was found bad */
    ln_msglog log;

    /* statistics of the epoch */
    struct timespec t0;
    double seconds, wait_seconds;
    int64_t batches_out, images_out, skipped, converted;
    bool finished;

    ahead next;              /* device mode: the batch after the one handed out */
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* The result of producing one row. */
typedef struct row_result {
    ln_status st;
    bool skipped;      /* the position's own sample was bad (and replaced) */
    bool converted;
} row_result;

/* Produces position p of the epoch (its sample, or a replacement) into the row
 * pointers given. Thread-safe; reads only state fixed during the epoch. On a fatal
 * failure the message is in msg. */
static row_result produce(struct ln_loader *ld, int64_t p, ln_data_scratch *scratch,
                          float *img, int64_t *lab, int64_t *idx, char *msg, size_t msglen) {
    const ln_dataset *ds = ld->ds;
    uint64_t seed = ld->o.seed, epoch = (uint64_t)ld->epoch;
    row_result r = {LN_OK, false, false};
    char err[512], name[1024];
    for (int attempt = 0; attempt <= MAX_ATTEMPTS; attempt++) {
        int64_t index = attempt == 0 ? ld->perm[p]
            : (int64_t)(ln_seed_mix(seed, epoch, (uint64_t)p, (uint64_t)attempt) % (uint64_t)ds->size);
        r.skipped = attempt > 0;
        if (atomic_load_explicit(&ld->bad[index], memory_order_relaxed)) continue;
        ln_image_rng rng;
        ln_image_rng_seed(&rng, attempt == 0 ? seed : ln_seed_mix(seed, (uint64_t)p, (uint64_t)attempt, 0),
                          epoch, (uint64_t)index);
        err[0] = '\0';
        bool converted = false;
        ln_status st = ds->vt->load(ds, index, &rng, scratch, img, lab, &converted, err, sizeof err);
        if (st == LN_OK) {
            *idx = index;
            r.converted = converted;
            return r;
        }
        ds->vt->describe(ds, index, name, sizeof name);
        if (st == LN_ERR_NOMEM) {
            ln_strf(msg, msglen, "loader: out of memory loading %s: %s", name, err);
            r.st = st;
            return r;
        }
        if (atomic_exchange(&ld->bad[index], 1) == 0)
            ln_msglog_add(&ld->log, "skipped %s: %s", name, err[0] ? err : ln_status_name(st));
    }
    ln_strf(msg, msglen, "loader: %d bad samples in a row for position %lld of epoch %lld "
             "(see the skipped files in the log)", MAX_ATTEMPTS + 1, (long long)p, (long long)ld->epoch);
    r.st = LN_ERR_IO;
    return r;
}

/* Counts a finished row (called with mu held). */
static void finish_row(struct ln_loader *ld, slot *s, const row_result *r, const char *msg) {
    ld->skipped += r->skipped;
    ld->converted += r->converted;
    if (r->st != LN_OK && ld->fatal == LN_OK) {
        ld->fatal = r->st;
        ln_strf(ld->fatal_msg, sizeof ld->fatal_msg, "%s", msg);
        pthread_cond_broadcast(&ld->done_cv); /* the caller stops waiting */
    }
    if (--s->remaining == 0) pthread_cond_broadcast(&ld->done_cv);
}

/* Row pointers of position p in its slot. */
static void row_ptrs(const struct ln_loader *ld, int64_t p, slot **s, float **img, int64_t **lab,
                     int64_t **idx) {
    int64_t b = p / ld->o.batch_size, row = p % ld->o.batch_size;
    *s = &ld->slots[b % ld->nslots];
    *img = (float *)ln_tensor_data((*s)->images) + row * ld->ds->numel;
    *lab = (int64_t *)ln_tensor_data((*s)->labels) + row;
    *idx = (int64_t *)ln_tensor_data((*s)->indices) + row;
}

static bool can_claim(const struct ln_loader *ld) {
    return ld->active && ld->fatal == LN_OK && ld->next_pos < ld->total &&
           ld->next_pos / ld->o.batch_size < ld->limit_batch;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct ln_loader *ld = w->ld;
    char msg[1024];
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !can_claim(ld)) pthread_cond_wait(&ld->work_cv, &ld->mu);
        if (ld->stop) break;
        int64_t p = ld->next_pos++;
        slot *s;
        float *img;
        int64_t *lab, *idx;
        row_ptrs(ld, p, &s, &img, &lab, &idx);
        ld->busy++;
        pthread_mutex_unlock(&ld->mu);
        row_result r = produce(ld, p, &w->scratch, img, lab, idx, msg, sizeof msg);
        pthread_mutex_lock(&ld->mu);
        finish_row(ld, s, &r, msg);
        if (--ld->busy == 0) pthread_cond_broadcast(&ld->done_cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* ------------------------------------------------------------ slots */
static void slot_clear(slot *s) {
    ln_tensor_release(s->images);
    ln_tensor_release(s->labels);
    ln_tensor_release(s->indices);
    s->images = s->labels = s->indices = NULL;
    s->rows = s->remaining = 0;
}

/* New tensors for batch b into s (caller's thread, outside the lock). */
static ln_status slot_alloc(ln_ctx *ctx, const struct ln_loader *ld, int64_t b, slot *s) {
    int64_t rows = ld->total - b * ld->o.batch_size;
    if (rows > ld->o.batch_size) rows = ld->o.batch_size;
    int64_t shape[LN_MAX_DIMS];
    shape[0] = rows;
    for (int i = 0; i < ld->ds->ndim; i++) shape[i + 1] = ld->ds->shape[i];
    ln_tensor *im = NULL, *lb = NULL, *ix = NULL;
    ln_status st;
    if (ld->o.device.type == LN_CUDA) { /* pinned, for copies that do not block */
        st = ln_tensor_empty_pinned(ctx, LN_F32, ld->o.device.index, ld->ds->ndim + 1, shape, &im);
        if (st == LN_OK) st = ln_tensor_empty_pinned(ctx, LN_I64, ld->o.device.index, 1, &rows, &lb);
    } else {
        st = ln_tensor_empty(ctx, LN_F32, ln_cpu(), ld->ds->ndim + 1, shape, &im);
        if (st == LN_OK) st = ln_tensor_empty(ctx, LN_I64, ln_cpu(), 1, &rows, &lb);
    }
    if (st == LN_OK) st = ln_tensor_empty(ctx, LN_I64, ln_cpu(), 1, &rows, &ix);
    if (st != LN_OK) {
        ln_tensor_release(im);
        ln_tensor_release(lb);
        ln_tensor_release(ix);
        return st;
    }
    s->images = im;
    s->labels = lb;
    s->indices = ix;
    s->rows = s->remaining = rows;
    return LN_OK;
}

/* Drops the batch staged on the device: the compute stream first waits for its copies
 * (the blocks go back to the allocator, whose next user runs on that stream). */
static void ahead_drop(struct ln_loader *ld) {
    ahead *a = &ld->next;
    (void)ln_cuda_ticket_wait(ld->ctx, a->t_images);
    (void)ln_cuda_ticket_wait(ld->ctx, a->t_labels);
    ln_tensor_release(a->images);
    ln_tensor_release(a->labels);
    ln_tensor_release(a->indices);
    memset(a, 0, sizeof *a);
}

/* Abandons the epoch in progress: no new claims, wait for the busy workers, drop the
 * slots. */
static void cancel_epoch(struct ln_loader *ld) {
    ahead_drop(ld);
    pthread_mutex_lock(&ld->mu);
    ld->active = false;
    while (ld->busy > 0) pthread_cond_wait(&ld->done_cv, &ld->mu);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->nslots; i++) slot_clear(&ld->slots[i]);
}

/* ------------------------------------------------------------ public API */
void ln_loader_opts_default(ln_loader_opts *o) {
    o->batch_size = 32;
    o->shuffle = true;
    o->drop_last = false;
    o->workers = 2;
    o->prefetch = 0;
    o->seed = 0;
    o->device = ln_cpu();
}

void ln_loader_destroy(ln_loader *ld) {
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    ld->active = false;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->started; i++) pthread_join(ld->threads[i], NULL);
    if (ld->ctx) ahead_drop(ld);
    if (ld->slots)
        for (int i = 0; i < ld->nslots; i++) slot_clear(&ld->slots[i]);
    int nscratch = ld->nworkers > 0 ? ld->nworkers : 1;
    if (ld->workers)
        for (int i = 0; i < nscratch; i++) ln_data_scratch_free(&ld->workers[i].scratch);
    free(ld->workers);
    free(ld->threads);
    free(ld->slots);
    free(ld->perm);
    free(ld->bad);
    ln_msglog_destroy(&ld->log);
    pthread_cond_destroy(&ld->work_cv);
    pthread_cond_destroy(&ld->done_cv);
    pthread_mutex_destroy(&ld->mu);
    ln_dataset_release(ld->ds);
    if (ld->ctx) ln_ctx_release(ld->ctx);
    free(ld);
}

ln_status ln_loader_create(ln_ctx *ctx, ln_dataset *ds, const ln_loader_opts *o,
                           ln_loader **out) {
    *out = NULL;
    if (!ds) return ln_fail(ctx, LN_ERR_ARG, "loader: argument 'dataset' is NULL");
    if (!o) return ln_fail(ctx, LN_ERR_ARG, "loader: argument 'opts' is NULL");
    if (o->batch_size < 1)
        return ln_fail(ctx, LN_ERR_ARG, "loader: batch_size must be >= 1, got %lld", (long long)o->batch_size);
    if (o->workers < 0 || o->workers > 256)
        return ln_fail(ctx, LN_ERR_ARG, "loader: workers must be in 0..256, got %d", o->workers);
    if (o->prefetch < 0 || o->prefetch > 64)
        return ln_fail(ctx, LN_ERR_ARG, "loader: prefetch must be in 0..64 (0: automatic), got %d",
                       o->prefetch);
    if (o->device.type == LN_CUDA) {
        ln_status st = ln_cuda_init(ctx, o->device.index);
        if (st != LN_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", ln_ctx_error(ctx));
            return ln_fail(ctx, st, "loader: device cuda:%d: %s", o->device.index, why);
        }
    }
    struct ln_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return ln_fail(ctx, LN_ERR_NOMEM, "loader: out of memory");
    ld->ctx = ctx;
    ln_ctx_retain(ctx);
    ld->o = *o;
    ld->ds = ds;
    ln_dataset_retain(ds);
    ld->nworkers = o->workers;
    ld->nslots = o->workers == 0 ? 1 : o->prefetch > 0 ? o->prefetch : 2 + o->workers / 4;
    ld->fatal = LN_OK;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work_cv, NULL);
    pthread_cond_init(&ld->done_cv, NULL);
    ln_msglog_init(&ld->log);
    int nscratch = o->workers > 0 ? o->workers : 1;
    ld->slots = calloc((size_t)ld->nslots, sizeof *ld->slots);
    ld->workers = calloc((size_t)nscratch, sizeof *ld->workers);
    ld->threads = calloc((size_t)nscratch, sizeof *ld->threads);
    ld->perm = malloc((size_t)ds->size * sizeof *ld->perm);
    ld->bad = calloc((size_t)ds->size, sizeof *ld->bad);
    if (!ld->slots || !ld->workers || !ld->threads || !ld->perm || !ld->bad) {
        ln_loader_destroy(ld);
        return ln_fail(ctx, LN_ERR_NOMEM, "loader: out of memory");
    }
    for (int i = 0; i < nscratch; i++) ld->workers[i].ld = ld;
    for (int i = 0; i < o->workers; i++) {
        int err = pthread_create(&ld->threads[i], NULL, worker_main, &ld->workers[i]);
        if (err) {
            ln_loader_destroy(ld);
            return ln_fail(ctx, LN_ERR_STATE, "loader: cannot start worker thread %d of %d: %s",
                           i + 1, o->workers, strerror(err));
        }
        ld->started++;
    }
    ld->epoch = -1;
    *out = ld;
    return LN_OK;
}

int64_t ln_loader_batches(const ln_loader *ld) {
    int64_t n = ld->ds->size, b = ld->o.batch_size;
    return ld->o.drop_last ? n / b : (n + b - 1) / b;
}

ln_status ln_loader_start_epoch(ln_ctx *ctx, ln_loader *ld, int64_t epoch) {
    cancel_epoch(ld);
    int64_t n = ld->ds->size;
    for (int64_t i = 0; i < n; i++) ld->perm[i] = i;
    if (ld->o.shuffle) { /* Fisher-Yates from the stream (seed, epoch, "order") */
        ln_image_rng rng;
        ln_image_rng_seed(&rng, ld->o.seed, (uint64_t)epoch, UINT64_MAX);
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)ln_image_rng_below(&rng, (uint64_t)i + 1);
            int64_t t = ld->perm[i];
            ld->perm[i] = ld->perm[j];
            ld->perm[j] = t;
        }
    }
    ld->epoch = epoch;
    ld->nbatches = ln_loader_batches(ld);
    ld->total = ld->o.drop_last ? ld->nbatches * ld->o.batch_size : n;
    int64_t ready = ld->nbatches < ld->nslots ? ld->nbatches : ld->nslots;
    for (int64_t b = 0; b < ready; b++) {
        ln_status st = slot_alloc(ctx, ld, b, &ld->slots[b]);
        if (st != LN_OK) {
            for (int i = 0; i < ld->nslots; i++) slot_clear(&ld->slots[i]);
            return st;
        }
    }
    ld->seconds = ld->wait_seconds = 0;
    ld->batches_out = ld->images_out = ld->skipped = ld->converted = 0;
    ld->finished = ld->nbatches == 0;
    clock_gettime(CLOCK_MONOTONIC, &ld->t0);
    pthread_mutex_lock(&ld->mu);
    ld->fatal = LN_OK;
    ld->fatal_msg[0] = '\0';
    ld->next_pos = 0;
    ld->next_batch = 0;
    ld->limit_batch = ready;
    ld->active = true;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    return LN_OK;
}

/* workers == 0: the caller produces every row of batch b itself (no thread runs, so
 * the lock is not needed). */
static void fill_inline(struct ln_loader *ld, int64_t b) {
    char msg[1024];
    int64_t first = b * ld->o.batch_size;
    slot *s = &ld->slots[b % ld->nslots];
    for (int64_t p = first; p < first + s->rows && ld->fatal == LN_OK; p++) {
        slot *sp;
        float *img;
        int64_t *lab, *idx;
        row_ptrs(ld, p, &sp, &img, &lab, &idx);
        row_result r = produce(ld, p, &ld->workers[0].scratch, img, lab, idx, msg, sizeof msg);
        finish_row(ld, sp, &r, msg);
    }
    ld->next_pos = first + s->rows;
}

/* The next batch in host memory (what next() returns on the CPU). */
static ln_status next_host(ln_ctx *ctx, ln_loader *ld, ln_tensor **images, ln_tensor **labels,
                           ln_tensor **indices) {
    *images = *labels = NULL;
    if (indices) *indices = NULL;
    if (ld->epoch < 0 || (!ld->active && !ld->finished))
        return ln_fail(ctx, LN_ERR_STATE, "loader: no epoch started (call start_epoch first)");
    if (ld->next_batch >= ld->nbatches) {
        ld->finished = true;
        return LN_OK;
    }
    int64_t b = ld->next_batch;
    slot *s = &ld->slots[b % ld->nslots];
    double t = now_s();
    if (ld->nworkers == 0) fill_inline(ld, b);
    pthread_mutex_lock(&ld->mu);
    while (s->remaining > 0 && ld->fatal == LN_OK) pthread_cond_wait(&ld->done_cv, &ld->mu);
    ln_status fatal = ld->fatal;
    pthread_mutex_unlock(&ld->mu);
    ld->wait_seconds += now_s() - t;
    if (fatal != LN_OK) {
        cancel_epoch(ld);
        return ln_fail(ctx, fatal, "%s", ld->fatal_msg);
    }
    slot fresh = {NULL, NULL, NULL, 0, 0};
    int64_t nb = b + ld->nslots;
    if (nb < ld->nbatches) LN_TRY(slot_alloc(ctx, ld, nb, &fresh));
    *images = s->images;
    *labels = s->labels;
    if (indices) *indices = s->indices;
    else ln_tensor_release(s->indices);
    ld->images_out += s->rows;
    pthread_mutex_lock(&ld->mu);
    *s = fresh;
    ld->next_batch = b + 1;
    if (nb < ld->nbatches) {
        ld->limit_batch = nb + 1;
        pthread_cond_broadcast(&ld->work_cv);
    }
    pthread_mutex_unlock(&ld->mu);
    ld->batches_out++;
    ld->seconds = since(&ld->t0);
    if (ld->next_batch >= ld->nbatches) ld->finished = true;
    return LN_OK;
}

void ln_loader_get_stats(ln_loader *ld, ln_loader_stats *st) {
    pthread_mutex_lock(&ld->mu);
    st->skipped = ld->skipped;
    st->converted = ld->converted;
    pthread_mutex_unlock(&ld->mu);
    st->epoch = ld->epoch;
    st->finished = ld->finished;
    st->batches = ld->batches_out;
    st->images = ld->images_out;
    st->seconds = ld->seconds;
    st->images_per_s = ld->seconds > 0 ? (double)ld->images_out / ld->seconds : 0;
    st->wait_seconds = ld->wait_seconds;
    int64_t bad = 0;
    for (int64_t i = 0; i < ld->ds->size; i++) bad += atomic_load_explicit(&ld->bad[i], memory_order_relaxed);
    st->bad_files = bad;
}

bool ln_loader_pop_message(ln_loader *ld, char *buf, size_t n) {
    return ln_msglog_pop(&ld->log, buf, n);
}

/* A device copy of host tensor h, queued on the copy stream. */
static ln_status copy_ahead(ln_ctx *ctx, const ln_tensor *h, ln_device dev, ln_tensor **d,
                            ln_cuda_ticket **t) {
    LN_TRY(ln_tensor_empty(ctx, h->dtype, dev, h->ndim, h->shape, d));
    ln_status st = ln_cuda_memcpy_h2d_ahead(ctx, ln_tensor_data(*d), ln_tensor_data(h),
                                            (size_t)ln_tensor_numel(h) * ln_dtype_size(h->dtype), t);
    if (st != LN_OK) {
        ln_tensor_release(*d);
        *d = NULL;
    }
    return st;
}

/* Stages the next host batch on the device (ld->next is empty on entry). The pinned
 * host tensors are released at once: their blocks are reused only after the copies. */
static ln_status stage_next(ln_ctx *ctx, ln_loader *ld) {
    ahead *a = &ld->next;
    ln_tensor *hi, *hl, *hx;
    LN_TRY(next_host(ctx, ld, &hi, &hl, &hx));
    if (!hi) {
        a->end = true;
        return LN_OK;
    }
    a->indices = hx;
    ln_status st = copy_ahead(ctx, hi, ld->o.device, &a->images, &a->t_images);
    if (st == LN_OK) st = copy_ahead(ctx, hl, ld->o.device, &a->labels, &a->t_labels);
    ln_tensor_release(hi);
    ln_tensor_release(hl);
    if (st != LN_OK) {
        ahead_drop(ld);
        return st;
    }
    a->valid = true;
    return LN_OK;
}

ln_status ln_loader_next(ln_ctx *ctx, ln_loader *ld, ln_tensor **images, ln_tensor **labels,
                         ln_tensor **indices) {
    if (ld->o.device.type == LN_CPU) return next_host(ctx, ld, images, labels, indices);
    *images = *labels = NULL;
    if (indices) *indices = NULL;
    ahead *a = &ld->next;
    if (!a->valid && !a->end) LN_TRY(stage_next(ctx, ld)); /* the epoch's first batch */
    if (a->end) return LN_OK;
    ln_status st = ln_cuda_ticket_wait(ctx, a->t_images);
    ln_status st2 = ln_cuda_ticket_wait(ctx, a->t_labels);
    if (st == LN_OK) st = st2;
    ln_tensor *im = a->images, *lb = a->labels, *ix = a->indices;
    memset(a, 0, sizeof *a);
    if (st == LN_OK) st = stage_next(ctx, ld); /* batch k+1 copies while k computes */
    if (st != LN_OK) {
        ln_tensor_release(im);
        ln_tensor_release(lb);
        ln_tensor_release(ix);
        return st;
    }
    *images = im;
    *labels = lb;
    if (indices) *indices = ix;
    else ln_tensor_release(ix);
    return LN_OK;
}
