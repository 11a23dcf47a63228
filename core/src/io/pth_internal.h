/* Private to the .pth reader and writer (core/src/io/pth_*.c): the document arena,
 * the values only the pickle machine sees, the zip directory, the storage types and
 * the resource limits. */
#ifndef LUNET_PTH_INTERNAL_H
#define LUNET_PTH_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include "internal.h"

/* ---- resource limits (a state dict of the largest zoo model needs a few 10^4 values) */
#define PTH_MAX_VALUES (1u << 22)    /* values in one document */
#define PTH_MAX_STACK (1u << 22)     /* pickle stack entries */
#define PTH_MAX_MARKS 4096           /* open MARKs (nesting of one pickle's containers) */
#define PTH_MAX_MEMO (1u << 22)      /* memo slots */
#define PTH_MAX_ITEMS (1u << 24)     /* entries of one container */
#define PTH_MAX_STORAGES (1u << 20)  /* distinct storages of one file */
#define PTH_MAX_ENTRIES (1u << 20)   /* zip entries */
#define PTH_MAX_STR 4096             /* storage keys and locations */

/* Values of kinds only the pickle machine makes; a loaded document never holds one
 * (pth_load.c rejects a result that does). */
enum {
    PTH_GLOBAL = LN_PTH_KIND_COUNT, /* i: a pth_global */
    PTH_STORAGE                     /* i: index in the loader's storage table */
};

/* The globals a state dict needs: nothing else can be named by a pickle. */
typedef enum pth_global {
    PTH_G_ORDERED_DICT,
    PTH_G_REBUILD_TENSOR_V2,
    PTH_G_REBUILD_TENSOR,
    PTH_G_REBUILD_PARAMETER,
    PTH_G_REBUILD_PARAMETER_WITH_STATE,
    PTH_G_STORAGE_FIRST /* + index in pth_storage_types */
} pth_global;

/* A storage type (torch.FloatStorage...): its element size in the file and what it
 * becomes here. */
typedef struct pth_storage_type {
    const char *name;   /* "FloatStorage" */
    size_t file_size;   /* bytes per element in the file */
    ln_dtype dtype;     /* lunet dtype it loads as */
    int convert;        /* PTH_CONV_* */
} pth_storage_type;
enum { PTH_CONV_COPY, PTH_CONV_HALF, PTH_CONV_BF16, PTH_CONV_I16, PTH_CONV_I8 };
extern const pth_storage_type pth_storage_types[];
extern const int pth_storage_type_count;

/* A tensor rebuilt by the pickle, made real once its storage's bytes are loaded
 * (value->priv_ of a TENSOR value while loading). */
typedef struct pth_lazy_tensor {
    int64_t storage;  /* index in the loader's storage table */
    int64_t offset;   /* in elements of the storage */
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    int64_t strides[LN_MAX_DIMS];
} pth_lazy_tensor;

/* ---- the document (pth_value.c) ---- */
struct ln_pth_doc {
    ln_pth_value **blocks; /* values live in blocks of PTH_BLOCK, never moved */
    size_t nblocks, cap_blocks;
    size_t nvalues;
    ln_pth_value *root;
    ln_pth_format format;
};
#define PTH_BLOCK 256
static inline ln_pth_value *pth_value_at(const ln_pth_doc *doc, size_t i) {
    return &doc->blocks[i / PTH_BLOCK][i % PTH_BLOCK];
}
/* A new value of any kind, internal ones included. */
ln_status pth_new_value(ln_ctx *ctx, ln_pth_doc *doc, int kind, ln_pth_value **out);
/* Grows items of a container to hold at least `want` pointers. */
ln_status pth_reserve(ln_ctx *ctx, ln_pth_value *v, size_t want);
/* Python's dict semantics over entries appended in order: a key set twice keeps its
 * first position and its last value. Keys are str, bytes, int, bool, float or None. */
ln_status pth_dict_dedup(ln_ctx *ctx, const char *name, ln_pth_value *dict);

/* ---- the pickle machine (pth_pickle.c) ---- */
/* Called for BINPERSID with the persistent id (a value of any kind); returns the
 * storage value it names. */
typedef ln_status (*pth_persistent_fn)(void *ud, ln_pth_value *pid, ln_pth_value **out);
typedef struct pth_pickle_src {
    const char *name;      /* file name for messages */
    const char *part;      /* "data.pkl", "the main pickle"... for messages */
    const uint8_t *data;
    size_t len;
    size_t base;           /* offset of data[0] in the file, for messages */
    pth_persistent_fn persistent_load; /* NULL: persistent ids are an error */
    void *ud;
} pth_pickle_src;
/* Runs one pickle from data[0]; *used receives the bytes it took (through STOP). */
ln_status pth_unpickle(ln_ctx *ctx, ln_pth_doc *doc, const pth_pickle_src *src,
                       ln_pth_value **out, size_t *used);

/* ---- zip archives (pth_zip.c) ---- */
typedef struct pth_zip_entry {
    const char *name;  /* into the archive buffer; not NUL-terminated */
    size_t name_len;
    uint64_t data_off; /* of the (possibly compressed) bytes */
    uint64_t comp_size, size;
    uint32_t crc;
    int method;        /* 0 stored, 8 deflate */
} pth_zip_entry;
typedef struct pth_zip {
    const uint8_t *buf;
    size_t len;
    pth_zip_entry *entries; /* sorted by name */
    size_t n;
} pth_zip;
/* Reads the central directory; every entry is checked to lie inside the buffer. */
ln_status pth_zip_open(ln_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                       pth_zip *z);
void pth_zip_close(pth_zip *z);
const pth_zip_entry *pth_zip_find(const pth_zip *z, const char *name, size_t name_len);
/* The entry's bytes, CRC-checked: a pointer into the archive for stored entries
 * (*owned false), or a malloc'd inflated copy (*owned true, free() it). */
ln_status pth_zip_read(ln_ctx *ctx, const char *name, const pth_zip *z,
                       const pth_zip_entry *e, const uint8_t **data, bool *owned);

/* Writes a zip of stored entries, each aligned to 64 bytes, to f. */
typedef struct pth_zip_writer {
    FILE *f;
    uint64_t pos;
    struct pth_zip_written *written; /* central directory records so far */
    size_t n, cap;
} pth_zip_writer;
ln_status pth_zipw_add(ln_ctx *ctx, pth_zip_writer *w, const char *name, const void *data,
                       size_t len);
ln_status pth_zipw_finish(ln_ctx *ctx, pth_zip_writer *w);
void pth_zipw_free(pth_zip_writer *w);

/* ---- little-endian reads of possibly unaligned bytes ---- */
static inline uint16_t pth_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t pth_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t pth_u64(const uint8_t *p) {
    return (uint64_t)pth_u32(p) | (uint64_t)pth_u32(p + 4) << 32;
}

#endif
