/* safetensors reader and writer (see lunet/io.h for the format and the guarantees).
 *
 * Writer: the header JSON is built in memory (names and metadata escaped, padded with
 * spaces so the data starts at a multiple of 8), then the header and each tensor's
 * bytes go through a checked sink; ln_safetensors_save wraps it in the temporary-file,
 * fsync and rename dance. Reader: the header length is checked against the file size
 * before anything is allocated, the header is parsed by the strict parser of json.h
 * and validated entry by entry, the tensors must tile the data section exactly, and
 * only then are tensors allocated and read (their total size is bounded by the file's). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../internal.h"
#include "lunet/io.h"
#include "json.h"
#include "atomic.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

#define MAX_HEADER_BYTES 100000000u /* as the reference implementation */
#define META_KEY "__metadata__"

/* ------------------------------------------------------------ dtypes */
typedef struct st_dtype {
    const char *name;
    int elem_size;
    ln_dtype dt;   /* what lunet holds it as */
    bool writable; /* lunet writes this dtype name for dt */
} st_dtype;

static const st_dtype DTYPES[] = {
    {"F32", 4, LN_F32, true}, {"F64", 8, LN_F64, true}, {"I64", 8, LN_I64, true},
    {"I32", 4, LN_I32, true}, {"U8", 1, LN_U8, true},
    {"F16", 2, LN_F32, false}, {"BF16", 2, LN_F32, false},
};
/* valid safetensors dtypes that lunet cannot hold */
static const char *const UNSUPPORTED[] = {"BOOL", "I8", "I16", "U16", "U32", "U64",
                                          "F8_E4M3", "F8_E5M2", NULL};

static const st_dtype *dtype_by_name(const char *name) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0) return &DTYPES[i];
    return NULL;
}

static const char *dtype_write_name(ln_dtype dt) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].writable && DTYPES[i].dt == dt) return DTYPES[i].name;
    return NULL;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F) bits = sign | 0x7F800000u | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else { /* subnormal: normalise */
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ------------------------------------------------------------ growable text buffer */
typedef struct strbuf {
    char *s;
    size_t n, cap;
    bool oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = true; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt(strbuf *b, const char *fmt, long long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    sb_add(b, tmp, (size_t)n);
}

/* A JSON string literal of s (UTF-8 kept as is; quotes, backslashes, controls escaped). */
static void sb_json_string(strbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"') sb_add(b, "\\\"", 2);
        else if (*p == '\\') sb_add(b, "\\\\", 2);
        else if (*p < 0x20) sb_fmt(b, "\\u%04llx", (long long)*p);
        else sb_add(b, (const char *)p, 1);
    }
    sb_add(b, "\"", 1);
}

/* ------------------------------------------------------------ writer */
/* The checked byte sink: every write is checked; fail_after > 0 simulates ENOSPC. */
typedef struct sink {
    FILE *f;
    const char *what;
    int64_t written, fail_after;
} sink;

static ln_status sink_write(ln_ctx *ctx, sink *k, const void *buf, size_t n) {
    size_t allowed = n;
    if (k->fail_after > 0 && k->written + (int64_t)n > k->fail_after)
        allowed = (size_t)(k->fail_after - k->written);
    size_t done = allowed ? fwrite(buf, 1, allowed, k->f) : 0;
    k->written += (int64_t)done;
    if (done == n) return LN_OK;
    int err = done < allowed ? errno : ENOSPC;
    return ln_fail(ctx, LN_ERR_IO, "save_safetensors: writing '%s' failed after %lld bytes: %s",
                   k->what, (long long)k->written, strerror(err ? err : EIO));
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks names (or keys) for NULL, UTF-8 and duplicates. */
static ln_status check_names(ln_ctx *ctx, int n, const char **names, const char *what,
                             const char *where) {
    for (int i = 0; i < n; i++) {
        if (!names[i]) return ln_fail(ctx, LN_ERR_ARG, "save_safetensors: %s %d of '%s' is NULL", what, i + 1, where);
        if (!ln_utf8_valid(names[i], strlen(names[i])))
            return ln_fail(ctx, LN_ERR_ARG, "save_safetensors: %s %d of '%s' is not valid UTF-8", what, i + 1, where);
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return ln_fail(ctx, LN_ERR_ARG, "save_safetensors: duplicate %s '%s' for '%s'", what, names[i], where);
    return LN_OK;
}

static ln_status check_inputs(ln_ctx *ctx, const char *what, int n_tensors,
                              const ln_named_tensor *tensors, int n_meta, const ln_meta_entry *meta) {
    if (n_tensors < 0 || n_meta < 0 || (n_tensors && !tensors) || (n_meta && !meta))
        return ln_fail(ctx, LN_ERR_ARG, "save_safetensors: bad tensor or metadata list for '%s'", what);
    int n = n_tensors > n_meta ? n_tensors : n_meta;
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names) return ln_fail(ctx, LN_ERR_NOMEM, "save_safetensors: out of memory");
    ln_status st = LN_OK;
    for (int i = 0; i < n_tensors && st == LN_OK; i++) {
        names[i] = tensors[i].name;
        if (!tensors[i].tensor)
            st = ln_fail(ctx, LN_ERR_ARG, "save_safetensors: tensor '%s' for '%s' is NULL",
                         tensors[i].name ? tensors[i].name : "?", what);
        else if (tensors[i].name && (tensors[i].name[0] == '\0' || strcmp(tensors[i].name, META_KEY) == 0))
            st = ln_fail(ctx, LN_ERR_ARG, "save_safetensors: '%s' cannot name a tensor (in '%s')",
                         tensors[i].name, what);
    }
    if (st == LN_OK) st = check_names(ctx, n_tensors, names, "tensor name", what);
    for (int i = 0; i < n_meta && st == LN_OK; i++) {
        names[i] = meta[i].key;
        if (!meta[i].value || !ln_utf8_valid(meta[i].value, strlen(meta[i].value)))
            st = ln_fail(ctx, LN_ERR_ARG, "save_safetensors: metadata value of '%s' for '%s' is %s",
                         meta[i].key ? meta[i].key : "?", what, meta[i].value ? "not valid UTF-8" : "NULL");
    }
    if (st == LN_OK) st = check_names(ctx, n_meta, names, "metadata key", what);
    free(names);
    return st;
}

static ln_status build_header(ln_ctx *ctx, int n_tensors, const ln_named_tensor *tensors,
                              int n_meta, const ln_meta_entry *meta, strbuf *b) {
    sb_add(b, "{", 1);
    bool first = true;
    if (n_meta > 0) {
        sb_str(b, "\"" META_KEY "\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_add(b, ",", 1);
            sb_json_string(b, meta[i].key);
            sb_add(b, ":", 1);
            sb_json_string(b, meta[i].value);
        }
        sb_add(b, "}", 1);
        first = false;
    }
    int64_t offset = 0;
    for (int i = 0; i < n_tensors; i++) {
        const ln_tensor *t = tensors[i].tensor;
        const char *dname = dtype_write_name(t->dtype);
        if (!dname) {
            free(b->s);
            return ln_fail(ctx, LN_ERR_DTYPE, "save_safetensors: tensor '%s' has dtype %s, which has no safetensors name",
                           tensors[i].name, ln_dtype_name(t->dtype));
        }
        int64_t nbytes = ln_tensor_numel(t) * (int64_t)ln_dtype_size(t->dtype);
        if (!first) sb_add(b, ",", 1);
        first = false;
        sb_json_string(b, tensors[i].name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, dname);
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) sb_fmt(b, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        sb_str(b, "],\"data_offsets\":[");
        sb_fmt(b, "%lld", (long long)offset);
        sb_fmt(b, ",%lld]}", (long long)(offset + nbytes));
        offset += nbytes;
    }
    sb_add(b, "}", 1);
    while (!b->oom && (8 + b->n) % 8 != 0) sb_add(b, " ", 1);
    if (b->oom) {
        free(b->s);
        return ln_fail(ctx, LN_ERR_NOMEM, "save_safetensors: out of memory building the header");
    }
    return LN_OK;
}

/* One tensor's bytes: a contiguous CPU view of it, written in one go. */
static ln_status write_tensor(ln_ctx *ctx, sink *k, const ln_tensor *t) {
    ln_tensor *host = NULL, *c = NULL;
    ln_status st;
    if (ln_tensor_device(t).type != LN_CPU) LN_CHECK(st, ln_tensor_to_device(ctx, t, ln_cpu(), &host), done);
    LN_CHECK(st, ln_tensor_contiguous(ctx, host ? host : t, &c), done);
    st = sink_write(ctx, k, ln_tensor_data(c), (size_t)ln_tensor_numel(c) * ln_dtype_size(c->dtype));
done:
    ln_tensor_release(c);
    ln_tensor_release(host);
    return st;
}

/* Inputs already checked by check_inputs. */
static ln_status write_all(ln_ctx *ctx, sink *k, int n_tensors, const ln_named_tensor *tensors,
                           int n_meta, const ln_meta_entry *meta) {
    strbuf b = {0};
    LN_TRY(build_header(ctx, n_tensors, tensors, n_meta, meta, &b));
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b.n >> (8 * i));
    ln_status st = sink_write(ctx, k, len8, 8);
    if (st == LN_OK) st = sink_write(ctx, k, b.s, b.n);
    free(b.s);
    for (int i = 0; i < n_tensors && st == LN_OK; i++) st = write_tensor(ctx, k, tensors[i].tensor);
    if (st == LN_OK && fflush(k->f) != 0)
        st = ln_fail(ctx, LN_ERR_IO, "save_safetensors: writing '%s' failed: %s", k->what, strerror(errno));
    return st;
}

ln_status ln_safetensors_write(ln_ctx *ctx, FILE *f, const char *what, int n_tensors,
                               const ln_named_tensor *tensors, int n_meta,
                               const ln_meta_entry *meta) {
    if (!f) return ln_fail(ctx, LN_ERR_ARG, "save_safetensors: stream is NULL");
    sink k = {f, what ? what : "(stream)", 0, 0};
    LN_TRY(check_inputs(ctx, k.what, n_tensors, tensors, n_meta, meta));
    return write_all(ctx, &k, n_tensors, tensors, n_meta, meta);
}


ln_status ln_safetensors_save(ln_ctx *ctx, const char *path, int n_tensors,
                              const ln_named_tensor *tensors, int n_meta,
                              const ln_meta_entry *meta, const ln_save_opts *opts) {
    if (!path || !*path) return ln_fail(ctx, LN_ERR_ARG, "save_safetensors: path is empty");
    LN_TRY(check_inputs(ctx, path, n_tensors, tensors, n_meta, meta));
    char *tmp = NULL;
    int fd = -1;
    LN_TRY(ln_io_create_temp(ctx, "save_safetensors", path, &tmp, &fd));
    ln_status st = LN_OK;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        st = ln_fail(ctx, LN_ERR_IO, "save_safetensors: cannot open '%s': %s", tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    sink k = {f, path, 0, opts ? opts->fail_after_bytes : 0};
    st = write_all(ctx, &k, n_tensors, tensors, n_meta, meta);
    if (st == LN_OK && fsync(fileno(f)) != 0)
        st = ln_fail(ctx, LN_ERR_IO, "save_safetensors: syncing '%s' failed: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && st == LN_OK)
        st = ln_fail(ctx, LN_ERR_IO, "save_safetensors: closing '%s' failed: %s", tmp, strerror(errno));
    if (st != LN_OK) goto fail;
    if (rename(tmp, path) != 0) {
        st = ln_fail(ctx, LN_ERR_IO, "save_safetensors: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(tmp);
    ln_io_sync_parent_dir(path);
    return LN_OK;
fail:
    unlink(tmp);
    free(tmp);
    return st;
}

/* ------------------------------------------------------------ reader */
typedef struct entry {
    const char *name; /* points into the parsed tree */
    const st_dtype *dtype;
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    int64_t begin, end;
} entry;

void ln_safetensors_free(ln_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) {
        free(st->names[i]);
        ln_tensor_release(st->tensors[i]);
    }
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st);
}

#define BAD(...) ln_fail(ctx, LN_ERR_IO, __VA_ARGS__)

/* A string that will be handed out as a C string: no NUL inside. */
static ln_status check_cstring(ln_ctx *ctx, const char *path, const ln_json *s, const char *what) {
    if (strlen(s->str) != s->len)
        return BAD("load_safetensors: '%s': %s at header byte %zu contains a NUL character", path, what, s->pos);
    return LN_OK;
}

static ln_status parse_uint_list(ln_ctx *ctx, const char *path, const char *name,
                                 const char *field, const ln_json *v, int max, int64_t *out, int *n) {
    if (v->kind != LN_JSON_ARRAY)
        return BAD("load_safetensors: '%s': tensor '%s': '%s' must be an array", path, name, field);
    if ((int64_t)v->n > max)
        return BAD("load_safetensors: '%s': tensor '%s': '%s' has %zu entries (at most %d)", path, name, field, v->n, max);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i].kind != LN_JSON_NUMBER || !v->items[i].is_uint)
            return BAD("load_safetensors: '%s': tensor '%s': '%s' entry %zu is not an integer in [0, 2^63)",
                       path, name, field, i + 1);
        out[i] = v->items[i].uint_value;
    }
    *n = (int)v->n;
    return LN_OK;
}

/* Validates one tensor entry {"dtype", "shape", "data_offsets"} against the data size. */
static ln_status parse_entry(ln_ctx *ctx, const char *path, const char *name, const ln_json *v,
                             int64_t data_bytes, entry *e) {
    if (v->kind != LN_JSON_OBJECT)
        return BAD("load_safetensors: '%s': tensor '%s' must be described by an object", path, name);
    const ln_json *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (size_t i = 0; i < v->n; i++) {
        const char *k = v->keys[i].str;
        const ln_json **slot = strcmp(k, "dtype") == 0 ? &dtype : strcmp(k, "shape") == 0 ? &shape
                             : strcmp(k, "data_offsets") == 0 ? &offsets : NULL;
        if (!slot)
            return BAD("load_safetensors: '%s': tensor '%s' has an unknown field '%s' "
                       "(valid: dtype, shape, data_offsets)", path, name, k);
        if (*slot) return BAD("load_safetensors: '%s': tensor '%s' has field '%s' twice", path, name, k);
        *slot = &v->items[i];
    }
    if (!dtype || !shape || !offsets)
        return BAD("load_safetensors: '%s': tensor '%s' lacks field '%s'", path, name,
                   !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (dtype->kind != LN_JSON_STRING)
        return BAD("load_safetensors: '%s': tensor '%s': 'dtype' must be a string", path, name);
    e->dtype = dtype_by_name(dtype->str);
    if (!e->dtype) {
        for (int i = 0; UNSUPPORTED[i]; i++)
            if (strcmp(UNSUPPORTED[i], dtype->str) == 0)
                return ln_fail(ctx, LN_ERR_UNSUPPORTED, "load_safetensors: '%s': tensor '%s' has dtype %s, "
                               "which lunet does not support (F32, F64, I64, I32, U8, F16, BF16)",
                               path, name, dtype->str);
        return BAD("load_safetensors: '%s': tensor '%s' has an unknown dtype '%.40s'", path, name, dtype->str);
    }
    int n_off = 0;
    int64_t off[2];
    LN_TRY(parse_uint_list(ctx, path, name, "shape", shape, LN_MAX_DIMS, e->shape, &e->ndim));
    LN_TRY(parse_uint_list(ctx, path, name, "data_offsets", offsets, 2, off, &n_off));
    if (n_off != 2)
        return BAD("load_safetensors: '%s': tensor '%s': 'data_offsets' must hold 2 numbers, got %d", path, name, n_off);
    e->begin = off[0];
    e->end = off[1];
    int64_t numel;
    char shp[256];
    ln_shape_format(e->ndim, e->shape, shp, sizeof shp);
    if (!ln_shape_numel(e->ndim, e->shape, &numel) || numel > INT64_MAX / e->dtype->elem_size)
        return BAD("load_safetensors: '%s': tensor '%s' has a shape %s whose size overflows", path, name, shp);
    if (e->begin > e->end || e->end > data_bytes)
        return BAD("load_safetensors: '%s': tensor '%s' has data_offsets [%lld, %lld] outside the "
                   "data section of %lld bytes (a truncated file?)", path, name, (long long)e->begin, (long long)e->end,
                   (long long)data_bytes);
    if (e->end - e->begin != numel * e->dtype->elem_size)
        return BAD("load_safetensors: '%s': tensor '%s' %s %s needs %lld bytes but data_offsets [%lld, %lld] "
                   "give %lld", path, name, e->dtype->name, shp, (long long)(numel * e->dtype->elem_size),
                   (long long)e->begin, (long long)e->end, (long long)(e->end - e->begin));
    return LN_OK;
}

static int cmp_entry_offset(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static ln_status parse_metadata(ln_ctx *ctx, const char *path, const ln_json *v, ln_safetensors *st) {
    if (v->kind != LN_JSON_OBJECT)
        return BAD("load_safetensors: '%s': \"" META_KEY "\" must be an object of strings", path);
    st->meta_keys = calloc(v->n ? v->n : 1, sizeof *st->meta_keys);
    st->meta_values = calloc(v->n ? v->n : 1, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values) return ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory");
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i].kind != LN_JSON_STRING)
            return BAD("load_safetensors: '%s': metadata '%s' is not a string", path, v->keys[i].str);
        LN_TRY(check_cstring(ctx, path, &v->keys[i], "a metadata key"));
        LN_TRY(check_cstring(ctx, path, &v->items[i], "a metadata value"));
        st->meta_keys[i] = strdup(v->keys[i].str);
        st->meta_values[i] = strdup(v->items[i].str);
        st->n_meta = (int)i + 1;
        if (!st->meta_keys[i] || !st->meta_values[i]) return ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory");
    }
    const char **sorted = malloc((v->n ? v->n : 1) * sizeof *sorted);
    if (!sorted) return ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory");
    memcpy(sorted, st->meta_keys, v->n * sizeof *sorted);
    qsort(sorted, v->n, sizeof *sorted, cmp_str_ptr);
    ln_status s = LN_OK;
    for (size_t i = 1; i < v->n && s == LN_OK; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            s = BAD("load_safetensors: '%s': metadata key '%s' appears twice", path, sorted[i]);
    free(sorted);
    return s;
}

/* Reads n bytes at the current position into dst (converting F16/BF16 to f32). */
static ln_status read_tensor_data(ln_ctx *ctx, const char *path, FILE *f, const entry *e, ln_tensor *t) {
    size_t n = (size_t)(e->end - e->begin);
    if (e->dtype->dt == LN_F32 && e->dtype->elem_size == 2) {
        uint16_t *buf = malloc(n ? n : 1);
        if (!buf) return ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory reading '%s'", e->name);
        if (fread(buf, 1, n, f) != n) {
            free(buf);
            return BAD("load_safetensors: '%s' is truncated (reading tensor '%s')", path, e->name);
        }
        float *dst = ln_tensor_data(t);
        bool bf = strcmp(e->dtype->name, "BF16") == 0;
        for (size_t i = 0; i < n / 2; i++) dst[i] = bf ? bf16_to_f32(buf[i]) : f16_to_f32(buf[i]);
        free(buf);
        return LN_OK;
    }
    if (fread(ln_tensor_data(t), 1, n, f) != n)
        return BAD("load_safetensors: '%s' is truncated (reading tensor '%s')", path, e->name);
    return LN_OK;
}

/* Validates the parsed header and reads the tensors; f is positioned at the data. */
static ln_status load_from_header(ln_ctx *ctx, const char *path, FILE *f, const ln_json *root,
                                  int64_t data_bytes, ln_safetensors *st) {
    if (root->kind != LN_JSON_OBJECT)
        return BAD("load_safetensors: '%s' is not a safetensors file (the header is not a JSON object)", path);
    entry *es = calloc(root->n ? root->n : 1, sizeof *es);
    if (!es) return ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory");
    ln_status s = LN_OK;
    int n = 0;
    bool seen_meta = false;
    for (size_t i = 0; i < root->n && s == LN_OK; i++) {
        const ln_json *key = &root->keys[i];
        if (strcmp(key->str, META_KEY) == 0 && key->len == strlen(META_KEY)) {
            if (seen_meta) s = BAD("load_safetensors: '%s': \"" META_KEY "\" appears twice", path);
            else s = parse_metadata(ctx, path, &root->items[i], st);
            seen_meta = true;
            continue;
        }
        s = check_cstring(ctx, path, key, "a tensor name");
        if (s == LN_OK) {
            es[n].name = key->str;
            s = parse_entry(ctx, path, key->str, &root->items[i], data_bytes, &es[n]);
            n++;
        }
    }
    if (s == LN_OK) {
        qsort(es, (size_t)n, sizeof *es, cmp_entry_name);
        for (int i = 1; i < n && s == LN_OK; i++)
            if (strcmp(es[i - 1].name, es[i].name) == 0)
                s = BAD("load_safetensors: '%s': tensor '%s' appears twice", path, es[i].name);
    }
    if (s == LN_OK) {
        qsort(es, (size_t)n, sizeof *es, cmp_entry_offset);
        int64_t at = 0;
        for (int i = 0; i < n && s == LN_OK; i++) {
            if (es[i].begin < at)
                s = BAD("load_safetensors: '%s': tensors '%s' and '%s' overlap (bytes [%lld, %lld) and [%lld, %lld))",
                        path, es[i - 1].name, es[i].name, (long long)es[i - 1].begin, (long long)es[i - 1].end,
                        (long long)es[i].begin, (long long)es[i].end);
            else if (es[i].begin > at)
                s = BAD("load_safetensors: '%s': bytes [%lld, %lld) of the data section belong to no tensor "
                        "(before '%s')", path, (long long)at, (long long)es[i].begin, es[i].name);
            at = es[i].end;
        }
        if (s == LN_OK && at != data_bytes)
            s = BAD("load_safetensors: '%s': the data section has %lld bytes but the tensors cover %lld "
                    "(trailing bytes or a foreign file)", path, (long long)data_bytes, (long long)at);
    }
    if (s == LN_OK) {
        st->names = calloc((size_t)(n ? n : 1), sizeof *st->names);
        st->tensors = calloc((size_t)(n ? n : 1), sizeof *st->tensors);
        if (!st->names || !st->tensors) s = ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory");
    }
    for (int i = 0; i < n && s == LN_OK; i++) {
        st->names[i] = strdup(es[i].name);
        if (!st->names[i]) { s = ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory"); break; }
        st->n_tensors = i + 1;
        s = ln_tensor_empty(ctx, es[i].dtype->dt, ln_cpu(), es[i].ndim, es[i].shape, &st->tensors[i]);
        if (s == LN_OK) s = read_tensor_data(ctx, path, f, &es[i], st->tensors[i]);
    }
    free(es);
    return s;
}

ln_status ln_safetensors_load(ln_ctx *ctx, const char *path, ln_safetensors **out) {
    if (!out) return ln_fail(ctx, LN_ERR_ARG, "load_safetensors: out is NULL");
    *out = NULL;
    if (!path) return ln_fail(ctx, LN_ERR_ARG, "load_safetensors: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return BAD("load_safetensors: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    char *header = NULL;
    ln_json root;
    bool parsed = false;
    ln_safetensors *st = NULL;
    ln_status s = LN_OK;
    unsigned char len8[8];
    if (fstat(fileno(f), &sb) != 0) { s = BAD("load_safetensors: cannot stat '%s': %s", path, strerror(errno)); goto done; }
    if (!S_ISREG(sb.st_mode)) { s = BAD("load_safetensors: '%s' is not a regular file", path); goto done; }
    int64_t size = (int64_t)sb.st_size;
    if (size < 8 || fread(len8, 1, 8, f) != 8) {
        s = BAD("load_safetensors: '%s' is too short to be a safetensors file (%lld bytes)", path, (long long)size);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > (uint64_t)(size - 8)) {
        s = BAD("load_safetensors: '%s' is truncated or not a safetensors file: its header length "
                "(%llu bytes) exceeds the %lld bytes that follow", path, (unsigned long long)hlen, (long long)(size - 8));
        goto done;
    }
    if (hlen > MAX_HEADER_BYTES || hlen < 2) {
        s = BAD("load_safetensors: '%s' is not a safetensors file (header length %llu)", path, (unsigned long long)hlen);
        goto done;
    }
    header = malloc(hlen);
    if (!header) { s = ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory reading '%s'", path); goto done; }
    if (fread(header, 1, hlen, f) != hlen) { s = BAD("load_safetensors: '%s' is truncated (in the header)", path); goto done; }
    size_t first = 0;
    while (first < hlen && (header[first] == ' ' || header[first] == '\t' || header[first] == '\n' ||
                            header[first] == '\r'))
        first++;
    if (first == hlen || header[first] != '{') {
        s = BAD("load_safetensors: '%s' is not a safetensors file (the header does not start with '{')", path);
        goto done;
    }
    char err[300];
    if (!ln_json_parse(header, hlen, &root, err, sizeof err)) {
        s = BAD("load_safetensors: '%s': the header is not valid JSON (%s)", path, err);
        goto done;
    }
    parsed = true;
    st = calloc(1, sizeof *st);
    if (!st) { s = ln_fail(ctx, LN_ERR_NOMEM, "load_safetensors: out of memory"); goto done; }
    s = load_from_header(ctx, path, f, &root, size - 8 - (int64_t)hlen, st);
done:
    if (parsed) ln_json_free(&root);
    free(header);
    fclose(f);
    if (s != LN_OK) ln_safetensors_free(st);
    else *out = st;
    return s;
}
