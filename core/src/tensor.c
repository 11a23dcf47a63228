/* Tensor and storage lifetime, metadata, views, copies and random fills.
 * CPU storage is 64-byte aligned host memory; CUDA storage comes from the context's
 * caching allocator (cuda/). Copies between device views of one dtype run on the
 * device (a strided-copy kernel); copies between host and device move contiguous
 * blocks, and dtype conversions involving a device go through the host. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "cuda/cuda_api.h"

/* ------------------------------------------------------------ dtypes, devices */
static const size_t dtype_sizes[LN_DTYPE_COUNT] = {4, 8, 8, 4, 1};
static const char *const dtype_names[LN_DTYPE_COUNT] = {"f32", "f64", "i64", "i32", "u8"};

size_t ln_dtype_size(ln_dtype dt) { return (unsigned)dt < LN_DTYPE_COUNT ? dtype_sizes[dt] : 0; }
const char *ln_dtype_name(ln_dtype dt) { return (unsigned)dt < LN_DTYPE_COUNT ? dtype_names[dt] : "?"; }
bool ln_dtype_is_float(ln_dtype dt) { return dt == LN_F32 || dt == LN_F64; }

bool ln_dtype_parse(const char *s, ln_dtype *out) {
    static const struct { const char *name; ln_dtype dt; } names[] = {
        {"f32", LN_F32}, {"float32", LN_F32}, {"float", LN_F32},
        {"f64", LN_F64}, {"float64", LN_F64}, {"double", LN_F64},
        {"i64", LN_I64}, {"int64", LN_I64}, {"long", LN_I64},
        {"i32", LN_I32}, {"int32", LN_I32}, {"int", LN_I32},
        {"u8", LN_U8}, {"uint8", LN_U8}, {"byte", LN_U8},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) { *out = names[i].dt; return true; }
    return false;
}

bool ln_device_parse(const char *s, ln_device *out) {
    if (strcmp(s, "cpu") == 0) { out->type = LN_CPU; out->index = 0; return true; }
    if (strncmp(s, "cuda", 4) != 0) return false;
    out->type = LN_CUDA;
    out->index = 0;
    if (s[4] == '\0') return true;
    if (s[4] != ':' || s[5] == '\0') return false;
    char *end;
    long idx = strtol(s + 5, &end, 10);
    if (*end != '\0' || idx < 0 || idx > 1024) return false;
    out->index = (int)idx;
    return true;
}

void ln_device_format(ln_device d, char *buf, size_t n) {
    if (d.type == LN_CPU) snprintf(buf, n, "cpu");
    else snprintf(buf, n, "cuda:%d", d.index);
}

bool ln_device_eq(ln_device a, ln_device b) { return a.type == b.type && a.index == b.index; }

void ln_shape_format(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

/* ------------------------------------------------------------ storage */
static ln_status storage_new(ln_ctx *ctx, ln_device dev, size_t nbytes, ln_storage **out) {
    ln_storage *s = calloc(1, sizeof *s);
    if (!s) return ln_fail(ctx, LN_ERR_NOMEM, "out of memory allocating a storage");
    s->refcount = 1;
    s->device = dev;
    s->nbytes = nbytes;
    size_t alloc = nbytes ? nbytes : 1;
    if (dev.type == LN_CPU) {
        ln_status st = ln_cpu_alloc(ctx, alloc, &s->data, &s->alloc_bytes);
        if (st != LN_OK) { free(s); return st; }
    } else {
        ln_status st = ln_cuda_malloc(ctx, dev.index, alloc, &s->data);
        if (st != LN_OK) { free(s); return st; }
    }
    s->ctx = ctx;
    ln_ctx_retain(ctx);
    ctx->allocated_total += alloc;
    *out = s;
    return LN_OK;
}

/* A CPU storage in pinned memory of CUDA device `device`'s context state. */
static ln_status storage_new_pinned(ln_ctx *ctx, int device, size_t nbytes, ln_storage **out) {
    ln_storage *s = calloc(1, sizeof *s);
    if (!s) return ln_fail(ctx, LN_ERR_NOMEM, "out of memory allocating a storage");
    ln_status st = ln_cuda_host_alloc(ctx, device, nbytes, &s->data, &s->alloc_bytes);
    if (st != LN_OK) { free(s); return st; }
    s->refcount = 1;
    s->device = ln_cpu();
    s->nbytes = nbytes;
    s->pinned = true;
    s->ctx = ctx;
    ln_ctx_retain(ctx);
    ctx->allocated_total += s->alloc_bytes;
    *out = s;
    return LN_OK;
}

static void storage_release(ln_storage *s) {
    if (!s || --s->refcount > 0) return;
    if (s->pinned) ln_cuda_host_free(s->ctx, s->data);
    else if (s->device.type == LN_CPU) ln_cpu_free(s->ctx, s->data, s->alloc_bytes);
    else ln_cuda_free(s->ctx, s->device.index, s->data);
    ln_ctx_release(s->ctx);
    free(s);
}

/* ------------------------------------------------------------ tensors */
static void cpu_copy(ln_tensor *dst, const ln_tensor *src);
static ln_status tensor_wrap(ln_ctx *ctx, ln_storage *s, ln_dtype dt, int ndim,
                             const int64_t *shape, const int64_t *strides, int64_t offset,
                             ln_tensor **out) {
    ln_tensor *t = calloc(1, sizeof *t);
    if (!t) return ln_fail(ctx, LN_ERR_NOMEM, "out of memory allocating a tensor");
    t->refcount = 1;
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim > 0) memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t)); /* shape may be NULL for 0-d */
    if (strides && ndim > 0) memcpy(t->strides, strides, (size_t)ndim * sizeof(int64_t));
    else ln_contiguous_strides(ndim, shape, t->strides);
    t->offset = offset;
    t->storage = s;
    s->refcount++;
    *out = t;
    return LN_OK;
}

/* The byte size of a new tensor of that dtype and shape, or an error. */
static ln_status new_tensor_bytes(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape, size_t *nbytes) {
    if ((unsigned)dt >= LN_DTYPE_COUNT) return ln_fail(ctx, LN_ERR_DTYPE, "unknown dtype %d", (int)dt);
    if (ndim < 0 || ndim > LN_MAX_DIMS)
        return ln_fail(ctx, LN_ERR_SHAPE, "tensors have 0 to %d dimensions, got %d", LN_MAX_DIMS, ndim);
    int64_t numel;
    if (!ln_shape_numel(ndim, shape, &numel) || numel > (INT64_MAX / 8)) {
        char shp[256];
        ln_shape_format(ndim, shape, shp, sizeof shp);
        return ln_fail(ctx, LN_ERR_SHAPE, "invalid tensor shape %s (negative or too large)", shp);
    }
    *nbytes = (size_t)numel * ln_dtype_size(dt);
    return LN_OK;
}

/* A new contiguous tensor on dev, or with pinned_device >= 0 a CPU tensor in memory
 * pinned for that CUDA device. */
static ln_status tensor_new(ln_ctx *ctx, ln_dtype dt, ln_device dev, int pinned_device, int ndim,
                            const int64_t *shape, ln_tensor **out) {
    *out = NULL;
    size_t nbytes = 0;
    LN_TRY(new_tensor_bytes(ctx, dt, ndim, shape, &nbytes));
    ln_storage *s = NULL;
    LN_TRY(pinned_device >= 0 ? storage_new_pinned(ctx, pinned_device, nbytes, &s)
                              : storage_new(ctx, dev, nbytes, &s));
    ln_status st = tensor_wrap(ctx, s, dt, ndim, shape, NULL, 0, out);
    storage_release(s);
    return st;
}

ln_status ln_tensor_empty_pinned(ln_ctx *ctx, ln_dtype dt, int device, int ndim,
                                 const int64_t *shape, ln_tensor **out) {
    if (device < 0) {
        *out = NULL;
        return ln_fail(ctx, LN_ERR_DEVICE, "pin_memory: CUDA device %d does not exist", device);
    }
    return tensor_new(ctx, dt, ln_cpu(), device, ndim, shape, out);
}

bool ln_tensor_is_pinned(const ln_tensor *t) { return t->storage->pinned; }

ln_status ln_tensor_pin(ln_ctx *ctx, ln_tensor *t, int device, ln_tensor **out) {
    *out = NULL;
    if (t->storage->device.type != LN_CPU)
        return ln_fail(ctx, LN_ERR_DEVICE, "pin_memory: only CPU tensors can be pinned");
    if (t->storage->pinned && ln_tensor_is_contiguous(t)) {
        ln_tensor_retain(t);
        *out = t;
        return LN_OK;
    }
    LN_TRY(ln_tensor_empty_pinned(ctx, t->dtype, device, t->ndim, t->shape, out));
    cpu_copy(*out, t);
    return LN_OK;
}

ln_status ln_tensor_empty(ln_ctx *ctx, ln_dtype dt, ln_device dev, int ndim,
                          const int64_t *shape, ln_tensor **out) {
    return tensor_new(ctx, dt, dev, -1, ndim, shape, out);
}

ln_status ln_tensor_zeros(ln_ctx *ctx, ln_dtype dt, ln_device dev, int ndim,
                          const int64_t *shape, ln_tensor **out) {
    LN_TRY(ln_tensor_empty(ctx, dt, dev, ndim, shape, out));
    ln_storage *s = (*out)->storage;
    ln_status st = LN_OK;
    if (dev.type == LN_CPU) memset(s->data, 0, s->nbytes);
    else st = ln_cuda_memset0(ctx, s->data, s->nbytes);
    if (st != LN_OK) { ln_tensor_release(*out); *out = NULL; }
    return st;
}

ln_status ln_tensor_full(ln_ctx *ctx, ln_dtype dt, ln_device dev, int ndim,
                         const int64_t *shape, double value, ln_tensor **out) {
    LN_TRY(ln_tensor_empty(ctx, dt, dev, ndim, shape, out));
    ln_status st = ln_tensor_fill_(ctx, *out, value);
    if (st != LN_OK) { ln_tensor_release(*out); *out = NULL; }
    return st;
}

ln_status ln_tensor_empty_like(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out) {
    return ln_tensor_empty(ctx, t->dtype, t->storage->device, t->ndim, t->shape, out);
}

ln_status ln_tensor_zeros_like(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out) {
    return ln_tensor_zeros(ctx, t->dtype, t->storage->device, t->ndim, t->shape, out);
}

void ln_tensor_retain(ln_tensor *t) { if (t) t->refcount++; }

void ln_tensor_release(ln_tensor *t) {
    if (!t || --t->refcount > 0) return;
    ln_tensor_release(t->grad);
    ln_node_release(t->grad_fn);
    storage_release(t->storage);
    free(t);
}

int64_t ln_tensor_numel(const ln_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool ln_tensor_is_contiguous(const ln_tensor *t) {
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0) return true; /* no elements: any strides will do */
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

ln_device ln_tensor_device(const ln_tensor *t) { return t->storage->device; }

void *ln_tensor_data(const ln_tensor *t) {
    return (char *)t->storage->data + (size_t)t->offset * ln_dtype_size(t->dtype);
}

bool ln_tensor_same_shape(const ln_tensor *a, const ln_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

/* ------------------------------------------------------------ views */
ln_status ln_tensor_view(ln_ctx *ctx, const ln_tensor *t, int ndim, const int64_t *shape,
                         ln_tensor **out) {
    *out = NULL;
    if (ndim < 0 || ndim > LN_MAX_DIMS)
        return ln_fail(ctx, LN_ERR_SHAPE, "reshape: tensors have 0 to %d dimensions, got %d", LN_MAX_DIMS, ndim);
    int64_t numel = ln_tensor_numel(t), known = 1, resolved[LN_MAX_DIMS];
    int infer = -1;
    char want[256], have[256];
    ln_shape_format(ndim, shape, want, sizeof want);
    ln_shape_format(t->ndim, t->shape, have, sizeof have);
    for (int i = 0; i < ndim; i++) {
        resolved[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) return ln_fail(ctx, LN_ERR_SHAPE, "reshape: only one dimension of %s may be -1", want);
            infer = i;
        } else if (shape[i] < 0) {
            return ln_fail(ctx, LN_ERR_SHAPE, "reshape: invalid shape %s", want);
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            return ln_fail(ctx, LN_ERR_SHAPE, "reshape: cannot view %s (%lld elements) as %s", have, (long long)numel, want);
        resolved[infer] = numel / known;
        known *= resolved[infer];
    }
    if (known != numel)
        return ln_fail(ctx, LN_ERR_SHAPE, "reshape: cannot view %s (%lld elements) as %s", have, (long long)numel, want);
    if (!ln_tensor_is_contiguous(t))
        return ln_fail(ctx, LN_ERR_STATE, "reshape: view of non-contiguous tensor %s; call contiguous() first", have);
    return tensor_wrap(ctx, t->storage, t->dtype, ndim, resolved, NULL, t->offset, out);
}

static ln_status check_dim(ln_ctx *ctx, const char *op, const ln_tensor *t, int dim) {
    if (dim < 0 || dim >= t->ndim) {
        char have[256];
        ln_shape_format(t->ndim, t->shape, have, sizeof have);
        return ln_fail(ctx, LN_ERR_ARG, "%s: dimension %d out of range for shape %s (dimensions are 1-based in Lua, 0-based in C)",
                       op, dim, have);
    }
    return LN_OK;
}

ln_status ln_tensor_transpose_view(ln_ctx *ctx, const ln_tensor *t, int d0, int d1,
                                   ln_tensor **out) {
    *out = NULL;
    LN_TRY(check_dim(ctx, "transpose", t, d0));
    LN_TRY(check_dim(ctx, "transpose", t, d1));
    int64_t shape[LN_MAX_DIMS], strides[LN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    shape[d0] = t->shape[d1]; shape[d1] = t->shape[d0];
    strides[d0] = t->strides[d1]; strides[d1] = t->strides[d0];
    return tensor_wrap(ctx, t->storage, t->dtype, t->ndim, shape, strides, t->offset, out);
}

ln_status ln_tensor_narrow_view(ln_ctx *ctx, const ln_tensor *t, int dim, int64_t start,
                                int64_t length, ln_tensor **out) {
    *out = NULL;
    LN_TRY(check_dim(ctx, "narrow", t, dim));
    if (start < 0 || length < 0 || start + length > t->shape[dim])
        return ln_fail(ctx, LN_ERR_ARG, "narrow: range [%lld, %lld) out of bounds for dimension %d of size %lld",
                       (long long)start, (long long)(start + length), dim, (long long)t->shape[dim]);
    int64_t shape[LN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[dim] = length;
    return tensor_wrap(ctx, t->storage, t->dtype, t->ndim, shape, t->strides,
                       t->offset + start * t->strides[dim], out);
}

ln_status ln_tensor_detach(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out) {
    return tensor_wrap(ctx, t->storage, t->dtype, t->ndim, t->shape, t->strides, t->offset, out);
}

/* ------------------------------------------------------------ element access (CPU) */
static inline double get_elem(const void *base, ln_dtype dt, int64_t i) {
    switch (dt) {
    case LN_F32: return ((const float *)base)[i];
    case LN_F64: return ((const double *)base)[i];
    case LN_I64: return (double)((const int64_t *)base)[i];
    case LN_I32: return ((const int32_t *)base)[i];
    case LN_U8: return ((const uint8_t *)base)[i];
    default: return 0;
    }
}

static inline void set_elem(void *base, ln_dtype dt, int64_t i, double v) {
    switch (dt) {
    case LN_F32: ((float *)base)[i] = (float)v; break;
    case LN_F64: ((double *)base)[i] = v; break;
    case LN_I64: ((int64_t *)base)[i] = (int64_t)v; break;
    case LN_I32: ((int32_t *)base)[i] = (int32_t)v; break;
    case LN_U8: ((uint8_t *)base)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); break;
    default: break;
    }
}

/* Offset (elements) of the linear row-major index i within view t. */
static inline int64_t strided_offset(const ln_tensor *t, int64_t i) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t sz = t->shape[d];
        off += (i % sz) * t->strides[d];
        i /= sz;
    }
    return off;
}

/* CPU-only strided copy with dtype conversion; both views have the same numel. */
static void cpu_copy(ln_tensor *dst, const ln_tensor *src) {
    int64_t n = ln_tensor_numel(dst);
    char *db = ln_tensor_data(dst);
    const char *sb = ln_tensor_data(src);
    bool dc = ln_tensor_is_contiguous(dst), sc = ln_tensor_is_contiguous(src);
    if (dc && sc && dst->dtype == src->dtype) {
        memmove(db, sb, (size_t)n * ln_dtype_size(dst->dtype));
        return;
    }
    if (dst->dtype == LN_F32 && src->dtype == LN_F32) {
        float *d = (float *)db;
        const float *s = (const float *)sb;
        for (int64_t i = 0; i < n; i++)
            d[dc ? i : strided_offset(dst, i)] = s[sc ? i : strided_offset(src, i)];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        set_elem(db, dst->dtype, dc ? i : strided_offset(dst, i),
                 get_elem(sb, src->dtype, sc ? i : strided_offset(src, i)));
}

ln_status ln_tensor_to_f64(ln_ctx *ctx, const ln_tensor *t, double *values) {
    int64_t n = ln_tensor_numel(t);
    if (t->storage->device.type != LN_CPU) {
        ln_tensor *host;
        LN_TRY(ln_tensor_to_device(ctx, t, ln_cpu(), &host));
        ln_status st = ln_tensor_to_f64(ctx, host, values);
        ln_tensor_release(host);
        return st;
    }
    const char *b = ln_tensor_data(t);
    bool c = ln_tensor_is_contiguous(t);
    for (int64_t i = 0; i < n; i++) values[i] = get_elem(b, t->dtype, c ? i : strided_offset(t, i));
    return LN_OK;
}

ln_status ln_tensor_from_f64(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape,
                             const double *values, ln_tensor **out) {
    LN_TRY(ln_tensor_empty(ctx, dt, ln_cpu(), ndim, shape, out));
    int64_t n = ln_tensor_numel(*out);
    void *b = ln_tensor_data(*out);
    for (int64_t i = 0; i < n; i++) set_elem(b, dt, i, values[i]);
    return LN_OK;
}

ln_status ln_tensor_item(ln_ctx *ctx, const ln_tensor *t, double *value) {
    if (ln_tensor_numel(t) != 1) {
        char have[256];
        ln_shape_format(t->ndim, t->shape, have, sizeof have);
        return ln_fail(ctx, LN_ERR_SHAPE, "item: tensor of shape %s has %lld elements, expected exactly 1",
                       have, (long long)ln_tensor_numel(t));
    }
    return ln_tensor_to_f64(ctx, t, value);
}

/* ------------------------------------------------------------ copies */
/* Same dtype, both on the device: one memcpy when both are contiguous, otherwise the
 * strided-copy kernel. */
static ln_status device_copy(ln_ctx *ctx, ln_tensor *dst, const ln_tensor *src) {
    size_t es = ln_dtype_size(dst->dtype);
    if (ln_tensor_is_contiguous(dst) && ln_tensor_is_contiguous(src))
        return ln_cuda_memcpy_d2d(ctx, ln_tensor_data(dst), ln_tensor_data(src),
                                  (size_t)ln_tensor_numel(dst) * es);
    return ln_cuda_strided_copy(ctx, es, dst->ndim, dst->shape, ln_tensor_data(dst), dst->strides,
                                ln_tensor_data(src), src->strides);
}

ln_status ln_tensor_copy_(ln_ctx *ctx, ln_tensor *dst, const ln_tensor *src) {
    if (ln_tensor_numel(dst) != ln_tensor_numel(src) || !ln_tensor_same_shape(dst, src)) {
        char a[256], b[256];
        ln_shape_format(dst->ndim, dst->shape, a, sizeof a);
        ln_shape_format(src->ndim, src->shape, b, sizeof b);
        return ln_fail(ctx, LN_ERR_SHAPE, "copy: destination %s and source %s differ in shape", a, b);
    }
    bool dcpu = dst->storage->device.type == LN_CPU, scpu = src->storage->device.type == LN_CPU;
    if (dcpu && scpu) { cpu_copy(dst, src); return LN_OK; }
    if (!dcpu && !scpu && dst->dtype == src->dtype) return device_copy(ctx, dst, src);
    /* Between host and device, or converting dtypes: strided views are made contiguous
     * on their own side, dtypes are converted on the host. */
    size_t nbytes = (size_t)ln_tensor_numel(dst) * ln_dtype_size(dst->dtype);
    ln_status st;
    ln_tensor *hs = NULL, *hd = NULL, *dd = NULL;
    if (scpu) {
        hs = (ln_tensor *)src;
        ln_tensor_retain(hs);
    } else {
        ln_tensor *sc = NULL;
        LN_CHECK(st, ln_tensor_contiguous(ctx, src, &sc), done); /* on the device */
        st = ln_tensor_empty(ctx, src->dtype, ln_cpu(), src->ndim, src->shape, &hs);
        if (st == LN_OK)
            st = ln_cuda_memcpy_d2h(ctx, ln_tensor_data(hs), ln_tensor_data(sc),
                                    (size_t)ln_tensor_numel(sc) * ln_dtype_size(sc->dtype));
        ln_tensor_release(sc);
        if (st != LN_OK) goto done;
    }
    if (dcpu) {
        cpu_copy(dst, hs);
        st = LN_OK;
        goto done;
    }
    if (hs->dtype == dst->dtype && ln_tensor_is_contiguous(hs)) {
        hd = hs;
        ln_tensor_retain(hd);
    } else {
        LN_CHECK(st, ln_tensor_empty(ctx, dst->dtype, ln_cpu(), dst->ndim, dst->shape, &hd), done);
        cpu_copy(hd, hs);
    }
    if (ln_tensor_is_contiguous(dst) && hd->storage->pinned) { /* queued, the host goes on */
        st = ln_cuda_memcpy_h2d_pinned(ctx, ln_tensor_data(dst), ln_tensor_data(hd), nbytes);
    } else if (ln_tensor_is_contiguous(dst)) {
        st = ln_cuda_memcpy_h2d(ctx, ln_tensor_data(dst), ln_tensor_data(hd), nbytes);
    } else { /* strided device destination: a contiguous device stage, then the kernel */
        LN_CHECK(st, ln_tensor_empty(ctx, dst->dtype, dst->storage->device, dst->ndim, dst->shape, &dd), done);
        LN_CHECK(st, ln_cuda_memcpy_h2d(ctx, ln_tensor_data(dd), ln_tensor_data(hd), nbytes), done);
        st = device_copy(ctx, dst, dd);
    }
done:
    ln_tensor_release(hs);
    ln_tensor_release(hd);
    ln_tensor_release(dd);
    return st;
}

ln_status ln_tensor_clone(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out) {
    LN_TRY(ln_tensor_empty_like(ctx, t, out));
    ln_status st = ln_tensor_copy_(ctx, *out, t);
    if (st != LN_OK) { ln_tensor_release(*out); *out = NULL; }
    return st;
}

ln_status ln_tensor_contiguous(ln_ctx *ctx, const ln_tensor *t, ln_tensor **out) {
    if (ln_tensor_is_contiguous(t)) {
        *out = (ln_tensor *)t;
        ln_tensor_retain(*out);
        return LN_OK;
    }
    return ln_tensor_clone(ctx, t, out);
}

ln_status ln_tensor_to_dtype(ln_ctx *ctx, const ln_tensor *t, ln_dtype dt, ln_tensor **out) {
    LN_TRY(ln_tensor_empty(ctx, dt, t->storage->device, t->ndim, t->shape, out));
    ln_status st = ln_tensor_copy_(ctx, *out, t);
    if (st != LN_OK) { ln_tensor_release(*out); *out = NULL; }
    return st;
}

ln_status ln_tensor_to_device(ln_ctx *ctx, const ln_tensor *t, ln_device dev, ln_tensor **out) {
    ln_tensor *src;
    LN_TRY(ln_tensor_contiguous(ctx, t, &src));
    ln_status st = ln_tensor_empty(ctx, t->dtype, dev, t->ndim, t->shape, out);
    if (st == LN_OK) {
        st = ln_tensor_copy_(ctx, *out, src);
        if (st != LN_OK) { ln_tensor_release(*out); *out = NULL; }
    }
    ln_tensor_release(src);
    return st;
}

ln_status ln_tensor_fill_(ln_ctx *ctx, ln_tensor *t, double value) {
    int64_t n = ln_tensor_numel(t);
    if (t->storage->device.type != LN_CPU) {
        ln_tensor *host;
        LN_TRY(ln_tensor_full(ctx, t->dtype, ln_cpu(), t->ndim, t->shape, value, &host));
        ln_status st = ln_tensor_copy_(ctx, t, host);
        ln_tensor_release(host);
        return st;
    }
    char *b = ln_tensor_data(t);
    bool c = ln_tensor_is_contiguous(t);
    if (c && t->dtype == LN_F32) {
        float v = (float)value, *d = (float *)b;
        for (int64_t i = 0; i < n; i++) d[i] = v;
    } else {
        for (int64_t i = 0; i < n; i++) set_elem(b, t->dtype, c ? i : strided_offset(t, i), value);
    }
    return LN_OK;
}

ln_status ln_tensor_add_(ln_ctx *ctx, ln_tensor *dst, const ln_tensor *src, double alpha) {
    if (!ln_tensor_same_shape(dst, src) || dst->dtype != src->dtype ||
        !ln_device_eq(dst->storage->device, src->storage->device)) {
        char a[300], b[300];
        ln_describe(dst, a, sizeof a);
        ln_describe(src, b, sizeof b);
        ln_status code = !ln_device_eq(dst->storage->device, src->storage->device) ? LN_ERR_DEVICE
                         : dst->dtype != src->dtype                                ? LN_ERR_DTYPE
                                                                                   : LN_ERR_SHAPE;
        return ln_fail(ctx, code, "add_: destination %s and source %s must match in shape, dtype and device", a, b);
    }
    if (!ln_tensor_is_contiguous(dst))
        return ln_fail(ctx, LN_ERR_STATE, "add_: destination must be contiguous");
    ln_tensor *s;
    LN_TRY(ln_tensor_contiguous(ctx, src, &s));
    int64_t n = ln_tensor_numel(dst);
    ln_status st = LN_OK;
    if (dst->storage->device.type == LN_CUDA) {
        st = dst->dtype == LN_F32
                 ? ln_cuda_axpy_f32(ctx, n, (float)alpha, ln_tensor_data(s), ln_tensor_data(dst))
                 : ln_fail(ctx, LN_ERR_UNSUPPORTED, "add_: CUDA tensors must be f32");
    } else if (dst->dtype == LN_F32) {
        float *d = ln_tensor_data(dst), a = (float)alpha;
        const float *x = ln_tensor_data(s);
        int nt = n >= 65536 ? ctx->num_threads : 1;
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) d[i] += a * x[i];
    } else if (dst->dtype == LN_F64) {
        double *d = ln_tensor_data(dst);
        const double *x = ln_tensor_data(s);
        for (int64_t i = 0; i < n; i++) d[i] += alpha * x[i];
    } else {
        st = ln_fail(ctx, LN_ERR_DTYPE, "add_: needs a floating tensor, got %s", ln_dtype_name(dst->dtype));
    }
    ln_tensor_release(s);
    return st;
}

/* ------------------------------------------------------------ random */
static inline double rand_unit(ln_ctx *ctx) { /* [0, 1) with 53 random bits */
    return (double)(ln_ctx_rand_u64(ctx) >> 11) * (1.0 / 9007199254740992.0);
}

static ln_status random_fill(ln_ctx *ctx, ln_tensor *t, bool normal, double a, double b) {
    if (!ln_dtype_is_float(t->dtype))
        return ln_fail(ctx, LN_ERR_DTYPE, "random fill needs a floating tensor, got %s", ln_dtype_name(t->dtype));
    int64_t n = ln_tensor_numel(t);
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!v) return ln_fail(ctx, LN_ERR_NOMEM, "out of memory in random fill");
    for (int64_t i = 0; i < n; i++) {
        if (!normal) { v[i] = a + (b - a) * rand_unit(ctx); continue; }
        /* Box-Muller, both values used */
        double u1 = rand_unit(ctx), u2 = rand_unit(ctx);
        double r = sqrt(-2.0 * log(1.0 - u1)), th = 2.0 * M_PI * u2;
        v[i] = a + b * r * cos(th);
        if (i + 1 < n) v[++i] = a + b * r * sin(th);
    }
    ln_tensor *host;
    ln_status st = ln_tensor_from_f64(ctx, t->dtype, t->ndim, t->shape, v, &host);
    free(v);
    if (st != LN_OK) return st;
    st = ln_tensor_copy_(ctx, t, host);
    ln_tensor_release(host);
    return st;
}

ln_status ln_tensor_uniform_(ln_ctx *ctx, ln_tensor *t, double lo, double hi) {
    return random_fill(ctx, t, false, lo, hi);
}

ln_status ln_tensor_normal_(ln_ctx *ctx, ln_tensor *t, double mean, double std) {
    return random_fill(ctx, t, true, mean, std);
}
