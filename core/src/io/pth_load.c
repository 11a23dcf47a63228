/* Loading a .pth file: format detection, the zip layout (<name>/data.pkl with
 * storages in <name>/data/<key>) and the legacy stream (magic, protocol and system
 * pickles, the main pickle, the storage keys, then each storage's count and bytes),
 * persistent ids resolved to storages (declared sizes checked against the bytes
 * really present before anything is allocated), storage bytes converted to lunet
 * dtypes, lazy tensors made real (their views checked against their storage), and a
 * final pass that lets only public values out and gives dicts Python's key
 * semantics. */
#include <string.h>
#include <sys/stat.h>
#include "pth_internal.h"

const pth_storage_type pth_storage_types[] = {
    {"FloatStorage", 4, LN_F32, PTH_CONV_COPY},
    {"DoubleStorage", 8, LN_F64, PTH_CONV_COPY},
    {"HalfStorage", 2, LN_F32, PTH_CONV_HALF},
    {"BFloat16Storage", 2, LN_F32, PTH_CONV_BF16},
    {"LongStorage", 8, LN_I64, PTH_CONV_COPY},
    {"IntStorage", 4, LN_I32, PTH_CONV_COPY},
    {"ShortStorage", 2, LN_I32, PTH_CONV_I16},
    {"CharStorage", 1, LN_I32, PTH_CONV_I8},
    {"ByteStorage", 1, LN_U8, PTH_CONV_COPY},
    {"BoolStorage", 1, LN_U8, PTH_CONV_COPY},
};
const int pth_storage_type_count = (int)(sizeof pth_storage_types / sizeof pth_storage_types[0]);

/* The pickle that is the legacy format's magic number (LONG1 0x1950a86a20f9469cfc6c). */
static const uint8_t LEGACY_MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                       0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
#define LEGACY_PROTOCOL 1001

/* One storage named by the file. A legacy view storage (root >= 0) is a range of
 * another storage; every other one owns its bytes once loaded. */
typedef struct storage_rec {
    char *key;
    size_t key_len;
    int type;          /* index in pth_storage_types */
    int64_t numel;
    int64_t root;      /* legacy views: index of the storage they are part of, else -1 */
    int64_t view_offset;
    ln_tensor *data;   /* 1-D (numel) once loaded */
} storage_rec;

typedef struct loader {
    ln_ctx *ctx;
    const char *name;
    const uint8_t *buf;
    size_t len;
    ln_pth_doc *doc;
    storage_rec *st;
    size_t nst, cap_st;
    int64_t *slots;    /* open-addressing index of st by key; -1 empty */
    size_t nslots;
    const pth_zip *zip;
    const char *prefix; /* zip: "<name>/" of data.pkl */
    size_t prefix_len;
} loader;

static ln_status lfail(loader *L, ln_status code, const char *what, const char *key) {
    if (key) return ln_fail(L->ctx, code, "pth: %s: storage '%s': %s", L->name, key, what);
    return ln_fail(L->ctx, code, "pth: %s: %s", L->name, what);
}

/* ------------------------------------------------------------ the storage table */
static uint64_t hash_key(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int64_t find_storage(const loader *L, const char *key, size_t n) {
    if (!L->nslots) return -1;
    for (size_t i = hash_key(key, n) & (L->nslots - 1);; i = (i + 1) & (L->nslots - 1)) {
        int64_t s = L->slots[i];
        if (s < 0) return -1;
        if (L->st[s].key_len == n && memcmp(L->st[s].key, key, n) == 0) return s;
    }
}

static void index_storage(loader *L, int64_t s) {
    size_t i = hash_key(L->st[s].key, L->st[s].key_len) & (L->nslots - 1);
    while (L->slots[i] >= 0) i = (i + 1) & (L->nslots - 1);
    L->slots[i] = s;
}

static ln_status add_storage(loader *L, const ln_pth_value *key, int type, int64_t numel,
                             int64_t *out) {
    if (L->nst >= PTH_MAX_STORAGES) return lfail(L, LN_ERR_IO, "too many storages", NULL);
    if (L->nst == L->cap_st) {
        size_t cap = L->cap_st ? 2 * L->cap_st : 64;
        storage_rec *p = realloc(L->st, cap * sizeof *p);
        if (!p) return ln_fail(L->ctx, LN_ERR_NOMEM, "pth: out of memory");
        L->st = p;
        L->cap_st = cap;
    }
    if (2 * (L->nst + 1) > L->nslots) { /* keep the index at most half full */
        size_t n = L->nslots ? 2 * L->nslots : 128;
        int64_t *slots = malloc(n * sizeof *slots);
        if (!slots) return ln_fail(L->ctx, LN_ERR_NOMEM, "pth: out of memory");
        for (size_t i = 0; i < n; i++) slots[i] = -1;
        free(L->slots);
        L->slots = slots;
        L->nslots = n;
        for (size_t s = 0; s < L->nst; s++) index_storage(L, (int64_t)s);
    }
    char *k = malloc(key->len + 1);
    if (!k) return ln_fail(L->ctx, LN_ERR_NOMEM, "pth: out of memory");
    memcpy(k, key->str, key->len + 1);
    L->st[L->nst] = (storage_rec){.key = k, .key_len = key->len, .type = type, .numel = numel,
                                  .root = -1};
    *out = (int64_t)L->nst++;
    index_storage(L, *out);
    return LN_OK;
}

static void free_storages(loader *L) {
    for (size_t s = 0; s < L->nst; s++) {
        free(L->st[s].key);
        ln_tensor_release(L->st[s].data);
    }
    free(L->st);
    free(L->slots);
}

/* ------------------------------------------------------------ storage bytes */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13;            /* inf, nan */
    } else if (exp) {
        bits = sign | (exp + 112) << 23 | man << 13;      /* normal */
    } else if (man) {                                     /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Makes rec's data from n raw little-endian elements at src. */
static ln_status load_bytes(loader *L, storage_rec *rec, const uint8_t *src) {
    const pth_storage_type *ty = &pth_storage_types[rec->type];
    LN_TRY(ln_tensor_empty(L->ctx, ty->dtype, ln_cpu(), 1, &rec->numel, &rec->data));
    void *dst = ln_tensor_data(rec->data);
    size_t n = (size_t)rec->numel;
    switch (ty->convert) {
    case PTH_CONV_COPY:
        if (n) memcpy(dst, src, n * ty->file_size);
        break;
    case PTH_CONV_HALF:
        for (size_t i = 0; i < n; i++) ((float *)dst)[i] = half_to_float(pth_u16(src + 2 * i));
        break;
    case PTH_CONV_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)pth_u16(src + 2 * i) << 16;
            memcpy((float *)dst + i, &bits, sizeof bits);
        }
        break;
    case PTH_CONV_I16:
        for (size_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int16_t)pth_u16(src + 2 * i);
        break;
    case PTH_CONV_I8:
        for (size_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int8_t)src[i];
        break;
    }
    return LN_OK;
}

/* numel elements of the type in bytes, or false when that overflows. */
static bool storage_bytes(int type, int64_t numel, uint64_t *out) {
    uint64_t es = pth_storage_types[type].file_size;
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / 16 / es) return false;
    *out = (uint64_t)numel * es;
    return true;
}

/* ------------------------------------------------------------ persistent ids */
static bool is_text(const ln_pth_value *v) { return v->kind == LN_PTH_STR || v->kind == LN_PTH_BYTES; }

static ln_status storage_value(loader *L, int64_t index, ln_pth_value **out) {
    LN_TRY(pth_new_value(L->ctx, L->doc, PTH_STORAGE, out));
    (*out)->i = index;
    return LN_OK;
}

/* Checks the common part of ('storage', type, key, location, numel, ...). */
static ln_status check_pid(loader *L, const ln_pth_value *pid, size_t want, int *type) {
    if (pid->kind != LN_PTH_TUPLE || pid->n != want)
        return lfail(L, LN_ERR_IO, want == 5 ? "persistent id is not a 5-tuple ('storage', type, key, location, size)"
                                             : "persistent id is not a 6-tuple ('storage', type, key, location, size, view)", NULL);
    ln_pth_value **a = pid->items;
    if (!is_text(a[0]) || a[0]->len != 7 || memcmp(a[0]->str, "storage", 7) != 0)
        return lfail(L, LN_ERR_UNSUPPORTED, "persistent id of a kind other than 'storage'", NULL);
    if ((int)a[1]->kind != PTH_GLOBAL || a[1]->i < PTH_G_STORAGE_FIRST)
        return lfail(L, LN_ERR_IO, "persistent id without a storage type", NULL);
    if (!is_text(a[2]) || a[2]->len == 0 || a[2]->len > PTH_MAX_STR || memchr(a[2]->str, '\0', a[2]->len))
        return lfail(L, LN_ERR_IO, "storage key is not a short string", NULL);
    if (!is_text(a[3]) || a[3]->len > PTH_MAX_STR)
        return lfail(L, LN_ERR_IO, "storage location is not a short string", a[2]->str);
    if (a[4]->kind != LN_PTH_INT || a[4]->i < 0)
        return lfail(L, LN_ERR_IO, "storage size is not a non-negative int", a[2]->str);
    *type = (int)(a[1]->i - PTH_G_STORAGE_FIRST);
    return LN_OK;
}

/* zip: ('storage', type, key, location, numel); the bytes are <prefix>data/<key>. */
static ln_status zip_persistent_load(void *ud, ln_pth_value *pid, ln_pth_value **out) {
    loader *L = ud;
    int type;
    LN_TRY(check_pid(L, pid, 5, &type));
    const ln_pth_value *key = pid->items[2];
    int64_t numel = pid->items[4]->i;
    int64_t s = find_storage(L, key->str, key->len);
    if (s >= 0) {
        if (L->st[s].type != type || L->st[s].numel != numel)
            return lfail(L, LN_ERR_IO, "named twice with different types or sizes", key->str);
        return storage_value(L, s, out);
    }
    uint64_t nbytes;
    if (!storage_bytes(type, numel, &nbytes)) return lfail(L, LN_ERR_IO, "size overflows", key->str);
    size_t nlen = L->prefix_len + 5 + key->len;
    char *ename = malloc(nlen + 1);
    if (!ename) return ln_fail(L->ctx, LN_ERR_NOMEM, "pth: out of memory");
    memcpy(ename, L->prefix, L->prefix_len);
    memcpy(ename + L->prefix_len, "data/", 5);
    memcpy(ename + L->prefix_len + 5, key->str, key->len + 1);
    const pth_zip_entry *e = pth_zip_find(L->zip, ename, nlen);
    free(ename);
    if (!e) return lfail(L, LN_ERR_IO, "no record data/<key> in the archive", key->str);
    if (e->size != nbytes) {
        char what[200];
        snprintf(what, sizeof what, "declares %lld elements of %s (%llu bytes) but its record holds %llu bytes",
                 (long long)numel, pth_storage_types[type].name, (unsigned long long)nbytes,
                 (unsigned long long)e->size);
        return lfail(L, LN_ERR_IO, what, key->str);
    }
    LN_TRY(add_storage(L, key, type, numel, &s));
    const uint8_t *bytes;
    bool owned;
    LN_TRY(pth_zip_read(L->ctx, L->name, L->zip, e, &bytes, &owned));
    ln_status st = load_bytes(L, &L->st[s], bytes);
    if (owned) free((void *)bytes);
    LN_TRY(st);
    return storage_value(L, s, out);
}

/* legacy: ('storage', type, root_key, location, numel, view) with view None or
 * (view_key, offset, view_numel); the bytes come after the main pickle. */
static ln_status legacy_persistent_load(void *ud, ln_pth_value *pid, ln_pth_value **out) {
    loader *L = ud;
    int type;
    LN_TRY(check_pid(L, pid, 6, &type));
    const ln_pth_value *key = pid->items[2], *view = pid->items[5];
    int64_t numel = pid->items[4]->i;
    uint64_t nbytes;
    if (!storage_bytes(type, numel, &nbytes) || nbytes > L->len)
        return lfail(L, LN_ERR_IO, "declares more elements than the file holds", key->str);
    int64_t s = find_storage(L, key->str, key->len);
    if (s >= 0) {
        if (L->st[s].type != type || L->st[s].numel != numel || L->st[s].root >= 0)
            return lfail(L, LN_ERR_IO, "named twice with different types or sizes", key->str);
    } else {
        LN_TRY(add_storage(L, key, type, numel, &s));
    }
    if (view->kind == LN_PTH_NONE) return storage_value(L, s, out);
    if (view->kind != LN_PTH_TUPLE || view->n != 3 || !is_text(view->items[0]) ||
        view->items[0]->len == 0 || view->items[0]->len > PTH_MAX_STR ||
        view->items[1]->kind != LN_PTH_INT || view->items[2]->kind != LN_PTH_INT)
        return lfail(L, LN_ERR_IO, "storage view is not (key, offset, size)", key->str);
    const ln_pth_value *vkey = view->items[0];
    int64_t off = view->items[1]->i, vn = view->items[2]->i;
    if (off < 0 || vn < 0 || off > numel || vn > numel - off)
        return lfail(L, LN_ERR_IO, "storage view out of its storage's bounds", key->str);
    int64_t v = find_storage(L, vkey->str, vkey->len);
    if (v >= 0) {
        if (L->st[v].root != s || L->st[v].view_offset != off || L->st[v].numel != vn)
            return lfail(L, LN_ERR_IO, "storage view named twice differently", vkey->str);
    } else {
        LN_TRY(add_storage(L, vkey, type, vn, &v));
        L->st[v].root = s;
        L->st[v].view_offset = off;
    }
    return storage_value(L, v, out);
}

/* ------------------------------------------------------------ tensors */
static ln_status make_tensor(loader *L, ln_pth_value *v) {
    const pth_lazy_tensor *z = v->priv_;
    if (z->storage < 0 || (size_t)z->storage >= L->nst) return lfail(L, LN_ERR_IO, "tensor of an unknown storage", NULL);
    const storage_rec *rec = &L->st[z->storage];
    int64_t base = 0, limit = rec->numel;
    if (rec->root >= 0) {
        base = rec->view_offset;
        rec = &L->st[rec->root];
    }
    if (!rec->data) return lfail(L, LN_ERR_IO, "its bytes are missing", rec->key);
    int64_t numel;
    if (!ln_shape_numel(z->ndim, z->shape, &numel)) return lfail(L, LN_ERR_IO, "tensor size overflows", rec->key);
    char shp[128];
    ln_shape_format(z->ndim, z->shape, shp, sizeof shp);
    if (numel == 0) {
        if (z->offset > limit) return lfail(L, LN_ERR_IO, "tensor offset beyond its storage", rec->key);
        return ln_tensor_empty(L->ctx, rec->data->dtype, ln_cpu(), z->ndim, z->shape, &v->tensor);
    }
    /* last element: offset + sum((size-1)*stride) must be inside the storage */
    int64_t last = z->offset;
    for (int d = 0; d < z->ndim; d++) {
        int64_t span;
        if (__builtin_mul_overflow(z->shape[d] - 1, z->strides[d], &span) ||
            __builtin_add_overflow(last, span, &last)) {
            last = INT64_MAX;
            break;
        }
    }
    if (last >= limit) {
        char what[300];
        snprintf(what, sizeof what, "a tensor of shape %s at offset %lld reaches element %lld of a storage of %lld",
                 shp, (long long)z->offset, (long long)last, (long long)limit);
        return lfail(L, LN_ERR_IO, what, rec->key);
    }
    ln_tensor view = *rec->data; /* the storage as a 1-D tensor, re-viewed in place */
    view.ndim = z->ndim;
    memcpy(view.shape, z->shape, sizeof view.shape);
    memcpy(view.strides, z->strides, sizeof view.strides);
    view.offset = base + z->offset;
    if (!ln_tensor_is_contiguous(&view)) return ln_tensor_clone(L->ctx, &view, &v->tensor);
    ln_tensor *flat;
    LN_TRY(ln_tensor_narrow_view(L->ctx, rec->data, 0, base + z->offset, numel, &flat));
    ln_status st = ln_tensor_view(L->ctx, flat, z->ndim, z->shape, &v->tensor);
    ln_tensor_release(flat);
    return st;
}

/* Makes every tensor real, then walks the values reachable from the root: none may
 * be one only the pickle machine knows (a global, a storage), and dicts get Python's
 * key semantics. */
static ln_status finish(loader *L, ln_pth_value *root) {
    ln_pth_doc *doc = L->doc;
    for (size_t i = 0; i < doc->nvalues; i++) {
        ln_pth_value *v = pth_value_at(doc, i);
        if (v->kind == LN_PTH_TENSOR && v->priv_) {
            LN_TRY(make_tensor(L, v));
            free(v->priv_);
            v->priv_ = NULL;
        }
    }
    size_t cap = 256, n = 0;
    ln_pth_value **todo = malloc(cap * sizeof *todo);
    if (!todo) return ln_fail(L->ctx, LN_ERR_NOMEM, "pth: out of memory");
    ln_status st = LN_OK;
    todo[n++] = root;
    while (n && st == LN_OK) {
        ln_pth_value *v = todo[--n];
        if (v->seen_) continue;
        v->seen_ = true;
        if ((unsigned)v->kind >= LN_PTH_KIND_COUNT) {
            st = lfail(L, LN_ERR_UNSUPPORTED,
                       (int)v->kind == PTH_GLOBAL
                           ? "a class or function object stored as data (only tensors, containers and scalars are read)"
                           : "a bare storage stored as data (only tensors, containers and scalars are read)",
                       NULL);
            break;
        }
        if (v->kind != LN_PTH_LIST && v->kind != LN_PTH_TUPLE && v->kind != LN_PTH_DICT) continue;
        size_t k = v->kind == LN_PTH_DICT ? 2 * v->n : v->n;
        if (k > cap - n) {
            while (k > cap - n) cap *= 2;
            ln_pth_value **p = realloc(todo, cap * sizeof *p);
            if (!p) { st = ln_fail(L->ctx, LN_ERR_NOMEM, "pth: out of memory"); break; }
            todo = p;
        }
        if (k) memcpy(todo + n, v->items, k * sizeof *todo);
        n += k;
        if (v->kind == LN_PTH_DICT) st = pth_dict_dedup(L->ctx, L->name, v);
    }
    free(todo);
    if (st == LN_OK) doc->root = root;
    return st;
}

/* ------------------------------------------------------------ the two formats */
static ln_status load_zip(loader *L) {
    pth_zip zip;
    LN_TRY(pth_zip_open(L->ctx, L->name, L->buf, L->len, &zip));
    L->zip = &zip;
    const pth_zip_entry *pkl = NULL;
    bool torchscript = false;
    ln_status st = LN_OK;
    for (size_t i = 0; i < zip.n; i++) {
        const pth_zip_entry *e = &zip.entries[i];
        const char *slash = memchr(e->name, '/', e->name_len);
        if (!slash) continue;
        size_t rest = e->name_len - (size_t)(slash + 1 - e->name);
        if (rest == 8 && memcmp(slash + 1, "data.pkl", 8) == 0) {
            if (pkl) { st = lfail(L, LN_ERR_IO, "two data.pkl records in the archive", NULL); break; }
            pkl = e;
        }
        if (rest == 13 && memcmp(slash + 1, "constants.pkl", 13) == 0) torchscript = true;
    }
    if (st == LN_OK && !pkl)
        st = lfail(L, torchscript ? LN_ERR_UNSUPPORTED : LN_ERR_IO,
                   torchscript ? "a TorchScript archive (torch.jit.save) without data.pkl: save its state_dict() with torch.save instead"
                               : "a zip archive without <name>/data.pkl: not a PyTorch checkpoint", NULL);
    if (st == LN_OK) {
        L->prefix = pkl->name;
        L->prefix_len = pkl->name_len - 8;
        char *order = malloc(L->prefix_len + 10);
        if (!order) st = ln_fail(L->ctx, LN_ERR_NOMEM, "pth: out of memory");
        if (order) {
            memcpy(order, L->prefix, L->prefix_len);
            memcpy(order + L->prefix_len, "byteorder", 10);
            const pth_zip_entry *bo = pth_zip_find(&zip, order, L->prefix_len + 9);
            free(order);
            if (bo && bo->size == 3 && bo->method == 0 && memcmp(L->buf + bo->data_off, "big", 3) == 0)
                st = lfail(L, LN_ERR_UNSUPPORTED, "a big-endian checkpoint", NULL);
        }
    }
    const uint8_t *data = NULL;
    bool owned = false;
    if (st == LN_OK) st = pth_zip_read(L->ctx, L->name, &zip, pkl, &data, &owned);
    if (st == LN_OK) {
        pth_pickle_src src = {.name = L->name, .part = "data.pkl", .data = data, .len = (size_t)pkl->size,
                              .persistent_load = zip_persistent_load, .ud = L};
        ln_pth_value *root;
        size_t used;
        st = pth_unpickle(L->ctx, L->doc, &src, &root, &used);
        if (st == LN_OK) st = finish(L, root);
    }
    if (owned) free((void *)data);
    pth_zip_close(&zip);
    L->zip = NULL;
    return st;
}

static ln_status legacy_pickle(loader *L, size_t *pos, const char *part, pth_persistent_fn fn,
                               ln_pth_value **out) {
    pth_pickle_src src = {.name = L->name, .part = part, .data = L->buf + *pos, .len = L->len - *pos,
                          .base = *pos, .persistent_load = fn, .ud = L};
    size_t used;
    LN_TRY(pth_unpickle(L->ctx, L->doc, &src, out, &used));
    *pos += used;
    return LN_OK;
}

static ln_status load_legacy(loader *L) {
    size_t pos = sizeof LEGACY_MAGIC;
    ln_pth_value *v;
    LN_TRY(legacy_pickle(L, &pos, "protocol version", NULL, &v));
    if (v->kind != LN_PTH_INT || v->i != LEGACY_PROTOCOL)
        return lfail(L, LN_ERR_UNSUPPORTED, "legacy format with a protocol version other than 1001", NULL);
    LN_TRY(legacy_pickle(L, &pos, "system info", NULL, &v));
    const ln_pth_value *le = ln_pth_dict_get(v, "little_endian");
    if (v->kind != LN_PTH_DICT || !le || le->kind != LN_PTH_BOOL)
        return lfail(L, LN_ERR_IO, "legacy system info is not a dict with 'little_endian'", NULL);
    if (!le->i) return lfail(L, LN_ERR_UNSUPPORTED, "a big-endian checkpoint", NULL);
    ln_pth_value *root, *keys;
    LN_TRY(legacy_pickle(L, &pos, "main pickle", legacy_persistent_load, &root));
    LN_TRY(legacy_pickle(L, &pos, "storage key list", NULL, &keys));
    if (keys->kind != LN_PTH_LIST) return lfail(L, LN_ERR_IO, "the storage key list is not a list", NULL);
    for (size_t k = 0; k < keys->n; k++) {
        const ln_pth_value *key = keys->items[k];
        if (!is_text(key)) return lfail(L, LN_ERR_IO, "a storage key is not a string", NULL);
        int64_t s = find_storage(L, key->str, key->len);
        if (s < 0) return lfail(L, LN_ERR_IO, "listed but never used by the pickle", key->str);
        storage_rec *rec = &L->st[s];
        if (rec->root >= 0 || rec->data) return lfail(L, LN_ERR_IO, "listed twice, or a view listed as a storage", key->str);
        if (L->len - pos < 8) return lfail(L, LN_ERR_IO, "file ends before its element count (truncated?)", key->str);
        int64_t count = (int64_t)pth_u64(L->buf + pos);
        pos += 8;
        if (count != rec->numel) {
            char what[160];
            snprintf(what, sizeof what, "the pickle declares %lld elements but the data %lld",
                     (long long)rec->numel, (long long)count);
            return lfail(L, LN_ERR_IO, what, key->str);
        }
        uint64_t nbytes;
        if (!storage_bytes(rec->type, count, &nbytes) || nbytes > L->len - pos)
            return lfail(L, LN_ERR_IO, "file ends inside its bytes (truncated?)", key->str);
        LN_TRY(load_bytes(L, rec, L->buf + pos));
        pos += (size_t)nbytes;
    }
    return finish(L, root);
}

/* ------------------------------------------------------------ entry points */
ln_status ln_pth_load_memory(ln_ctx *ctx, const void *data, size_t n, const char *name,
                             ln_pth_doc **out) {
    *out = NULL;
    if (!name) name = "<memory>";
    if (!data && n) return ln_fail(ctx, LN_ERR_ARG, "pth: %s: NULL data", name);
    const uint8_t *b = data;
    loader L = {.ctx = ctx, .name = name, .buf = b, .len = n};
    ln_status st;
    if (n >= 4 && memcmp(b, "PK\x03\x04", 4) == 0) {
        LN_TRY(ln_pth_doc_create(ctx, &L.doc));
        L.doc->format = LN_PTH_ZIP;
        st = load_zip(&L);
    } else if (n >= sizeof LEGACY_MAGIC && memcmp(b, LEGACY_MAGIC, sizeof LEGACY_MAGIC) == 0) {
        LN_TRY(ln_pth_doc_create(ctx, &L.doc));
        L.doc->format = LN_PTH_LEGACY;
        st = load_legacy(&L);
    } else if (n >= 262 && memcmp(b + 257, "ustar", 5) == 0) {
        return lfail(&L, LN_ERR_UNSUPPORTED, "the tar-based format of PyTorch before 0.1.10 is not supported; load and re-save it with a recent PyTorch", NULL);
    } else if (n >= 9 && b[8] == '{' && pth_u64(b) < n) {
        return lfail(&L, LN_ERR_IO, "not a PyTorch checkpoint (it looks like a safetensors file)", NULL);
    } else {
        return lfail(&L, LN_ERR_IO, n == 0 ? "empty file" : "not a PyTorch checkpoint: neither a zip archive nor a legacy pickle stream", NULL);
    }
    free_storages(&L);
    if (st != LN_OK) {
        ln_pth_doc_free(L.doc);
        return st;
    }
    *out = L.doc;
    return LN_OK;
}

ln_status ln_pth_load_file(ln_ctx *ctx, const char *path, ln_pth_doc **out) {
    *out = NULL;
    if (!path) return ln_fail(ctx, LN_ERR_ARG, "pth: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f) return ln_fail(ctx, LN_ERR_IO, "pth: cannot open '%s'", path);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ln_fail(ctx, LN_ERR_IO, "pth: '%s' is not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory reading '%s' (%zu bytes)", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    ln_status st = got == n ? ln_pth_load_memory(ctx, buf, n, path, out)
                            : ln_fail(ctx, LN_ERR_IO, "pth: could not read '%s'", path);
    free(buf);
    return st;
}
