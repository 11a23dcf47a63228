/* The file index of an image folder (root/<split>/<class>/...) and its cache.
 *
 * Scanning: the class folders of the split folder, sorted by name; below each,
 * recursively, every regular file with an image extension (torchvision's list, any
 * case), ordered as torchvision's ImageFolder orders them (by folder path, then by
 * name). Names starting with '.' are skipped; other files are counted as ignored.
 * Symbolic links are followed (folder links up to a depth of 32, against cycles).
 *
 * Caching: a scan is stored in <cache_dir>/index-<hash of the split folder's real
 * path>.bin and reused while every folder of the tree keeps its modification time
 * (nanoseconds) and size: adding, removing or renaming a file changes the mtime of
 * the folder holding it, so a 1.28M-image tree is validated with one stat per folder
 * instead of being rescanned. File layout (native byte order, version 1):
 *   "LNIDX001", string split_path,
 *   u64 ndirs, ndirs x (string relpath, i64 mtime_s, i64 mtime_ns, i64 size),
 *   u32 classes, classes x string name,
 *   u64 files, u64 pool_len, pool (NUL-terminated relative paths),
 *   files x (i32 class, u64 offset in pool), u64 ignored,
 *   u32 crc32 of everything before it.
 * A string is a u32 length then its bytes. The file is written to a temporary name
 * and renamed, so readers never see half a file. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "dataset.h"

#define MAX_LINK_DEPTH 32

static const char magic[8] = {'L', 'N', 'I', 'D', 'X', '0', '0', '1'};

/* ------------------------------------------------------------ growable buffers */
typedef struct gbuf {
    uint8_t *p;
    size_t len, cap;
} gbuf;

static bool gbuf_put(gbuf *b, const void *data, size_t n) {
    if (n == 0) return true;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return true;
}

static bool gbuf_str(gbuf *b, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    return gbuf_put(b, &n, sizeof n) && gbuf_put(b, s, n);
}

/* ------------------------------------------------------------ scan state */
typedef struct dir_rec {
    uint64_t name;  /* offset of the relative path in dirpool */
    int64_t sec, nsec, size;
} dir_rec;

typedef struct scan {
    ln_ctx *ctx;
    const char *top;   /* the split folder */
    gbuf dirs;         /* dir_rec entries */
    gbuf dirpool;
    gbuf files;        /* uint64_t offsets into pool, of the class being walked */
    gbuf pool;
    int64_t ignored;
} scan;

static void scan_free(scan *s) {
    free(s->dirs.p);
    free(s->dirpool.p);
    free(s->files.p);
    free(s->pool.p);
}

static ln_status nomem(ln_ctx *ctx) { return ln_fail(ctx, LN_ERR_NOMEM, "image_folder: out of memory scanning"); }

static bool has_image_ext(const char *name) {
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm",
                                       ".tif", ".tiff", ".webp"};
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot, exts[i]) == 0) return true;
    return false;
}

static ln_status add_dir(scan *s, const char *rel, const struct stat *sb) {
    dir_rec d = {s->dirpool.len, (int64_t)sb->st_mtim.tv_sec, (int64_t)sb->st_mtim.tv_nsec,
                 (int64_t)sb->st_size};
    if (!gbuf_put(&s->dirpool, rel, strlen(rel) + 1) || !gbuf_put(&s->dirs, &d, sizeof d))
        return nomem(s->ctx);
    return LN_OK;
}

/* Entries of a folder: the name behind one byte telling what readdir knew of it. */
enum { ENT_FILE = 'f', ENT_DIR = 'd', ENT_OTHER = '?' };

static int cmp_entry(const void *a, const void *b) {
    return strcmp(*(const char *const *)a + 1, *(const char *const *)b + 1);
}

/* Sorted entries of the folder `path` (names not starting with '.'), each "<kind
 * byte><name>"; the caller frees names[i] and names. */
static ln_status list_dir(ln_ctx *ctx, const char *path, char ***names, size_t *count) {
    *names = NULL;
    *count = 0;
    DIR *d = opendir(path);
    if (!d) return ln_fail(ctx, LN_ERR_IO, "image_folder: cannot read folder '%s': %s", path, strerror(errno));
    size_t n = 0, cap = 0;
    char **v = NULL;
    ln_status st = LN_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv) { st = nomem(ctx); break; }
            v = nv;
        }
        size_t len = strlen(e->d_name);
        if (!(v[n] = malloc(len + 2))) { st = nomem(ctx); break; }
        v[n][0] = e->d_type == DT_REG ? ENT_FILE : e->d_type == DT_DIR ? ENT_DIR : ENT_OTHER;
        memcpy(v[n] + 1, e->d_name, len + 1);
        n++;
    }
    closedir(d);
    if (st != LN_OK) {
        for (size_t i = 0; i < n; i++) free(v[i]);
        free(v);
        return st;
    }
    if (n) qsort(v, n, sizeof *v, cmp_entry);
    *names = v;
    *count = n;
    return LN_OK;
}

/* Whether an entry is a regular file or a folder, following links (stat) only when
 * readdir did not say. */
static int entry_kind(const char *path, char known) {
    if (known != ENT_OTHER) return known;
    struct stat sb;
    if (stat(path, &sb) != 0) return ENT_OTHER; /* a dangling link, or gone meanwhile */
    return S_ISREG(sb.st_mode) ? ENT_FILE : S_ISDIR(sb.st_mode) ? ENT_DIR : ENT_OTHER;
}

static void free_names(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Walks the folder top/rel: records it, its image files and (recursively) its
 * sub-folders. */
static ln_status walk(scan *s, const char *rel, int depth) {
    char path[PATH_MAX];
    if (ln_strf(path, sizeof path, "%s/%s", s->top, rel) >= (int)sizeof path)
        return ln_fail(s->ctx, LN_ERR_IO, "image_folder: path too long: '%s/%s'", s->top, rel);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ln_fail(s->ctx, LN_ERR_IO, "image_folder: cannot stat '%s': %s", path, strerror(errno));
    LN_TRY(add_dir(s, rel, &sb));
    char **names;
    size_t n;
    LN_TRY(list_dir(s->ctx, path, &names, &n));
    ln_status st = LN_OK;
    char child[PATH_MAX];
    for (size_t i = 0; i < n && st == LN_OK; i++) {
        const char *name = names[i] + 1;
        if (ln_strf(child, sizeof child, "%s/%s", path, name) >= (int)sizeof child) {
            st = ln_fail(s->ctx, LN_ERR_IO, "image_folder: path too long: '%s/%s'", path, name);
            break;
        }
        int kind = entry_kind(child, names[i][0]);
        if (kind == ENT_FILE) {
            if (!has_image_ext(name)) {
                s->ignored++;
                continue;
            }
            uint64_t off = s->pool.len;
            if (!gbuf_put(&s->pool, rel, strlen(rel)) || !gbuf_put(&s->pool, "/", 1) ||
                !gbuf_put(&s->pool, name, strlen(name) + 1) ||
                !gbuf_put(&s->files, &off, sizeof off))
                st = nomem(s->ctx);
        } else if (kind == ENT_DIR) {
            if (depth >= MAX_LINK_DEPTH) {
                st = ln_fail(s->ctx, LN_ERR_IO, "image_folder: folders nested deeper than %d "
                             "below '%s' (a symbolic link cycle?)", MAX_LINK_DEPTH, s->top);
                break;
            }
            char sub[PATH_MAX];
            ln_strf(sub, sizeof sub, "%s/%s", rel, name);
            st = walk(s, sub, depth + 1);
        } else {
            s->ignored++;
        }
    }
    free_names(names, n);
    return st;
}

/* torchvision's order: by folder path, then by file name. */
static int cmp_path(const void *pa, const void *pb) {
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    size_t la = (size_t)(sa - a), lb = (size_t)(sb - b);
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c) return c;
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(sa + 1, sb + 1);
}

void ln_folder_index_free(ln_folder_index *ix) {
    if (ix->class_names)
        for (int i = 0; i < ix->classes; i++) free(ix->class_names[i]);
    free(ix->class_names);
    free(ix->file_class);
    free(ix->file_off);
    free(ix->pool);
    memset(ix, 0, sizeof *ix);
}

/* Scans s->top into ix. */
static ln_status scan_tree(scan *s, ln_folder_index *ix) {
    struct stat sb;
    if (stat(s->top, &sb) != 0)
        return ln_fail(s->ctx, LN_ERR_IO, "image_folder: cannot stat '%s': %s", s->top, strerror(errno));
    LN_TRY(add_dir(s, ".", &sb));
    char **names;
    size_t n;
    LN_TRY(list_dir(s->ctx, s->top, &names, &n));
    ln_status st = LN_OK;
    /* class folders first, so the class count is known */
    size_t classes = 0;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        ln_strf(path, sizeof path, "%s/%s", s->top, names[i] + 1);
        if (entry_kind(path, names[i][0]) == ENT_DIR) {
            memmove(names[i], names[i] + 1, strlen(names[i])); /* drop the kind byte */
            names[classes++] = names[i];
        } else {
            s->ignored++;
            free(names[i]);
        }
    }
    if (classes > INT_MAX / 2) {
        free_names(names, classes);
        return ln_fail(s->ctx, LN_ERR_IO, "image_folder: too many class folders in '%s'", s->top);
    }
    ix->classes = (int)classes;
    ix->class_names = names; /* taken over */
    gbuf cls = {0}, offs = {0};
    for (size_t c = 0; c < classes && st == LN_OK; c++) {
        s->files.len = 0;
        st = walk(s, names[c], 0);
        if (st != LN_OK) break;
        size_t k = s->files.len / sizeof(uint64_t);
        uint64_t *o = (uint64_t *)s->files.p;
        /* sort by string: turn offsets into pointers (the pool no longer moves) */
        char **ptrs = malloc((k ? k : 1) * sizeof *ptrs);
        if (!ptrs) { st = nomem(s->ctx); break; }
        for (size_t i = 0; i < k; i++) ptrs[i] = (char *)s->pool.p + o[i];
        qsort(ptrs, k, sizeof *ptrs, cmp_path);
        int32_t ci = (int32_t)c;
        for (size_t i = 0; i < k && st == LN_OK; i++) {
            uint64_t off = (uint64_t)(ptrs[i] - (char *)s->pool.p);
            if (!gbuf_put(&cls, &ci, sizeof ci) || !gbuf_put(&offs, &off, sizeof off)) st = nomem(s->ctx);
        }
        free(ptrs);
    }
    if (st != LN_OK) {
        free(cls.p);
        free(offs.p);
        return st;
    }
    ix->files = (int64_t)(offs.len / sizeof(uint64_t));
    ix->file_class = (int32_t *)cls.p;
    ix->file_off = (uint64_t *)offs.p;
    ix->pool = (char *)s->pool.p;
    ix->pool_len = s->pool.len;
    s->pool.p = NULL; /* taken over */
    s->pool.len = s->pool.cap = 0;
    ix->ignored = s->ignored;
    return LN_OK;
}

/* ------------------------------------------------------------ cache file */
static ln_status serialize(scan *s, const ln_folder_index *ix, gbuf *out) {
    uint64_t ndirs = s->dirs.len / sizeof(dir_rec), files = (uint64_t)ix->files;
    uint64_t pool_len = ix->pool_len, ignored = (uint64_t)ix->ignored;
    uint32_t classes = (uint32_t)ix->classes;
    bool ok = gbuf_put(out, magic, sizeof magic) && gbuf_str(out, s->top) &&
              gbuf_put(out, &ndirs, sizeof ndirs);
    const dir_rec *d = (const dir_rec *)s->dirs.p;
    for (uint64_t i = 0; ok && i < ndirs; i++)
        ok = gbuf_str(out, (const char *)s->dirpool.p + d[i].name) &&
             gbuf_put(out, &d[i].sec, 8) && gbuf_put(out, &d[i].nsec, 8) && gbuf_put(out, &d[i].size, 8);
    ok = ok && gbuf_put(out, &classes, sizeof classes);
    for (uint32_t c = 0; ok && c < classes; c++) ok = gbuf_str(out, ix->class_names[c]);
    ok = ok && gbuf_put(out, &files, 8) && gbuf_put(out, &pool_len, 8) &&
         gbuf_put(out, ix->pool, pool_len);
    for (uint64_t i = 0; ok && i < files; i++)
        ok = gbuf_put(out, &ix->file_class[i], 4) && gbuf_put(out, &ix->file_off[i], 8);
    ok = ok && gbuf_put(out, &ignored, 8);
    if (ok) {
        uint32_t crc = 0;
        for (size_t pos = 0; pos < out->len; pos += 1u << 30) {
            size_t chunk = out->len - pos < (1u << 30) ? out->len - pos : (1u << 30);
            crc = (uint32_t)crc32(crc, out->p + pos, (uInt)chunk);
        }
        ok = gbuf_put(out, &crc, sizeof crc);
    }
    return ok ? LN_OK : nomem(s->ctx);
}

/* A bounds-checked reader over the cache file's bytes. */
typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} reader;

static const void *take(reader *r, size_t n) {
    if (r->bad || n > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static uint64_t take_u64(reader *r) {
    uint64_t v = 0;
    const void *p = take(r, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}

static uint32_t take_u32(reader *r) {
    uint32_t v = 0;
    const void *p = take(r, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}

/* The next string as a pointer into the buffer (not NUL-terminated) and its length. */
static const char *take_str(reader *r, uint32_t *n) {
    *n = take_u32(r);
    return take(r, *n);
}

/* Parses a cache file for folder `top`; true when it is intact, for this folder and
 * still valid (every folder unchanged), with ix filled. false otherwise (ix empty,
 * why says why unless out of memory). */
static bool parse_cache(const uint8_t *buf, size_t len, const char *top, ln_folder_index *ix,
                        const char **why) {
    *why = "";
    if (len < sizeof magic + 4 || memcmp(buf, magic, sizeof magic) != 0) {
        *why = "not an index cache of this version";
        return false;
    }
    uint32_t crc, want = (uint32_t)crc32(0, buf, (uInt)(len - 4));
    memcpy(&crc, buf + len - 4, 4);
    if (crc != want) {
        *why = "checksum mismatch";
        return false;
    }
    reader r = {buf, len - 4, sizeof magic, false};
    uint32_t n;
    const char *path = take_str(&r, &n);
    if (!path || n != strlen(top) || memcmp(path, top, n) != 0) {
        *why = "made for another folder";
        return false;
    }
    uint64_t ndirs = take_u64(&r);
    char full[PATH_MAX];
    for (uint64_t i = 0; i < ndirs && !r.bad; i++) {
        const char *rel = take_str(&r, &n);
        int64_t sec = (int64_t)take_u64(&r), nsec = (int64_t)take_u64(&r), size = (int64_t)take_u64(&r);
        if (r.bad) break;
        struct stat sb;
        if (ln_strf(full, sizeof full, "%s/%.*s", top, (int)n, rel) >= (int)sizeof full ||
            stat(full, &sb) != 0 || (int64_t)sb.st_mtim.tv_sec != sec ||
            (int64_t)sb.st_mtim.tv_nsec != nsec || (int64_t)sb.st_size != size) {
            *why = "the folder changed";
            return false;
        }
    }
    uint32_t classes = take_u32(&r); /* r.bad here also covers the folder records */
    if (r.bad || classes > (uint32_t)INT_MAX / 2) {
        *why = "corrupt";
        return false;
    }
    ix->classes = (int)classes;
    ix->class_names = calloc(classes ? classes : 1, sizeof *ix->class_names);
    if (!ix->class_names) goto fail;
    for (uint32_t c = 0; c < classes; c++) {
        const char *name = take_str(&r, &n);
        if (r.bad) goto corrupt;
        if (!(ix->class_names[c] = strndup(name, n))) goto fail;
    }
    uint64_t files = take_u64(&r), pool_len = take_u64(&r);
    const char *pool = take(&r, pool_len);
    if (r.bad || files > (r.len - r.pos) / 12 || (pool_len && pool[pool_len - 1] != '\0')) goto corrupt;
    ix->files = (int64_t)files;
    ix->pool_len = pool_len;
    ix->pool = malloc(pool_len ? pool_len : 1);
    ix->file_class = malloc((files ? files : 1) * sizeof *ix->file_class);
    ix->file_off = malloc((files ? files : 1) * sizeof *ix->file_off);
    if (!ix->pool || !ix->file_class || !ix->file_off) goto fail;
    memcpy(ix->pool, pool, pool_len);
    for (uint64_t i = 0; i < files; i++) {
        ix->file_class[i] = (int32_t)take_u32(&r);
        ix->file_off[i] = take_u64(&r);
        if (ix->file_class[i] < 0 || (uint32_t)ix->file_class[i] >= classes || ix->file_off[i] >= pool_len)
            goto corrupt;
    }
    ix->ignored = (int64_t)take_u64(&r);
    if (r.bad || r.pos != r.len) goto corrupt;
    return true;
corrupt:
    *why = "corrupt";
fail:
    ln_folder_index_free(ix);
    return false;
}

/* mkdir -p */
static bool make_dirs(const char *dir, char *why, size_t n) {
    char path[PATH_MAX];
    if (ln_strf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        ln_strf(why, n, "path too long");
        return false;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char keep = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            ln_strf(why, n, "cannot create '%s': %s", path, strerror(errno));
            return false;
        }
        *p = keep;
        if (!keep) break;
    }
    return true;
}

/* Writes data to path through a temporary file and a rename. */
static bool write_atomic(const char *path, const gbuf *data, char *why, size_t n) {
    char tmp[PATH_MAX + 64];
    ln_strf(tmp, sizeof tmp, "%s.%ld.%lx.tmp", path, (long)getpid(), (unsigned long)(uintptr_t)data);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ln_strf(why, n, "cannot create '%s': %s", tmp, strerror(errno));
        return false;
    }
    bool ok = fwrite(data->p, 1, data->len, f) == data->len;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        ln_strf(why, n, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

ln_status ln_folder_index_load(ln_ctx *ctx, const char *dir, const char *cache_dir,
                               ln_folder_index *ix, ln_index_info *info) {
    memset(ix, 0, sizeof *ix);
    memset(info, 0, sizeof *info);
    char top[PATH_MAX];
    if (!realpath(dir, top))
        return ln_fail(ctx, LN_ERR_IO, "image_folder: cannot resolve '%s': %s", dir, strerror(errno));
    if (ln_strf(info->cache_path, sizeof info->cache_path, "%s/index-%016llx.bin", cache_dir,
                 (unsigned long long)fnv1a64(top)) >= (int)sizeof info->cache_path) {
        info->cache_path[0] = '\0';
        ln_strf(info->cache_note, sizeof info->cache_note, "cache folder path too long");
    }

    uint8_t *buf = NULL;
    size_t len = 0;
    if (info->cache_path[0] && access(info->cache_path, F_OK) == 0) {
        ln_status st = ln_read_file(ctx, "image_folder", info->cache_path, &buf, &len);
        if (st == LN_ERR_NOMEM) return st;
        if (st != LN_OK) ln_ctx_clear_error(ctx); /* unreadable: scan and try to rewrite it */
    }
    if (buf) {
        const char *why;
        bool hit = parse_cache(buf, len, top, ix, &why);
        free(buf);
        if (hit) {
            info->cache_hit = true;
            return LN_OK;
        }
        if (!*why) return nomem(ctx);
    }

    scan s = {.ctx = ctx, .top = top};
    ln_status st = scan_tree(&s, ix);
    if (st == LN_OK && info->cache_path[0]) {
        gbuf data = {0};
        st = serialize(&s, ix, &data);
        if (st == LN_OK &&
            make_dirs(cache_dir, info->cache_note, sizeof info->cache_note) &&
            write_atomic(info->cache_path, &data, info->cache_note, sizeof info->cache_note))
            info->cache_written = true;
        free(data.p);
    }
    scan_free(&s);
    if (st != LN_OK) ln_folder_index_free(ix);
    return st;
}
