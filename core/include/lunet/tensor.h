/* Tensors: a view (shape, strides and offset in elements, NCHW order) on a
 * reference-counted storage that lives on one device. Indices are 0-based here.
 * Ownership: functions that hand out a tensor through `ln_tensor **out` give the
 * caller one reference, released with ln_tensor_release. Views share storage. */
#ifndef LUNET_TENSOR_H
#define LUNET_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "context.h"

#define LN_MAX_DIMS 8

typedef enum ln_dtype { LN_F32 = 0, LN_F64, LN_I64, LN_I32, LN_U8, LN_DTYPE_COUNT } ln_dtype;
typedef enum ln_device_type { LN_CPU = 0, LN_CUDA = 1 } ln_device_type;

typedef struct ln_device {
    ln_device_type type;
    int index; /* CUDA ordinal; 0 for CPU */
} ln_device;

typedef struct ln_storage {
    int64_t refcount;
    ln_device device;
    size_t nbytes;
    size_t alloc_bytes; /* size of the block behind data (the allocator's size class) */
    bool pinned;        /* CPU storage in page-locked memory (CUDA's pinned-block cache) */
    void *data;
    ln_ctx *ctx; /* retained: frees device memory through the ctx's allocator */
} ln_storage;

struct ln_node;

typedef struct ln_tensor {
    int64_t refcount;
    ln_dtype dtype;
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    int64_t strides[LN_MAX_DIMS]; /* in elements */
    int64_t offset;               /* in elements */
    ln_storage *storage;
    bool requires_grad;       /* leaf that collects .grad, or a result of such leaves */
    struct ln_tensor *grad;   /* owned; accumulated by backward (leaves only) */
    struct ln_node *grad_fn;  /* owned; NULL for leaves and for no-grad results */
} ln_tensor;

size_t ln_dtype_size(ln_dtype dt);
const char *ln_dtype_name(ln_dtype dt);
bool ln_dtype_is_float(ln_dtype dt);
/* Parses "f32"/"float32"/"float", "f64"/"float64"/"double", "i64"/"int64"/"long",
 * "i32"/"int32"/"int", "u8"/"uint8"/"byte". Returns false if unknown. */
bool ln_dtype_parse(const char *name, ln_dtype *out);
/* "cpu", "cuda", "cuda:N". */
bool ln_device_parse(const char *name, ln_device *out);
void ln_device_format(ln_device d, char *buf, size_t n);
bool ln_device_eq(ln_device a, ln_device b);
static inline ln_device ln_cpu(void) { ln_device d = {LN_CPU, 0}; return d; }

/* --- creation (contents undefined for ln_tensor_empty) --- */
ln_status ln_tensor_empty(ln_ctx *ctx, ln_dtype dt, ln_device dev, int ndim,
                          const int64_t *shape, ln_tensor **out);
ln_status ln_tensor_zeros(ln_ctx *ctx, ln_dtype dt, ln_device dev, int ndim,
                          const int64_t *shape, ln_tensor **out);
ln_status ln_tensor_full(ln_ctx *ctx, ln_dtype dt, ln_device dev, int ndim,
                         const int64_t *shape, double value, ln_tensor **out);
/* A CPU tensor in page-locked (pinned) host memory, from which copies to CUDA device
 * `device` run without blocking the host (tensor.to and the loader's copies ahead).
 * It is an ordinary CPU tensor otherwise. LN_ERR_DEVICE without CUDA. */
ln_status ln_tensor_empty_pinned(ln_ctx *ctx, ln_dtype dt, int device, int ndim,
                                 const int64_t *shape, ln_tensor **out);
/* A contiguous pinned copy of CPU tensor t, or t itself (retained) when it already
 * is one. */
ln_status ln_tensor_pin(ln_ctx *ctx, ln_tensor *t, int device, ln_tensor **out);
bool ln_tensor_is_pinned(const ln_tensor *t);
/* Same dtype/device/shape as t, contiguous. */
ln_status ln_tensor_empty_like(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out);
ln_status ln_tensor_zeros_like(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out);
/* Copies host values (double) into a new CPU tensor of dtype dt. */
ln_status ln_tensor_from_f64(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape,
                             const double *values, ln_tensor **out);

void ln_tensor_retain(ln_tensor *t);
void ln_tensor_release(ln_tensor *t);

/* --- metadata --- */
int64_t ln_tensor_numel(const ln_tensor *t);
bool ln_tensor_is_contiguous(const ln_tensor *t);
ln_device ln_tensor_device(const ln_tensor *t);
/* Pointer to element 0 of the view (device pointer for CUDA tensors). */
void *ln_tensor_data(const ln_tensor *t);
bool ln_tensor_same_shape(const ln_tensor *a, const ln_tensor *b);
/* "[2, 3, 4]" into buf. */
void ln_shape_format(int ndim, const int64_t *shape, char *buf, size_t n);

/* --- views (share storage; no autograd: see ops.h for differentiable versions) --- */
/* One entry of shape may be -1 (inferred). Fails if t is not viewable (non-contiguous). */
ln_status ln_tensor_view(ln_ctx *ctx, const ln_tensor *t, int ndim, const int64_t *shape,
                         ln_tensor **out);
ln_status ln_tensor_transpose_view(ln_ctx *ctx, const ln_tensor *t, int d0, int d1,
                                   ln_tensor **out);
ln_status ln_tensor_narrow_view(ln_ctx *ctx, const ln_tensor *t, int dim, int64_t start,
                                int64_t length, ln_tensor **out);
/* A view of the same data with no autograd history (requires_grad false). */
ln_status ln_tensor_detach(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out);

/* --- data movement (no autograd) --- */
/* dst and src must have the same shape (any strides, any dtypes, same or other device). */
ln_status ln_tensor_copy_(ln_ctx *ctx, ln_tensor *dst, const ln_tensor *src);
/* New contiguous tensor with the values of t (always a copy). */
ln_status ln_tensor_clone(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out);
/* t itself (retained) when already contiguous, otherwise a contiguous copy. */
ln_status ln_tensor_contiguous(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out);
ln_status ln_tensor_to_dtype(ln_ctx *ctx, const ln_tensor *t, ln_dtype dt, ln_tensor **out);
ln_status ln_tensor_to_device(ln_ctx *ctx, const ln_tensor *t, ln_device dev, ln_tensor **out);
ln_status ln_tensor_fill_(ln_ctx *ctx, ln_tensor *t, double value);
/* dst += alpha * src, same shape, dtype and device (src may be strided). */
ln_status ln_tensor_add_(ln_ctx *ctx, ln_tensor *dst, const ln_tensor *src, double alpha);
/* Reads/writes all elements in row-major order of the view, as doubles (CPU or CUDA). */
ln_status ln_tensor_to_f64(ln_ctx *ctx, const ln_tensor *t, double *values);
ln_status ln_tensor_item(ln_ctx *ctx, const ln_tensor *t, double *value);

/* --- random (context RNG; CPU generation, copied for device tensors) --- */
ln_status ln_tensor_uniform_(ln_ctx *ctx, ln_tensor *t, double lo, double hi);
ln_status ln_tensor_normal_(ln_ctx *ctx, ln_tensor *t, double mean, double std);

#endif
