/* PyTorch checkpoints (.pth): a reader that never runs code from the file, and a
 * writer of the zip format that torch.load accepts.
 *
 * Reading: both formats torch.save has written, the zip format (default since
 * PyTorch 1.6: `<name>/data.pkl`, `<name>/data/<key>` raw storages, `<name>/version`;
 * stored or deflated entries, zip64) and the legacy single stream (magic number,
 * protocol version and system-info pickles, the main pickle, the list of storage keys,
 * then each storage as an int64 element count and its raw bytes). The pickles are
 * interpreted by a restricted machine that knows only what a state dict needs:
 * containers and scalars, collections.OrderedDict, torch._utils._rebuild_tensor(_v2),
 * _rebuild_parameter(_with_state) and the storage types; any other global or opcode
 * is rejected with a message naming it. Every offset, size and count read from the
 * file is checked against the file before it is used.
 *
 * The result is a document: a tree of values (the pickle's object graph, sharing
 * kept: an object referenced twice is one value) that owns all of them. Tensors load
 * to the host whatever device they were saved from (cuda:N included); half and
 * bfloat16 storages become f32, int16/int8 i32, bool u8. Tensors whose view is
 * contiguous share their storage with every other view of it; a non-contiguous view
 * is loaded as a contiguous copy.
 *
 * Writing: the zip format (stored entries aligned to 64 bytes, data.pkl in protocol
 * 2 as torch.save writes it), written to a temporary file in the same folder and
 * renamed, so a failure never leaves a broken file. Tensors that share a storage are
 * written as views of one storage, as torch.save does. */
#ifndef LUNET_PTH_H
#define LUNET_PTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tensor.h"

typedef enum ln_pth_kind {
    LN_PTH_NONE = 0,
    LN_PTH_BOOL,   /* i: 0 or 1 */
    LN_PTH_INT,    /* i */
    LN_PTH_FLOAT,  /* f */
    LN_PTH_STR,    /* str, len (NUL-terminated too); Python str */
    LN_PTH_BYTES,  /* str, len; Python bytes (and Python 2 str) */
    LN_PTH_LIST,   /* n items */
    LN_PTH_TUPLE,  /* n items */
    LN_PTH_DICT,   /* n entries: items[2k] is a key, items[2k+1] its value; keys unique */
    LN_PTH_TENSOR, /* tensor */
    LN_PTH_KIND_COUNT
} ln_pth_kind;

/* One value of a document. Fields other than those of its kind are zero. Read-only
 * for users of a loaded document; the builders below fill new ones. */
typedef struct ln_pth_value {
    ln_pth_kind kind;
    bool ordered;               /* DICT: a collections.OrderedDict */
    int64_t i;                  /* BOOL, INT */
    double f;                   /* FLOAT */
    const char *str;            /* STR, BYTES: owned by the document */
    size_t len;
    size_t n;                   /* LIST, TUPLE: items; DICT: entries */
    struct ln_pth_value **items; /* LIST, TUPLE: n; DICT: 2n (key, value, key, ...) */
    ln_tensor *tensor;          /* TENSOR: one reference owned by the document */
    size_t cap_;                /* private: capacity of items */
    bool seen_;                 /* private: traversal mark */
    void *priv_;                /* private to the reader */
} ln_pth_value;

/* Owns every value made in it (and their strings, arrays and tensor references). */
typedef struct ln_pth_doc ln_pth_doc;

typedef enum ln_pth_format { LN_PTH_BUILT = 0, LN_PTH_ZIP, LN_PTH_LEGACY } ln_pth_format;

/* Loads a checkpoint from a file, or from memory (name is used in messages). On
 * failure *out is NULL and the context holds a message starting "pth: <name>:". */
ln_status ln_pth_load_file(ln_ctx *ctx, const char *path, ln_pth_doc **out);
ln_status ln_pth_load_memory(ln_ctx *ctx, const void *data, size_t n, const char *name,
                             ln_pth_doc **out);

/* The root value (NULL in a fresh document until ln_pth_doc_set_root). */
ln_pth_value *ln_pth_doc_root(const ln_pth_doc *doc);
void ln_pth_doc_set_root(ln_pth_doc *doc, ln_pth_value *root);
ln_pth_format ln_pth_doc_format(const ln_pth_doc *doc);
void ln_pth_doc_free(ln_pth_doc *doc);

/* The value stored under the string key `key` in a DICT, or NULL. */
const ln_pth_value *ln_pth_dict_get(const ln_pth_value *dict, const char *key);

/* ---- building a document (for ln_pth_save_file) ---- */
ln_status ln_pth_doc_create(ln_ctx *ctx, ln_pth_doc **out);
/* A new value of the kind, zero-filled (set i / f / ordered directly afterwards). */
ln_status ln_pth_new(ln_ctx *ctx, ln_pth_doc *doc, ln_pth_kind kind, ln_pth_value **out);
/* STR or BYTES holding a copy of s[0..len). */
ln_status ln_pth_new_str(ln_ctx *ctx, ln_pth_doc *doc, ln_pth_kind kind, const char *s,
                         size_t len, ln_pth_value **out);
/* TENSOR holding a new reference to t. */
ln_status ln_pth_new_tensor(ln_ctx *ctx, ln_pth_doc *doc, ln_tensor *t, ln_pth_value **out);
/* Appends to a LIST or TUPLE. */
ln_status ln_pth_append(ln_ctx *ctx, ln_pth_value *seq, ln_pth_value *item);
/* Appends an entry to a DICT (the caller keeps keys unique). */
ln_status ln_pth_dict_add(ln_ctx *ctx, ln_pth_value *dict, ln_pth_value *key,
                          ln_pth_value *value);

/* Writes root (dicts, lists, tuples, strings, numbers, booleans, None and tensors of
 * any device and dtype) as a zip-format checkpoint that torch.load reads. Strings
 * must be UTF-8. Tensors on a device are copied to the host. */
ln_status ln_pth_save_file(ln_ctx *ctx, const char *path, const ln_pth_value *root);

#endif
