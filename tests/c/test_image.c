/* Image decoding and transforms (lunet/image.h) against PIL 9 / torchvision 0.14
 * fixtures (tests/fixtures/make_fixtures.py): resize bit-exact, eval and fixed-crop
 * train transforms (exact path bit-exact, DCT-scaled path within 1/255), every
 * bad-input case, crop-aware decoding equal to a full decode, the RandomResizedCrop
 * sampler's distribution against torchvision's own draws, and determinism by seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include "testutil.h"
#include "lunet/image.h"
#include "data/image_internal.h"

#define ERRLEN 256

static uint8_t *read_fixture(const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/image/%s", LUNET_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* An expected output stored as an 8-bit RGB PNG. */
static int load_expected(const char *name, ln_image *img) {
    size_t len;
    uint8_t *buf = read_fixture(name, &len);
    char err[ERRLEN];
    ln_status st = buf ? ln_image_decode(buf, len, img, NULL, err, ERRLEN) : LN_ERR_IO;
    free(buf);
    return CHECK(st == LN_OK, "expected output %s: %s", name, buf ? err : "missing");
}

/* Mean and max |a - b| of out (C, H, W) in [0, 1] against exp (H, W, C) / 255. */
static void diff_chw(const float *out, const ln_image *exp, double *mean, double *maxd) {
    double sum = 0, mx = 0;
    const int w = exp->width, h = exp->height, c = exp->channels;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double e = exp->data[(size_t)y * exp->stride + (size_t)x * c + ch] / 255.0f;
                double d = fabs(out[((size_t)ch * h + y) * w + x] - e);
                sum += d;
                if (d > mx) mx = d;
            }
    *mean = sum / ((double)w * h * c);
    *maxd = mx;
}

/* a's RGB equals b's at offset (x0, y0); either may have 3 or 4 channels */
static int images_equal(const ln_image *a, const ln_image *b, int x0, int y0) {
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < a->width; x++)
            if (memcmp(a->data + (size_t)y * a->stride + (size_t)x * a->channels,
                       b->data + (size_t)(y + y0) * b->stride + (size_t)(x + x0) * b->channels,
                       3) != 0)
                return 0;
    return 1;
}

static ln_image_cfg plain_cfg(int size, int resize, double dct_min) {
    ln_image_cfg cfg;
    ln_image_cfg_ilsvrc(&cfg);
    cfg.size = size;
    cfg.resize = resize;
    cfg.dct_min = dct_min;
    for (int c = 0; c < 3; c++) {
        cfg.mean[c] = 0.0f;
        cfg.std[c] = 1.0f;
    }
    return cfg;
}

/* ------------------------------------------------------------------ manifest cases */

static void case_decode(const char *name, const char *status, int conv, int w, int h) {
    size_t len;
    uint8_t *buf = read_fixture(name, &len);
    if (!CHECK(buf != NULL, "fixture %s missing", name)) return;
    ln_status want = !strcmp(status, "ok") ? LN_OK
                     : !strcmp(status, "io") ? LN_ERR_IO : LN_ERR_UNSUPPORTED;
    char err[ERRLEN] = "";
    ln_image img;
    ln_image_info info;
    ln_status st = ln_image_decode(buf, len, &img, &info, err, ERRLEN);
    CHECK(st == want, "decode %s: status %s, wanted %s (%s)", name, ln_status_name(st),
          status, err);
    if (want != LN_OK) {
        CHECK(err[0] != '\0' && img.data == NULL, "decode %s: message and no image", name);
        printf("  %-16s -> %s: %s\n", name, ln_status_name(st), err);
    } else {
        CHECK(img.width == w && img.height == h && img.channels == 3 && info.converted == conv,
              "decode %s: %d x %d x %d converted %d, wanted %d x %d converted %d", name,
              img.width, img.height, img.channels, info.converted, w, h, conv);
        ln_image_info probe;
        CHECK(ln_image_probe(buf, len, &probe, err, ERRLEN) == LN_OK && probe.width == w &&
              probe.height == h && probe.converted == conv && probe.format == info.format,
              "probe %s agrees with decode", name);
    }
    ln_image_free(&img);
    free(buf);
}

static void case_pixels(const char *name, const char *expected) {
    size_t len;
    uint8_t *buf = read_fixture(name, &len);
    ln_image img, exp;
    char err[ERRLEN];
    if (!CHECK(buf && ln_image_decode(buf, len, &img, NULL, err, ERRLEN) == LN_OK,
               "decode %s", name)) {
        free(buf);
        return;
    }
    if (load_expected(expected, &exp)) {
        CHECK(exp.width == img.width && exp.height == img.height && images_equal(&img, &exp, 0, 0),
              "%s decodes to PIL's convert('RGB') pixels exactly", name);
        ln_image_free(&exp);
    }
    ln_image_free(&img);
    free(buf);
}

/* exact (dct_min 0) must equal torchvision bit for bit; the default policy within
 * 1/255 mean absolute difference */
static void check_transform(const char *what, const char *name, const char *expected,
                            int size, int resize, const ln_image_crop *crop, bool flip) {
    size_t len;
    uint8_t *buf = read_fixture(name, &len);
    ln_image exp;
    if (!CHECK(buf != NULL, "fixture %s missing", name) || !load_expected(expected, &exp)) {
        free(buf);
        return;
    }
    float *out = malloc(sizeof(float) * 3 * size * size);
    ln_image_cfg def;
    ln_image_cfg_ilsvrc(&def);
    const double policies[2] = {0.0, def.dct_min};
    for (int p = 0; p < 2; p++) {
        ln_image_cfg cfg = plain_cfg(size, resize, policies[p]);
        char err[ERRLEN];
        ln_image_info info;
        ln_status st = crop ? ln_image_resized_crop(buf, len, &cfg, crop, flip, out, &info, err, ERRLEN)
                            : ln_image_eval(buf, len, &cfg, out, &info, err, ERRLEN);
        if (!CHECK(st == LN_OK, "%s %s: %s", what, name, err)) continue;
        double mean, mx;
        diff_chw(out, &exp, &mean, &mx);
        printf("  %-5s %-15s dct_min %.1f: scale 1/%d, mean |diff| %.2e (%.3f/255), max %.0f/255\n",
               what, name, policies[p], info.scale_denom, mean, mean * 255, mx * 255);
        if (p == 0)
            CHECK(mx == 0.0, "%s %s exact path: max |diff| %g, wanted 0", what, name, mx * 255);
        else
            CHECK(mean <= 1.0 / 255, "%s %s: mean |diff| %g > 1/255", what, name, mean);
    }
    free(out);
    ln_image_free(&exp);
    free(buf);
}

static void case_resize(const char *src_name, int sw, int sh, const char *expected, int ow,
                        int oh, const double box[4]) {
    size_t slen, elen;
    uint8_t *src = read_fixture(src_name, &slen), *exp = read_fixture(expected, &elen);
    if (!CHECK(src && exp && slen == (size_t)sw * sh * 3 && elen == (size_t)ow * oh * 3,
               "resize fixtures %s, %s", src_name, expected)) {
        free(src);
        free(exp);
        return;
    }
    ln_image img = {src, sw, sh, 3, (size_t)sw * 3};
    uint8_t *dst = malloc((size_t)ow * oh * 3);
    char err[ERRLEN];
    ln_status st = ln_image_resize(&img, box, ow, oh, 0, 0, ow, oh, dst, (size_t)ow * 3, err, ERRLEN);
    int maxd = 0;
    for (size_t i = 0; st == LN_OK && i < elen; i++) {
        int d = abs(dst[i] - exp[i]);
        if (d > maxd) maxd = d;
    }
    CHECK(st == LN_OK && maxd == 0, "resize to %d x %d box (%g %g %g %g) equals PIL: max diff %d (%s)",
          ow, oh, box[0], box[1], box[2], box[3], maxd, st == LN_OK ? "" : err);
    /* the 4-channel (RGBX, vectorised) path gives the same RGB */
    uint8_t *src4 = malloc((size_t)sw * sh * 4), *dst4 = malloc((size_t)ow * oh * 4);
    for (int i = 0; i < sw * sh; i++) {
        memcpy(src4 + 4 * i, src + 3 * i, 3);
        src4[4 * i + 3] = (uint8_t)(i * 13);
    }
    ln_image img4 = {src4, sw, sh, 4, (size_t)sw * 4};
    st = ln_image_resize(&img4, box, ow, oh, 0, 0, ow, oh, dst4, (size_t)ow * 4, err, ERRLEN);
    int same4 = st == LN_OK;
    for (int i = 0; same4 && i < ow * oh; i++) same4 = !memcmp(dst4 + 4 * i, exp + 3 * i, 3);
    CHECK(same4, "RGBX resize to %d x %d equals PIL", ow, oh);
    free(src4);
    free(dst4);
    /* a window of the output equals that part of the whole output */
    if (ow >= 3 && oh >= 3) {
        int wx = ow / 3, wy = oh / 3, ww = ow - wx - ow / 4, wh = oh - wy;
        uint8_t *win = malloc(((size_t)ww * 3 + 5) * wh);
        st = ln_image_resize(&img, box, ow, oh, wx, wy, ww, wh, win, (size_t)ww * 3 + 5, err, ERRLEN);
        int same = st == LN_OK;
        for (int y = 0; same && y < wh; y++)
            same = !memcmp(win + (size_t)y * (ww * 3 + 5), exp + ((size_t)(y + wy) * ow + wx) * 3,
                           (size_t)ww * 3);
        CHECK(same, "resize window %d x %d at (%d, %d) of %d x %d", ww, wh, wx, wy, ow, oh);
        free(win);
    }
    free(dst);
    free(src);
    free(exp);
}

static void run_manifest(void) {
    size_t len;
    char *text = (char *)read_fixture("manifest.txt", &len);
    if (!CHECK(text != NULL, "manifest.txt missing (run tests/fixtures/make_fixtures.py)")) return;
    text = realloc(text, len + 1);
    text[len] = '\0';
    int counts[6] = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char kind[16], a[128], b[128], c[128];
        int n[8];
        double box[4];
        if (line[0] == '#' || sscanf(line, "%15s", kind) != 1) continue;
        if (!strcmp(kind, "decode") &&
            sscanf(line, "%*s %127s %127s %d %d %d", a, b, &n[0], &n[1], &n[2]) == 5) {
            case_decode(a, b, n[0], n[1], n[2]);
            counts[0]++;
        } else if (!strcmp(kind, "pixels") && sscanf(line, "%*s %127s %127s", a, b) == 2) {
            case_pixels(a, b);
            counts[1]++;
        } else if (!strcmp(kind, "eval") &&
                   sscanf(line, "%*s %127s %127s %d %d", a, b, &n[0], &n[1]) == 4) {
            check_transform("eval", a, b, n[0], n[1], NULL, false);
            counts[2]++;
        } else if (!strcmp(kind, "train") &&
                   sscanf(line, "%*s %127s %127s %d %d %d %d %d %d", a, b, &n[0], &n[1], &n[2],
                          &n[3], &n[4], &n[5]) == 8) {
            ln_image_crop crop = {n[1], n[2], n[3], n[4]};
            check_transform("train", a, b, n[0], 0, &crop, n[5] != 0);
            counts[3]++;
        } else if (!strcmp(kind, "resize") &&
                   sscanf(line, "%*s %127s %d %d %127s %d %d %lf %lf %lf %lf", a, &n[0], &n[1], c,
                          &n[2], &n[3], &box[0], &box[1], &box[2], &box[3]) == 10) {
            case_resize(a, n[0], n[1], c, n[2], n[3], box);
            counts[4]++;
        } else {
            CHECK(0, "manifest line not understood: %s", line);
        }
    }
    CHECK(counts[0] >= 11 && counts[1] >= 4 && counts[2] >= 7 && counts[3] >= 6 && counts[4] >= 10,
          "manifest has every kind of case");
    free(text);
}

/* ------------------------------------------------------------------ bad input */

static ln_status decode_bytes(const uint8_t *buf, size_t len, ln_image_info *info, char *err) {
    ln_image img;
    ln_status st = ln_image_decode(buf, len, &img, info, err, ERRLEN);
    ln_image_free(&img);
    return st;
}

static void test_bad_input(void) {
    size_t len;
    uint8_t *jpg = read_fixture("photo.jpg", &len);
    if (!CHECK(jpg != NULL, "photo.jpg")) return;
    char err[ERRLEN];
    ln_image_info info;
    /* truncated anywhere: in the header, in the scan */
    const size_t cuts[] = {2, 3, 20, 150, 400, len / 10, len / 2, len * 9 / 10, len - 100};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        ln_status st = decode_bytes(jpg, cuts[i], &info, err);
        CHECK(st == LN_ERR_IO && err[0], "JPEG cut at %zu of %zu bytes: %s (%s)", cuts[i], len,
              ln_status_name(st), err);
    }
    /* only the EOI marker missing: every pixel is there; either answer is fine */
    ln_status st = decode_bytes(jpg, len - 2, &info, err);
    CHECK(st == LN_OK || st == LN_ERR_IO, "JPEG without EOI: %s", ln_status_name(st));
    /* a crop that lies in the intact top part of a truncated file still fails: the
     * outcome never depends on the crop */
    ln_image_cfg cfg = plain_cfg(32, 40, 2.0);
    float out[3 * 32 * 32];
    ln_image_crop top = {0, 0, 64, 48};
    st = ln_image_resized_crop(jpg, len * 8 / 10, &cfg, &top, false, out, NULL, err, ERRLEN);
    CHECK(st == LN_ERR_IO, "crop in the intact part of a truncated JPEG: %s", ln_status_name(st));
    /* the same crop of the whole file works */
    CHECK(ln_image_resized_crop(jpg, len, &cfg, &top, false, out, NULL, err, ERRLEN) == LN_OK,
          "crop of the whole file: %s", err);
    /* header garbage */
    uint8_t *bad = malloc(len);
    memcpy(bad, jpg, len);
    for (size_t i = 4; i < 200; i++) bad[i] = (uint8_t)(i * 37 + 11);
    st = decode_bytes(bad, len, &info, err);
    CHECK(st == LN_ERR_IO && err[0], "JPEG with a garbage header: %s (%s)", ln_status_name(st), err);
    /* garbage in the entropy-coded data: libjpeg recovers (as PIL does) or fails, never
     * crashes */
    memcpy(bad, jpg, len);
    for (size_t i = len / 2; i < len / 2 + 300; i++) bad[i] = (uint8_t)(i * 131 + 7);
    st = decode_bytes(bad, len, &info, err);
    CHECK(st == LN_OK || st == LN_ERR_IO, "JPEG with corrupt scan data: %s", ln_status_name(st));
    printf("  corrupt scan data -> %s, %d warnings %s\n", ln_status_name(st),
           st == LN_OK ? info.warnings : 0, st == LN_OK ? "" : err);
    /* same through the train pipeline */
    ln_image_rng rng;
    ln_image_rng_seed(&rng, 1, 0, 0);
    st = ln_image_train(bad, len, &cfg, &rng, out, NULL, err, ERRLEN);
    CHECK(st == LN_OK || st == LN_ERR_IO, "train on corrupt scan data: %s", ln_status_name(st));
    free(bad);

    /* PNG: truncated and corrupt */
    size_t plen;
    uint8_t *png = read_fixture("png_named.JPEG", &plen);
    if (CHECK(png != NULL, "png_named.JPEG")) {
        st = decode_bytes(png, plen / 2, &info, err);
        CHECK(st == LN_ERR_IO && err[0], "truncated PNG: %s (%s)", ln_status_name(st), err);
        st = decode_bytes(png, 30, &info, err);
        CHECK(st == LN_ERR_IO, "PNG cut in its header: %s (%s)", ln_status_name(st), err);
        uint8_t *pbad = malloc(plen);
        memcpy(pbad, png, plen);
        for (size_t i = plen / 2; i < plen / 2 + 50; i++) pbad[i] ^= 0x5A;
        st = decode_bytes(pbad, plen, &info, err);
        CHECK(st == LN_ERR_IO, "PNG with corrupt data: %s (%s)", ln_status_name(st), err);
        printf("  corrupt PNG -> %s: %s\n", ln_status_name(st), err);
        free(pbad);
        free(png);
    }
    /* not images */
    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00";
    CHECK(decode_bytes(gif, sizeof gif - 1, &info, err) == LN_ERR_UNSUPPORTED, "GIF: %s", err);
    CHECK(decode_bytes(jpg, 0, &info, err) == LN_ERR_UNSUPPORTED && err[0], "0 bytes");
    CHECK(decode_bytes(NULL, 0, &info, err) == LN_ERR_UNSUPPORTED, "NULL, 0 bytes");
    CHECK(ln_image_sniff(jpg, len) == LN_IMAGE_JPEG && ln_image_sniff(gif, 6) == LN_IMAGE_UNKNOWN,
          "sniff");
    /* the pipelines report the same */
    CHECK(ln_image_eval(gif, 6, &cfg, out, NULL, err, ERRLEN) == LN_ERR_UNSUPPORTED, "eval of GIF");
    CHECK(ln_image_train(jpg, 100, &cfg, &rng, out, NULL, err, ERRLEN) == LN_ERR_IO,
          "train of a cut JPEG: %s", err);
    /* argument errors */
    ln_image img;
    CHECK(ln_image_decode(jpg, len, NULL, NULL, err, ERRLEN) == LN_ERR_ARG, "NULL image");
    CHECK(ln_image_decode(NULL, 10, &img, NULL, err, ERRLEN) == LN_ERR_ARG, "NULL buffer");
    CHECK(ln_image_train(jpg, len, &cfg, NULL, out, NULL, err, ERRLEN) == LN_ERR_ARG, "NULL rng");
    CHECK(ln_image_eval(jpg, len, NULL, out, NULL, err, ERRLEN) == LN_ERR_ARG, "NULL cfg");
    CHECK(ln_image_eval(jpg, len, &cfg, NULL, NULL, err, ERRLEN) == LN_ERR_ARG, "NULL out");
    ln_image_crop outside = {400, 300, 200, 100};
    CHECK(ln_image_resized_crop(jpg, len, &cfg, &outside, false, out, NULL, err, ERRLEN) == LN_ERR_ARG,
          "crop outside the image: %s", err);
    ln_image_cfg badcfg = cfg;
    badcfg.resize = 16;
    CHECK(ln_image_eval(jpg, len, &badcfg, out, NULL, err, ERRLEN) == LN_ERR_ARG,
          "resize < size: %s", err);
    badcfg = cfg;
    badcfg.std[1] = 0;
    CHECK(ln_image_train(jpg, len, &badcfg, &rng, out, NULL, err, ERRLEN) == LN_ERR_ARG, "std 0");
    CHECK(ln_image_decode(jpg, len, &img, NULL, NULL, 0) == LN_OK, "err may be NULL");
    ln_image_free(&img);
    ln_image_free(NULL);
    uint8_t px[12] = {0};
    ln_image tiny = {px, 2, 2, 3, 6};
    double box[4] = {0, 0, 3, 2};
    uint8_t dst[12];
    CHECK(ln_image_resize(&tiny, box, 2, 2, 0, 0, 2, 2, dst, 6, err, ERRLEN) == LN_ERR_ARG,
          "resize box outside: %s", err);
    double box2[4] = {0, 0, 2, 2};
    CHECK(ln_image_resize(&tiny, box2, 2, 2, 1, 0, 2, 2, dst, 6, err, ERRLEN) == LN_ERR_ARG,
          "resize window outside: %s", err);
    free(jpg);
}

/* A YCCK JPEG (Adobe-inverted CMYK encoded as YCCK, as Photoshop writes) made here with
 * libjpeg's encoder; it decodes converted, close to the CMYK source under PIL's rule. */
static void test_ycck(void) {
    const int w = 48, h = 32;
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = cmyk + ((size_t)y * w + x) * 4;
            p[0] = (uint8_t)(255 - x * 5);
            p[1] = (uint8_t)(255 - y * 7);
            p[2] = (uint8_t)(128 + (x - y));
            p[3] = (uint8_t)(200 + y);
        }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long mlen = 0;
    jpeg_mem_dest(&c, &mem, &mlen);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, JCS_YCCK);
    jpeg_set_quality(&c, 98, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = cmyk + (size_t)c.next_scanline * w * 4;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);

    ln_image img;
    ln_image_info info;
    char err[ERRLEN];
    ln_status st = ln_image_decode(mem, mlen, &img, &info, err, ERRLEN);
    if (CHECK(st == LN_OK, "YCCK JPEG: %s", err)) {
        CHECK(info.converted && info.channels == 4 && img.channels == 3, "YCCK converted flag");
        double sum = 0;
        for (int i = 0; i < w * h; i++) {
            const uint8_t *p = cmyk + (size_t)i * 4;
            for (int ch = 0; ch < 3; ch++) {
                int nk = p[3], t = (255 - p[ch]) * nk + 128;
                int want = nk - (((t >> 8) + t) >> 8);
                sum += abs(img.data[(size_t)i * 3 + ch] - want);
            }
        }
        printf("  YCCK JPEG -> RGB: mean |diff| to the source %.2f/255\n", sum / (w * h * 3));
        CHECK(sum / (w * h * 3) < 3.0, "YCCK decodes close to its source");
        ln_image_free(&img);
    }
    free(mem);
    free(cmyk);
}

/* ------------------------------------------------------------------ region decoding */

/* ln_image_decode_rows collected into an image of the region */
typedef struct {
    ln_decode_plan plan;
    int channels, rows;
    ln_image img;
} fixed_plan;

static ln_status use_plan(void *ud, const ln_image_info *info, ln_decode_plan *plan, char *err,
                          size_t errlen) {
    (void)info, (void)err, (void)errlen;
    fixed_plan *f = ud;
    *plan = f->plan;
    f->img.width = plan->x1 - plan->x0;
    f->img.height = plan->y1 - plan->y0;
    f->img.channels = f->channels;
    f->img.stride = (size_t)f->img.width * f->channels;
    f->img.data = malloc(f->img.stride * f->img.height);
    return f->img.data ? LN_OK : LN_ERR_NOMEM;
}

static void take_row(void *ud, int y, const uint8_t *row) {
    fixed_plan *f = ud;
    f->rows += y == f->plan.y0 + f->rows;
    memcpy(f->img.data + (size_t)(y - f->plan.y0) * f->img.stride, row, f->img.stride);
}

static ln_status decode_region(const uint8_t *buf, size_t len, fixed_plan *f, int channels,
                               ln_image_info *info, char *err) {
    f->channels = channels;
    f->rows = 0;
    memset(&f->img, 0, sizeof f->img);
    ln_status st = ln_image_decode_rows(buf, len, use_plan, take_row, f, channels, info, err, ERRLEN);
    if (st == LN_OK && f->rows != f->plan.y1 - f->plan.y0) st = LN_ERR_STATE;
    if (st != LN_OK) ln_image_free(&f->img);
    return st;
}

/* Regions decoded with crop/skip equal the same pixels of a whole decode at the same
 * scale, for several subsamplings, progressive, scales and regions. */
static void test_region_decode(void) {
    const char *names[] = {"photo.jpg", "tall422.jpg", "prog444.jpg", "big.jpg", "gray.jpg",
                           "cmyk.jpg"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t len;
        uint8_t *buf = read_fixture(names[f], &len);
        if (!CHECK(buf != NULL, "%s", names[f])) continue;
        ln_image_info info;
        char err[ERRLEN];
        ln_image_probe(buf, len, &info, err, ERRLEN);
        int ok = 1, cases = 0;
        for (int s = 1; s <= 8; s *= 2) {
            int W = ln_jpeg_scaled_size(info.width, s), H = ln_jpeg_scaled_size(info.height, s);
            fixed_plan whole = {{s, 0, 0, W, H}, 0, 0, {0}};
            ln_image_info i2;
            if (!CHECK(decode_region(buf, len, &whole, 3, &i2, err) == LN_OK &&
                           i2.scale_denom == s,
                       "%s whole at 1/%d: %s", names[f], s, err)) {
                continue;
            }
            ln_image full = whole.img;
            const double fr[][4] = {{0.1, 0.2, 0.5, 0.6}, {0.37, 0.05, 0.99, 0.41},
                                    {0.0, 0.5, 0.3, 1.0}, {0.8, 0.8, 1.0, 1.0},
                                    {0.5, 0.0, 0.53, 0.02}};
            for (size_t r = 0; r < sizeof fr / sizeof fr[0]; r++) {
                fixed_plan p = {{s, (int)(fr[r][0] * W), (int)(fr[r][1] * H),
                                 (int)(fr[r][2] * W), (int)(fr[r][3] * H)}, 0, 0, {0}};
                if (p.plan.x1 <= p.plan.x0) p.plan.x1 = p.plan.x0 + 1;
                if (p.plan.y1 <= p.plan.y0) p.plan.y1 = p.plan.y0 + 1;
                /* RGBX regions (as the pipelines decode) against the RGB whole */
                if (decode_region(buf, len, &p, 4, &i2, err) != LN_OK) {
                    ok = CHECK(0, "%s region at 1/%d: %s", names[f], s, err);
                    continue;
                }
                cases++;
                ok &= images_equal(&p.img, &full, p.plan.x0, p.plan.y0);
                ln_image_free(&p.img);
            }
            ln_image_free(&full);
        }
        CHECK(ok && cases == 20, "%s: %d regions decode equal to the whole image", names[f], cases);
        free(buf);
    }
}

/* ------------------------------------------------------------------ sampler */

static void test_rrc_stats(void) {
    size_t len;
    char *text = (char *)read_fixture("rrc_stats.txt", &len);
    if (!CHECK(text != NULL, "rrc_stats.txt missing")) return;
    text = realloc(text, len + 1);
    text[len] = '\0';
    const double scale[2] = {0.08, 1.0}, ratio[2] = {3.0 / 4.0, 4.0 / 3.0};
    int sizes = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int W, H, draws;
        double fb_tv, cx_tv, cy_tv;
        if (sscanf(line, "size %d %d %d %lf %lf %lf", &W, &H, &draws, &fb_tv, &cx_tv, &cy_tv) != 6)
            continue;
        char *l1 = strtok_r(NULL, "\n", &save), *l2 = strtok_r(NULL, "\n", &save);
        double hs_tv[20], hl_tv[20], lo, hi;
        int nb1, nb2, off;
        char *p;
        if (!CHECK(l1 && l2 && sscanf(l1, "scale %d%n", &nb1, &off) == 1 && nb1 == 20,
                   "rrc_stats scale line"))
            break;
        p = l1 + off;
        for (int b = 0; b < 20; b++) hs_tv[b] = strtod(p, &p);
        if (!CHECK(sscanf(l2, "logratio %d %lf %lf%n", &nb2, &lo, &hi, &off) == 3 && nb2 == 20,
                   "rrc_stats logratio line"))
            break;
        p = l2 + off;
        for (int b = 0; b < 20; b++) hl_tv[b] = strtod(p, &p);

        double hs[20] = {0}, hl[20] = {0}, cx = 0, cy = 0;
        long accepted = 0;
        int inside = 1;
        for (int d = 0; d < draws; d++) {
            ln_image_rng rng;
            ln_image_rng_seed(&rng, 12345, (uint64_t)W * 7 + H, (uint64_t)d);
            ln_image_crop c;
            bool acc = ln_image_rrc_sample(W, H, scale, ratio, &rng, &c);
            inside &= c.x >= 0 && c.y >= 0 && c.w > 0 && c.h > 0 && c.x + c.w <= W && c.y + c.h <= H;
            cx += (c.x + c.w / 2.0) / W;
            cy += (c.y + c.h / 2.0) / H;
            if (!acc) continue;
            accepted++;
            double sc = (double)c.w * c.h / ((double)W * H), lr = log((double)c.w / c.h);
            int b = (int)(sc * 20);
            hs[b < 20 ? b : 19]++;
            b = (int)floor((lr - lo) / (hi - lo) * 20);
            if (b >= 0 && b < 20) hl[b]++;
        }
        CHECK(inside, "%d x %d: every crop inside the image", W, H);
        double n_tv = draws * (1 - fb_tv), fb = 1.0 - (double)accepted / draws;
        /* two-sample binomial tolerance, 5 sigma */
        double tol_fb = 5 * sqrt(2 * fmax(fb_tv, 1e-4) * (1 - fb_tv) / draws) + 1e-4;
        CHECK(fabs(fb - fb_tv) <= tol_fb, "%d x %d: fallback rate %.4f vs torchvision %.4f",
              W, H, fb, fb_tv);
        CHECK(fabs(cx / draws - cx_tv) < 0.004 && fabs(cy / draws - cy_tv) < 0.004,
              "%d x %d: mean crop centre (%.4f, %.4f) vs torchvision (%.4f, %.4f)", W, H,
              cx / draws, cy / draws, cx_tv, cy_tv);
        double worst = 0;
        for (int b = 0; b < 20; b++) {
            double hists[2][2] = {{hs[b], hs_tv[b]}, {hl[b], hl_tv[b]}};
            for (int k = 0; k < 2; k++) {
                double p1 = hists[k][0] / fmax(accepted, 1), p2 = hists[k][1] / fmax(n_tv, 1);
                double pm = (hists[k][0] + hists[k][1]) / fmax(accepted + n_tv, 1);
                double sd = sqrt(pm * (1 - pm) * (1 / fmax(accepted, 1) + 1 / fmax(n_tv, 1)));
                double z = fabs(p1 - p2) / fmax(sd, 1e-9);
                if (fabs(p1 - p2) > 1e-9 && z > worst) worst = z;
            }
        }
        CHECK(worst < 5.0, "%d x %d: scale/log-ratio histograms differ from torchvision's "
              "(worst bin z = %.2f)", W, H, worst);
        printf("  RRC %4d x %-4d: fallback %.4f (torchvision %.4f), worst histogram bin z %.2f\n",
               W, H, fb, fb_tv, worst);
        sizes++;
    }
    CHECK(sizes == 4, "rrc_stats has 4 sizes (%d)", sizes);
    free(text);

    /* the fallback itself, where no attempt can succeed */
    ln_image_rng rng;
    ln_image_rng_seed(&rng, 1, 2, 3);
    ln_image_crop c;
    CHECK(!ln_image_rrc_sample(1, 1000, scale, ratio, &rng, &c) && c.w == 1 && c.h == 1 &&
              c.x == 0 && c.y == 499, "fallback 1 x 1000: (%d %d %d %d)", c.x, c.y, c.w, c.h);
    CHECK(!ln_image_rrc_sample(1000, 2, scale, ratio, &rng, &c) && c.w == 3 && c.h == 2 &&
              c.x == 498 && c.y == 0, "fallback 1000 x 2: (%d %d %d %d)", c.x, c.y, c.w, c.h);
    /* determinism and independence of streams */
    ln_image_rng a, b;
    ln_image_rng_seed(&a, 7, 1, 42);
    ln_image_rng_seed(&b, 7, 1, 42);
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) same &= ln_image_rng_next(&a) == ln_image_rng_next(&b);
    ln_image_rng_seed(&b, 7, 1, 43);
    for (int i = 0; i < 10; i++) differ += ln_image_rng_next(&a) != ln_image_rng_next(&b);
    ln_image_rng_seed(&a, 7, 2, 42);
    ln_image_rng_seed(&b, 7, 1, 42);
    for (int i = 0; i < 10; i++) differ += ln_image_rng_next(&a) != ln_image_rng_next(&b);
    CHECK(same && differ == 20, "rng: same seed same stream, other index/epoch other stream");
    long hist[7] = {0};
    for (int i = 0; i < 70000; i++) hist[ln_image_rng_below(&a, 7)]++;
    int flat = 1;
    for (int i = 0; i < 7; i++) flat &= labs(hist[i] - 10000) < 500;
    CHECK(flat, "rng_below(7) is uniform");
    int dims[4];
    ln_image_resize_dims(500, 375, 256, &dims[0], &dims[1]);
    ln_image_resize_dims(375, 500, 256, &dims[2], &dims[3]);
    CHECK(dims[0] == 341 && dims[1] == 256 && dims[2] == 256 && dims[3] == 341, "resize dims");
    ln_image_center_offsets(341, 256, 224, &dims[0], &dims[1]);
    ln_image_center_offsets(225, 227, 224, &dims[2], &dims[3]);
    /* (341-224)/2 = 58.5 -> 58; (227-224)/2 = 1.5 -> 2; 0.5 -> 0 */
    CHECK(dims[0] == 58 && dims[1] == 16 && dims[2] == 0 && dims[3] == 2,
          "center offsets round half to even (%d %d %d %d)", dims[0], dims[1], dims[2], dims[3]);
}

/* ------------------------------------------------------------------ pipelines */

static void test_train_pipeline(void) {
    size_t len;
    uint8_t *buf = read_fixture("photo.jpg", &len);
    if (!CHECK(buf != NULL, "photo.jpg")) return;
    ln_image_cfg cfg;
    ln_image_cfg_ilsvrc(&cfg);
    const size_t n = 3 * 224 * 224;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    char err[ERRLEN];
    int same = 1, differs = 0, flips = 0;
    for (int i = 0; i < 6; i++) {
        ln_image_rng r1, r2;
        ln_image_rng_seed(&r1, 99, 0, (uint64_t)i);
        r2 = r1;
        ln_image_info info;
        ln_status st = ln_image_train(buf, len, &cfg, &r1, a, &info, err, ERRLEN);
        /* the same draws by hand, then the fixed-crop transform */
        ln_image_crop c;
        ln_image_rrc_sample(info.width, info.height, cfg.scale, cfg.ratio, &r2, &c);
        bool flip = ln_image_rng_uniform(&r2) < cfg.flip_p;
        flips += flip;
        ln_status st2 = ln_image_resized_crop(buf, len, &cfg, &c, flip, b, NULL, err, ERRLEN);
        same &= st == LN_OK && st2 == LN_OK && !memcmp(a, b, n * sizeof(float));
        if (i > 0) {
            ln_image_rng r3;
            ln_image_rng_seed(&r3, 99, 0, (uint64_t)i - 1);
            ln_image_train(buf, len, &cfg, &r3, b, NULL, err, ERRLEN);
            differs += memcmp(a, b, n * sizeof(float)) != 0;
        }
    }
    CHECK(same, "train = sampled crop + flip + resized_crop, deterministic by seed");
    CHECK(differs == 5, "other samples get other crops");
    /* normalisation: ILSVRC mean/std applied to the plain [0, 1] output */
    ln_image_cfg plain = plain_cfg(224, 256, cfg.dct_min);
    ln_image_eval(buf, len, &cfg, a, NULL, err, ERRLEN);
    ln_image_eval(buf, len, &plain, b, NULL, err, ERRLEN);
    int norm_ok = 1;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < 224 * 224; i++) {
            float v = b[c * 224 * 224 + i];
            norm_ok &= a[c * 224 * 224 + i] == (v - cfg.mean[c]) / cfg.std[c];
        }
    CHECK(norm_ok, "eval output normalised with the ILSVRC mean/std");
    CHECK(ln_image_eval_ilsvrc(buf, len, b, NULL, err, ERRLEN) == LN_OK &&
              !memcmp(a, b, n * sizeof(float)), "eval_ilsvrc = eval with ilsvrc cfg");
    ln_image_rng r1, r2;
    ln_image_rng_seed(&r1, 5, 5, 5);
    r2 = r1;
    ln_image_train_ilsvrc(buf, len, &r1, a, NULL, err, ERRLEN);
    ln_image_train(buf, len, &cfg, &r2, b, NULL, err, ERRLEN);
    CHECK(!memcmp(a, b, n * sizeof(float)), "train_ilsvrc = train with ilsvrc cfg");
    free(a);
    free(b);
    free(buf);
}

/* CIFAR-style crop with zero padding and flip against a direct reimplementation. */
static void test_crop_flip_planar(void) {
    const int C = 3, H = 32, W = 32, pad = 4;
    uint8_t *src = malloc((size_t)C * H * W);
    for (int i = 0; i < C * H * W; i++) src[i] = (uint8_t)(i * 7 + i / 97);
    const float mean[3] = {0.507f, 0.487f, 0.441f}, std[3] = {0.267f, 0.256f, 0.276f};
    float *out = malloc(sizeof(float) * C * H * W);
    char err[ERRLEN];
    int ok = 1, flips = 0;
    long tops[9] = {0};
    for (int t = 0; t < 2000; t++) {
        ln_image_rng r1, r2;
        ln_image_rng_seed(&r1, 3, 0, (uint64_t)t);
        r2 = r1;
        ok &= ln_image_crop_flip_planar(src, C, H, W, pad, 0.5, mean, std, &r1, out, err, ERRLEN) == LN_OK;
        int top = (int)ln_image_rng_below(&r2, 9), left = (int)ln_image_rng_below(&r2, 9);
        bool flip = ln_image_rng_uniform(&r2) < 0.5;
        tops[top]++;
        flips += flip;
        for (int c = 0; c < C && ok; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    /* pad, crop at (top, left), then flip the crop */
                    int xc = flip ? W - 1 - x : x;
                    int sy = y + top - pad, sx = xc + left - pad;
                    int v = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[(c * H + sy) * W + sx] : 0;
                    float want = ((float)v / 255.0f - mean[c]) / std[c];
                    ok &= out[(c * H + y) * W + x] == want;
                }
    }
    CHECK(ok, "padded random crop + flip equals the direct rule");
    int flat = flips > 900 && flips < 1100;
    for (int i = 0; i < 9; i++) flat &= tops[i] > 160 && tops[i] < 290;
    CHECK(flat, "crop offsets uniform over 0..8 and flips ~1/2 (%d)", flips);
    /* eval: pad 0, no flip, no rng */
    ok = ln_image_crop_flip_planar(src, 1, H, W, 0, 0.0, mean, std, NULL, out, err, ERRLEN) == LN_OK;
    for (int i = 0; i < H * W; i++) ok &= out[i] == ((float)src[i] / 255.0f - mean[0]) / std[0];
    CHECK(ok, "pad 0, flip_p 0: plain normalisation");
    CHECK(ln_image_crop_flip_planar(src, C, H, W, 4, 0.5, mean, std, NULL, out, err, ERRLEN) ==
              LN_ERR_ARG, "random crop without rng");
    CHECK(ln_image_crop_flip_planar(src, 0, H, W, 4, 0.5, mean, std, NULL, out, err, ERRLEN) ==
              LN_ERR_ARG, "0 channels");
    free(out);
    free(src);
}

int main(void) {
    run_manifest();
    test_bad_input();
    test_ycck();
    test_region_decode();
    test_rrc_stats();
    test_train_pipeline();
    test_crop_flip_planar();
    return test_finish();
}
