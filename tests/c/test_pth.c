/* The .pth reader and writer: the fixtures of tests/fixtures/pth (made by PyTorch
 * 1.13, see make_pth_fixtures.py) in the zip, deflated, zip64 and legacy formats,
 * value by value; the model fixtures' key layouts; hostile input (disallowed
 * globals, every truncation of the small files, wrong and huge storage sizes, and
 * hand-made pickles that break each rule of the reader) rejected with a message and
 * nothing leaked; and the writer's output read back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "lunet/pth.h"

#define FIX LUNET_FIXTURES_DIR "/pth/"

static ln_pth_doc *load(ln_ctx *ctx, const char *name) {
    ln_pth_doc *doc = NULL;
    char path[1024];
    snprintf(path, sizeof path, FIX "%s", name);
    if (!CHECK_OK(ctx, ln_pth_load_file(ctx, path, &doc))) return NULL;
    return doc;
}

static uint8_t *read_all(const char *name, size_t *n) {
    char path[1024];
    snprintf(path, sizeof path, FIX "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* st is a failure with the given code whose message mentions needle. */
static void check_failure(ln_ctx *ctx, ln_status st, ln_status code, const char *needle,
                          const char *what) {
    const char *msg = ln_ctx_error(ctx);
    CHECK(st == code && strstr(msg, needle) != NULL,
          "%s: status '%s', message '%s' (want '%s' mentioning '%s')", what, ln_status_name(st),
          msg, ln_status_name(code), needle);
    ln_ctx_clear_error(ctx);
}

static const ln_pth_value *get(const ln_pth_value *dict, const char *key) {
    const ln_pth_value *v = ln_pth_dict_get(dict, key);
    CHECK(v != NULL, "key '%s' present", key);
    return v;
}

/* v is a tensor of dtype dt and the given shape holding vals (NULL: not checked). */
static void check_tensor(ln_ctx *ctx, const ln_pth_value *v, ln_dtype dt, int ndim,
                         const int64_t *shape, const double *vals, const char *what) {
    if (!CHECK(v && v->kind == LN_PTH_TENSOR && v->tensor, "%s is a tensor", what)) return;
    const ln_tensor *t = v->tensor;
    CHECK(t->dtype == dt, "%s: dtype %s, want %s", what, ln_dtype_name(t->dtype), ln_dtype_name(dt));
    CHECK(ln_tensor_device(t).type == LN_CPU, "%s on the host", what);
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    char have[64];
    ln_shape_format(t->ndim, t->shape, have, sizeof have);
    if (!CHECK(same, "%s: shape %s", what, have) || !vals) return;
    int64_t n = ln_tensor_numel(t);
    double *got = malloc((size_t)(n ? n : 1) * sizeof *got);
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, t, got));
    for (int64_t i = 0; i < n; i++)
        if (!CHECK(got[i] == vals[i] && signbit(got[i]) == signbit(vals[i]),
                   "%s[%lld] = %.17g, want %.17g", what, (long long)i, got[i], vals[i]))
            break;
    free(got);
}

static bool str_is(const ln_pth_value *v, const char *s) {
    return v && v->kind == LN_PTH_STR && v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

/* ------------------------------------------------------------ the small state dict */
static const char *const SMALL_KEYS[] = {
    "conv.weight", "conv.bias", "t_view", "slice", "half", "bf16", "scalar", "count", "double",
    "int", "byte", "flag", "shared_a", "shared_b", "shared_c", "empty"};
#define NSMALL (sizeof SMALL_KEYS / sizeof SMALL_KEYS[0])

static void check_small_state(ln_ctx *ctx, const ln_pth_value *sd, const char *fmt) {
    if (!CHECK(sd && sd->kind == LN_PTH_DICT, "%s: state dict is a dict", fmt)) return;
    CHECK(sd->ordered, "%s: state dict is an OrderedDict", fmt);
    if (!CHECK(sd->n == NSMALL, "%s: %zu entries", fmt, sd->n)) return;
    for (size_t k = 0; k < NSMALL; k++) {
        char want[64];
        snprintf(want, sizeof want, "module.%s", SMALL_KEYS[k]);
        CHECK(str_is(sd->items[2 * k], want), "%s: key %zu is %s", fmt, k, want);
    }
    double conv[54], tview[12];
    for (int i = 0; i < 54; i++) conv[i] = i / 8.0 - 3;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) tview[i * 3 + j] = 4 * j + i;
    check_tensor(ctx, get(sd, "module.conv.weight"), LN_F32, 4, (int64_t[]){2, 3, 3, 3}, conv, "conv.weight");
    check_tensor(ctx, get(sd, "module.conv.bias"), LN_F32, 1, (int64_t[]){2}, (double[]){0.5, -0.25}, "conv.bias");
    check_tensor(ctx, get(sd, "module.t_view"), LN_F32, 2, (int64_t[]){4, 3}, tview, "t_view");
    check_tensor(ctx, get(sd, "module.slice"), LN_F32, 2, (int64_t[]){2, 2}, (double[]){2.5, 3, 4.5, 5}, "slice");
    check_tensor(ctx, get(sd, "module.half"), LN_F32, 1, (int64_t[]){6},
                 (double[]){0.5, -1.25, 65504, ldexp(1, -24), -0.0, 3.140625}, "half");
    check_tensor(ctx, get(sd, "module.bf16"), LN_F32, 1, (int64_t[]){3}, (double[]){1, -2.5, 0.0078125}, "bf16");
    check_tensor(ctx, get(sd, "module.scalar"), LN_F32, 0, NULL, (double[]){2.5}, "scalar");
    check_tensor(ctx, get(sd, "module.count"), LN_I64, 0, NULL, (double[]){123456789012.0}, "count");
    check_tensor(ctx, get(sd, "module.double"), LN_F64, 1, (int64_t[]){2}, (double[]){1.0 / 3, -1e300}, "double");
    check_tensor(ctx, get(sd, "module.int"), LN_I32, 1, (int64_t[]){3}, (double[]){-7, 0, 2147483647}, "int");
    check_tensor(ctx, get(sd, "module.byte"), LN_U8, 1, (int64_t[]){2}, (double[]){0, 255}, "byte");
    check_tensor(ctx, get(sd, "module.flag"), LN_U8, 1, (int64_t[]){2}, (double[]){1, 0}, "flag");
    check_tensor(ctx, get(sd, "module.shared_a"), LN_F32, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4}, "shared_a");
    check_tensor(ctx, get(sd, "module.shared_c"), LN_F32, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4}, "shared_c");
    check_tensor(ctx, get(sd, "module.empty"), LN_F32, 2, (int64_t[]){0, 3}, NULL, "empty");
    const ln_pth_value *a = get(sd, "module.shared_a"), *b = get(sd, "module.shared_b");
    const ln_pth_value *c = get(sd, "module.shared_c");
    CHECK(a == b, "%s: one tensor object under two keys is one value", fmt);
    if (a && c && a->tensor && c->tensor)
        CHECK(a != c && a->tensor->storage == c->tensor->storage,
              "%s: two views of one storage share it after loading", fmt);
    const ln_pth_value *w = get(sd, "module.conv.weight");
    if (w && w->tensor) CHECK(ln_tensor_is_contiguous(w->tensor), "%s: tensors are contiguous", fmt);
}

static void test_small_zip(ln_ctx *ctx, const char *file, const char *fmt) {
    ln_pth_doc *doc = load(ctx, file);
    if (!doc) return;
    CHECK(ln_pth_doc_format(doc) == LN_PTH_ZIP, "%s: zip format", fmt);
    const ln_pth_value *root = ln_pth_doc_root(doc);
    CHECK(root->kind == LN_PTH_DICT && !root->ordered && root->n == 5, "%s: root is a dict of 5", fmt);
    check_small_state(ctx, get(root, "net_state_dict"), fmt);
    check_tensor(ctx, get(root, "acc"), LN_F32, 0, NULL, (double[]){0.75}, "acc (saved from cuda:0)");
    const ln_pth_value *epoch = get(root, "epoch");
    CHECK(epoch && epoch->kind == LN_PTH_INT && epoch->i == 7, "%s: epoch 7", fmt);
    const ln_pth_value *extra = get(root, "extra");
    const ln_pth_value *nested = get(extra, "nested");
    if (CHECK(nested && nested->kind == LN_PTH_LIST && nested->n == 6, "%s: nested list of 6", fmt)) {
        ln_pth_value **it = nested->items;
        CHECK(it[0]->kind == LN_PTH_INT && it[0]->i == 1, "nested[0] = 1");
        CHECK(it[1]->kind == LN_PTH_FLOAT && it[1]->f == 2.5, "nested[1] = 2.5");
        CHECK(it[2]->kind == LN_PTH_NONE, "nested[2] = None");
        CHECK(it[3]->kind == LN_PTH_BOOL && it[3]->i == 1, "nested[3] = True");
        CHECK(str_is(it[4], "text"), "nested[4] = 'text'");
        CHECK(it[5]->kind == LN_PTH_TUPLE && it[5]->n == 2 && it[5]->items[1]->i == 2, "nested[5] = (1, 2)");
    }
    const ln_pth_value *big = get(extra, "big"), *neg = get(extra, "neg");
    CHECK(big && big->kind == LN_PTH_INT && big->i == (int64_t)1 << 40, "big = 2**40");
    CHECK(neg && neg->kind == LN_PTH_INT && neg->i == -5, "neg = -5");
    const ln_pth_value *opt = get(root, "optimizer_state_dict");
    const ln_pth_value *state = get(opt, "state"), *groups = get(opt, "param_groups");
    if (CHECK(state && state->kind == LN_PTH_DICT && state->n == 2, "optimizer state of 2 params")) {
        CHECK(state->items[0]->kind == LN_PTH_INT && state->items[0]->i == 0, "state keys are ints");
        check_tensor(ctx, get(state->items[1], "momentum_buffer"), LN_F32, 2, (int64_t[]){2, 2}, NULL,
                     "momentum_buffer");
    }
    if (CHECK(groups && groups->kind == LN_PTH_LIST && groups->n == 1, "one param group")) {
        const ln_pth_value *lr = get(groups->items[0], "lr"), *nest = get(groups->items[0], "nesterov");
        CHECK(lr && lr->kind == LN_PTH_FLOAT && lr->f == 0.1, "lr 0.1");
        CHECK(nest && nest->kind == LN_PTH_BOOL && nest->i == 0, "nesterov False");
    }
    ln_pth_doc_free(doc);
}

static void test_small(ln_ctx *ctx) {
    test_small_zip(ctx, "small_zip.pth", "zip");
    test_small_zip(ctx, "small_deflate.pth", "deflate");
    test_small_zip(ctx, "small_zip64.pth", "zip64");
    ln_pth_doc *doc = load(ctx, "small_legacy.pth");
    if (doc) {
        CHECK(ln_pth_doc_format(doc) == LN_PTH_LEGACY, "legacy format");
        check_small_state(ctx, ln_pth_doc_root(doc), "legacy");
        ln_pth_doc_free(doc);
    }
}

/* ------------------------------------------------------------ the model fixtures */
static void test_models(ln_ctx *ctx) {
    ln_pth_doc *doc = load(ctx, "resnet34ds.pth");
    if (doc) {
        const ln_pth_value *root = ln_pth_doc_root(doc), *sd = get(root, "net_state_dict");
        CHECK(sd && sd->n == 394, "ResNet34_DoubleShared: 394 keys");
        if (sd && sd->n == 394) {
            bool prefixed = true;
            for (size_t k = 0; k < sd->n; k++)
                prefixed = prefixed && sd->items[2 * k]->len > 7 && !memcmp(sd->items[2 * k]->str, "module.", 7);
            CHECK(prefixed, "every key starts with module.");
        }
        const ln_pth_value *b = get(sd, "module.shared_basis_1_1.weight");
        const ln_pth_value *alias = get(sd, "module.layer1.2.shared_basis_1.weight");
        check_tensor(ctx, b, LN_F32, 4, (int64_t[]){48, 64, 3, 3}, NULL, "shared_basis_1_1");
        if (b && alias && b->tensor && alias->tensor) {
            CHECK(tu_close_ratio(ctx, b->tensor, alias->tensor, 0, 0) == 0, "alias holds the same values");
            CHECK(ln_tensor_is_contiguous(b->tensor), "compact strided weight loaded contiguous");
        }
        check_tensor(ctx, get(sd, "module.layer4.2.bn2.num_batches_tracked"), LN_I64, 0, NULL,
                     (double[]){4}, "num_batches_tracked");
        check_tensor(ctx, get(root, "test_input"), LN_F32, 4, (int64_t[]){2, 3, 32, 32}, NULL, "test_input");
        check_tensor(ctx, get(root, "acc"), LN_F32, 0, NULL, NULL, "acc");
        ln_pth_doc_free(doc);
    }
    doc = load(ctx, "mnv2sd_legacy.pth");
    if (doc) {
        const ln_pth_value *sd = get(ln_pth_doc_root(doc), "state_dict");
        CHECK(sd && sd->n == 339 && ln_pth_doc_format(doc) == LN_PTH_LEGACY, "MobileNetV2_SharedDouble: 339 keys, legacy");
        check_tensor(ctx, get(sd, "stage5.1.chan_attention.conv.weight"), LN_F32, 3, (int64_t[]){1, 1, 3}, NULL, "ECA");
        check_tensor(ctx, get(sd, "stage6.2.shared_basis2.weight"), LN_F32, 4, (int64_t[]){160, 960, 1, 1}, NULL, "alias");
        ln_pth_doc_free(doc);
    }
}

/* ------------------------------------------------------------ hostile files */
static void expect_reject(ln_ctx *ctx, const char *file, ln_status code, const char *needle) {
    char path[1024];
    snprintf(path, sizeof path, FIX "%s", file);
    ln_pth_doc *doc = (ln_pth_doc *)&doc; /* must be reset to NULL */
    check_failure(ctx, ln_pth_load_file(ctx, path, &doc), code, needle, file);
    CHECK(doc == NULL, "%s: no document on failure", file);
}

static void test_hostile_files(ln_ctx *ctx) {
    expect_reject(ctx, "evil_system.pth", LN_ERR_UNSUPPORTED, "global 'posix.system' is not allowed");
    expect_reject(ctx, "evil_legacy.pth", LN_ERR_UNSUPPORTED, "global '__builtin__.eval' is not allowed");
    expect_reject(ctx, "short_storage.pth", LN_ERR_IO, "but its record holds");
    expect_reject(ctx, "not_pth.bin", LN_ERR_IO, "not a PyTorch checkpoint");
    expect_reject(ctx, "no_such_file.pth", LN_ERR_IO, "cannot open");
    expect_reject(ctx, "", LN_ERR_IO, "not a regular file"); /* the folder */
}

/* Every truncation of each small file is rejected (and nothing leaks). */
static void test_truncations(ln_ctx *ctx) {
    static const char *const files[] = {"small_zip.pth", "small_legacy.pth", "small_deflate.pth",
                                        "small_zip64.pth"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *buf = read_all(files[f], &n);
        if (!CHECK(buf != NULL, "read %s", files[f])) continue;
        int accepted = 0, silent = 0;
        for (size_t len = 0; len < n; len++) {
            ln_pth_doc *doc = NULL;
            ln_ctx_clear_error(ctx);
            if (ln_pth_load_memory(ctx, buf, len, files[f], &doc) == LN_OK) {
                accepted++;
                ln_pth_doc_free(doc);
            } else if (ln_ctx_error(ctx)[0] == '\0') {
                silent++;
            }
        }
        CHECK(accepted == 0, "%s: %d truncations accepted", files[f], accepted);
        CHECK(silent == 0, "%s: %d failures without a message", files[f], silent);
        free(buf);
    }
}

/* ------------------------------------------------------------ hand-made pickles */
typedef struct bytes { uint8_t *p; size_t n, cap; } bytes;

static void put(bytes *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void op(bytes *b, uint8_t o) { put(b, &o, 1); }
static void str(bytes *b, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    op(b, 'X');
    put(b, &n, 4);
    put(b, s, n);
}
static void num(bytes *b, int64_t v) {
    op(b, 0x8a);
    op(b, 8);
    put(b, &v, 8);
}
static void global(bytes *b, const char *mod, const char *name) {
    op(b, 'c');
    put(b, mod, strlen(mod));
    op(b, '\n');
    put(b, name, strlen(name));
    op(b, '\n');
}
static void int_tuple(bytes *b, int n, const int64_t *v) {
    op(b, '(');
    for (int i = 0; i < n; i++) num(b, v[i]);
    op(b, 't');
}

/* _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel, view), offset, ...) */
static void tensor(bytes *b, const char *key, int64_t numel, const char *view_key,
                   int64_t view_off, int64_t view_n, int64_t offset, int ndim,
                   const int64_t *shape, const int64_t *strides) {
    global(b, "torch._utils", "_rebuild_tensor_v2");
    op(b, '(');
    op(b, '(');
    str(b, "storage");
    global(b, "torch", "FloatStorage");
    str(b, key);
    str(b, "cpu");
    num(b, numel);
    if (view_key) {
        op(b, '(');
        str(b, view_key);
        num(b, view_off);
        num(b, view_n);
        op(b, 't');
    } else {
        op(b, 'N');
    }
    op(b, 't');
    op(b, 'Q');
    num(b, offset);
    int_tuple(b, ndim, shape);
    int_tuple(b, ndim, strides);
    op(b, 0x89);
    global(b, "collections", "OrderedDict");
    op(b, ')');
    op(b, 'R');
    op(b, 't');
    op(b, 'R');
}

/* A legacy stream: magic, protocol, system info (little_endian as given), the main
 * pickle, the key list and data (each a count and that many floats 0, 1, 2...). */
static ln_status legacy(ln_ctx *ctx, const bytes *main_pickle, const char *const *keys, int nkeys,
                        const int64_t *counts, bool little, ln_pth_doc **doc) {
    static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20,
                                    0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 'M', 0xe9, 0x03, '.'};
    bytes b = {0};
    put(&b, magic, sizeof magic);
    put(&b, "\x80\x02}(", 4);
    str(&b, "little_endian");
    op(&b, little ? 0x88 : 0x89);
    put(&b, "u.", 2);
    put(&b, main_pickle->p, main_pickle->n);
    put(&b, "\x80\x02](", 4);
    for (int k = 0; k < nkeys; k++) str(&b, keys[k]);
    put(&b, "e.", 2);
    for (int k = 0; k < nkeys; k++) {
        put(&b, &counts[k], 8);
        for (int64_t i = 0; i < counts[k] && i < 1000; i++) {
            float f = (float)i;
            put(&b, &f, 4);
        }
    }
    *doc = NULL;
    ln_status st = ln_pth_load_memory(ctx, b.p, b.n, "handmade", doc);
    free(b.p);
    return st;
}

static void pickle_start(bytes *b) { b->n = 0; put(b, "\x80\x02", 2); }

/* Runs main (ended with STOP), with the data of storage "r" (6 floats) when it names
 * a storage; expects failure with needle. */
static void reject_pickle(ln_ctx *ctx, bytes *main_pickle, ln_status code, const char *needle,
                          const char *what) {
    bool uses_r = false;
    for (size_t i = 0; i + 7 <= main_pickle->n && !uses_r; i++)
        uses_r = memcmp(main_pickle->p + i, "storage", 7) == 0;
    op(main_pickle, '.');
    ln_pth_doc *doc;
    static const char *const keys[] = {"r"};
    check_failure(ctx, legacy(ctx, main_pickle, keys, uses_r, (int64_t[]){6}, true, &doc), code,
                  needle, what);
    CHECK(doc == NULL, "%s: no document", what);
}

static void test_handmade(ln_ctx *ctx) {
    bytes b = {0};
    ln_pth_doc *doc;
    static const char *const r[] = {"r"};
    const int64_t one[] = {1}, two[] = {2};

    /* a valid view storage (legacy storage views): elements 2..4 of r, tensor [1:3] */
    pickle_start(&b);
    tensor(&b, "r", 6, "v", 2, 3, 1, 1, two, one);
    op(&b, '.');
    if (CHECK_OK(ctx, legacy(ctx, &b, r, 1, (int64_t[]){6}, true, &doc))) {
        check_tensor(ctx, ln_pth_doc_root(doc), LN_F32, 1, two, (double[]){3, 4}, "view storage");
        ln_pth_doc_free(doc);
    }
    /* a list that contains itself loads (a cycle, freed with the document) */
    pickle_start(&b);
    put(&b, "]q\x00h\x00" "a.", 7);
    if (CHECK_OK(ctx, legacy(ctx, &b, NULL, 0, NULL, true, &doc))) {
        const ln_pth_value *l = ln_pth_doc_root(doc);
        CHECK(l->kind == LN_PTH_LIST && l->n == 1 && l->items[0] == l, "self-containing list");
        ln_pth_doc_free(doc);
    }
    /* LIST from a MARK on an empty stack (found by libFuzzer: no pointer into a NULL stack) */
    pickle_start(&b);
    put(&b, "(l.", 3);
    if (CHECK_OK(ctx, legacy(ctx, &b, NULL, 0, NULL, true, &doc))) {
        CHECK(ln_pth_doc_root(doc)->kind == LN_PTH_LIST && ln_pth_doc_root(doc)->n == 0, "empty list");
        ln_pth_doc_free(doc);
    }
    /* a key set twice keeps its first place and takes its last value */
    pickle_start(&b);
    put(&b, "}(", 2);
    str(&b, "a"); num(&b, 1); str(&b, "b"); num(&b, 2); str(&b, "a"); num(&b, 3);
    put(&b, "u.", 2);
    if (CHECK_OK(ctx, legacy(ctx, &b, NULL, 0, NULL, true, &doc))) {
        const ln_pth_value *d = ln_pth_doc_root(doc);
        CHECK(d->n == 2 && str_is(d->items[0], "a") && d->items[1]->i == 3 && str_is(d->items[2], "b"),
              "duplicate dict key: first place, last value");
        ln_pth_doc_free(doc);
    }

    pickle_start(&b);
    tensor(&b, "r", 6, NULL, 0, 0, 5, 1, two, one);
    reject_pickle(ctx, &b, LN_ERR_IO, "reaches element 6 of a storage of 6", "view past the storage");
    pickle_start(&b);
    tensor(&b, "r", 6, NULL, 0, 0, 0, 2, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40},
           (int64_t[]){(int64_t)1 << 40, 1});
    reject_pickle(ctx, &b, LN_ERR_IO, "storage 'r'", "overflowing view");
    pickle_start(&b);
    tensor(&b, "r", (int64_t)1 << 60, NULL, 0, 0, 0, 1, two, one);
    reject_pickle(ctx, &b, LN_ERR_IO, "declares more elements than the file holds", "huge storage");
    pickle_start(&b);
    tensor(&b, "r", 6, "v", 4, 3, 0, 1, two, one);
    reject_pickle(ctx, &b, LN_ERR_IO, "storage view out of its storage's bounds", "view past its root");
    pickle_start(&b);
    tensor(&b, "r", 6, NULL, 0, 0, 0, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1},
           (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "9 dimensions", "too many dimensions");
    pickle_start(&b);
    tensor(&b, "r", 6, NULL, 0, 0, 0, 1, two, (int64_t[]){-1});
    reject_pickle(ctx, &b, LN_ERR_IO, "not a non-negative int", "negative stride");
    pickle_start(&b);
    tensor(&b, "q", 6, NULL, 0, 0, 0, 1, two, one);
    reject_pickle(ctx, &b, LN_ERR_IO, "listed but never used", "unused storage");
    {   /* the data holds a different count than the pickle declares */
        pickle_start(&b);
        tensor(&b, "r", 6, NULL, 0, 0, 0, 1, two, one);
        op(&b, '.');
        check_failure(ctx, legacy(ctx, &b, r, 1, (int64_t[]){5}, true, &doc), LN_ERR_IO,
                      "declares 6 elements but the data 5", "count mismatch");
        check_failure(ctx, legacy(ctx, &b, NULL, 0, NULL, true, &doc), LN_ERR_IO, "bytes are missing",
                      "storage without data");
        check_failure(ctx, legacy(ctx, &b, r, 1, (int64_t[]){6}, false, &doc), LN_ERR_UNSUPPORTED,
                      "big-endian", "big-endian");
    }
    pickle_start(&b);
    for (int i = 0; i < 5000; i++) op(&b, '(');
    reject_pickle(ctx, &b, LN_ERR_IO, "nested MARKs", "deep nesting");
    pickle_start(&b);
    put(&b, "Nq\x05", 3);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "memo slot 5 written before slot 0", "memo gap");
    pickle_start(&b);
    put(&b, "h\x03", 2);
    reject_pickle(ctx, &b, LN_ERR_IO, "memo slot 3 read but only 0 written", "memo read");
    pickle_start(&b);
    put(&b, "\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09", 11);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "integer of 9 bytes", "long integer");
    pickle_start(&b);
    put(&b, "(iposix\nsystem\n", 15);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "'i' (0x69) is not allowed", "INST opcode");
    pickle_start(&b);
    global(&b, "os", "system");
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "global 'os.system' is not allowed", "GLOBAL os.system");
    pickle_start(&b);
    str(&b, "builtins");
    str(&b, "eval");
    op(&b, 0x93);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "global 'builtins.eval' is not allowed", "STACK_GLOBAL");
    pickle_start(&b);
    put(&b, "c\x01\x02\n\xff\n", 6);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "global '\\x01\\x02.\\xff'", "unprintable GLOBAL");
    pickle_start(&b);
    str(&b, "f");
    op(&b, ')');
    op(&b, 'R');
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "REDUCE calls a str", "REDUCE on a string");
    pickle_start(&b);
    put(&b, "]N", 2);
    op(&b, 'b');
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "BUILD on a list", "BUILD on a list");
    pickle_start(&b);
    put(&b, "}Na", 3);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "APPEND to a dict", "APPEND to a dict");
    pickle_start(&b);
    global(&b, "collections", "OrderedDict");
    num(&b, 1);
    put(&b, "\x85R", 2);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "OrderedDict called with 1 arguments", "OrderedDict(x)");
    pickle_start(&b);
    put(&b, "}(NN\x86Nu", 7);
    reject_pickle(ctx, &b, LN_ERR_ARG, "dict key of this kind", "tuple key");
    pickle_start(&b);
    put(&b, "](", 2);
    global(&b, "torch", "FloatStorage");
    op(&b, 'e');
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "a class or function object stored as data", "global as data");
    pickle_start(&b);
    put(&b, "(", 1);
    str(&b, "module");
    put(&b, "NNNNNtQ", 7);
    reject_pickle(ctx, &b, LN_ERR_UNSUPPORTED, "other than 'storage'", "module persistent id");
    pickle_start(&b);
    reject_pickle(ctx, &b, LN_ERR_IO, "pop from an empty stack", "STOP on an empty stack");
    pickle_start(&b);
    put(&b, "X\xff\xff\xff\x7f", 5);
    reject_pickle(ctx, &b, LN_ERR_IO, "but only", "string past the end");
    free(b.p);
}

/* ------------------------------------------------------------ the writer */
static void test_writer(ln_ctx *ctx) {
    char path[] = "/tmp/lunet_pth_testXXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0, "temporary file")) return;
    close(fd);
    ln_pth_doc *doc;
    if (!CHECK_OK(ctx, ln_pth_doc_create(ctx, &doc))) return;
    ln_tensor *a = NULL, *at = NULL, *c = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, &a));
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, a, 0, 1, &at));
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_I64, 0, NULL, (double[]){-42}, &c));
    ln_pth_value *root, *k, *v, *list;
    CHECK_OK(ctx, ln_pth_new(ctx, doc, LN_PTH_DICT, &root));
    root->ordered = true;
    const char *names[] = {"a", "a_t", "c", "none", "list", "ü"};
    ln_pth_value *vals[6];
    CHECK_OK(ctx, ln_pth_new_tensor(ctx, doc, a, &vals[0]));
    CHECK_OK(ctx, ln_pth_new_tensor(ctx, doc, at, &vals[1]));
    CHECK_OK(ctx, ln_pth_new_tensor(ctx, doc, c, &vals[2]));
    CHECK_OK(ctx, ln_pth_new(ctx, doc, LN_PTH_NONE, &vals[3]));
    CHECK_OK(ctx, ln_pth_new(ctx, doc, LN_PTH_LIST, &list));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(ctx, ln_pth_new(ctx, doc, i == 1 ? LN_PTH_FLOAT : LN_PTH_INT, &v));
        v->i = -((int64_t)1 << (20 * i));
        v->f = 0.1;
        CHECK_OK(ctx, ln_pth_append(ctx, list, v));
    }
    vals[4] = list;
    CHECK_OK(ctx, ln_pth_new(ctx, doc, LN_PTH_BOOL, &vals[5]));
    vals[5]->i = 1;
    for (int i = 0; i < 6; i++) {
        CHECK_OK(ctx, ln_pth_new_str(ctx, doc, LN_PTH_STR, names[i], strlen(names[i]), &k));
        CHECK_OK(ctx, ln_pth_dict_add(ctx, root, k, vals[i]));
    }
    ln_pth_doc_set_root(doc, root);
    if (CHECK_OK(ctx, ln_pth_save_file(ctx, path, root))) {
        ln_pth_doc *back = NULL;
        if (CHECK_OK(ctx, ln_pth_load_file(ctx, path, &back))) {
            const ln_pth_value *r = ln_pth_doc_root(back);
            CHECK(r->kind == LN_PTH_DICT && r->ordered && r->n == 6, "written OrderedDict of 6 read back");
            check_tensor(ctx, get(r, "a"), LN_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, "a");
            check_tensor(ctx, get(r, "a_t"), LN_F32, 2, (int64_t[]){3, 2}, (double[]){1, 4, 2, 5, 3, 6}, "a_t");
            check_tensor(ctx, get(r, "c"), LN_I64, 0, NULL, (double[]){-42}, "c");
            const ln_pth_value *l = get(r, "list"), *u = get(r, "ü");
            CHECK(get(r, "none")->kind == LN_PTH_NONE, "None");
            CHECK(l && l->n == 3 && l->items[0]->i == -1 && l->items[1]->f == 0.1 &&
                  l->items[2]->i == -((int64_t)1 << 40), "list of numbers");
            CHECK(u && u->kind == LN_PTH_BOOL && u->i == 1, "UTF-8 key, bool value");
            ln_pth_doc_free(back);
        }
        size_t n = 0;
        FILE *f = fopen(path, "rb");
        uint8_t head[64] = {0};
        if (f) { n = fread(head, 1, sizeof head, f); fclose(f); }
        CHECK(n == sizeof head && memcmp(head, "PK\x03\x04", 4) == 0 && memcmp(head + 30, "archive/data.pkl", 16) == 0,
              "a zip whose first entry is archive/data.pkl");
    }
    /* a string that is not UTF-8 is refused and the old file is left as it was */
    CHECK_OK(ctx, ln_pth_new_str(ctx, doc, LN_PTH_STR, "\xff", 1, &k));
    CHECK_OK(ctx, ln_pth_dict_add(ctx, root, k, vals[3]));
    CHECK_FAILS(ctx, ln_pth_save_file(ctx, path, root), LN_ERR_ARG);
    ln_pth_doc *back = NULL;
    if (CHECK_OK(ctx, ln_pth_load_file(ctx, path, &back))) ln_pth_doc_free(back);
    CHECK_FAILS(ctx, ln_pth_save_file(ctx, "/no/such/dir/x.pth", vals[0]), LN_ERR_IO);
    CHECK_FAILS(ctx, ln_pth_save_file(ctx, path, NULL), LN_ERR_ARG);
    unlink(path);
    ln_tensor_release(a);
    ln_tensor_release(at);
    ln_tensor_release(c);
    ln_pth_doc_free(doc);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    test_small(ctx);
    test_models(ctx);
    test_hostile_files(ctx);
    test_truncations(ctx);
    test_handmade(ctx);
    test_writer(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
