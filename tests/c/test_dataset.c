/* Dataset readers: IDX on the real Fashion-MNIST files (Debian's dataset-fashion-mnist),
 * plain and gzip IDX and their errors, the CIFAR-10/100 fixtures (real binary batch
 * format, made by scripts/make_cifar_fixture.py), the synthetic dataset, and the
 * image-folder index with its cache (hit on the second open, invalidated by a change,
 * kept outside the dataset) and its errors (missing split folder, empty classes). */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "testutil.h"
#include "lunet/data.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------ helpers */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %s: %s", path, strerror(errno));
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n, "write %s", path);
    fclose(f);
}

static void make_dir(const char *path) {
    CHECK(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
}

/* Sum of the sample's floats times 255: the pixel sum when mean 0, std 1. */
static double sample_sum255(ln_ctx *ctx, const ln_dataset *ds, int64_t i, int64_t *label) {
    ln_tensor *t = NULL;
    if (!CHECK_OK(ctx, ln_dataset_get(ctx, ds, i, 0, 0, &t, label, NULL))) return -1;
    const float *v = ln_tensor_data(t);
    double s = 0;
    for (int64_t k = 0; k < ln_tensor_numel(t); k++) s += v[k];
    ln_tensor_release(t);
    return s * 255;
}

/* ------------------------------------------------------------ IDX */
/* Numbers of the Debian files, computed once independently of lunet with
 *   python3 -c "import gzip; d=gzip.open(F).read(); ..."
 * (labels: bytes 8.. of *-labels-idx1-ubyte.gz; pixel sums: sum of the 784 bytes of
 * image i after the 16-byte header of *-images-idx3-ubyte.gz). */
static void test_fashion_mnist(ln_ctx *ctx) {
    if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("SKIPPED (part): Fashion-MNIST not installed in " FMNIST
               " (Debian package dataset-fashion-mnist)\n");
        return;
    }
    ln_dataset *tr = NULL, *te = NULL;
    CHECK_OK(ctx, ln_dataset_idx(ctx, FMNIST "/train-images-idx3-ubyte.gz",
                                 FMNIST "/train-labels-idx1-ubyte.gz", NULL, &tr));
    CHECK_OK(ctx, ln_dataset_idx(ctx, FMNIST "/t10k-images-idx3-ubyte.gz",
                                 FMNIST "/t10k-labels-idx1-ubyte.gz", NULL, &te));
    if (!tr || !te) goto done;
    int64_t shape[LN_MAX_DIMS];
    CHECK(ln_dataset_size(tr) == 60000 && ln_dataset_size(te) == 10000, "sizes %lld %lld",
          (long long)ln_dataset_size(tr), (long long)ln_dataset_size(te));
    CHECK(ln_dataset_sample_shape(tr, shape) == 3 && shape[0] == 1 && shape[1] == 28 && shape[2] == 28,
          "sample shape (1, 28, 28)");
    CHECK(ln_dataset_classes(tr) == 10 && strcmp(ln_dataset_kind(tr), "idx") == 0, "10 classes, idx");
    const int64_t train_labels[5] = {9, 0, 0, 3, 0}, test_labels[5] = {9, 2, 1, 1, 6};
    const double train_sums[3] = {76247, 84598, 28662}, test_sums[3] = {33456, 100994, 51520};
    for (int i = 0; i < 5; i++) {
        int64_t l1, l2;
        double s1 = sample_sum255(ctx, tr, i, &l1), s2 = sample_sum255(ctx, te, i, &l2);
        CHECK(l1 == train_labels[i] && l2 == test_labels[i], "label %d: train %lld test %lld", i,
              (long long)l1, (long long)l2);
        if (i < 3)
            CHECK(fabs(s1 - train_sums[i]) < 0.05 && fabs(s2 - test_sums[i]) < 0.05,
                  "pixel sums of image %d: train %.3f (want %.0f), test %.3f (want %.0f)", i, s1,
                  train_sums[i], s2, test_sums[i]);
    }
    int64_t last;
    double s = sample_sum255(ctx, tr, 59999, &last);
    CHECK(last == 5 && fabs(s - 16684) < 0.05, "last train image: label %lld sum %.3f", (long long)last, s);
done:
    ln_dataset_release(tr);
    ln_dataset_release(te);
}

/* Plain IDX files written here: 3 images of 2x3, labels 4, 0, 2. */
static void test_idx_plain_and_errors(ln_ctx *ctx, const char *tmp) {
    uint8_t img[16 + 18], lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 4, 0, 2};
    const uint8_t head[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3};
    memcpy(img, head, 16);
    for (int i = 0; i < 18; i++) img[16 + i] = (uint8_t)(i * 10);
    char ip[512], lp[512], gp[512], bad[512];
    snprintf(ip, sizeof ip, "%s/img.idx", tmp);
    snprintf(lp, sizeof lp, "%s/lab.idx", tmp);
    snprintf(gp, sizeof gp, "%s/lab.idx.gz", tmp);
    snprintf(bad, sizeof bad, "%s/bad.idx", tmp);
    write_file(ip, img, sizeof img);
    write_file(lp, lab, sizeof lab);
    gzFile g = gzopen(gp, "wb");
    gzwrite(g, lab, sizeof lab);
    gzclose(g);
    ln_dataset *ds = NULL;
    if (CHECK_OK(ctx, ln_dataset_idx(ctx, ip, gp, NULL, &ds))) {
        int64_t shape[LN_MAX_DIMS], l;
        CHECK(ln_dataset_size(ds) == 3 && ln_dataset_classes(ds) == 5, "plain idx: 3 images, 5 classes");
        CHECK(ln_dataset_sample_shape(ds, shape) == 3 && shape[1] == 2 && shape[2] == 3, "shape (1,2,3)");
        double s = sample_sum255(ctx, ds, 1, &l);
        CHECK(l == 0 && fabs(s - (60 + 70 + 80 + 90 + 100 + 110)) < 1e-3, "image 1: label %lld sum %g",
              (long long)l, s);
        ln_dataset_release(ds);
    }
    /* truncated pixels, wrong dims, count mismatch, a non-IDX file, a missing file */
    write_file(bad, img, sizeof img - 5);
    CHECK_FAILS(ctx, ln_dataset_idx(ctx, bad, lp, NULL, &ds), LN_ERR_IO);
    CHECK_FAILS(ctx, ln_dataset_idx(ctx, lp, lp, NULL, &ds), LN_ERR_SHAPE);
    uint8_t lab2[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 1};
    write_file(bad, lab2, sizeof lab2);
    CHECK_FAILS(ctx, ln_dataset_idx(ctx, ip, bad, NULL, &ds), LN_ERR_SHAPE);
    write_file(bad, "hello, world\n", 13);
    CHECK_FAILS(ctx, ln_dataset_idx(ctx, bad, lp, NULL, &ds), LN_ERR_IO);
    ln_status st = ln_dataset_idx(ctx, "/nonexistent/x.idx", lp, NULL, &ds);
    CHECK(st == LN_ERR_IO && strstr(ln_ctx_error(ctx), "/nonexistent/x.idx"), "missing file named: %s",
          ln_ctx_error(ctx));
    CHECK(ds == NULL, "no dataset on failure");
    ln_ctx_clear_error(ctx);
}

/* ------------------------------------------------------------ CIFAR */
/* Labels and pixel sums printed by scripts/make_cifar_fixture.py when it made
 * tests/fixtures/cifar-*. */
static void test_cifar(ln_ctx *ctx) {
    const char *fx = LUNET_FIXTURES_DIR;
    ln_array_opts raw;
    ln_cifar_opts_default(10, false, &raw);
    for (int c = 0; c < 3; c++) { raw.mean[c] = 0; raw.std[c] = 1; }
    ln_dataset *tr = NULL, *te = NULL, *c100 = NULL;
    CHECK_OK(ctx, ln_dataset_cifar(ctx, fx, 10, true, &raw, &tr));
    char dir[512];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", fx);
    CHECK_OK(ctx, ln_dataset_cifar(ctx, dir, 10, false, &raw, &te)); /* the batch folder itself */
    CHECK_OK(ctx, ln_dataset_cifar(ctx, fx, 100, true, &raw, &c100));
    if (!tr || !te || !c100) goto done;
    CHECK(ln_dataset_size(tr) == 20 && ln_dataset_size(te) == 10 && ln_dataset_size(c100) == 6,
          "record counts %lld %lld %lld", (long long)ln_dataset_size(tr), (long long)ln_dataset_size(te),
          (long long)ln_dataset_size(c100));
    CHECK(ln_dataset_classes(tr) == 10 && ln_dataset_classes(c100) == 100, "class counts");
    const char *n0 = ln_dataset_class_name(tr, 0), *n35 = ln_dataset_class_name(c100, 35);
    CHECK(n0 && strcmp(n0, "airplane") == 0 && n35 && strcmp(n35, "class_35") == 0, "class names");
    const int64_t tr_labels[6] = {1, 1, 3, 1, 4, 8}; /* data_batch_1 then data_batch_2 */
    const double tr_sums[6] = {391001, 390552, 387564, 398925, 385222, 389700};
    const int64_t te_labels[3] = {5, 7, 3}, c100_labels[3] = {35, 48, 86};
    const double te_sums[3] = {394068, 389618, 384104}, c100_sums[3] = {397340, 388732, 392705};
    for (int i = 0; i < 6; i++) {
        int64_t l;
        double s = sample_sum255(ctx, tr, i, &l);
        CHECK(l == tr_labels[i] && fabs(s - tr_sums[i]) < 0.5, "cifar-10 train %d: label %lld sum %.2f", i,
              (long long)l, s);
    }
    for (int i = 0; i < 3; i++) {
        int64_t l1, l2;
        double s1 = sample_sum255(ctx, te, i, &l1), s2 = sample_sum255(ctx, c100, i, &l2);
        CHECK(l1 == te_labels[i] && fabs(s1 - te_sums[i]) < 0.5, "cifar-10 test %d: %lld %.2f", i,
              (long long)l1, s1);
        CHECK(l2 == c100_labels[i] && fabs(s2 - c100_sums[i]) < 0.5, "cifar-100 train %d: %lld %.2f", i,
              (long long)l2, s2);
    }
    /* channel planes: output (c, y, x) is byte 1 + c*1024 + y*32 + x of record 0 */
    uint8_t rec[3073];
    char path[600];
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(rec, 1, sizeof rec, f) == sizeof rec, "read the fixture directly");
    if (f) fclose(f);
    ln_tensor *t = NULL;
    int64_t l;
    if (CHECK_OK(ctx, ln_dataset_get(ctx, te, 0, 0, 0, &t, &l, NULL))) {
        const float *v = ln_tensor_data(t);
        int bad = 0;
        for (int k = 0; k < 3072; k++) bad += fabsf(v[k] * 255 - rec[1 + k]) > 1e-3f;
        CHECK(bad == 0 && t->shape[0] == 3 && t->shape[1] == 32, "planar R,G,B layout (%d off)", bad);
        ln_tensor_release(t);
    }
done:
    ln_dataset_release(tr);
    ln_dataset_release(te);
    ln_dataset_release(c100);
}

/* Default (train) transform: same (seed, epoch, index) gives the same sample, another
 * epoch usually another crop; eval transform is the normalised image. */
static void test_cifar_transforms(ln_ctx *ctx) {
    ln_dataset *ds = NULL;
    if (!CHECK_OK(ctx, ln_dataset_cifar(ctx, LUNET_FIXTURES_DIR, 10, true, NULL, &ds))) return;
    int differ = 0;
    for (int64_t i = 0; i < 8; i++) {
        ln_tensor *a = NULL, *b = NULL, *c = NULL;
        int64_t l;
        CHECK_OK(ctx, ln_dataset_get(ctx, ds, i, 7, 1, &a, &l, NULL));
        CHECK_OK(ctx, ln_dataset_get(ctx, ds, i, 7, 1, &b, &l, NULL));
        CHECK_OK(ctx, ln_dataset_get(ctx, ds, i, 7, 2, &c, &l, NULL));
        if (a && b && c) {
            CHECK(memcmp(ln_tensor_data(a), ln_tensor_data(b), 3072 * sizeof(float)) == 0,
                  "sample %lld: same seed and epoch, same transform", (long long)i);
            differ += memcmp(ln_tensor_data(a), ln_tensor_data(c), 3072 * sizeof(float)) != 0;
        }
        ln_tensor_release(a);
        ln_tensor_release(b);
        ln_tensor_release(c);
    }
    CHECK(differ >= 6, "another epoch, another crop/flip (%d of 8 differ)", differ);
    ln_dataset_release(ds);
}

static void test_cifar_errors(ln_ctx *ctx, const char *tmp) {
    ln_dataset *ds = NULL;
    CHECK_FAILS(ctx, ln_dataset_cifar(ctx, LUNET_FIXTURES_DIR, 7, true, NULL, &ds), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_dataset_cifar(ctx, tmp, 10, true, NULL, &ds), LN_ERR_IO);
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", tmp);
    make_dir(dir);
    uint8_t junk[100] = {0};
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    write_file(path, junk, sizeof junk);
    ln_status st = ln_dataset_cifar(ctx, tmp, 10, false, NULL, &ds);
    CHECK(st == LN_ERR_IO && strstr(ln_ctx_error(ctx), "not a whole number"), "partial record: %s",
          ln_ctx_error(ctx));
    st = ln_dataset_cifar(ctx, tmp, 10, true, NULL, &ds);
    CHECK(st == LN_ERR_IO && strstr(ln_ctx_error(ctx), "data_batch_1.bin"), "missing train batch named: %s",
          ln_ctx_error(ctx));
    ln_array_opts o;
    ln_cifar_opts_default(10, true, &o);
    o.std[1] = 0;
    CHECK_FAILS(ctx, ln_dataset_cifar(ctx, LUNET_FIXTURES_DIR, 10, true, &o, &ds), LN_ERR_ARG);
    CHECK(ds == NULL, "no dataset on failure");
    ln_ctx_clear_error(ctx);
}

/* ------------------------------------------------------------ synthetic */
static void test_synthetic(ln_ctx *ctx) {
    ln_dataset *ds = NULL;
    if (!CHECK_OK(ctx, ln_dataset_synthetic(ctx, 3, (int64_t[]){2, 5, 4}, 7, 50, 11, &ds))) return;
    CHECK(ln_dataset_size(ds) == 50 && ln_dataset_classes(ds) == 7, "size and classes");
    int seen[7] = {0};
    for (int64_t i = 0; i < 50; i++) {
        ln_tensor *a = NULL, *b = NULL;
        int64_t la, lb;
        CHECK_OK(ctx, ln_dataset_get(ctx, ds, i, 1, 1, &a, &la, NULL));
        CHECK_OK(ctx, ln_dataset_get(ctx, ds, i, 9, 3, &b, &lb, NULL));
        if (!a || !b) break;
        CHECK(la >= 0 && la < 7 && la == lb, "label in range and fixed");
        seen[la] = 1;
        const float *v = ln_tensor_data(a);
        int ok = memcmp(v, ln_tensor_data(b), 40 * sizeof(float)) == 0;
        for (int k = 0; k < 40; k++) ok &= v[k] >= 0 && v[k] < 1;
        CHECK(ok, "sample %lld fixed and in [0,1)", (long long)i);
        ln_tensor_release(a);
        ln_tensor_release(b);
    }
    int classes_seen = 0;
    for (int c = 0; c < 7; c++) classes_seen += seen[c];
    CHECK(classes_seen == 7, "all classes occur (%d)", classes_seen);
    ln_tensor *t = NULL;
    int64_t l;
    CHECK_FAILS(ctx, ln_dataset_get(ctx, ds, 50, 0, 0, &t, &l, NULL), LN_ERR_ARG);
    ln_dataset_release(ds);
    CHECK_FAILS(ctx, ln_dataset_synthetic(ctx, 0, NULL, 2, 10, 0, &ds), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_dataset_synthetic(ctx, 1, (int64_t[]){4}, 0, 10, 0, &ds), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_dataset_synthetic(ctx, 1, (int64_t[]){-4}, 2, 10, 0, &ds), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_dataset_synthetic(ctx, 1, (int64_t[]){4}, 2, 0, 0, &ds), LN_ERR_ARG);
}

/* ------------------------------------------------------------ folder index */
/* Drains the dataset's messages; returns how many contain `needle`. */
static int count_messages(ln_dataset *ds, const char *needle) {
    char buf[2048];
    int n = 0;
    while (ln_dataset_pop_message(ds, buf, sizeof buf)) n += strstr(buf, needle) != NULL;
    return n;
}

/* An index-only tree: the files are never decoded here, so their contents do not
 * matter. */
static void test_folder_index(ln_ctx *ctx, const char *tmp) {
    char root[512], cache[512], p[700];
    snprintf(root, sizeof root, "%s/tree", tmp);
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    make_dir(root);
    snprintf(p, sizeof p, "%s/train", root);
    make_dir(p);
    const char *classes[3] = {"b_dog", "a_cat", "c_empty"};
    for (int c = 0; c < 3; c++) {
        snprintf(p, sizeof p, "%s/train/%s", root, classes[c]);
        make_dir(p);
    }
    const char *files[] = {"a_cat/2.jpg", "a_cat/10.JPEG", "a_cat/1.png", "b_dog/x.jpeg",
                           "b_dog/notes.txt", "b_dog/.hidden.jpg", "a_cat/sub"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/train/%s", root, files[i]);
        write_file(p, "x", 1);
    }
    snprintf(p, sizeof p, "%s/train/%s", root, files[6]);
    make_dir(p);
    snprintf(p, sizeof p, "%s/train/a_cat/sub/0.jpg", root);
    write_file(p, "x", 1);
    snprintf(p, sizeof p, "%s/train/stray.jpg", root); /* not in a class folder */
    write_file(p, "x", 1);

    ln_folder_opts o;
    ln_folder_opts_default(&o);
    o.root = root;
    o.cache_dir = cache;
    ln_dataset *ds = NULL;
    char cpath[1024], name[1024];
    if (!CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) return;
    CHECK(!ln_dataset_index_cached(ds, cpath, sizeof cpath), "first open scans");
    CHECK(strncmp(cpath, cache, strlen(cache)) == 0 && access(cpath, R_OK) == 0, "cache file %s written", cpath);
    CHECK(ln_dataset_size(ds) == 5 && ln_dataset_classes(ds) == 3, "5 images in 3 classes (got %lld, %d)",
          (long long)ln_dataset_size(ds), ln_dataset_classes(ds));
    CHECK(strcmp(ln_dataset_class_name(ds, 0), "a_cat") == 0 && strcmp(ln_dataset_class_name(ds, 2), "c_empty") == 0,
          "classes sorted by name");
    /* torchvision order: files of a folder sorted by name, then its sub-folders */
    const char *order[5] = {"a_cat/1.png", "a_cat/10.JPEG", "a_cat/2.jpg", "a_cat/sub/0.jpg", "b_dog/x.jpeg"};
    for (int i = 0; i < 5; i++) {
        ln_dataset_describe(ds, i, name, sizeof name);
        const char *tail = name + strlen(name) - strlen(order[i]);
        CHECK(strcmp(tail, order[i]) == 0, "file %d is %s (got %s)", i, order[i], name);
    }
    CHECK(count_messages(ds, "c_empty") == 1, "the empty class is named in the log");
    ln_dataset_release(ds);

    /* second open: cache hit, same index */
    if (CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) {
        CHECK(ln_dataset_index_cached(ds, cpath, sizeof cpath), "second open reads the cache");
        ln_dataset_describe(ds, 3, name, sizeof name);
        CHECK(ln_dataset_size(ds) == 5 && strstr(name, "a_cat/sub/0.jpg"), "cached index equal");
        ln_dataset_release(ds);
    }
    /* a new file (also one in a sub-folder) invalidates it */
    snprintf(p, sizeof p, "%s/train/c_empty/new.jpg", root);
    write_file(p, "x", 1);
    if (CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) {
        CHECK(!ln_dataset_index_cached(ds, cpath, sizeof cpath) && ln_dataset_size(ds) == 6,
              "a changed folder is rescanned (%lld images)", (long long)ln_dataset_size(ds));
        CHECK(count_messages(ds, "no images") == 0, "no empty class any more");
        ln_dataset_release(ds);
    }
    snprintf(p, sizeof p, "%s/train/a_cat/sub/1.jpg", root);
    write_file(p, "x", 1);
    if (CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) {
        CHECK(!ln_dataset_index_cached(ds, cpath, sizeof cpath) && ln_dataset_size(ds) == 7,
              "a change in a sub-folder is seen");
        ln_dataset_release(ds);
    }
    if (CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) {
        CHECK(ln_dataset_index_cached(ds, cpath, sizeof cpath), "and cached again");
        ln_dataset_release(ds);
    }
    /* a corrupt cache file is rescanned over */
    write_file(cpath, "LNIDX001garbage", 15);
    if (CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) {
        CHECK(!ln_dataset_index_cached(ds, cpath, sizeof cpath) && ln_dataset_size(ds) == 7,
              "corrupt cache ignored");
        ln_dataset_release(ds);
    }
    /* the default cache folder: $LUNET_CACHE_DIR, else $XDG_CACHE_HOME/lunet */
    char xdg[600];
    snprintf(xdg, sizeof xdg, "%s/xdg", tmp);
    unsetenv("LUNET_CACHE_DIR");
    setenv("XDG_CACHE_HOME", xdg, 1);
    o.cache_dir = NULL;
    if (CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) {
        ln_dataset_index_cached(ds, cpath, sizeof cpath);
        snprintf(p, sizeof p, "%s/lunet/index-", xdg);
        CHECK(strncmp(cpath, p, strlen(p)) == 0 && access(cpath, R_OK) == 0, "default cache under "
              "$XDG_CACHE_HOME/lunet: %s", cpath);
        ln_dataset_release(ds);
    }
    /* an unwritable cache folder is not an error: the log says so */
    snprintf(p, sizeof p, "%s/plain_file", tmp);
    write_file(p, "x", 1);
    snprintf(p, sizeof p, "%s/plain_file/cache", tmp); /* below a regular file */
    o.cache_dir = p;
    if (CHECK_OK(ctx, ln_dataset_image_folder(ctx, &o, &ds))) {
        CHECK(count_messages(ds, "not cached") == 1, "cache failure logged");
        ln_dataset_release(ds);
    }
    /* never inside the dataset */
    snprintf(p, sizeof p, "%s/train/.cache", root);
    o.cache_dir = p;
    ln_status st = ln_dataset_image_folder(ctx, &o, &ds);
    CHECK(st == LN_ERR_ARG && strstr(ln_ctx_error(ctx), "inside"), "cache inside the dataset refused: %s",
          ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    /* a missing split folder is a clear error at start */
    o.cache_dir = cache;
    o.split = "val";
    st = ln_dataset_image_folder(ctx, &o, &ds);
    CHECK(st == LN_ERR_IO && strstr(ln_ctx_error(ctx), "no 'val' folder"), "missing split: %s",
          ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    o.root = "/nonexistent/imagenet";
    o.split = "train";
    CHECK_FAILS(ctx, ln_dataset_image_folder(ctx, &o, &ds), LN_ERR_IO);
    /* a split with class folders but no images; one without class folders */
    o.root = root;
    o.split = "empty";
    snprintf(p, sizeof p, "%s/empty", root);
    make_dir(p);
    st = ln_dataset_image_folder(ctx, &o, &ds);
    CHECK(st == LN_ERR_IO && strstr(ln_ctx_error(ctx), "no class folders"), "no classes: %s", ln_ctx_error(ctx));
    snprintf(p, sizeof p, "%s/empty/k", root);
    make_dir(p);
    st = ln_dataset_image_folder(ctx, &o, &ds);
    CHECK(st == LN_ERR_IO && strstr(ln_ctx_error(ctx), "no image files"), "no images: %s", ln_ctx_error(ctx));
    o.split = "train";
    o.image.std[0] = 0;
    CHECK_FAILS(ctx, ln_dataset_image_folder(ctx, &o, &ds), LN_ERR_ARG);
    CHECK(ds == NULL, "no dataset on failure");
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    char tmp[] = "/tmp/lunet_test_dataset_XXXXXX";
    if (!mkdtemp(tmp)) return test_skip("cannot make a temporary folder");
    test_fashion_mnist(ctx);
    test_idx_plain_and_errors(ctx, tmp);
    test_cifar(ctx);
    test_cifar_transforms(ctx);
    test_cifar_errors(ctx, tmp);
    test_synthetic(ctx);
    test_folder_index(ctx, tmp);
    rm_tree(tmp);
    ln_ctx_release(ctx);
    return test_finish();
}
