/* Tensor files: the safetensors format (https://github.com/huggingface/safetensors).
 *
 * Layout: 8 bytes (little-endian u64) = N, the length of the header; N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * (padded with spaces to a multiple of 8); then the data section: each tensor's
 * elements, contiguous, row-major, little-endian, at [begin, end) relative to the
 * start of the section. The tensors tile the section exactly (no gaps, no overlap).
 *
 * dtypes: F32, F64, I64, I32, U8 map to lunet's dtypes both ways; F16 and BF16 are
 * read (converted to f32) but never written; any other dtype is a clear error.
 *
 * The reader trusts nothing: every failure (truncated file, header longer than the
 * file, bad JSON, unknown dtype or key, duplicate names, offsets out of range or
 * overlapping, a size that is not numel * element size, shapes whose size overflows)
 * is an LN_ERR_IO status whose message names the file, never a crash. */
#ifndef LUNET_IO_H
#define LUNET_IO_H

#include <stdio.h>
#include "tensor.h"

/* One named tensor to write; the tensor may live on any device and be strided. */
typedef struct ln_named_tensor {
    const char *name;
    const ln_tensor *tensor;
} ln_named_tensor;

/* One metadata entry ("__metadata__" holds strings only). */
typedef struct ln_meta_entry {
    const char *key;
    const char *value;
} ln_meta_entry;

/* What a read returns. Owns every name, string and tensor reference in it; tensors
 * are CPU, contiguous, in the order of their data offsets. Freed with
 * ln_safetensors_free. */
typedef struct ln_safetensors {
    int n_tensors;
    char **names;
    ln_tensor **tensors;
    int n_meta;
    char **meta_keys;   /* in file order */
    char **meta_values;
} ln_safetensors;

/* Options of ln_safetensors_save; NULL means all defaults. */
typedef struct ln_save_opts {
    /* Test hook: > 0 makes the write fail as on a full disk (ENOSPC) once that many
     * bytes have been written to the temporary file. 0 = never. */
    int64_t fail_after_bytes;
} ln_save_opts;

/* Writes a safetensors file to `path` atomically: into a new temporary file in the
 * same folder (`<path>.tmp.<pid>.<n>`), checking every write, fflush and fsync, then
 * renamed over path. On any failure the temporary file is removed and a previous file
 * at path is left untouched. Tensor names must be distinct, non-empty, valid UTF-8 and
 * not "__metadata__"; metadata keys distinct and valid UTF-8. Tensors are written in
 * the order given. */
ln_status ln_safetensors_save(ln_ctx *ctx, const char *path, int n_tensors,
                              const ln_named_tensor *tensors, int n_meta,
                              const ln_meta_entry *meta, const ln_save_opts *opts);

/* Writes the same bytes to an open stream (no temporary file, no rename), checking
 * every fwrite and the final fflush; `what` names the stream in messages. Lets a
 * caller (or a test, with /dev/full) supply its own sink. */
ln_status ln_safetensors_write(ln_ctx *ctx, FILE *f, const char *what, int n_tensors,
                               const ln_named_tensor *tensors, int n_meta,
                               const ln_meta_entry *meta);

/* Reads and validates a whole safetensors file. *out is NULL on failure. */
ln_status ln_safetensors_load(ln_ctx *ctx, const char *path, ln_safetensors **out);

void ln_safetensors_free(ln_safetensors *st);

#endif
