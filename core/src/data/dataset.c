/* What every dataset shares: creation and reference counting, the public accessors,
 * the thread-safe message log, worker scratch buffers, whole-file reading and the
 * default index-cache folder. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "dataset.h"

int ln_strf(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return len;
}

/* ------------------------------------------------------------ message log */
void ln_msglog_init(ln_msglog *log) {
    pthread_mutex_init(&log->mu, NULL);
    log->head = log->tail = NULL;
    log->dropped = 0;
}

void ln_msglog_destroy(ln_msglog *log) {
    for (ln_msg *m = log->head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    log->head = log->tail = NULL;
    pthread_mutex_destroy(&log->mu);
}

void ln_msglog_add(ln_msglog *log, const char *fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t len = strlen(text);
    ln_msg *m = malloc(sizeof *m + len + 1);
    pthread_mutex_lock(&log->mu);
    if (!m) {
        log->dropped++;
    } else {
        memcpy(m->text, text, len + 1);
        m->next = NULL;
        if (log->tail) log->tail->next = m;
        else log->head = m;
        log->tail = m;
    }
    pthread_mutex_unlock(&log->mu);
}

bool ln_msglog_pop(ln_msglog *log, char *buf, size_t n) {
    pthread_mutex_lock(&log->mu);
    ln_msg *m = log->head;
    int64_t dropped = log->dropped;
    if (m) {
        log->head = m->next;
        if (!log->head) log->tail = NULL;
    } else {
        log->dropped = 0;
    }
    pthread_mutex_unlock(&log->mu);
    if (m) {
        snprintf(buf, n, "%s", m->text);
        free(m);
        return true;
    }
    if (dropped) {
        snprintf(buf, n, "%lld messages lost (out of memory)", (long long)dropped);
        return true;
    }
    return false;
}

/* ------------------------------------------------------------ scratch */
void ln_data_scratch_free(ln_data_scratch *s) {
    free(s->bytes);
    s->bytes = NULL;
    s->bytes_cap = 0;
}

bool ln_data_scratch_reserve(ln_data_scratch *s, size_t n) {
    if (n <= s->bytes_cap) return true;
    size_t cap = s->bytes_cap ? s->bytes_cap : 1 << 16;
    while (cap < n) cap *= 2;
    uint8_t *p = realloc(s->bytes, cap);
    if (!p) return false;
    s->bytes = p;
    s->bytes_cap = cap;
    return true;
}

/* ------------------------------------------------------------ files */
ln_status ln_read_file(ln_ctx *ctx, const char *what, const char *path, uint8_t **buf,
                       size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ln_fail(ctx, LN_ERR_IO, "%s: cannot open '%s': %s", what, path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    uint8_t *p = malloc(cap);
    while (p) {
        n += fread(p + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *q = realloc(p, cap * 2);
        if (!q) { free(p); p = NULL; break; }
        p = q;
        cap *= 2;
    }
    bool failed = p && ferror(f);
    fclose(f);
    if (!p) return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of memory reading '%s'", what, path);
    if (failed) {
        free(p);
        return ln_fail(ctx, LN_ERR_IO, "%s: error reading '%s'", what, path);
    }
    *buf = p;
    *len = n;
    return LN_OK;
}

ln_status ln_data_default_cache_dir(ln_ctx *ctx, char *buf, size_t n) {
    const char *own = getenv("LUNET_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int len;
    if (own && *own) len = snprintf(buf, n, "%s", own);
    else if (xdg && *xdg == '/') len = snprintf(buf, n, "%s/lunet", xdg);
    else if (home && *home) len = snprintf(buf, n, "%s/.cache/lunet", home);
    else return ln_fail(ctx, LN_ERR_STATE, "data: no cache folder: set LUNET_CACHE_DIR, XDG_CACHE_HOME or HOME");
    if (len < 0 || (size_t)len >= n) return ln_fail(ctx, LN_ERR_ARG, "data: cache folder path too long");
    return LN_OK;
}

/* ------------------------------------------------------------ dataset object */
ln_dataset *ln_dataset_new(const char *kind, const ln_dataset_vt *vt) {
    ln_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->refcount = 1;
    ds->kind = kind;
    ds->vt = vt;
    ln_msglog_init(&ds->log);
    return ds;
}

void ln_dataset_set_shape(ln_dataset *ds, int ndim, const int64_t *shape) {
    ds->ndim = ndim;
    ds->numel = 1;
    for (int i = 0; i < ndim; i++) {
        ds->shape[i] = shape[i];
        ds->numel *= shape[i];
    }
}

bool ln_dataset_alloc_class_names(ln_dataset *ds, int n) {
    ds->class_names = calloc((size_t)(n > 0 ? n : 1), sizeof *ds->class_names);
    return ds->class_names != NULL;
}

void ln_dataset_retain(ln_dataset *ds) { if (ds) ds->refcount++; }

void ln_dataset_release(ln_dataset *ds) {
    if (!ds || --ds->refcount > 0) return;
    if (ds->vt->destroy) ds->vt->destroy(ds);
    if (ds->class_names) {
        for (int i = 0; i < ds->classes; i++) free(ds->class_names[i]);
        free(ds->class_names);
    }
    ln_msglog_destroy(&ds->log);
    free(ds);
}

const char *ln_dataset_kind(const ln_dataset *ds) { return ds->kind; }
int64_t ln_dataset_size(const ln_dataset *ds) { return ds->size; }
int ln_dataset_classes(const ln_dataset *ds) { return ds->classes; }

int ln_dataset_sample_shape(const ln_dataset *ds, int64_t shape[LN_MAX_DIMS]) {
    for (int i = 0; i < ds->ndim; i++) shape[i] = ds->shape[i];
    return ds->ndim;
}

const char *ln_dataset_class_name(const ln_dataset *ds, int c) {
    if (!ds->class_names || c < 0 || c >= ds->classes) return NULL;
    return ds->class_names[c];
}

void ln_dataset_describe(const ln_dataset *ds, int64_t index, char *buf, size_t n) {
    ds->vt->describe(ds, index, buf, n);
}

bool ln_dataset_pop_message(ln_dataset *ds, char *buf, size_t n) {
    return ln_msglog_pop(&ds->log, buf, n);
}

ln_status ln_dataset_get(ln_ctx *ctx, const ln_dataset *ds, int64_t index, uint64_t seed,
                         int64_t epoch, ln_tensor **image, int64_t *label, bool *converted) {
    *image = NULL;
    if (index < 0 || index >= ds->size)
        return ln_fail(ctx, LN_ERR_ARG, "dataset_get: index %lld out of range for %lld samples",
                       (long long)index, (long long)ds->size);
    ln_tensor *t;
    LN_TRY(ln_tensor_empty(ctx, LN_F32, ln_cpu(), ds->ndim, ds->shape, &t));
    ln_data_scratch scratch = {0};
    char err[512] = "";
    bool conv = false;
    ln_image_rng rng;
    ln_image_rng_seed(&rng, seed, (uint64_t)epoch, (uint64_t)index);
    ln_status st = ds->vt->load(ds, index, &rng, &scratch, ln_tensor_data(t), label, &conv,
                                err, sizeof err);
    ln_data_scratch_free(&scratch);
    if (st != LN_OK) {
        ln_tensor_release(t);
        char name[512];
        ds->vt->describe(ds, index, name, sizeof name);
        return ln_fail(ctx, st, "dataset_get: %s: %s", name, err);
    }
    if (converted) *converted = conv;
    *image = t;
    return LN_OK;
}
