/* Image folders in the ILSVRC layout (root/<split>/<class>/<images>). Opening reads
 * the file index (index_cache.c: scanned once, then cached outside the dataset);
 * loading a sample reads its file into the worker's buffer and runs image.h's train
 * or eval transform on the bytes, whatever the file's name says its format is. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dataset.h"

typedef struct folder {
    char top[PATH_MAX];        /* root/split as given */
    ln_folder_index ix;
    ln_data_mode mode;
    ln_image_cfg cfg;
    bool cache_hit;
    char cache_path[PATH_MAX];
} folder;

/* Reads the whole file at path into scratch->bytes; *len its size. On failure the
 * reason is in err (LN_ERR_NOMEM stops the run, LN_ERR_IO skips the file). */
static ln_status read_into(const char *path, ln_data_scratch *scratch, size_t *len,
                           char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ln_strf(err, errlen, "cannot open: %s", strerror(errno));
        return LN_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ln_strf(err, errlen, "not a readable regular file");
        close(fd);
        return LN_ERR_IO;
    }
    size_t want = (size_t)sb.st_size, n = 0;
    if (!ln_data_scratch_reserve(scratch, want + 1)) {
        close(fd);
        ln_strf(err, errlen, "out of memory for a %zu-byte file", want);
        return LN_ERR_NOMEM;
    }
    while (n < want) {
        ssize_t got = read(fd, scratch->bytes + n, want - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            ln_strf(err, errlen, "read error: %s", strerror(errno));
            close(fd);
            return LN_ERR_IO;
        }
        if (got == 0) break; /* shrank meanwhile: decode what is there */
        n += (size_t)got;
    }
    close(fd);
    if (n == 0) {
        ln_strf(err, errlen, "empty file (0 bytes)");
        return LN_ERR_IO;
    }
    *len = n;
    return LN_OK;
}

static ln_status folder_load(const ln_dataset *ds, int64_t index, ln_image_rng *rng,
                             ln_data_scratch *scratch, float *out, int64_t *label,
                             bool *converted, char *err, size_t errlen) {
    const folder *f = ds->impl;
    char path[PATH_MAX * 2];
    ln_strf(path, sizeof path, "%s/%s", f->top, f->ix.pool + f->ix.file_off[index]);
    size_t len = 0;
    LN_TRY(read_into(path, scratch, &len, err, errlen));
    ln_image_info info;
    ln_status st = f->mode == LN_DATA_TRAIN
        ? ln_image_train(scratch->bytes, len, &f->cfg, rng, out, &info, err, errlen)
        : ln_image_eval(scratch->bytes, len, &f->cfg, out, &info, err, errlen);
    *label = f->ix.file_class[index];
    *converted = st == LN_OK && info.converted;
    return st;
}

static void folder_describe(const ln_dataset *ds, int64_t index, char *buf, size_t n) {
    const folder *f = ds->impl;
    ln_strf(buf, n, "%s/%s", f->top, f->ix.pool + f->ix.file_off[index]);
}

static void folder_destroy(ln_dataset *ds) {
    folder *f = ds->impl;
    if (!f) return;
    ln_folder_index_free(&f->ix);
    free(f);
}

static const ln_dataset_vt folder_vt = {folder_load, folder_describe, folder_destroy};

void ln_folder_opts_default(ln_folder_opts *o) {
    memset(o, 0, sizeof *o);
    o->split = "train";
    o->mode = LN_DATA_TRAIN;
    ln_image_cfg_ilsvrc(&o->image);
}

static ln_status check_cfg(ln_ctx *ctx, const ln_folder_opts *o) {
    const ln_image_cfg *c = &o->image;
    if (o->mode != LN_DATA_TRAIN && o->mode != LN_DATA_EVAL)
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: unknown mode %d", (int)o->mode);
    if (c->size < 1 || c->size > 8192)
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: crop size must be in 1..8192, got %d", c->size);
    if (o->mode == LN_DATA_EVAL && (c->resize < c->size || c->resize > 16384))
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: resize (%d) must be at least the crop "
                       "size (%d) and at most 16384", c->resize, c->size);
    if (!(c->scale[0] > 0 && c->scale[0] <= c->scale[1] && c->scale[1] <= 1))
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: scale range must satisfy 0 < lo <= hi "
                       "<= 1, got (%g, %g)", c->scale[0], c->scale[1]);
    if (!(c->ratio[0] > 0 && c->ratio[0] <= c->ratio[1] && c->ratio[1] < 1e6))
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: ratio range must satisfy 0 < lo <= hi, "
                       "got (%g, %g)", c->ratio[0], c->ratio[1]);
    if (!(c->flip_p >= 0 && c->flip_p <= 1))
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: flip probability must be in [0, 1], got %g", c->flip_p);
    for (int k = 0; k < 3; k++)
        if (!(c->std[k] > 0))
            return ln_fail(ctx, LN_ERR_ARG, "image_folder: std of channel %d must be > 0, got %g",
                           k + 1, c->std[k]);
    return LN_OK;
}

/* Refuses a cache folder inside the dataset root (both resolved where they exist). */
static ln_status check_cache_outside(ln_ctx *ctx, const char *root, const char *cache_dir) {
    char r[PATH_MAX], c[PATH_MAX], cwd[PATH_MAX];
    if (!realpath(root, r)) return LN_OK;
    if (!realpath(cache_dir, c)) {
        if (cache_dir[0] == '/' || !getcwd(cwd, sizeof cwd)) ln_strf(c, sizeof c, "%s", cache_dir);
        else if (ln_strf(c, sizeof c, "%s/%s", cwd, cache_dir) >= (int)sizeof c) return LN_OK;
    }
    size_t n = strlen(r);
    if (strncmp(c, r, n) == 0 && (c[n] == '\0' || c[n] == '/' || n == 1))
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: the index cache folder '%s' is inside "
                       "the dataset '%s'; choose one outside it", cache_dir, root);
    return LN_OK;
}

/* Notes for the dataset's log: what was found, empty classes, ignored files. */
static void log_scan(ln_dataset *ds, const folder *f, const ln_index_info *info) {
    ln_msglog_add(&ds->log, "image_folder: %s: %lld images in %d classes (%s %s)", f->top,
                  (long long)f->ix.files, f->ix.classes,
                  info->cache_hit ? "index read from" : info->cache_written ? "scanned; index cached in"
                                                                           : "scanned; index not cached:",
                  info->cache_hit || info->cache_written ? info->cache_path : info->cache_note);
    int64_t *count = calloc((size_t)f->ix.classes + 1, sizeof *count);
    if (count) {
        for (int64_t i = 0; i < f->ix.files; i++) count[f->ix.file_class[i]]++;
        int empty = 0;
        for (int c = 0; c < f->ix.classes; c++) {
            if (count[c]) continue;
            if (++empty <= 10)
                ln_msglog_add(&ds->log, "image_folder: class %d '%s' has no images (%s/%s)",
                              c + 1, ds->class_names[c], f->top, ds->class_names[c]);
        }
        if (empty > 10) ln_msglog_add(&ds->log, "image_folder: %d classes have no images in all", empty);
        free(count);
    }
    if (f->ix.ignored)
        ln_msglog_add(&ds->log, "image_folder: ignored %lld entries under %s that are not image "
                      "files (by extension) or not regular files", (long long)f->ix.ignored, f->top);
}

ln_status ln_dataset_image_folder(ln_ctx *ctx, const ln_folder_opts *o, ln_dataset **out) {
    *out = NULL;
    if (!o || !o->root) return ln_fail(ctx, LN_ERR_ARG, "image_folder: argument 'root' is NULL");
    if (!o->split || !*o->split) return ln_fail(ctx, LN_ERR_ARG, "image_folder: argument 'split' is empty");
    LN_TRY(check_cfg(ctx, o));
    struct stat sb;
    errno = 0;
    if (stat(o->root, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ln_fail(ctx, LN_ERR_IO, "image_folder: dataset root '%s' is not a folder%s%s", o->root,
                       errno ? ": " : "", errno ? strerror(errno) : "");
    folder *f = calloc(1, sizeof *f);
    if (!f) return ln_fail(ctx, LN_ERR_NOMEM, "image_folder: out of memory");
    if (ln_strf(f->top, sizeof f->top, "%s/%s", o->root, o->split) >= (int)sizeof f->top) {
        free(f);
        return ln_fail(ctx, LN_ERR_ARG, "image_folder: path too long");
    }
    if (stat(f->top, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        ln_status st = ln_fail(ctx, LN_ERR_IO, "image_folder: no '%s' folder in '%s' (expected "
                               "the ILSVRC layout %s/%s/<class>/<images>)", o->split, o->root,
                               o->root, o->split);
        free(f);
        return st;
    }
    char cache_dir[PATH_MAX];
    ln_status st = LN_OK;
    if (o->cache_dir) ln_strf(cache_dir, sizeof cache_dir, "%s", o->cache_dir);
    else st = ln_data_default_cache_dir(ctx, cache_dir, sizeof cache_dir);
    if (st == LN_OK) st = check_cache_outside(ctx, o->root, cache_dir);
    ln_index_info info;
    if (st == LN_OK) st = ln_folder_index_load(ctx, f->top, cache_dir, &f->ix, &info);
    if (st == LN_OK && f->ix.classes == 0)
        st = ln_fail(ctx, LN_ERR_IO, "image_folder: '%s' has no class folders (expected "
                     "%s/<class>/<images>)", f->top, f->top);
    else if (st == LN_OK && f->ix.files == 0)
        st = ln_fail(ctx, LN_ERR_IO, "image_folder: no image files in the %d class folders of '%s'",
                     f->ix.classes, f->top);
    ln_dataset *ds = NULL;
    if (st == LN_OK && !(ds = ln_dataset_new("image_folder", &folder_vt)))
        st = ln_fail(ctx, LN_ERR_NOMEM, "image_folder: out of memory");
    if (st != LN_OK) {
        ln_folder_index_free(&f->ix);
        free(f);
        return st;
    }
    f->mode = o->mode;
    f->cfg = o->image;
    f->cache_hit = info.cache_hit;
    ln_strf(f->cache_path, sizeof f->cache_path, "%s", info.cache_path);
    ds->impl = f;
    ds->size = f->ix.files;
    ds->classes = f->ix.classes;
    ds->class_names = f->ix.class_names; /* handed over to the dataset */
    f->ix.class_names = NULL;
    ln_dataset_set_shape(ds, 3, (int64_t[]){3, f->cfg.size, f->cfg.size});
    log_scan(ds, f, &info);
    *out = ds;
    return LN_OK;
}

bool ln_dataset_index_cached(const ln_dataset *ds, char *buf, size_t n) {
    if (ds->vt != &folder_vt) {
        if (n) buf[0] = '\0';
        return false;
    }
    const folder *f = ds->impl;
    ln_strf(buf, n, "%s", f->cache_path);
    return f->cache_hit;
}
