/* safetensors: round trips of every dtype (0-d, empty, strided tensors, metadata with
 * quotes, control characters and non-ASCII text), the exact bytes of a small file,
 * F16/BF16 reading, failing writes (/dev/full through ln_safetensors_write, and the
 * full-disk hook of ln_safetensors_save: the previous file survives, no temporary file
 * is left), bad arguments, and hostile files: truncated at every length, header longer
 * than the file, bad JSON of many kinds, bad entries (offsets out of range,
 * overlapping, gaps, trailing bytes, wrong sizes, overflowing shapes, unknown dtypes,
 * duplicate names...), random bytes and random mutations of a valid file. Every
 * hostile file must give LN_ERR_IO (or UNSUPPORTED) with the path in the message and
 * no output: never a crash (run under ASan by make test-san). */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "lunet/io.h"

static char g_dir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s: %s", path, strerror(errno));
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n, "write %s", path);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* A file made of the 8-byte length of `header`, the header and `data_len` data bytes. */
static void write_st(const char *path, const char *header, size_t data_len) {
    size_t h = strlen(header);
    unsigned char *buf = calloc(1, 8 + h + data_len + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_len; i++) buf[8 + h + i] = (unsigned char)(i * 7 + 1);
    write_bytes(path, buf, 8 + h + data_len);
    free(buf);
}

/* Counts the directory's entries whose name contains ".tmp.". */
static int temp_files(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static ln_tensor *from(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape, const double *v) {
    ln_tensor *t = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, ndim, shape, v, &t));
    return t;
}

static bool same_values(ln_ctx *ctx, const ln_tensor *a, const ln_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim || !ln_tensor_same_shape(a, b)) return false;
    int64_t n = ln_tensor_numel(a);
    double *x = malloc((size_t)(n ? n : 1) * sizeof *x), *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    bool ok = ln_tensor_to_f64(ctx, a, x) == LN_OK && ln_tensor_to_f64(ctx, b, y) == LN_OK &&
              (n == 0 || memcmp(x, y, (size_t)n * sizeof *x) == 0);
    free(x);
    free(y);
    return ok;
}

static int find(const ln_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->names[i], name) == 0) return i;
    return -1;
}

static const char *meta_get(const ln_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

/* Checks that status s is `code` and the message holds both needles (NULL: any). */
static void expect_fail(ln_ctx *ctx, ln_status s, ln_status code, const char *n1, const char *n2,
                        const char *what) {
    const char *msg = ln_ctx_error(ctx);
    CHECK(s == code && msg[0] && (!n1 || strstr(msg, n1)) && (!n2 || strstr(msg, n2)),
          "%s: status %s (want %s), message '%s' (want '%s', '%s')", what, ln_status_name(s),
          ln_status_name(code), msg, n1 ? n1 : "", n2 ? n2 : "");
    ln_ctx_clear_error(ctx);
}

/* ------------------------------------------------------------ round trips */
#define NT 9
static void make_tensors(ln_ctx *ctx, ln_named_tensor *nt, ln_tensor **own) {
    const double v[12] = {1.5, -2.25, 3e-8, 1e30, -0.0, 7, 8, 9, 10, 11, 255, 0};
    const double iv[6] = {-9007199254740993.0, 4, -5, 2147483647, 0, 1};
    own[0] = from(ctx, LN_F32, 2, (int64_t[]){3, 4}, v);
    own[1] = from(ctx, LN_F64, 1, (int64_t[]){12}, v);
    own[2] = from(ctx, LN_I64, 2, (int64_t[]){2, 3}, iv);
    own[3] = from(ctx, LN_I32, 1, (int64_t[]){6}, (double[]){-1, 2147483647, -2147483648.0, 0, 5, 6});
    own[4] = from(ctx, LN_U8, 3, (int64_t[]){1, 2, 2}, (double[]){0, 1, 128, 255});
    own[5] = from(ctx, LN_F32, 0, NULL, (double[]){42.5});                 /* 0-d */
    own[6] = from(ctx, LN_F64, 1, (int64_t[]){0}, NULL);                   /* empty */
    own[7] = from(ctx, LN_I32, 3, (int64_t[]){2, 0, 3}, NULL);             /* empty, 3-d */
    own[8] = NULL;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, own[0], 0, 1, &own[8]));  /* strided (4, 3) */
    const char *names[NT] = {"conv.weight", "f64", "layer1.0.i64", "i32", "u8 \"quoted\"", "scalar",
                             "empty", "empty3", "transposed \xc3\xa9\xe2\x82\xac"};
    for (int i = 0; i < NT; i++) { nt[i].name = names[i]; nt[i].tensor = own[i]; }
}

static void test_round_trip(ln_ctx *ctx) {
    ln_named_tensor nt[NT];
    ln_tensor *own[NT];
    make_tensors(ctx, nt, own);
    ln_meta_entry meta[3] = {{"lunet.format", "lunet.checkpoint/1"},
                             {"quote\"back\\slash", "line\nbreak\ttab\x01 \xe6\x97\xa5\xe6\x9c\xac"},
                             {"empty", ""}};
    char path[300];
    path_in(path, sizeof path, "round.safetensors");
    CHECK_OK(ctx, ln_safetensors_save(ctx, path, NT, nt, 3, meta, NULL));
    CHECK(temp_files() == 0, "no temporary file after a save");
    ln_safetensors *st = NULL;
    CHECK_OK(ctx, ln_safetensors_load(ctx, path, &st));
    if (st) {
        CHECK(st->n_tensors == NT && st->n_meta == 3, "%d tensors, %d metadata", st->n_tensors, st->n_meta);
        for (int i = 0; i < NT; i++) {
            int k = find(st, nt[i].name);
            CHECK(k >= 0 && same_values(ctx, st->tensors[k], nt[i].tensor), "tensor '%s' round trip", nt[i].name);
            if (k >= 0) CHECK(ln_tensor_is_contiguous(st->tensors[k]), "'%s' loads contiguous", nt[i].name);
        }
        for (int i = 0; i < 3; i++) {
            const char *v = meta_get(st, meta[i].key);
            CHECK(v && strcmp(v, meta[i].value) == 0, "metadata '%s' round trip", meta[i].key);
        }
        /* file order = the order given (offsets increase) */
        CHECK(strcmp(st->names[0], "conv.weight") == 0 && strcmp(st->names[NT - 1], nt[NT - 1].name) == 0,
              "tensors come back in the order written");
        int k = find(st, "scalar");
        if (k >= 0) CHECK(st->tensors[k]->ndim == 0, "0-d stays 0-d");
    }
    ln_safetensors_free(st);

    /* no metadata and no tensors at all */
    char p2[300];
    path_in(p2, sizeof p2, "empty.safetensors");
    CHECK_OK(ctx, ln_safetensors_save(ctx, p2, 0, NULL, 0, NULL, NULL));
    st = NULL;
    CHECK_OK(ctx, ln_safetensors_load(ctx, p2, &st));
    CHECK(st && st->n_tensors == 0 && st->n_meta == 0, "an empty file round trips");
    ln_safetensors_free(st);
    for (int i = 0; i < NT; i++) ln_tensor_release(own[i]);
}

/* The exact bytes of a one-tensor file: the header is padded to 8 with spaces. */
static void test_exact_bytes(ln_ctx *ctx) {
    ln_tensor *t = from(ctx, LN_F32, 1, (int64_t[]){2}, (double[]){1, -2});
    ln_named_tensor nt = {"w", t};
    ln_meta_entry m = {"k", "v"};
    char path[300];
    path_in(path, sizeof path, "exact.safetensors");
    CHECK_OK(ctx, ln_safetensors_save(ctx, path, 1, &nt, 1, &m, NULL));
    const char *want = "{\"__metadata__\":{\"k\":\"v\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                       "\"data_offsets\":[0,8]}}";
    size_t hl = strlen(want), padded = (hl + 7) / 8 * 8, n = 0;
    unsigned char *b = read_bytes(path, &n);
    CHECK(b && n == 8 + padded + 8, "file size %zu, expected %zu", n, 8 + padded + 8);
    if (b && n == 8 + padded + 8) {
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) len |= (uint64_t)b[i] << (8 * i);
        CHECK(len == padded, "header length %llu, expected %zu", (unsigned long long)len, padded);
        CHECK(memcmp(b + 8, want, hl) == 0, "header text");
        bool spaces = true;
        for (size_t i = hl; i < padded; i++) spaces = spaces && b[8 + i] == ' ';
        CHECK(spaces, "header padded with spaces");
        float v[2];
        memcpy(v, b + 8 + padded, 8);
        CHECK(v[0] == 1.0f && v[1] == -2.0f, "data little-endian f32");
    }
    free(b);
    ln_tensor_release(t);
}

/* F16 and BF16 read as f32 (the header here starts with whitespace, as JSON allows). */
static void test_half_types(ln_ctx *ctx) {
    char path[300];
    path_in(path, sizeof path, "half.safetensors");
    const char *h = " \n{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]}}";
    const uint16_t data[8] = {0x3C00, 0xC000, 0x3800, 0x0001, 0x7C00, 0x7BFF, 0x3F80, 0xC0A0};
    size_t hl = strlen(h);
    unsigned char buf[512];
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, h, hl);
    memcpy(buf + 8 + hl, data, sizeof data);
    write_bytes(path, buf, 8 + hl + sizeof data);
    ln_safetensors *st = NULL;
    CHECK_OK(ctx, ln_safetensors_load(ctx, path, &st));
    if (!st) return;
    int hi = find(st, "h"), bi = find(st, "b");
    CHECK(hi >= 0 && bi >= 0 && st->tensors[hi]->dtype == LN_F32, "F16/BF16 load as f32");
    if (hi >= 0 && bi >= 0) {
        const float *f = ln_tensor_data(st->tensors[hi]), *g = ln_tensor_data(st->tensors[bi]);
        CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.5f && f[3] == 5.9604644775390625e-8f &&
                  f[4] == INFINITY && f[5] == 65504.0f, "F16 values %g %g %g %g %g %g", f[0], f[1], f[2],
              f[3], f[4], f[5]);
        CHECK(g[0] == 1.0f && g[1] == -5.0f, "BF16 values %g %g", g[0], g[1]);
    }
    ln_safetensors_free(st);
}

/* ------------------------------------------------------------ failing writes */
static void test_write_failures(ln_ctx *ctx) {
    ln_tensor *big = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){1 << 16}, &big));
    ln_named_tensor nt = {"big", big};
    FILE *full = fopen("/dev/full", "wb");
    if (full) {
        expect_fail(ctx, ln_safetensors_write(ctx, full, "/dev/full", 1, &nt, 0, NULL), LN_ERR_IO,
                    "/dev/full", "space", "writing to /dev/full");
        fclose(full);
    } else {
        printf("SKIPPED (part): no /dev/full\n");
    }

    /* a previous file survives a full disk at any point of the new write */
    char path[300];
    path_in(path, sizeof path, "keep.safetensors");
    ln_tensor *old = from(ctx, LN_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    ln_named_tensor ont = {"old", old};
    CHECK_OK(ctx, ln_safetensors_save(ctx, path, 1, &ont, 0, NULL, NULL));
    const int64_t cuts[] = {1, 7, 8, 9, 100, 200, 4096, 100000, 262000};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        ln_save_opts o = {cuts[c]};
        expect_fail(ctx, ln_safetensors_save(ctx, path, 1, &nt, 0, NULL, &o), LN_ERR_IO, path, "space",
                    "full disk during a save");
        CHECK(temp_files() == 0, "no temporary file left after a failure at byte %lld", (long long)cuts[c]);
        ln_safetensors *st = NULL;
        CHECK_OK(ctx, ln_safetensors_load(ctx, path, &st));
        CHECK(st && st->n_tensors == 1 && strcmp(st->names[0], "old") == 0 && same_values(ctx, st->tensors[0], old),
              "previous file intact after a failure at byte %lld", (long long)cuts[c]);
        ln_safetensors_free(st);
    }
    ln_save_opts late = {1 << 20}; /* beyond the file: the save succeeds */
    CHECK_OK(ctx, ln_safetensors_save(ctx, path, 1, &nt, 0, NULL, &late));

    /* a folder that does not exist, a target that is a directory */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", g_dir);
    expect_fail(ctx, ln_safetensors_save(ctx, bad, 1, &nt, 0, NULL, NULL), LN_ERR_IO, bad, "No such file",
                "save into a missing folder");
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, g_dir, 1, &nt, 0, NULL, NULL), LN_ERR_IO);
    CHECK(temp_files() == 0, "no temporary file after renaming over a directory failed");
    ln_tensor_release(big);
    ln_tensor_release(old);
}

static void test_bad_arguments(ln_ctx *ctx) {
    ln_tensor *t = from(ctx, LN_F32, 1, (int64_t[]){1}, (double[]){1});
    char path[300];
    path_in(path, sizeof path, "args.safetensors");
    ln_named_tensor dup[2] = {{"a", t}, {"a", t}};
    expect_fail(ctx, ln_safetensors_save(ctx, path, 2, dup, 0, NULL, NULL), LN_ERR_ARG, "duplicate", "'a'",
                "duplicate names");
    ln_named_tensor reserved = {"__metadata__", t}, empty = {"", t}, null_t = {"x", NULL}, null_n = {NULL, t};
    ln_named_tensor bad_utf8 = {"\xff\xfe", t};
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, 1, &reserved, 0, NULL, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, 1, &empty, 0, NULL, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, 1, &null_t, 0, NULL, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, 1, &null_n, 0, NULL, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, 1, &bad_utf8, 0, NULL, NULL), LN_ERR_ARG);
    ln_meta_entry md[2] = {{"k", "1"}, {"k", "2"}}, mnull = {"k", NULL};
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, 1, dup, 2, md, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, 1, dup, 1, &mnull, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, path, -1, dup, 0, NULL, NULL), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_safetensors_save(ctx, "", 1, dup, 0, NULL, NULL), LN_ERR_ARG);
    CHECK(access(path, F_OK) != 0 && temp_files() == 0, "bad arguments create no file");
    ln_safetensors *st = (ln_safetensors *)&st;
    CHECK_FAILS(ctx, ln_safetensors_load(ctx, NULL, &st), LN_ERR_ARG);
    CHECK(st == NULL, "no output on failure");
    CHECK_FAILS(ctx, ln_safetensors_load(ctx, path, NULL), LN_ERR_ARG);
    ln_tensor_release(t);
}

/* ------------------------------------------------------------ hostile files */
/* Loads path expecting failure `code` with the path in the message (and `needle`). */
static void expect_bad(ln_ctx *ctx, const char *path, ln_status code, const char *needle, const char *what) {
    ln_safetensors *st = (ln_safetensors *)&st;
    ln_status s = ln_safetensors_load(ctx, path, &st);
    const char *msg = ln_ctx_error(ctx);
    CHECK(s == code && st == NULL, "%s: status %s (want %s), output %s", what, ln_status_name(s),
          ln_status_name(code), st ? "set" : "NULL");
    CHECK(strstr(msg, path) != NULL, "%s: message names the file: %s", what, msg);
    if (needle) CHECK(strstr(msg, needle) != NULL, "%s: message mentions '%s': %s", what, needle, msg);
    if (s == LN_OK) ln_safetensors_free(st);
}

typedef struct bad_case {
    const char *what, *header;
    size_t data_len;
    ln_status code;
    const char *needle;
} bad_case;

#define E(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const bad_case BAD_CASES[] = {
    /* JSON syntax */
    {"unterminated object", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}", 1, LN_ERR_IO, "JSON"},
    {"trailing comma", "{" E("a", "U8", "[1]", 0, 1) ",}", 1, LN_ERR_IO, "JSON"},
    {"missing value", "{\"a\":}", 0, LN_ERR_IO, "JSON"},
    {"single quotes", "{'a':1}", 0, LN_ERR_IO, "JSON"},
    {"comment", "{/* c */}", 0, LN_ERR_IO, "JSON"},
    {"leading zero", "{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "leading zero"},
    {"control char in string", "{\"a\tb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "control"},
    {"invalid UTF-8", "{\"a\xc3\x28\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "UTF-8"},
    {"overlong UTF-8", "{\"\xc0\xaf\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "UTF-8"},
    {"lone surrogate", "{\"\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "surrogate"},
    {"bad escape", "{\"\\q\":1}", 0, LN_ERR_IO, "escape"},
    {"text after the object", "{} x", 0, LN_ERR_IO, "after"},
    {"two objects", "{}{}", 0, LN_ERR_IO, "after"},
    {"bare word", "{\"a\":nul}", 0, LN_ERR_IO, "JSON"},
    {"header is an array", "[1, 2]", 0, LN_ERR_IO, "not a safetensors"},
    {"header is text", "hello world", 0, LN_ERR_IO, "not a safetensors"},
    /* structure */
    {"entry not an object", "{\"a\":[1]}", 0, LN_ERR_IO, "object"},
    {"missing field", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, LN_ERR_IO, "data_offsets"},
    {"unknown field", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1, LN_ERR_IO, "unknown field"},
    {"field twice", "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "twice"},
    {"dtype not a string", "{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "dtype"},
    {"unknown dtype", "{" E("a", "F33", "[1]", 0, 1) "}", 1, LN_ERR_IO, "unknown dtype"},
    {"unsupported dtype", "{" E("a", "BOOL", "[1]", 0, 1) "}", 1, LN_ERR_UNSUPPORTED, "BOOL"},
    {"negative extent", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "shape"},
    {"fractional extent", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "shape"},
    {"extent above 2^63", "{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808],\"data_offsets\":[0,1]}}", 1,
     LN_ERR_IO, "shape"},
    {"shape not an array", "{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 1, LN_ERR_IO, "array"},
    {"too many dims", "{" E("a", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) "}", 1, LN_ERR_IO, "at most"},
    {"three offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, LN_ERR_IO, "data_offsets"},
    {"one offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1]}}", 1, LN_ERR_IO, "data_offsets"},
    {"overflowing shape", "{" E("a", "F32", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, LN_ERR_IO, "overflow"},
    {"numel * size overflows", "{" E("a", "F64", "[2305843009213693952]", 0, 8) "}", 8, LN_ERR_IO, "overflow"},
    {"end past the data", "{" E("a", "U8", "[4]", 0, 4) "}", 3, LN_ERR_IO, "outside"},
    {"huge offsets", "{" E("a", "U8", "[1]", 9223372036854775806, 9223372036854775807) "}", 1, LN_ERR_IO, "outside"},
    {"end before begin", "{" E("a", "U8", "[0]", 2, 1) "}", 2, LN_ERR_IO, "outside"},
    {"wrong size", "{" E("a", "F32", "[2,2]", 0, 8) "}", 8, LN_ERR_IO, "needs 16 bytes"},
    {"overlap", "{" E("a", "U8", "[4]", 0, 4) "," E("b", "U8", "[4]", 2, 6) "}", 6, LN_ERR_IO, "overlap"},
    {"same range twice", "{" E("a", "U8", "[4]", 0, 4) "," E("b", "U8", "[4]", 0, 4) "}", 4, LN_ERR_IO, "overlap"},
    {"gap", "{" E("a", "U8", "[2]", 0, 2) "," E("b", "U8", "[2]", 3, 5) "}", 5, LN_ERR_IO, "no tensor"},
    {"trailing data", "{" E("a", "U8", "[2]", 0, 2) "}", 5, LN_ERR_IO, "cover"},
    {"data but no tensors", "{}", 16, LN_ERR_IO, "cover"},
    {"duplicate names", "{" E("a", "U8", "[2]", 0, 2) "," E("a", "U8", "[2]", 2, 4) "}", 4, LN_ERR_IO, "twice"},
    {"NUL in a name", "{" E("a\\u0000b", "U8", "[2]", 0, 2) "}", 2, LN_ERR_IO, "NUL"},
    {"metadata not an object", "{\"__metadata__\":[]}", 0, LN_ERR_IO, "__metadata__"},
    {"metadata value not a string", "{\"__metadata__\":{\"k\":1}}", 0, LN_ERR_IO, "not a string"},
    {"metadata key twice", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, LN_ERR_IO, "twice"},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, LN_ERR_IO, "twice"},
};

static void test_hostile_headers(ln_ctx *ctx) {
    char path[300];
    path_in(path, sizeof path, "bad.safetensors");
    for (size_t i = 0; i < sizeof BAD_CASES / sizeof BAD_CASES[0]; i++) {
        const bad_case *c = &BAD_CASES[i];
        write_st(path, c->header, c->data_len);
        expect_bad(ctx, path, c->code, c->needle, c->what);
    }
    /* nesting deeper than the parser's limit */
    char deep[400] = "{\"a\":";
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    write_st(path, deep, 0);
    expect_bad(ctx, path, LN_ERR_IO, "deeper", "deep nesting");
}

static void test_truncations(ln_ctx *ctx) {
    ln_tensor *a = from(ctx, LN_F32, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    ln_tensor *b = from(ctx, LN_I64, 1, (int64_t[]){2}, (double[]){7, 8});
    ln_named_tensor nt[2] = {{"a", a}, {"b", b}};
    ln_meta_entry m = {"k", "v"};
    char path[300], cut[300];
    path_in(path, sizeof path, "whole.safetensors");
    path_in(cut, sizeof cut, "cut.safetensors");
    CHECK_OK(ctx, ln_safetensors_save(ctx, path, 2, nt, 1, &m, NULL));
    size_t n = 0;
    unsigned char *bytes = read_bytes(path, &n);
    int failures = 0;
    for (size_t len = 0; bytes && len < n; len++) {
        write_bytes(cut, bytes, len);
        ln_safetensors *st = NULL;
        ln_status s = ln_safetensors_load(ctx, cut, &st);
        if (s != LN_ERR_IO || st || !strstr(ln_ctx_error(ctx), cut)) failures++;
        ln_safetensors_free(st);
    }
    CHECK(failures == 0, "every truncation (%zu of them) is an I/O error naming the file (%d not)", n, failures);
    write_bytes(cut, bytes, 5);
    expect_bad(ctx, cut, LN_ERR_IO, "too short", "5-byte file");
    write_bytes(cut, bytes, 40);
    expect_bad(ctx, cut, LN_ERR_IO, "exceeds", "header cut short");
    /* header length 2^63 + 5 and 2^64 - 1 */
    unsigned char big[16] = {5, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    write_bytes(cut, big, 10);
    expect_bad(ctx, cut, LN_ERR_IO, "exceeds", "header length 2^63");
    memset(big, 0xff, 8);
    write_bytes(cut, big, 10);
    expect_bad(ctx, cut, LN_ERR_IO, "exceeds", "header length 2^64-1");
    unsigned char zero[8] = {0};
    write_bytes(cut, zero, 8);
    expect_bad(ctx, cut, LN_ERR_IO, "not a safetensors", "header length 0");
    free(bytes);
    ln_tensor_release(a);
    ln_tensor_release(b);
}

static void test_foreign_files(ln_ctx *ctx) {
    char path[300];
    path_in(path, sizeof path, "foreign");
    const char *text = "This is a plain text file, long enough to have an 8-byte prefix.\n";
    write_bytes(path, text, strlen(text));
    expect_bad(ctx, path, LN_ERR_IO, "not a safetensors", "text file");
    const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89};
    write_bytes(path, png, sizeof png);
    expect_bad(ctx, path, LN_ERR_IO, "not a safetensors", "PNG file");
    write_bytes(path, "", 0);
    expect_bad(ctx, path, LN_ERR_IO, "too short", "empty file");
    char missing[300];
    path_in(missing, sizeof missing, "does-not-exist.safetensors");
    expect_bad(ctx, missing, LN_ERR_IO, "cannot open", "missing file");
    expect_bad(ctx, g_dir, LN_ERR_IO, "not a regular file", "a directory");
}

/* xorshift for reproducible random files */
static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static void test_random_bytes(ln_ctx *ctx) {
    char path[300];
    path_in(path, sizeof path, "random.safetensors");
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    unsigned char buf[600];
    int wrong = 0;
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)(next_rand(&seed) % sizeof buf);
        for (size_t k = 0; k < n; k++) buf[k] = (unsigned char)next_rand(&seed);
        if (i % 2 && n > 8) { /* a plausible header length so the JSON parser sees bytes */
            uint64_t hl = next_rand(&seed) % (n - 7);
            for (int k = 0; k < 8; k++) buf[k] = (unsigned char)(hl >> (8 * k));
            buf[8] = '{';
        }
        write_bytes(path, buf, n);
        ln_safetensors *st = NULL;
        ln_status s = ln_safetensors_load(ctx, path, &st);
        if (s == LN_OK) ln_safetensors_free(st);
        else if (st || !strstr(ln_ctx_error(ctx), path)) wrong++;
    }
    CHECK(wrong == 0, "random files: errors name the file and give no output (%d did not)", wrong);

    /* one-byte mutations of a valid file: each loads or fails cleanly */
    ln_tensor *a = from(ctx, LN_F32, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4});
    ln_tensor *b = from(ctx, LN_U8, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    ln_named_tensor nt[2] = {{"alpha", a}, {"beta", b}};
    ln_meta_entry m = {"key", "value"};
    char good[300];
    path_in(good, sizeof good, "good.safetensors");
    CHECK_OK(ctx, ln_safetensors_save(ctx, good, 2, nt, 1, &m, NULL));
    size_t n = 0;
    unsigned char *bytes = read_bytes(good, &n);
    wrong = 0;
    int loaded = 0;
    for (int i = 0; bytes && i < 600; i++) {
        unsigned char *copy = malloc(n);
        memcpy(copy, bytes, n);
        size_t at = (size_t)(next_rand(&seed) % n);
        copy[at] = (unsigned char)next_rand(&seed);
        write_bytes(path, copy, n);
        free(copy);
        ln_safetensors *st = NULL;
        ln_status s = ln_safetensors_load(ctx, path, &st);
        if (s == LN_OK) { loaded++; ln_safetensors_free(st); }
        else if (st || !strstr(ln_ctx_error(ctx), path)) wrong++;
    }
    CHECK(wrong == 0, "mutated files: clean errors (%d not; %d still loaded)", wrong, loaded);
    free(bytes);
    ln_tensor_release(a);
    ln_tensor_release(b);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    snprintf(g_dir, sizeof g_dir, "%s/lunet-st-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) return test_skip("cannot create a temporary folder");
    test_round_trip(ctx);
    test_exact_bytes(ctx);
    test_half_types(ctx);
    test_write_failures(ctx);
    test_bad_arguments(ctx);
    test_hostile_headers(ctx);
    test_truncations(ctx);
    test_foreign_files(ctx);
    test_random_bytes(ctx);
    nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ln_ctx_release(ctx);
    return test_finish();
}
