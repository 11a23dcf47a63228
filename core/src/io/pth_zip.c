/* Zip archives for .pth files. Reading: the end-of-central-directory record (zip64
 * too), the central directory and each entry's local header, every offset and size
 * checked against the buffer before use; entries stored or deflated (zlib), their
 * CRC-32 verified. Writing: stored entries whose data start on 64-byte boundaries
 * (padding in an extra field, as PyTorch's writer does, so readers may map them),
 * then the central directory. Archives over 4 GiB or 65535 entries would need zip64
 * records, which the writer does not make (it refuses them). */
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include "pth_internal.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

static ln_status zfail(ln_ctx *ctx, ln_status code, const char *name, const char *what) {
    return ln_fail(ctx, code, "pth: %s: zip archive: %s", name, what);
}

/* a + b <= limit without overflow */
static bool fits(uint64_t a, uint64_t b, uint64_t limit) { return a <= limit && b <= limit - a; }

static int entry_cmp(const void *pa, const void *pb) {
    const pth_zip_entry *a = pa, *b = pb;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c) return c;
    return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* The zip64 extra field of a central record replaces the 32-bit fields that are
 * 0xFFFFFFFF, in the order size, compressed size, local header offset. */
static ln_status read_zip64_extra(ln_ctx *ctx, const char *name, const uint8_t *extra,
                                  size_t len, pth_zip_entry *e, uint64_t *local_off) {
    bool want_size = e->size == 0xFFFFFFFFu, want_comp = e->comp_size == 0xFFFFFFFFu;
    bool want_off = *local_off == 0xFFFFFFFFu;
    size_t pos = 0;
    while (pos + 4 <= len) {
        unsigned id = pth_u16(extra + pos), sz = pth_u16(extra + pos + 2);
        if (sz > len - pos - 4) return zfail(ctx, LN_ERR_IO, name, "extra field overruns its record");
        if (id == 1) {
            const uint8_t *f = extra + pos + 4;
            size_t at = 0;
            uint64_t *targets[3] = {want_size ? &e->size : NULL, want_comp ? &e->comp_size : NULL,
                                    want_off ? local_off : NULL};
            for (int k = 0; k < 3; k++) {
                if (!targets[k]) continue;
                if (at + 8 > sz) return zfail(ctx, LN_ERR_IO, name, "zip64 extra field too short");
                *targets[k] = pth_u64(f + at);
                at += 8;
            }
            return LN_OK;
        }
        pos += 4 + sz;
    }
    if (want_size || want_comp || want_off)
        return zfail(ctx, LN_ERR_IO, name, "32-bit size or offset marked zip64 but no zip64 extra field");
    return LN_OK;
}

ln_status pth_zip_open(ln_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                       pth_zip *z) {
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->len = len;
    if (len < 22) return zfail(ctx, LN_ERR_IO, name, "too short for an end-of-central-directory record");
    /* the end record: last signature whose comment fits */
    size_t eocd = SIZE_MAX;
    size_t lowest = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lowest;) {
        if (pth_u32(buf + p) == SIG_EOCD && p + 22 + pth_u16(buf + p + 20) <= len) { eocd = p; break; }
    }
    if (eocd == SIZE_MAX) return zfail(ctx, LN_ERR_IO, name, "no end-of-central-directory record (truncated?)");
    const uint8_t *r = buf + eocd;
    uint64_t disk = pth_u16(r + 4), cd_disk = pth_u16(r + 6), count = pth_u16(r + 10);
    uint64_t cd_size = pth_u32(r + 12), cd_off = pth_u32(r + 16);
    uint64_t cd_end_limit = eocd;
    if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        if (eocd < 20 || pth_u32(buf + eocd - 20) != SIG_LOC64)
            return zfail(ctx, LN_ERR_IO, name, "zip64 fields without a zip64 locator");
        uint64_t off64 = pth_u64(buf + eocd - 20 + 8);
        if (!fits(off64, 56, eocd - 20) || pth_u32(buf + off64) != SIG_EOCD64)
            return zfail(ctx, LN_ERR_IO, name, "zip64 end record missing or out of bounds");
        const uint8_t *r64 = buf + off64;
        disk = pth_u32(r64 + 16);
        cd_disk = pth_u32(r64 + 20);
        count = pth_u64(r64 + 32);
        cd_size = pth_u64(r64 + 40);
        cd_off = pth_u64(r64 + 48);
        cd_end_limit = off64;
    }
    if (disk != 0 || cd_disk != 0) return zfail(ctx, LN_ERR_UNSUPPORTED, name, "multi-part archives are not supported");
    if (!fits(cd_off, cd_size, cd_end_limit))
        return zfail(ctx, LN_ERR_IO, name, "central directory out of bounds (truncated?)");
    if (count > cd_size / 46 || count > PTH_MAX_ENTRIES)
        return zfail(ctx, LN_ERR_IO, name, "entry count does not fit the central directory");
    if (count == 0) return zfail(ctx, LN_ERR_IO, name, "no entries");
    z->entries = calloc((size_t)count, sizeof *z->entries);
    if (!z->entries) return ln_fail(ctx, LN_ERR_NOMEM, "pth: %s: out of memory", name);
    const uint8_t *cd = buf + cd_off;
    uint64_t pos = 0;
    ln_status st = LN_OK;
    for (uint64_t i = 0; i < count && st == LN_OK; i++) {
        pth_zip_entry *e = &z->entries[i];
        if (cd_size - pos < 46 || pth_u32(cd + pos) != SIG_CENTRAL) {
            st = zfail(ctx, LN_ERR_IO, name, "bad central directory record");
            break;
        }
        const uint8_t *c = cd + pos;
        unsigned flags = pth_u16(c + 8), nl = pth_u16(c + 28), el = pth_u16(c + 30), cl = pth_u16(c + 32);
        if (cd_size - pos - 46 < (uint64_t)nl + el + cl) {
            st = zfail(ctx, LN_ERR_IO, name, "central directory record overruns the directory");
            break;
        }
        e->method = pth_u16(c + 10);
        e->crc = pth_u32(c + 16);
        e->comp_size = pth_u32(c + 20);
        e->size = pth_u32(c + 24);
        e->name = (const char *)c + 46;
        e->name_len = nl;
        uint64_t local = pth_u32(c + 42);
        st = read_zip64_extra(ctx, name, c + 46 + nl, el, e, &local);
        if (st != LN_OK) break;
        pos += 46 + (uint64_t)nl + el + cl;
        if (flags & 1) { st = zfail(ctx, LN_ERR_UNSUPPORTED, name, "encrypted entries are not supported"); break; }
        if (e->method != 0 && e->method != 8) {
            st = ln_fail(ctx, LN_ERR_UNSUPPORTED, "pth: %s: zip archive: compression method %d is not supported (stored or deflate only)",
                         name, e->method);
            break;
        }
        if (e->method == 0 && e->comp_size != e->size) {
            st = zfail(ctx, LN_ERR_IO, name, "stored entry whose sizes differ");
            break;
        }
        if (!fits(local, 30, cd_off) || pth_u32(buf + local) != SIG_LOCAL) {
            st = zfail(ctx, LN_ERR_IO, name, "local header missing or out of bounds");
            break;
        }
        unsigned lnl = pth_u16(buf + local + 26), lel = pth_u16(buf + local + 28);
        e->data_off = local + 30 + lnl + lel;
        if (lnl != nl || !fits(local + 30, lnl, cd_off) || memcmp(buf + local + 30, e->name, nl) != 0) {
            st = zfail(ctx, LN_ERR_IO, name, "local header name differs from the central directory");
            break;
        }
        if (!fits(e->data_off, e->comp_size, cd_off)) {
            st = zfail(ctx, LN_ERR_IO, name, "entry data out of bounds (truncated?)");
            break;
        }
    }
    if (st == LN_OK) {
        z->n = (size_t)count;
        qsort(z->entries, z->n, sizeof *z->entries, entry_cmp);
        for (size_t i = 1; i < z->n && st == LN_OK; i++)
            if (entry_cmp(&z->entries[i - 1], &z->entries[i]) == 0)
                st = zfail(ctx, LN_ERR_IO, name, "two entries with the same name");
    }
    if (st != LN_OK) pth_zip_close(z);
    return st;
}

void pth_zip_close(pth_zip *z) {
    free(z->entries);
    z->entries = NULL;
    z->n = 0;
}

const pth_zip_entry *pth_zip_find(const pth_zip *z, const char *name, size_t name_len) {
    pth_zip_entry key = {.name = name, .name_len = name_len};
    return bsearch(&key, z->entries, z->n, sizeof *z->entries, entry_cmp);
}

static uint32_t crc_of(const uint8_t *p, uint64_t n) {
    return (uint32_t)crc32_z(crc32_z(0, Z_NULL, 0), p, (z_size_t)n);
}

ln_status pth_zip_read(ln_ctx *ctx, const char *name, const pth_zip *z,
                       const pth_zip_entry *e, const uint8_t **data, bool *owned) {
    *data = NULL;
    *owned = false;
    const uint8_t *src = z->buf + e->data_off;
    if (e->method == 0) {
        if (crc_of(src, e->size) != e->crc)
            return ln_fail(ctx, LN_ERR_IO, "pth: %s: zip entry '%.*s': CRC mismatch (corrupt file)",
                           name, (int)e->name_len, e->name);
        *data = src;
        return LN_OK;
    }
    /* deflate expands at most ~1032:1; a larger claim is a lie, not a reason to allocate */
    if (e->size / 1032 > e->comp_size + 1 || e->size > SIZE_MAX / 2)
        return ln_fail(ctx, LN_ERR_IO, "pth: %s: zip entry '%.*s': declared size %llu impossible for %llu compressed bytes",
                       name, (int)e->name_len, e->name, (unsigned long long)e->size,
                       (unsigned long long)e->comp_size);
    uint8_t *out = malloc(e->size ? (size_t)e->size : 1);
    if (!out) return ln_fail(ctx, LN_ERR_NOMEM, "pth: %s: out of memory inflating %llu bytes", name,
                             (unsigned long long)e->size);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        free(out);
        return ln_fail(ctx, LN_ERR_NOMEM, "pth: %s: zlib could not start", name);
    }
    uint64_t in_left = e->comp_size, out_left = e->size;
    const uint8_t *in = src;
    uint8_t *o = out;
    int zr = Z_OK;
    uint8_t spare; /* detects data beyond the declared size */
    while (zr == Z_OK) {
        uInt in_chunk = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
        uInt out_chunk = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
        zs.next_in = (Bytef *)in;
        zs.avail_in = in_chunk;
        zs.next_out = out_left ? o : &spare;
        zs.avail_out = out_left ? out_chunk : 1;
        zr = inflate(&zs, Z_NO_FLUSH);
        size_t took = in_chunk - zs.avail_in;
        size_t gave = (out_left ? out_chunk : 1) - zs.avail_out;
        in += took;
        in_left -= took;
        if (!out_left && gave) { zr = Z_DATA_ERROR; break; }
        o += gave;
        out_left -= gave;
        if (zr == Z_OK && took == 0 && gave == 0) zr = Z_BUF_ERROR;
    }
    inflateEnd(&zs);
    if (zr != Z_STREAM_END || out_left != 0) {
        free(out);
        return ln_fail(ctx, LN_ERR_IO, "pth: %s: zip entry '%.*s': deflate data corrupt or of the wrong size",
                       name, (int)e->name_len, e->name);
    }
    if (crc_of(out, e->size) != e->crc) {
        free(out);
        return ln_fail(ctx, LN_ERR_IO, "pth: %s: zip entry '%.*s': CRC mismatch (corrupt file)",
                       name, (int)e->name_len, e->name);
    }
    *data = out;
    *owned = true;
    return LN_OK;
}

/* ------------------------------------------------------------ writing */
struct pth_zip_written {
    char *name;
    uint64_t off, size;
    uint32_t crc;
};

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static ln_status wr(ln_ctx *ctx, pth_zip_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->f) != n)
        return ln_fail(ctx, LN_ERR_IO, "pth: write failed: %s", strerror(errno));
    w->pos += n;
    return LN_OK;
}

#define DOS_DATE_1980 0x0021 /* 1980-01-01: the timestamps carry no information */

ln_status pth_zipw_add(ln_ctx *ctx, pth_zip_writer *w, const char *name, const void *data,
                       size_t len) {
    size_t nl = strlen(name);
    if (nl > 0xFFFF) return ln_fail(ctx, LN_ERR_ARG, "pth: zip entry name too long");
    uint64_t base = w->pos + 30 + nl;
    size_t extra = 0;
    if (base % 64) extra = 4 + (size_t)((64 - (base + 4) % 64) % 64);
    if (w->pos > 0xFFFFFFFEu || len >= 0xFFFFFFFFu || base + extra + len > 0xFFFFFFFEu)
        return ln_fail(ctx, LN_ERR_UNSUPPORTED, "pth: checkpoints over 4 GiB would need zip64 records, which this writer does not make");
    if (w->n == 0xFFFF)
        return ln_fail(ctx, LN_ERR_UNSUPPORTED, "pth: more than 65535 entries would need zip64 records");
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        struct pth_zip_written *p = realloc(w->written, cap * sizeof *p);
        if (!p) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory");
        w->written = p;
        w->cap = cap;
    }
    struct pth_zip_written *rec = &w->written[w->n];
    rec->name = malloc(nl + 1);
    if (!rec->name) return ln_fail(ctx, LN_ERR_NOMEM, "pth: out of memory");
    memcpy(rec->name, name, nl + 1);
    rec->off = w->pos;
    rec->size = len;
    rec->crc = (uint32_t)crc32_z(crc32_z(0, Z_NULL, 0), data, len);
    w->n++;

    uint8_t h[30] = {0};
    put32(h, SIG_LOCAL);
    put16(h + 4, 20);               /* version needed */
    put16(h + 12, DOS_DATE_1980);
    put32(h + 14, rec->crc);
    put32(h + 18, (uint32_t)len);
    put32(h + 22, (uint32_t)len);
    put16(h + 26, (unsigned)nl);
    put16(h + 28, (unsigned)extra);
    LN_TRY(wr(ctx, w, h, sizeof h));
    LN_TRY(wr(ctx, w, name, nl));
    if (extra) {
        uint8_t pad[4 + 64] = {0};
        put16(pad, 0x4246);         /* "FB": PyTorch's padding field */
        put16(pad + 2, (unsigned)(extra - 4));
        LN_TRY(wr(ctx, w, pad, extra));
    }
    return wr(ctx, w, data, len);
}

ln_status pth_zipw_finish(ln_ctx *ctx, pth_zip_writer *w) {
    uint64_t cd_off = w->pos;
    for (size_t i = 0; i < w->n; i++) {
        const struct pth_zip_written *rec = &w->written[i];
        size_t nl = strlen(rec->name);
        uint8_t c[46] = {0};
        put32(c, SIG_CENTRAL);
        put16(c + 4, 20);           /* version made by */
        put16(c + 6, 20);           /* version needed */
        put16(c + 14, DOS_DATE_1980);
        put32(c + 16, rec->crc);
        put32(c + 20, (uint32_t)rec->size);
        put32(c + 24, (uint32_t)rec->size);
        put16(c + 28, (unsigned)nl);
        put32(c + 42, (uint32_t)rec->off);
        LN_TRY(wr(ctx, w, c, sizeof c));
        LN_TRY(wr(ctx, w, rec->name, nl));
    }
    uint64_t cd_size = w->pos - cd_off;
    if (w->pos > 0xFFFFFFFEu)
        return ln_fail(ctx, LN_ERR_UNSUPPORTED, "pth: checkpoints over 4 GiB would need zip64 records, which this writer does not make");
    uint8_t e[22] = {0};
    put32(e, SIG_EOCD);
    put16(e + 8, (unsigned)w->n);
    put16(e + 10, (unsigned)w->n);
    put32(e + 12, (uint32_t)cd_size);
    put32(e + 16, (uint32_t)cd_off);
    return wr(ctx, w, e, sizeof e);
}

void pth_zipw_free(pth_zip_writer *w) {
    for (size_t i = 0; i < w->n; i++) free(w->written[i].name);
    free(w->written);
    w->written = NULL;
    w->n = w->cap = 0;
}
