/* The .pth document: an arena of values (blocks that never move, so values may point
 * at each other and be shared), their strings, item arrays and tensor references,
 * all freed together; builders for the writer; Python's dict semantics for keys. */
#include <string.h>
#include "pth_internal.h"

ln_status ln_pth_doc_create(ln_ctx *ctx, ln_pth_doc **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory creating a document");
    return LN_OK;
}

void ln_pth_doc_free(ln_pth_doc *doc) {
    if (!doc) return;
    for (size_t i = 0; i < doc->nvalues; i++) {
        ln_pth_value *v = pth_value_at(doc, i);
        if (v->kind == LN_PTH_STR || v->kind == LN_PTH_BYTES) free((char *)v->str);
        free(v->items);
        ln_tensor_release(v->tensor);
        free(v->priv_);
    }
    for (size_t b = 0; b < doc->nblocks; b++) free(doc->blocks[b]);
    free(doc->blocks);
    free(doc);
}

ln_pth_value *ln_pth_doc_root(const ln_pth_doc *doc) { return doc->root; }
void ln_pth_doc_set_root(ln_pth_doc *doc, ln_pth_value *root) { doc->root = root; }
ln_pth_format ln_pth_doc_format(const ln_pth_doc *doc) { return doc->format; }

ln_status pth_new_value(ln_ctx *ctx, ln_pth_doc *doc, int kind, ln_pth_value **out) {
    *out = NULL;
    if (doc->nvalues >= PTH_MAX_VALUES)
        return ln_fail(ctx, LN_ERR_ARG, "pth: more than %u values in one checkpoint", PTH_MAX_VALUES);
    if (doc->nvalues == doc->nblocks * PTH_BLOCK) {
        if (doc->nblocks == doc->cap_blocks) {
            size_t cap = doc->cap_blocks ? 2 * doc->cap_blocks : 16;
            ln_pth_value **b = realloc(doc->blocks, cap * sizeof *b);
            if (!b) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory");
            doc->blocks = b;
            doc->cap_blocks = cap;
        }
        doc->blocks[doc->nblocks] = calloc(PTH_BLOCK, sizeof(ln_pth_value));
        if (!doc->blocks[doc->nblocks]) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory");
        doc->nblocks++;
    }
    ln_pth_value *v = pth_value_at(doc, doc->nvalues++);
    v->kind = (ln_pth_kind)kind;
    *out = v;
    return LN_OK;
}

ln_status ln_pth_new(ln_ctx *ctx, ln_pth_doc *doc, ln_pth_kind kind, ln_pth_value **out) {
    if ((unsigned)kind >= LN_PTH_KIND_COUNT) {
        *out = NULL;
        return ln_fail(ctx, LN_ERR_ARG, "pth: unknown value kind %d", (int)kind);
    }
    return pth_new_value(ctx, doc, kind, out);
}

ln_status ln_pth_new_str(ln_ctx *ctx, ln_pth_doc *doc, ln_pth_kind kind, const char *s,
                         size_t len, ln_pth_value **out) {
    *out = NULL;
    if (kind != LN_PTH_STR && kind != LN_PTH_BYTES)
        return ln_fail(ctx, LN_ERR_ARG, "pth: a string value must be STR or BYTES");
    if (len == SIZE_MAX) return ln_fail(ctx, LN_ERR_ARG, "pth: string too long");
    char *copy = malloc(len + 1);
    if (!copy) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory for a string of %zu bytes", len);
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    ln_status st = pth_new_value(ctx, doc, kind, out);
    if (st != LN_OK) { free(copy); return st; }
    (*out)->str = copy;
    (*out)->len = len;
    return LN_OK;
}

ln_status ln_pth_new_tensor(ln_ctx *ctx, ln_pth_doc *doc, ln_tensor *t, ln_pth_value **out) {
    *out = NULL;
    if (!t) return ln_fail(ctx, LN_ERR_ARG, "pth: NULL tensor");
    LN_TRY(pth_new_value(ctx, doc, LN_PTH_TENSOR, out));
    ln_tensor_retain(t);
    (*out)->tensor = t;
    return LN_OK;
}

ln_status pth_reserve(ln_ctx *ctx, ln_pth_value *v, size_t want) {
    if (want <= v->cap_) return LN_OK;
    if (want > 2 * (size_t)PTH_MAX_ITEMS)
        return ln_fail(ctx, LN_ERR_ARG, "pth: a container with more than %u entries", PTH_MAX_ITEMS);
    size_t cap = v->cap_ ? v->cap_ : 4;
    while (cap < want) cap *= 2;
    ln_pth_value **items = realloc(v->items, cap * sizeof *items);
    if (!items) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory for a container");
    v->items = items;
    v->cap_ = cap;
    return LN_OK;
}

ln_status ln_pth_append(ln_ctx *ctx, ln_pth_value *seq, ln_pth_value *item) {
    if (!seq || !item || (seq->kind != LN_PTH_LIST && seq->kind != LN_PTH_TUPLE))
        return ln_fail(ctx, LN_ERR_ARG, "pth: append needs a list or tuple and a value");
    LN_TRY(pth_reserve(ctx, seq, seq->n + 1));
    seq->items[seq->n++] = item;
    return LN_OK;
}

ln_status ln_pth_dict_add(ln_ctx *ctx, ln_pth_value *dict, ln_pth_value *key,
                          ln_pth_value *value) {
    if (!dict || !key || !value || dict->kind != LN_PTH_DICT)
        return ln_fail(ctx, LN_ERR_ARG, "pth: dict_add needs a dict, a key and a value");
    LN_TRY(pth_reserve(ctx, dict, 2 * dict->n + 2));
    dict->items[2 * dict->n] = key;
    dict->items[2 * dict->n + 1] = value;
    dict->n++;
    return LN_OK;
}

const ln_pth_value *ln_pth_dict_get(const ln_pth_value *dict, const char *key) {
    if (!dict || dict->kind != LN_PTH_DICT || !key) return NULL;
    size_t len = strlen(key);
    for (size_t k = 0; k < dict->n; k++) {
        const ln_pth_value *kv = dict->items[2 * k];
        if (kv->kind == LN_PTH_STR && kv->len == len && memcmp(kv->str, key, len) == 0)
            return dict->items[2 * k + 1];
    }
    return NULL;
}

/* ------------------------------------------------------------ dict keys */
/* Key classes: None, numbers (bool, int and float compare as numbers, as in Python),
 * str, bytes. */
static int key_class(const ln_pth_value *k) {
    switch ((int)k->kind) {
    case LN_PTH_NONE: return 0;
    case LN_PTH_BOOL: case LN_PTH_INT: case LN_PTH_FLOAT: return 1;
    case LN_PTH_STR: return 2;
    case LN_PTH_BYTES: return 3;
    default: return -1;
    }
}

static int key_cmp(const ln_pth_value *a, const ln_pth_value *b) {
    int ca = key_class(a), cb = key_class(b);
    if (ca != cb) return ca < cb ? -1 : 1;
    if (ca == 1) {
        bool fa = a->kind == LN_PTH_FLOAT, fb = b->kind == LN_PTH_FLOAT;
        if (!fa && !fb) return a->i < b->i ? -1 : a->i > b->i;
        double x = fa ? a->f : (double)a->i, y = fb ? b->f : (double)b->i;
        if (x != x || y != y) return (x != x) - (y != y); /* NaN keys: equal to each other */
        return x < y ? -1 : x > y;
    }
    if (ca >= 2) {
        size_t n = a->len < b->len ? a->len : b->len;
        int c = n ? memcmp(a->str, b->str, n) : 0;
        if (c) return c;
        return a->len < b->len ? -1 : a->len > b->len;
    }
    return 0;
}

typedef struct key_ref { const ln_pth_value *key; size_t index; } key_ref;

static int key_ref_cmp(const void *pa, const void *pb) {
    const key_ref *a = pa, *b = pb;
    int c = key_cmp(a->key, b->key);
    if (c) return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

ln_status pth_dict_dedup(ln_ctx *ctx, const char *name, ln_pth_value *dict) {
    size_t n = dict->n;
    for (size_t k = 0; k < n; k++) {
        const ln_pth_value *key = dict->items[2 * k];
        if (key_class(key) < 0)
            return ln_fail(ctx, LN_ERR_ARG,
                           "pth: %s: a dict key of this kind (%d) is not supported (keys are "
                           "str, bytes, numbers or None)", name, (int)key->kind);
    }
    if (n < 2) return LN_OK;
    key_ref *refs = malloc(n * sizeof *refs);
    if (!refs) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory");
    for (size_t k = 0; k < n; k++) refs[k] = (key_ref){dict->items[2 * k], k};
    qsort(refs, n, sizeof *refs, key_ref_cmp);
    bool any = false;
    for (size_t r = 0; r + 1 < n; r++) {
        if (key_cmp(refs[r].key, refs[r + 1].key) != 0) continue;
        /* a run of equal keys: the first position takes the last value */
        size_t end = r + 1;
        while (end + 1 < n && key_cmp(refs[r].key, refs[end + 1].key) == 0) end++;
        dict->items[2 * refs[r].index + 1] = dict->items[2 * refs[end].index + 1];
        for (size_t d = r + 1; d <= end; d++) dict->items[2 * refs[d].index] = NULL;
        any = true;
        r = end;
    }
    free(refs);
    if (!any) return LN_OK;
    size_t w = 0;
    for (size_t k = 0; k < n; k++) {
        if (!dict->items[2 * k]) continue;
        dict->items[2 * w] = dict->items[2 * k];
        dict->items[2 * w + 1] = dict->items[2 * k + 1];
        w++;
    }
    dict->n = w;
    return LN_OK;
}
