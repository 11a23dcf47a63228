/* Writing a .pth file in PyTorch's zip format: the value tree pickled in protocol 2
 * exactly as torch.save writes a state dict (a tensor is
 * torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride, False,
 * OrderedDict()), the id being ('storage', torch.<T>Storage, key, 'cpu', numel)),
 * each storage once in archive/data/<key> (tensors sharing a storage stay views of
 * one record), and archive/version. Written to `<path>.tmp.<pid>.<n>`, synced and
 * renamed over the target, so a failure leaves any previous file intact. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "pth_internal.h"
#include "atomic.h"

#define PTH_MAX_WRITE_DEPTH 1000

typedef struct out_storage {
    const ln_storage *src;  /* the tensor storage it stands for */
    ln_tensor *host;        /* the whole storage as a 1-D host tensor */
    const char *type_name;  /* "FloatStorage" */
} out_storage;

typedef struct pickler {
    ln_ctx *ctx;
    uint8_t *p;
    size_t n, cap;
    out_storage *st;
    size_t nst, cap_st;
} pickler;

static ln_status put(pickler *w, const void *data, size_t len) {
    if (len == 0) return LN_OK;
    if (len > w->cap - w->n) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->n < len) {
            if (cap > SIZE_MAX / 2) return ln_fail(w->ctx, LN_ERR_NOMEM, "pth: pickle too large");
            cap *= 2;
        }
        uint8_t *p = realloc(w->p, cap);
        if (!p) return ln_fail(w->ctx, LN_ERR_NOMEM, "pth: out of memory for the pickle");
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, data, len);
    w->n += len;
    return LN_OK;
}

static ln_status put_op(pickler *w, uint8_t op) { return put(w, &op, 1); }

static ln_status put_int(pickler *w, int64_t v) {
    uint8_t b[10];
    if (v >= 0 && v < 256) {
        b[0] = 'K'; b[1] = (uint8_t)v;
        return put(w, b, 2);
    }
    if (v >= 0 && v < 65536) {
        b[0] = 'M'; b[1] = (uint8_t)v; b[2] = (uint8_t)(v >> 8);
        return put(w, b, 3);
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        b[0] = 'J';
        for (int i = 0; i < 4; i++) b[1 + i] = (uint8_t)(u >> (8 * i));
        return put(w, b, 5);
    }
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    b[0] = 0x8a; b[1] = 8; /* LONG1, 8 bytes two's complement */
    for (int i = 0; i < 8; i++) b[2 + i] = (uint8_t)(u >> (8 * i));
    return put(w, b, 10);
}

static bool valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || len > n - i || (len == 2 && c < 0xc2)) return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return false;
        i += len;
    }
    return true;
}

static ln_status put_str(pickler *w, uint8_t op, const char *s, size_t len) {
    if (len > UINT32_MAX) return ln_fail(w->ctx, LN_ERR_UNSUPPORTED, "pth: a string over 4 GiB");
    uint8_t b[5] = {op};
    for (int i = 0; i < 4; i++) b[1 + i] = (uint8_t)(len >> (8 * i));
    LN_TRY(put(w, b, 5));
    return put(w, s, len);
}

static ln_status put_text(pickler *w, const char *s) { return put_str(w, 'X', s, strlen(s)); }

static ln_status put_global(pickler *w, const char *module, const char *name) {
    LN_TRY(put_op(w, 'c'));
    LN_TRY(put(w, module, strlen(module)));
    LN_TRY(put_op(w, '\n'));
    LN_TRY(put(w, name, strlen(name)));
    return put_op(w, '\n');
}

static ln_status put_int_tuple(pickler *w, int n, const int64_t *v) {
    if (n == 0) return put_op(w, ')');
    if (n > 3) LN_TRY(put_op(w, '('));
    for (int i = 0; i < n; i++) LN_TRY(put_int(w, v[i]));
    return put_op(w, n > 3 ? 't' : (uint8_t)(0x84 + n));
}

/* ------------------------------------------------------------ tensors */
static const char *storage_type_name(ln_dtype dt) {
    switch (dt) {
    case LN_F32: return "FloatStorage";
    case LN_F64: return "DoubleStorage";
    case LN_I64: return "LongStorage";
    case LN_I32: return "IntStorage";
    case LN_U8: return "ByteStorage";
    default: return NULL;
    }
}

/* The index of t's storage in the output, adding it (copied to the host) if new. */
static ln_status storage_of(pickler *w, const ln_tensor *t, size_t *index) {
    for (size_t i = 0; i < w->nst; i++)
        if (w->st[i].src == t->storage && w->st[i].host->dtype == t->dtype) { *index = i; return LN_OK; }
    const char *type_name = storage_type_name(t->dtype);
    if (!type_name) return ln_fail(w->ctx, LN_ERR_DTYPE, "pth: cannot write a tensor of dtype %s", ln_dtype_name(t->dtype));
    if (w->nst == w->cap_st) {
        size_t cap = w->cap_st ? 2 * w->cap_st : 64;
        out_storage *p = realloc(w->st, cap * sizeof *p);
        if (!p) return ln_fail(w->ctx, LN_ERR_NOMEM, "pth: out of memory");
        w->st = p;
        w->cap_st = cap;
    }
    ln_tensor whole = *t; /* the storage as a 1-D tensor */
    whole.ndim = 1;
    whole.shape[0] = (int64_t)(t->storage->nbytes / ln_dtype_size(t->dtype));
    whole.strides[0] = 1;
    whole.offset = 0;
    whole.requires_grad = false;
    whole.grad = NULL;
    whole.grad_fn = NULL;
    ln_tensor *host;
    if (t->storage->device.type == LN_CPU) {
        LN_TRY(ln_tensor_detach(w->ctx, &whole, &host));
    } else {
        LN_TRY(ln_tensor_to_device(w->ctx, &whole, ln_cpu(), &host));
    }
    w->st[w->nst] = (out_storage){.src = t->storage, .host = host, .type_name = type_name};
    *index = w->nst++;
    return LN_OK;
}

static ln_status put_tensor(pickler *w, const ln_tensor *t) {
    for (int d = 0; d < t->ndim; d++)
        if (t->strides[d] < 0)
            return ln_fail(w->ctx, LN_ERR_UNSUPPORTED, "pth: cannot write a tensor with negative strides");
    size_t s = 0;
    LN_TRY(storage_of(w, t, &s));
    char key[32];
    snprintf(key, sizeof key, "%zu", s);
    LN_TRY(put_global(w, "torch._utils", "_rebuild_tensor_v2"));
    LN_TRY(put_op(w, '('));
    LN_TRY(put_op(w, '('));                        /* persistent id */
    LN_TRY(put_text(w, "storage"));
    LN_TRY(put_global(w, "torch", w->st[s].type_name));
    LN_TRY(put_text(w, key));
    LN_TRY(put_text(w, "cpu"));
    LN_TRY(put_int(w, w->st[s].host->shape[0]));
    LN_TRY(put_op(w, 't'));
    LN_TRY(put_op(w, 'Q'));                        /* BINPERSID */
    LN_TRY(put_int(w, t->offset));
    LN_TRY(put_int_tuple(w, t->ndim, t->shape));
    LN_TRY(put_int_tuple(w, t->ndim, t->strides));
    LN_TRY(put_op(w, 0x89));                       /* requires_grad False */
    LN_TRY(put_global(w, "collections", "OrderedDict"));
    LN_TRY(put_op(w, ')'));
    LN_TRY(put_op(w, 'R'));                        /* no backward hooks */
    LN_TRY(put_op(w, 't'));
    return put_op(w, 'R');
}

/* ------------------------------------------------------------ values */
static ln_status put_value(pickler *w, const ln_pth_value *v, int depth) {
    if (!v) return ln_fail(w->ctx, LN_ERR_ARG, "pth: NULL value in the tree");
    if (depth > PTH_MAX_WRITE_DEPTH)
        return ln_fail(w->ctx, LN_ERR_ARG, "pth: values nested deeper than %d (a cycle?)", PTH_MAX_WRITE_DEPTH);
    switch (v->kind) {
    case LN_PTH_NONE: return put_op(w, 'N');
    case LN_PTH_BOOL: return put_op(w, v->i ? 0x88 : 0x89);
    case LN_PTH_INT: return put_int(w, v->i);
    case LN_PTH_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v->f, sizeof bits);
        uint8_t b[9] = {'G'};
        for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
        return put(w, b, 9);
    }
    case LN_PTH_STR:
        if (!valid_utf8((const uint8_t *)v->str, v->len))
            return ln_fail(w->ctx, LN_ERR_ARG, "pth: string '%.40s' is not valid UTF-8", v->str);
        return put_str(w, 'X', v->str, v->len);
    case LN_PTH_BYTES: return put_str(w, 'B', v->str, v->len);
    case LN_PTH_LIST:
    case LN_PTH_TUPLE:
        LN_TRY(put_op(w, v->kind == LN_PTH_LIST ? ']' : '('));
        if (v->kind == LN_PTH_LIST && v->n) LN_TRY(put_op(w, '('));
        for (size_t i = 0; i < v->n; i++) LN_TRY(put_value(w, v->items[i], depth + 1));
        if (v->kind == LN_PTH_TUPLE) return put_op(w, 't');
        return v->n ? put_op(w, 'e') : LN_OK;
    case LN_PTH_DICT:
        if (v->ordered) {
            LN_TRY(put_global(w, "collections", "OrderedDict"));
            LN_TRY(put_op(w, ')'));
            LN_TRY(put_op(w, 'R'));
        } else {
            LN_TRY(put_op(w, '}'));
        }
        for (size_t i = 0; i < v->n; i += 1000) { /* SETITEMS in batches, as pickle does */
            size_t end = v->n - i < 1000 ? v->n : i + 1000;
            LN_TRY(put_op(w, '('));
            for (size_t k = i; k < end; k++) {
                LN_TRY(put_value(w, v->items[2 * k], depth + 1));
                LN_TRY(put_value(w, v->items[2 * k + 1], depth + 1));
            }
            LN_TRY(put_op(w, 'u'));
        }
        return LN_OK;
    case LN_PTH_TENSOR:
        if (!v->tensor) return ln_fail(w->ctx, LN_ERR_ARG, "pth: a tensor value without a tensor");
        return put_tensor(w, v->tensor);
    default:
        return ln_fail(w->ctx, LN_ERR_ARG, "pth: cannot write a value of kind %d", (int)v->kind);
    }
}

/* ------------------------------------------------------------ the file */
static ln_status write_archive(ln_ctx *ctx, FILE *f, const pickler *w) {
    pth_zip_writer z = {.f = f};
    ln_status st = pth_zipw_add(ctx, &z, "archive/data.pkl", w->p, w->n);
    for (size_t i = 0; i < w->nst && st == LN_OK; i++) {
        char name[64];
        snprintf(name, sizeof name, "archive/data/%zu", i);
        const ln_tensor *h = w->st[i].host;
        st = pth_zipw_add(ctx, &z, name, ln_tensor_data(h),
                          (size_t)h->shape[0] * ln_dtype_size(h->dtype));
    }
    if (st == LN_OK) st = pth_zipw_add(ctx, &z, "archive/version", "3\n", 2);
    if (st == LN_OK) st = pth_zipw_finish(ctx, &z);
    pth_zipw_free(&z);
    return st;
}


ln_status ln_pth_save_file(ln_ctx *ctx, const char *path, const ln_pth_value *root) {
    if (!path || !*path || !root) return ln_fail(ctx, LN_ERR_ARG, "pth: save needs a path and a value");
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1)
        return ln_fail(ctx, LN_ERR_UNSUPPORTED, "pth: writing from a big-endian host is not supported");
    pickler w = {.ctx = ctx};
    ln_status st = put(&w, "\x80\x02", 2);
    if (st == LN_OK) st = put_value(&w, root, 0);
    if (st == LN_OK) st = put_op(&w, '.');
    char *tmp = NULL;
    int fd = -1;
    if (st == LN_OK) st = ln_io_create_temp(ctx, "pth", path, &tmp, &fd);
    if (st == LN_OK) {
        FILE *f = fdopen(fd, "wb");
        if (!f) {
            st = ln_fail(ctx, LN_ERR_IO, "pth: cannot write '%s': %s", tmp, strerror(errno));
            close(fd);
        } else {
            st = write_archive(ctx, f, &w);
            if (st == LN_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
                st = ln_fail(ctx, LN_ERR_IO, "pth: cannot write '%s': %s", tmp, strerror(errno));
            if (fclose(f) != 0 && st == LN_OK)
                st = ln_fail(ctx, LN_ERR_IO, "pth: cannot write '%s': %s", tmp, strerror(errno));
        }
        if (st == LN_OK && rename(tmp, path) != 0)
            st = ln_fail(ctx, LN_ERR_IO, "pth: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        if (st == LN_OK) ln_io_sync_parent_dir(path);
        else unlink(tmp);
    }
    free(tmp);
    for (size_t i = 0; i < w.nst; i++) ln_tensor_release(w.st[i].host);
    free(w.st);
    free(w.p);
    return st;
}
