/* The threaded loader: the same seed gives the same batches with 0, 1 and 4 workers;
 * every sample once per epoch; drop_last; shuffle off; each sample equal to
 * ln_dataset_get with the same (seed, epoch, index); abandoning an epoch; statistics;
 * destroying a loader while its threads work; argument errors. Then an image folder
 * with every kind of bad input (0-byte, truncated, corrupt, text, unreadable, PNG
 * named .JPEG, grayscale, CMYK JPEGs): bad files are skipped, named once, counted and
 * replaced so batches stay full, converted files are counted, and the batches are
 * still the same whatever the worker count. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"
#include "lunet/data.h"

/* ------------------------------------------------------------ helpers */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* All batches of one epoch, flattened. */
typedef struct epoch_data {
    int64_t batches, rows;
    int64_t sizes[64];
    float *images;     /* rows x numel */
    int64_t *labels, *indices;
    ln_loader_stats stats;
} epoch_data;

static void epoch_free(epoch_data *e) {
    free(e->images);
    free(e->labels);
    free(e->indices);
    memset(e, 0, sizeof *e);
}

/* Runs epoch `epoch` of a fresh loader over ds with the given options. */
static bool run_epoch(ln_ctx *ctx, ln_dataset *ds, const ln_loader_opts *o, int64_t epoch,
                      epoch_data *e) {
    memset(e, 0, sizeof *e);
    ln_loader *ld = NULL;
    if (!CHECK_OK(ctx, ln_loader_create(ctx, ds, o, &ld))) return false;
    int64_t shape[LN_MAX_DIMS], numel = 1;
    int nd = ln_dataset_sample_shape(ds, shape);
    for (int i = 0; i < nd; i++) numel *= shape[i];
    int64_t n = ln_dataset_size(ds);
    e->images = malloc((size_t)(n * numel) * sizeof(float));
    e->labels = malloc((size_t)n * sizeof(int64_t));
    e->indices = malloc((size_t)n * sizeof(int64_t));
    bool ok = CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, epoch));
    while (ok) {
        ln_tensor *im = NULL, *lb = NULL, *ix = NULL;
        ok = CHECK_OK(ctx, ln_loader_next(ctx, ld, &im, &lb, &ix));
        if (!ok || !im) break;
        int64_t rows = im->shape[0];
        ok = CHECK(e->batches < 64 && e->rows + rows <= n && im->ndim == nd + 1 && lb->shape[0] == rows &&
                   im->dtype == LN_F32 && lb->dtype == LN_I64 && ln_tensor_is_contiguous(im),
                   "batch %lld shape", (long long)e->batches);
        if (ok) {
            memcpy(e->images + e->rows * numel, ln_tensor_data(im), (size_t)(rows * numel) * sizeof(float));
            memcpy(e->labels + e->rows, ln_tensor_data(lb), (size_t)rows * sizeof(int64_t));
            memcpy(e->indices + e->rows, ln_tensor_data(ix), (size_t)rows * sizeof(int64_t));
            e->sizes[e->batches++] = rows;
            e->rows += rows;
        }
        ln_tensor_release(im);
        ln_tensor_release(lb);
        ln_tensor_release(ix);
    }
    ln_loader_get_stats(ld, &e->stats);
    ln_loader_destroy(ld);
    return ok;
}

static bool same_epoch(const epoch_data *a, const epoch_data *b, int64_t numel) {
    return a->rows == b->rows && a->batches == b->batches &&
           memcmp(a->sizes, b->sizes, (size_t)a->batches * sizeof(int64_t)) == 0 &&
           memcmp(a->labels, b->labels, (size_t)a->rows * sizeof(int64_t)) == 0 &&
           memcmp(a->indices, b->indices, (size_t)a->rows * sizeof(int64_t)) == 0 &&
           memcmp(a->images, b->images, (size_t)(a->rows * numel) * sizeof(float)) == 0;
}

/* Every index of 0..n-1 exactly once among the rows. */
static bool each_once(const epoch_data *e, int64_t n) {
    char *seen = calloc((size_t)n, 1);
    bool ok = e->rows == n;
    for (int64_t i = 0; i < e->rows && ok; i++) {
        ok = e->indices[i] >= 0 && e->indices[i] < n && !seen[e->indices[i]];
        if (ok) seen[e->indices[i]] = 1;
    }
    free(seen);
    return ok;
}

/* ------------------------------------------------------------ CIFAR fixture */
static void test_determinism(ln_ctx *ctx) {
    ln_dataset *ds = NULL;
    if (!CHECK_OK(ctx, ln_dataset_cifar(ctx, LUNET_FIXTURES_DIR, 10, true, NULL, &ds))) return;
    const int64_t numel = 3 * 32 * 32;
    ln_loader_opts o;
    ln_loader_opts_default(&o);
    o.batch_size = 6;
    o.seed = 5;
    epoch_data w0, w1, w4, w4b, e2;
    o.workers = 0;
    run_epoch(ctx, ds, &o, 1, &w0);
    o.workers = 1;
    run_epoch(ctx, ds, &o, 1, &w1);
    o.workers = 4;
    run_epoch(ctx, ds, &o, 1, &w4);
    o.prefetch = 1;
    run_epoch(ctx, ds, &o, 1, &w4b);
    o.prefetch = 0;
    run_epoch(ctx, ds, &o, 2, &e2);
    CHECK(same_epoch(&w0, &w1, numel) && same_epoch(&w1, &w4, numel) && same_epoch(&w4, &w4b, numel),
          "same seed and epoch: same batches with 0, 1 and 4 workers (and prefetch 1)");
    CHECK(w4.batches == 4 && w4.sizes[0] == 6 && w4.sizes[3] == 2, "20 samples in batches of 6: 6,6,6,2");
    CHECK(each_once(&w4, 20) && each_once(&e2, 20), "every sample once per epoch");
    CHECK(memcmp(w4.indices, e2.indices, 20 * sizeof(int64_t)) != 0, "another epoch, another order");
    bool sorted = true;
    for (int i = 1; i < 20; i++) sorted &= w4.indices[i] == w4.indices[i - 1] + 1;
    CHECK(!sorted, "shuffled");
    /* each row is the dataset's sample with the stream (seed, epoch, index) */
    int equal = 0;
    for (int64_t r = 0; r < w4.rows; r++) {
        ln_tensor *t = NULL;
        int64_t label;
        if (!CHECK_OK(ctx, ln_dataset_get(ctx, ds, w4.indices[r], 5, 1, &t, &label, NULL))) break;
        equal += label == w4.labels[r] &&
                 memcmp(ln_tensor_data(t), w4.images + r * numel, numel * sizeof(float)) == 0;
        ln_tensor_release(t);
    }
    CHECK(equal == 20, "rows equal ln_dataset_get(seed, epoch, index) (%d of 20)", equal);
    CHECK(w4.stats.finished && w4.stats.images == 20 && w4.stats.batches == 4 && w4.stats.skipped == 0 &&
          w4.stats.converted == 0 && w4.stats.bad_files == 0 && w4.stats.epoch == 1 &&
          w4.stats.seconds > 0 && w4.stats.images_per_s > 0 && w4.stats.wait_seconds >= 0,
          "statistics of a clean epoch");
    epoch_free(&w0); epoch_free(&w1); epoch_free(&w4); epoch_free(&w4b); epoch_free(&e2);

    /* drop_last, shuffle off */
    o.drop_last = true;
    o.shuffle = false;
    o.workers = 2;
    epoch_data d;
    run_epoch(ctx, ds, &o, 3, &d);
    bool in_order = d.rows == 18;
    for (int64_t i = 0; i < d.rows; i++) in_order &= d.indices[i] == i;
    CHECK(d.batches == 3 && in_order && d.stats.images == 18, "drop_last: 3 full batches, dataset order");
    epoch_free(&d);
    o.batch_size = 32;
    run_epoch(ctx, ds, &o, 1, &d);
    CHECK(d.batches == 0 && d.stats.finished, "drop_last with fewer samples than a batch: no batch");
    epoch_free(&d);
    ln_dataset_release(ds);
}

static void test_lifecycle(ln_ctx *ctx) {
    ln_dataset *ds = NULL;
    if (!CHECK_OK(ctx, ln_dataset_synthetic(ctx, 3, (int64_t[]){3, 64, 64}, 10, 4000, 1, &ds))) return;
    ln_loader_opts o;
    ln_loader_opts_default(&o);
    o.batch_size = 16;
    o.workers = 4;
    ln_loader *ld = NULL;
    ln_tensor *im = NULL, *lb = NULL;
    /* errors */
    CHECK_FAILS(ctx, ln_loader_create(ctx, NULL, &o, &ld), LN_ERR_ARG);
    o.batch_size = 0;
    CHECK_FAILS(ctx, ln_loader_create(ctx, ds, &o, &ld), LN_ERR_ARG);
    o.batch_size = 16;
    o.workers = -1;
    CHECK_FAILS(ctx, ln_loader_create(ctx, ds, &o, &ld), LN_ERR_ARG);
    o.workers = 4;
    o.prefetch = 1000;
    CHECK_FAILS(ctx, ln_loader_create(ctx, ds, &o, &ld), LN_ERR_ARG);
    o.prefetch = 0;
    CHECK(ld == NULL, "no loader on failure");

    /* created and destroyed without an epoch */
    CHECK_OK(ctx, ln_loader_create(ctx, ds, &o, &ld));
    CHECK_FAILS(ctx, ln_loader_next(ctx, ld, &im, &lb, NULL), LN_ERR_STATE);
    ln_loader_destroy(ld);
    ln_loader_destroy(NULL);

    /* the loader keeps the dataset alive; abandoning an epoch; end of epoch */
    CHECK_OK(ctx, ln_loader_create(ctx, ds, &o, &ld));
    ln_dataset_release(ds);
    CHECK(ln_loader_batches(ld) == 250, "4000 / 16 = 250 batches");
    CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, 0));
    CHECK_OK(ctx, ln_loader_next(ctx, ld, &im, &lb, NULL));
    CHECK(im && im->shape[0] == 16 && im->shape[1] == 3 && im->shape[3] == 64 && lb->shape[0] == 16,
          "batch (16, 3, 64, 64)");
    ln_tensor_release(im);
    ln_tensor_release(lb);
    CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, 1)); /* abandons epoch 0 mid-way */
    int64_t rows = 0, batches = 0;
    for (;;) {
        if (!CHECK_OK(ctx, ln_loader_next(ctx, ld, &im, &lb, NULL)) || !im) break;
        rows += im->shape[0];
        batches++;
        ln_tensor_release(im);
        ln_tensor_release(lb);
    }
    ln_loader_stats st;
    ln_loader_get_stats(ld, &st);
    CHECK(rows == 4000 && batches == 250 && st.finished && st.images == 4000 && st.epoch == 1,
          "the next epoch runs in full after an abandoned one");
    CHECK_OK(ctx, ln_loader_next(ctx, ld, &im, &lb, NULL));
    CHECK(im == NULL && lb == NULL, "after the end: no more batches");

    /* destroyed while the workers are busy: no hang, no crash, no leak */
    CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, 2));
    CHECK_OK(ctx, ln_loader_next(ctx, ld, &im, &lb, NULL));
    double t0 = now_s();
    ln_loader_destroy(ld);
    CHECK(now_s() - t0 < 2.0, "destroy with running threads returns promptly (%.3f s)", now_s() - t0);
    CHECK(im && ln_tensor_numel(im) == 16 * 3 * 64 * 64, "a handed-out batch outlives its loader");
    ln_tensor_release(im);
    ln_tensor_release(lb);
    /* and right after creation, before any batch is taken */
    CHECK_OK(ctx, ln_dataset_synthetic(ctx, 3, (int64_t[]){3, 64, 64}, 10, 4000, 1, &ds));
    CHECK_OK(ctx, ln_loader_create(ctx, ds, &o, &ld));
    CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, 0));
    ln_loader_destroy(ld);
    ln_dataset_release(ds);
}

/* ------------------------------------------------------------ bad input */
/* A w x h JPEG (quality 90) of `comps` components (1 gray, 3 RGB, 4 CMYK) into
 * memory. */
static unsigned char *jpeg_bytes(int w, int h, int comps, int seed, unsigned long *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    *len = 0;
    jpeg_mem_dest(&c, &buf, len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)(w * comps));
    while (c.next_scanline < c.image_height) {
        int y = (int)c.next_scanline;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < comps; k++)
                row[x * comps + k] = (unsigned char)((x * 7 + y * 3 + k * 50 + seed * 31) & 255);
        JSAMPROW rp = row;
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return buf;
}

static void put(const char *dir, const char *name, const void *data, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s", path);
    if (!f) return;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void put_jpeg(const char *dir, const char *name, int comps, int seed) {
    unsigned long len;
    unsigned char *b = jpeg_bytes(48, 36, comps, seed, &len);
    put(dir, name, b, len);
    free(b);
}

static void put_png(const char *dir, const char *name) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = 40;
    img.height = 30;
    img.format = PNG_FORMAT_RGB;
    unsigned char px[40 * 30 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (unsigned char)(i * 13);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(png_image_write_to_file(&img, path, 0, px, 0, NULL), "write %s", path);
}

enum { N_GOOD = 9 };

static void test_bad_inputs(ln_ctx *ctx, const char *tmp) {
    char root[512], cat[600], dog[600], empty[600], cache[600];
    snprintf(root, sizeof root, "%s/img", tmp);
    snprintf(cat, sizeof cat, "%s/train/cat", root);
    snprintf(dog, sizeof dog, "%s/train/dog", root);
    snprintf(empty, sizeof empty, "%s/train/empty", root);
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    mkdir(root, 0755);
    char split[600];
    snprintf(split, sizeof split, "%s/train", root);
    mkdir(split, 0755);
    mkdir(cat, 0755);
    mkdir(dog, 0755);
    mkdir(empty, 0755);
    /* good RGB JPEGs (6), then converted ones and a PNG named .JPEG (3 more good) */
    put_jpeg(cat, "c1.JPEG", 3, 1);
    put_jpeg(cat, "c2.JPEG", 3, 2);
    put_jpeg(cat, "c3.JPEG", 3, 3);
    put_jpeg(dog, "d1.JPEG", 3, 4);
    put_jpeg(dog, "d2.JPEG", 3, 5);
    put_jpeg(dog, "d3.JPEG", 3, 6);
    put_jpeg(cat, "gray.JPEG", 1, 7);
    put_jpeg(dog, "cmyk.JPEG", 4, 8);
    put_png(cat, "png_named.JPEG");
    /* bad ones */
    unsigned long len;
    unsigned char *j = jpeg_bytes(48, 36, 3, 9, &len);
    put(cat, "zero.JPEG", "", 0);
    put(cat, "truncated.JPEG", j, len / 2);
    unsigned char corrupt[64];
    memcpy(corrupt, j, 4);
    for (int i = 4; i < 64; i++) corrupt[i] = (unsigned char)(i * 37 + 11);
    put(dog, "corrupt.JPEG", corrupt, sizeof corrupt);
    put(dog, "text.JPEG", "this is not an image\n", 21);
    free(j);
    int n_bad = 4;
    if (geteuid() == 0) {
        printf("SKIPPED (part): the unreadable-file case (chmod 000) — running as root, whose "
               "reads chmod does not block\n");
    } else {
        char p[700];
        put(dog, "unreadable.JPEG", "x", 1);
        snprintf(p, sizeof p, "%s/unreadable.JPEG", dog);
        chmod(p, 0);
        n_bad++;
    }
    int n = N_GOOD + n_bad;

    ln_folder_opts fo;
    ln_folder_opts_default(&fo);
    fo.root = root;
    fo.cache_dir = cache;
    fo.image.size = 24;
    fo.image.resize = 28;
    ln_dataset *ds = NULL;
    if (!CHECK_OK(ctx, ln_dataset_image_folder(ctx, &fo, &ds))) return;
    CHECK(ln_dataset_size(ds) == n && ln_dataset_classes(ds) == 3, "%d files in 3 classes", n);
    /* which indices are bad / converted, by name */
    char name[1024];
    bool bad[16] = {false}, conv[16] = {false};
    for (int64_t i = 0; i < n; i++) {
        ln_dataset_describe(ds, i, name, sizeof name);
        const char *base = strrchr(name, '/') + 1;
        bad[i] = !strcmp(base, "zero.JPEG") || !strcmp(base, "truncated.JPEG") || !strcmp(base, "corrupt.JPEG") ||
                 !strcmp(base, "text.JPEG") || !strcmp(base, "unreadable.JPEG");
        conv[i] = !strcmp(base, "gray.JPEG") || !strcmp(base, "cmyk.JPEG");
    }
    ln_loader_opts o;
    ln_loader_opts_default(&o);
    o.batch_size = 4;
    o.seed = 3;
    const int64_t numel = 3 * 24 * 24;
    epoch_data e1, e4;
    o.workers = 1;
    run_epoch(ctx, ds, &o, 1, &e1);
    o.workers = 4;
    ln_loader *ld = NULL;
    CHECK_OK(ctx, ln_loader_create(ctx, ds, &o, &ld));
    if (!ld) goto done;
    int messages[16] = {0}, other = 0;
    for (int64_t epoch = 1; epoch <= 2; epoch++) {
        memset(&e4, 0, sizeof e4);
        e4.images = malloc((size_t)(n * numel) * sizeof(float));
        e4.labels = malloc((size_t)n * sizeof(int64_t));
        e4.indices = malloc((size_t)n * sizeof(int64_t));
        CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, epoch));
        for (;;) {
            ln_tensor *im = NULL, *lb = NULL, *ix = NULL;
            if (!CHECK_OK(ctx, ln_loader_next(ctx, ld, &im, &lb, &ix)) || !im) break;
            int64_t rows = im->shape[0];
            memcpy(e4.images + e4.rows * numel, ln_tensor_data(im), (size_t)(rows * numel) * sizeof(float));
            memcpy(e4.labels + e4.rows, ln_tensor_data(lb), (size_t)rows * sizeof(int64_t));
            memcpy(e4.indices + e4.rows, ln_tensor_data(ix), (size_t)rows * sizeof(int64_t));
            e4.sizes[e4.batches++] = rows;
            e4.rows += rows;
            ln_tensor_release(im);
            ln_tensor_release(lb);
            ln_tensor_release(ix);
        }
        ln_loader_get_stats(ld, &e4.stats);
        char msg[2048];
        while (ln_loader_pop_message(ld, msg, sizeof msg)) {
            int hit = -1;
            for (int64_t i = 0; i < n; i++) {
                ln_dataset_describe(ds, i, name, sizeof name);
                if (strstr(msg, name)) hit = (int)i;
            }
            if (hit >= 0) messages[hit]++;
            else other++;
        }
        if (epoch == 1)
            CHECK(same_epoch(&e1, &e4, numel), "bad files replaced the same way with 1 and 4 workers");
        int64_t expect_conv = 0, bad_rows = 0, wrong_label = 0;
        for (int64_t r = 0; r < e4.rows; r++) {
            expect_conv += conv[e4.indices[r]];
            bad_rows += bad[e4.indices[r]];
            ln_dataset_describe(ds, e4.indices[r], name, sizeof name);
            wrong_label += (strstr(name, "/cat/") ? 0 : 1) != e4.labels[r];
        }
        CHECK(e4.rows == n && e4.batches == (n + 3) / 4 && bad_rows == 0 && wrong_label == 0,
              "epoch %lld: %d rows in full batches, no bad file among them, labels right",
              (long long)epoch, n);
        CHECK(e4.stats.skipped == n_bad && e4.stats.bad_files == n_bad && e4.stats.converted == expect_conv &&
              e4.stats.images == n, "epoch %lld counts: skipped %lld (want %d), bad files %lld, converted "
              "%lld (want %lld)", (long long)epoch, (long long)e4.stats.skipped, n_bad,
              (long long)e4.stats.bad_files, (long long)e4.stats.converted, (long long)expect_conv);
        CHECK(expect_conv >= 2, "grayscale and CMYK delivered");
        epoch_free(&e4);
    }
    int named_once = 0, named_good = 0;
    for (int64_t i = 0; i < n; i++) {
        if (bad[i]) named_once += messages[i] == 1;
        else named_good += messages[i];
    }
    CHECK(named_once == n_bad && named_good == 0 && other == 0, "each bad file named exactly once over 2 "
          "epochs (%d of %d), good ones never (%d), no other message (%d)", named_once, n_bad, named_good, other);
    ln_loader_destroy(ld);
done:
    epoch_free(&e1);
    ln_dataset_release(ds);
}

/* Every sample bad: the run stops with an error instead of spinning. */
static void test_all_bad(ln_ctx *ctx, const char *tmp) {
    char root[512], dir[600];
    snprintf(root, sizeof root, "%s/allbad", tmp);
    snprintf(dir, sizeof dir, "%s/train", root);
    mkdir(root, 0755);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/train/k", root);
    mkdir(dir, 0755);
    put(dir, "a.jpg", "nope", 4);
    put(dir, "b.jpg", "", 0);
    ln_folder_opts fo;
    ln_folder_opts_default(&fo);
    fo.root = root;
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    fo.cache_dir = cache;
    ln_dataset *ds = NULL;
    if (!CHECK_OK(ctx, ln_dataset_image_folder(ctx, &fo, &ds))) return;
    ln_loader_opts o;
    ln_loader_opts_default(&o);
    o.batch_size = 2;
    ln_loader *ld = NULL;
    ln_tensor *im = NULL, *lb = NULL;
    CHECK_OK(ctx, ln_loader_create(ctx, ds, &o, &ld));
    CHECK_OK(ctx, ln_loader_start_epoch(ctx, ld, 0));
    ln_status st = ln_loader_next(ctx, ld, &im, &lb, NULL);
    CHECK(st == LN_ERR_IO && strstr(ln_ctx_error(ctx), "bad samples in a row") && im == NULL,
          "all bad: a clear error (%s)", ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    ln_loader_destroy(ld);
    ln_dataset_release(ds);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    char tmp[] = "/tmp/lunet_test_loader_XXXXXX";
    if (!mkdtemp(tmp)) return test_skip("cannot make a temporary folder");
    test_determinism(ctx);
    test_lifecycle(ctx);
    test_bad_inputs(ctx, tmp);
    test_all_bad(ctx, tmp);
    rm_tree(tmp);
    ln_ctx_release(ctx);
    return test_finish();
}
