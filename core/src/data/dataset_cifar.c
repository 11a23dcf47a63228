/* CIFAR-10 and CIFAR-100 in their binary batch format, read whole into memory.
 * A record is the label byte(s) then 3072 pixel bytes: the R, G and B planes of a
 * 32x32 image, rows top to bottom. CIFAR-10: 1 label byte (0..9); files
 * data_batch_1..5.bin (train, 10000 records each) and test_batch.bin; class names in
 * batches.meta.txt. CIFAR-100: a coarse (0..19) then a fine (0..99) label byte, the
 * fine one used; files train.bin and test.bin; names in fine_label_names.txt. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "dataset.h"

#define CIFAR_PIXELS 3072

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The folder holding the batch files: root itself, or its standard sub-folder. */
static ln_status find_dir(ln_ctx *ctx, const char *root, int version, char *dir, size_t n) {
    const char *probe = version == 10 ? "test_batch.bin" : "test.bin";
    const char *sub = version == 10 ? "cifar-10-batches-bin" : "cifar-100-binary";
    char path[4096];
    ln_strf(path, sizeof path, "%s/%s", root, probe);
    if (is_file(path)) {
        ln_strf(dir, n, "%s", root);
        return LN_OK;
    }
    ln_strf(path, sizeof path, "%s/%s/%s", root, sub, probe);
    if (is_file(path)) {
        ln_strf(dir, n, "%s/%s", root, sub);
        return LN_OK;
    }
    return ln_fail(ctx, LN_ERR_IO, "cifar: no CIFAR-%d binary batches in '%s' (expected %s "
                   "there or in %s/%s/)", version, root, probe, root, sub);
}

/* Class names, one a line, from `file` in dir when present (else no names). */
static ln_status read_names(ln_ctx *ctx, ln_dataset *ds, const char *dir, const char *file) {
    char path[4096];
    ln_strf(path, sizeof path, "%s/%s", dir, file);
    if (!is_file(path)) return LN_OK;
    uint8_t *buf;
    size_t len;
    LN_TRY(ln_read_file(ctx, "cifar", path, &buf, &len));
    if (!ln_dataset_alloc_class_names(ds, ds->classes)) {
        free(buf);
        return ln_fail(ctx, LN_ERR_NOMEM, "cifar: out of memory");
    }
    size_t pos = 0;
    for (int c = 0; c < ds->classes && pos < len; c++) {
        size_t end = pos;
        while (end < len && buf[end] != '\n') end++;
        size_t stop = end;
        while (stop > pos && (buf[stop - 1] == '\r' || buf[stop - 1] == ' ')) stop--;
        ds->class_names[c] = strndup((const char *)buf + pos, stop - pos);
        if (!ds->class_names[c]) {
            free(buf);
            return ln_fail(ctx, LN_ERR_NOMEM, "cifar: out of memory");
        }
        pos = end + 1;
    }
    free(buf);
    for (int c = 0; c < ds->classes; c++) {
        if (ds->class_names[c]) continue;
        ln_msglog_add(&ds->log, "cifar: %s names fewer than %d classes; names ignored", path, ds->classes);
        for (int k = 0; k < ds->classes; k++) free(ds->class_names[k]);
        free(ds->class_names);
        ds->class_names = NULL;
        break;
    }
    return LN_OK;
}

void ln_cifar_opts_default(int version, bool train, ln_array_opts *o) {
    static const float in_mean[3] = {0.485f, 0.456f, 0.406f}, in_std[3] = {0.229f, 0.224f, 0.225f};
    static const float c100_mean[3] = {0.507f, 0.487f, 0.441f}, c100_std[3] = {0.267f, 0.256f, 0.276f};
    o->mode = train ? LN_DATA_TRAIN : LN_DATA_EVAL;
    o->padding = 4;
    o->flip_p = 0.5;
    memcpy(o->mean, version == 100 ? c100_mean : in_mean, sizeof o->mean);
    memcpy(o->std, version == 100 ? c100_std : in_std, sizeof o->std);
}

ln_status ln_dataset_cifar(ln_ctx *ctx, const char *root, int version, bool train,
                           const ln_array_opts *opts, ln_dataset **out) {
    *out = NULL;
    if (!root) return ln_fail(ctx, LN_ERR_ARG, "cifar: argument 'root' is NULL");
    if (version != 10 && version != 100)
        return ln_fail(ctx, LN_ERR_ARG, "cifar: version must be 10 or 100, got %d", version);
    ln_array_opts o;
    if (opts) o = *opts;
    else ln_cifar_opts_default(version, train, &o);
    LN_TRY(ln_array_opts_check(ctx, "cifar", &o, 3));
    char dir[4096];
    LN_TRY(find_dir(ctx, root, version, dir, sizeof dir));

    const char *files10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                             "data_batch_4.bin", "data_batch_5.bin"};
    const char *test10[] = {"test_batch.bin"}, *train100[] = {"train.bin"}, *test100[] = {"test.bin"};
    const char **files = version == 10 ? (train ? files10 : test10) : (train ? train100 : test100);
    int nfiles = version == 10 && train ? 5 : 1;
    size_t label_bytes = version == 10 ? 1 : 2, rec = label_bytes + CIFAR_PIXELS;

    ln_array_data *a = calloc(1, sizeof *a);
    if (!a) return ln_fail(ctx, LN_ERR_NOMEM, "cifar: out of memory");
    size_t total = 0;
    ln_status st = LN_OK;
    for (int f = 0; f < nfiles && st == LN_OK; f++) {
        char path[4200];
        ln_strf(path, sizeof path, "%s/%s", dir, files[f]);
        uint8_t *buf;
        size_t len;
        st = ln_read_file(ctx, "cifar", path, &buf, &len);
        if (st != LN_OK) break;
        if (len == 0 || len % rec != 0) {
            free(buf);
            st = ln_fail(ctx, LN_ERR_IO, "cifar: '%s' has %zu bytes, not a whole number of "
                         "%zu-byte CIFAR-%d records", path, len, rec, version);
            break;
        }
        for (size_t r = 0; r < len / rec; r++) {
            unsigned label = buf[r * rec + label_bytes - 1];
            if (label >= (unsigned)version) {
                free(buf);
                st = ln_fail(ctx, LN_ERR_IO, "cifar: record %zu of '%s' has label %u, outside "
                             "0..%d (not a CIFAR-%d file?)", r, path, label, version - 1, version);
                break;
            }
        }
        if (st != LN_OK) break;
        uint8_t *all = realloc(a->pix_buf, total + len);
        if (!all) {
            free(buf);
            st = ln_fail(ctx, LN_ERR_NOMEM, "cifar: out of memory");
            break;
        }
        memcpy(all + total, buf, len);
        free(buf);
        a->pix_buf = a->lab_buf = all;
        total += len;
    }
    if (st != LN_OK) {
        free(a->pix_buf);
        free(a);
        return st;
    }
    a->pix = a->pix_buf + label_bytes;
    a->lab = a->pix_buf + label_bytes - 1;
    a->pix_stride = a->lab_stride = rec;
    a->c = 3;
    a->h = a->w = 32;
    a->opts = o;
    ln_strf(a->source, sizeof a->source, "%s", dir);
    LN_TRY(ln_array_dataset(ctx, "cifar", a, (int64_t)(total / rec), version, out));
    st = read_names(ctx, *out, dir, version == 10 ? "batches.meta.txt" : "fine_label_names.txt");
    if (st != LN_OK) {
        ln_dataset_release(*out);
        *out = NULL;
    }
    return st;
}
