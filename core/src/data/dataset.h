/* Private to core/src/data: the dataset object every reader fills in (a table of
 * functions plus the sample shape and class names), the message log shared by
 * datasets and loaders, a seed mixer, worker scratch buffers and the folder index
 * (index_cache.c). Random streams are image.h's ln_image_rng. Nothing here is part
 * of the public C API.
 *
 * Threads: a dataset's `load` runs concurrently on the loader's worker threads. It
 * must not touch an ln_ctx nor any mutable part of the dataset; everything it needs
 * per call lives in the worker's scratch (ln_data_scratch). */
#ifndef LUNET_DATA_DATASET_H
#define LUNET_DATA_DATASET_H

#include <pthread.h>
#include <stdint.h>
#include "lunet/data.h"
#include "../internal.h"

/* ---- message log: a FIFO of strings, safe across threads ---- */
typedef struct ln_msg {
    struct ln_msg *next;
    char text[]; /* NUL-terminated */
} ln_msg;

typedef struct ln_msglog {
    pthread_mutex_t mu;
    ln_msg *head, *tail;
    int64_t dropped; /* messages lost to a failed allocation */
} ln_msglog;

void ln_msglog_init(ln_msglog *log);
void ln_msglog_destroy(ln_msglog *log);
/* Appends a printf-style message (never fails: a lost message is counted instead). */
void ln_msglog_add(ln_msglog *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves the oldest message into buf; false when the log is empty. */
bool ln_msglog_pop(ln_msglog *log, char *buf, size_t n);

/* snprintf for messages and paths where cutting a too-long result short is fine
 * (returns what snprintf returns, so callers can still detect it). */
int ln_strf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- seeds ---- */
static inline uint64_t ln_splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* One 64-bit seed from a tuple (loader seed, epoch, sample index, attempt): distinct
 * tuples give unrelated streams. */
static inline uint64_t ln_seed_mix(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t h = ln_splitmix64(a ^ 0x6a09e667f3bcc908ull);
    h = ln_splitmix64(h ^ b);
    h = ln_splitmix64(h ^ c);
    return ln_splitmix64(h ^ d);
}

/* ---- per-worker scratch: a buffer a load call may grow and keep ---- */
typedef struct ln_data_scratch {
    uint8_t *bytes;   /* file contents (folder datasets) */
    size_t bytes_cap;
} ln_data_scratch;

void ln_data_scratch_free(ln_data_scratch *s);
/* Makes s->bytes hold at least n bytes; false when out of memory. */
bool ln_data_scratch_reserve(ln_data_scratch *s, size_t n);

/* ---- the dataset object ---- */
typedef struct ln_dataset_vt {
    /* Writes sample `index` (0-based, < size) as `numel` floats into out (C,H,W order)
     * and its 0-based class into *label; rng (the sample's own stream) drives the
     * random transform.
     * Returns LN_OK; LN_ERR_NOMEM when memory ran out (the run stops); any other
     * status marks this sample bad (it is skipped and replaced), with the reason in
     * err. *converted is set when the sample had to be converted (grayscale, CMYK,
     * PNG...). Thread-safe. */
    ln_status (*load)(const ln_dataset *ds, int64_t index, ln_image_rng *rng,
                      ln_data_scratch *scratch, float *out, int64_t *label,
                      bool *converted, char *err, size_t errlen);
    /* Names sample `index` for messages (its path, or "cifar sample 17"). */
    void (*describe)(const ln_dataset *ds, int64_t index, char *buf, size_t n);
    void (*destroy)(ln_dataset *ds); /* frees impl */
} ln_dataset_vt;

struct ln_dataset {
    int64_t refcount;           /* touched by the owning (ctx) thread only */
    const char *kind;           /* "image_folder", "cifar", "idx", "synthetic" (static) */
    const ln_dataset_vt *vt;
    void *impl;                 /* the reader's own state, read-only once open */
    int64_t size;               /* number of samples */
    int ndim;                   /* sample shape, e.g. (3, 224, 224) */
    int64_t shape[LN_MAX_DIMS];
    int64_t numel;              /* product of shape */
    int classes;
    char **class_names;         /* `classes` owned strings, or NULL */
    ln_msglog log;
};

/* A dataset with refcount 1, the given kind and vtable and an empty log; the reader
 * then fills the fields. Returns NULL when out of memory. */
ln_dataset *ln_dataset_new(const char *kind, const ln_dataset_vt *vt);
/* Sets the sample shape (and numel). */
void ln_dataset_set_shape(ln_dataset *ds, int ndim, const int64_t *shape);
/* Allocates ds->class_names with n NULL entries; false when out of memory. */
bool ln_dataset_alloc_class_names(ln_dataset *ds, int n);

/* Reads a whole file into *buf (malloc'd, caller frees), for the small readers. */
ln_status ln_read_file(ln_ctx *ctx, const char *what, const char *path, uint8_t **buf,
                       size_t *len);

/* ---- small u8 images held in memory (dataset_array.c; CIFAR and IDX readers) ---- */
/* Sample i: pixels pix[i * pix_stride ...] planar (c, h, w), label lab[i * lab_stride]. */
typedef struct ln_array_data {
    uint8_t *pix_buf, *lab_buf;  /* owned (may be the same buffer) */
    const uint8_t *pix, *lab;
    size_t pix_stride, lab_stride;
    int c, h, w;
    ln_array_opts opts;
    char source[256];            /* for messages: the file or folder read */
} ln_array_data;

/* A dataset of n samples over a (taking ownership of it, freed on failure too). */
ln_status ln_array_dataset(ln_ctx *ctx, const char *kind, ln_array_data *a, int64_t n,
                           int classes, ln_dataset **out);
/* Checks a transform's settings, naming the reader in messages. */
ln_status ln_array_opts_check(ln_ctx *ctx, const char *what, const ln_array_opts *o, int channels);

/* ---- the folder index (index_cache.c) ---- */
/* Every image file under a split folder: classes sorted by name, files sorted by
 * path within each class. Paths are relative to the split folder. */
typedef struct ln_folder_index {
    int classes;
    char **class_names;   /* owned */
    int64_t files;
    int32_t *file_class;  /* files entries: 0-based class */
    uint64_t *file_off;   /* files entries: offset of the NUL-terminated path in pool */
    char *pool;
    size_t pool_len;
    int64_t ignored;      /* regular files skipped for their extension */
} ln_folder_index;

void ln_folder_index_free(ln_folder_index *ix);

/* How ln_folder_index_load went. */
typedef struct ln_index_info {
    bool cache_hit;              /* the index came from the cache file */
    bool cache_written;          /* a fresh scan was stored */
    char cache_path[4096];       /* the cache file ("" when none could be named) */
    char cache_note[512];        /* why the cache could not be written, or "" */
} ln_index_info;

/* Loads the index of the split folder `dir` (an existing directory) from the cache in
 * cache_dir when it is still valid (the mtime and size of every directory of the
 * tree unchanged), otherwise scans the tree and stores the result there (temporary
 * file + rename). A cache that cannot be written is not an error: info says why. */
ln_status ln_folder_index_load(ln_ctx *ctx, const char *dir, const char *cache_dir,
                               ln_folder_index *ix, ln_index_info *info);

#endif
