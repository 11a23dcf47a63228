/* Fuzz target of the .pth reader (ln_pth_load_memory): any input must either load
 * (and then every tensor and string of the result is read through, so the
 * sanitizers see any bad bound) or fail with a message and no document; never crash,
 * hang or leak.
 *
 * Two ways to run it:
 *  - as a ctest (this file's main): a deterministic mutation driver over the small
 *    fixtures of tests/fixtures/pth (seeded byte and bit flips, truncations,
 *    insertions, deletions, overwrites with boundary values, copied chunks), 100,000
 *    inputs or 20 s, whichever comes first (LUNET_FUZZ_ITERS and
 *    LUNET_FUZZ_SECONDS override). It matters most in the sanitizer build.
 *  - with libFuzzer: compile with -DLUNET_LIBFUZZER, e.g.
 *      CC=clang cmake -S . -B build-fuzz -DLUNET_SANITIZE=ON -DLUNET_CUDA=OFF \
 *            -DLUNET_BINDINGS=OFF -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
 *      cmake --build build-fuzz --target lunet_core
 *      clang -g -fsanitize=fuzzer,address,undefined -DLUNET_LIBFUZZER -Icore/include \
 *            tests/c/fuzz_pth.c build-fuzz/lib/liblunet_core.a -ldnnl -lz -ljpeg -lpng \
 *            -lm -fopenmp -o fuzz_pth
 *      ./fuzz_pth tests/fixtures/pth/ */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lunet/lunet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every value reachable from v (each container once per path, at most `budget`
 * visits and 64 levels, so shared and cyclic structures end). Returns a checksum so
 * the reads are not optimised away. */
static double touch(ln_ctx *ctx, const ln_pth_value *v, int depth, long *budget) {
    if (!v || depth > 64 || --*budget < 0) return 0;
    double sum = 0;
    switch (v->kind) {
    case LN_PTH_STR:
    case LN_PTH_BYTES:
        if (v->str[v->len] != '\0') abort();
        for (size_t i = 0; i < v->len; i++) sum += (unsigned char)v->str[i];
        return sum;
    case LN_PTH_LIST:
    case LN_PTH_TUPLE:
        for (size_t i = 0; i < v->n; i++) sum += touch(ctx, v->items[i], depth + 1, budget);
        return sum;
    case LN_PTH_DICT:
        for (size_t i = 0; i < 2 * v->n; i++) sum += touch(ctx, v->items[i], depth + 1, budget);
        return sum;
    case LN_PTH_TENSOR: {
        int64_t n = ln_tensor_numel(v->tensor);
        double *vals = malloc((size_t)(n ? n : 1) * sizeof *vals);
        if (!vals) return 0;
        if (ln_tensor_to_f64(ctx, v->tensor, vals) != LN_OK) abort();
        for (int64_t i = 0; i < n; i++) sum += vals[i] == vals[i] ? 1 : 0;
        free(vals);
        return sum;
    }
    default:
        return (double)v->i + v->f;
    }
}

/* Loads one input and checks the contract; true when it loaded. */
static bool run_one(const uint8_t *data, size_t size) {
    ln_ctx *ctx = ln_ctx_create();
    if (!ctx) return false;
    ln_pth_doc *doc = NULL;
    bool loaded = ln_pth_load_memory(ctx, data, size, "fuzz", &doc) == LN_OK;
    if (loaded) {
        long budget = 200000;
        volatile double sink = touch(ctx, ln_pth_doc_root(doc), 0, &budget);
        (void)sink;
        ln_pth_doc_free(doc);
    } else if (doc != NULL || ln_ctx_error(ctx)[0] == '\0') {
        abort(); /* a failure must leave no document and say why */
    }
    ln_ctx_release(ctx);
    return loaded;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run_one(data, size);
    return 0;
}

#ifndef LUNET_LIBFUZZER
/* ------------------------------------------------------------ the ctest driver */
typedef struct seed { uint8_t *p; size_t n; } seed;

static uint64_t next(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}
static size_t below(uint64_t *s, size_t n) { return n ? (size_t)(next(s) % n) : 0; }

/* Applies one random mutation to buf (length *n, capacity cap). */
static void mutate(uint8_t *buf, size_t *n, size_t cap, uint64_t *rng) {
    static const uint64_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
                                           0x7fffffff, 0x80000000u, 0xffffffffu, 1ull << 40,
                                           0x7fffffffffffffffull, ~0ull};
    size_t len = *n;
    switch (below(rng, 7)) {
    case 0: if (len) buf[below(rng, len)] = (uint8_t)next(rng); break;
    case 1: if (len) buf[below(rng, len)] ^= (uint8_t)(1u << below(rng, 8)); break;
    case 2: *n = below(rng, len + 1); break;
    case 3: {
        size_t k = 1 + below(rng, 16), at = below(rng, len + 1);
        if (len + k > cap) break;
        memmove(buf + at + k, buf + at, len - at);
        for (size_t i = 0; i < k; i++) buf[at + i] = (uint8_t)next(rng);
        *n = len + k;
        break;
    }
    case 4: {
        if (!len) break;
        size_t at = below(rng, len), k = 1 + below(rng, 64);
        if (k > len - at) k = len - at;
        memmove(buf + at, buf + at + k, len - at - k);
        *n = len - k;
        break;
    }
    case 5: {
        size_t w = (size_t)1 << below(rng, 4);
        if (len < w) break;
        uint64_t v = interesting[below(rng, sizeof interesting / sizeof interesting[0])];
        size_t at = below(rng, len - w + 1);
        for (size_t i = 0; i < w; i++) buf[at + i] = (uint8_t)(v >> (8 * i));
        break;
    }
    default: {
        if (len < 2) break;
        size_t from = below(rng, len), to = below(rng, len), k = 1 + below(rng, 32);
        if (k > len - from) k = len - from;
        if (k > len - to) k = len - to;
        memmove(buf + to, buf + from, k);
        break;
    }
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void) {
    static const char *const files[] = {
        "small_zip.pth", "small_legacy.pth", "small_deflate.pth", "small_zip64.pth",
        "evil_system.pth", "evil_legacy.pth", "short_storage.pth", "not_pth.bin"};
    enum { NFILES = sizeof files / sizeof files[0] };
    seed seeds[NFILES];
    size_t biggest = 0;
    for (int f = 0; f < NFILES; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/pth/%s", LUNET_FIXTURES_DIR, files[f]);
        FILE *fp = fopen(path, "rb");
        if (!fp) { fprintf(stderr, "FAIL: cannot read %s\n", path); return 1; }
        fseek(fp, 0, SEEK_END);
        seeds[f].n = (size_t)ftell(fp);
        fseek(fp, 0, SEEK_SET);
        seeds[f].p = malloc(seeds[f].n);
        if (!seeds[f].p || fread(seeds[f].p, 1, seeds[f].n, fp) != seeds[f].n) return 1;
        fclose(fp);
        if (seeds[f].n > biggest) biggest = seeds[f].n;
        if (!run_one(seeds[f].p, seeds[f].n) && f < 4) {
            fprintf(stderr, "FAIL: seed %s does not load\n", files[f]);
            return 1;
        }
    }
    long iters = getenv("LUNET_FUZZ_ITERS") ? atol(getenv("LUNET_FUZZ_ITERS")) : 100000;
    double seconds = getenv("LUNET_FUZZ_SECONDS") ? atof(getenv("LUNET_FUZZ_SECONDS")) : 20;
    size_t cap = biggest + 1024;
    uint8_t *buf = malloc(cap);
    uint64_t rng = 0x5eed1e55f00dull;
    double start = now();
    long done = 0, loaded = 0;
    for (; done < iters && now() - start < seconds; done++) {
        const seed *s = &seeds[below(&rng, NFILES)];
        size_t n = s->n;
        memcpy(buf, s->p, n);
        int k = 1 + (int)below(&rng, 4);
        for (int m = 0; m < k; m++) mutate(buf, &n, cap, &rng);
        /* an exact copy of the input in its own block, so reads past its end are caught */
        uint8_t *input = malloc(n ? n : 1);
        memcpy(input, buf, n);
        if (run_one(input, n)) loaded++;
        free(input);
    }
    printf("fuzz_pth: %ld mutated inputs (%ld loaded, %ld rejected) from %d seeds in %.1f s\n",
           done, loaded, done - loaded, NFILES, now() - start);
    free(buf);
    for (int f = 0; f < NFILES; f++) free(seeds[f].p);
    printf("%ld passed, 0 failed\n", done);
    return 0;
}
#endif
