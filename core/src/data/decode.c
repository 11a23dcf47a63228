/* JPEG (libjpeg-turbo) and PNG (libpng) decoding from memory into 8-bit RGB, whole or
 * by region: after the header a plan picks the DCT scale and the region; JPEG then
 * decodes only the iMCU columns (jpeg_crop_scanline) and rows (jpeg_skip_scanlines)
 * the region needs; rows go to a callback as they are decoded. Both libraries report
 * errors by longjmp: each decode keeps everything it holds in one job struct, so after
 * the jump its owner releases all of it and returns a status; nothing is printed. Conversions
 * follow PIL, so results equal Image.open(f).convert("RGB"): grayscale replicated,
 * CMYK/YCCK read as Adobe-inverted CMYK and converted with PIL's formula, PNG alpha
 * dropped, palettes expanded, 16-bit samples cut to their high byte. The pipelines ask
 * for RGBX (4 bytes a pixel, which libjpeg-turbo writes as cheaply as RGB) so the
 * resampler works on aligned pixels. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>
#include "image_internal.h"

/* Refuse decoded regions above this many pixels (a corrupt header can claim 4G). */
#define MAX_PIXELS (1L << 28)
/* Columns decoded beyond each side of a JPEG region (where the image has them) and
 * then dropped: libjpeg's fancy upsampling of chroma treats a cropped row's first and
 * last column as the image's edge, so those differ from a full decode. Skipped rows
 * need no margin (jpeg_skip_scanlines keeps the upsampler's context). */
#define REGION_MARGIN 2

static const uint8_t PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

ln_image_format ln_image_sniff(const uint8_t *buf, size_t len) {
    if (!buf) return LN_IMAGE_UNKNOWN;
    if (len >= 2 && buf[0] == 0xFF && buf[1] == 0xD8) return LN_IMAGE_JPEG;
    if (len >= 8 && memcmp(buf, PNG_SIG, 8) == 0) return LN_IMAGE_PNG;
    return LN_IMAGE_UNKNOWN;
}

void ln_image_free(ln_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* Checks the plan's region against a w x h image. */
static ln_status check_plan(const ln_decode_plan *p, int w, int h, char *err, size_t errlen) {
    if (p->x0 < 0 || p->y0 < 0 || p->x0 >= p->x1 || p->y0 >= p->y1 || p->x1 > w || p->y1 > h)
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "decode: region [%d, %d) x [%d, %d) is not inside the %d x %d "
                             "image", p->x0, p->x1, p->y0, p->y1, w, h);
    if ((long)(p->x1 - p->x0) * (p->y1 - p->y0) > MAX_PIXELS)
        return ln_image_fail(err, errlen, LN_ERR_UNSUPPORTED,
                             "decode: %d x %d pixels is more than this decoder accepts",
                             p->x1 - p->x0, p->y1 - p->y0);
    return LN_OK;
}

/* ================================================================== JPEG */

typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo; /* first: the callbacks cast cinfo to the job */
    struct jpeg_error_mgr jerr;
    struct jpeg_source_mgr src;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int warnings;
    bool eof;          /* the decoder asked for bytes past the end */
    const uint8_t *buf;
    size_t len;
    uint8_t *row;      /* one scanline as libjpeg writes it */
    uint8_t *conv;     /* one region row converted from CMYK */
    int channels;      /* of the rows handed out: 3 (RGB) or 4 (RGBX, X = 255) */
    ln_decode_plan plan;
    ln_status plan_status;
} jpeg_job;

static void jpeg_on_error(j_common_ptr c) {
    jpeg_job *job = (jpeg_job *)c;
    (*c->err->format_message)(c, job->msg);
    longjmp(job->jump, 1);
}

static void jpeg_on_message(j_common_ptr c, int level) {
    if (level < 0) ((jpeg_job *)c)->warnings++;
}

static void jpeg_no_output(j_common_ptr c) { (void)c; }

static void src_init(j_decompress_ptr c) { (void)c; }
static void src_term(j_decompress_ptr c) { (void)c; }

/* All data is in the buffer from the start: asking for more means it ended early.
 * Feed a fake EOI marker (libjpeg then stops cleanly) and remember it. */
static boolean src_fill(j_decompress_ptr c) {
    static const JOCTET eoi[2] = {0xFF, JPEG_EOI};
    jpeg_job *job = (jpeg_job *)c;
    job->eof = true;
    job->src.next_input_byte = eoi;
    job->src.bytes_in_buffer = 2;
    return TRUE;
}

static void src_skip(j_decompress_ptr c, long n) {
    jpeg_job *job = (jpeg_job *)c;
    if (n <= 0) return;
    if ((size_t)n > job->src.bytes_in_buffer) {
        src_fill(c);
        return;
    }
    job->src.next_input_byte += n;
    job->src.bytes_in_buffer -= (size_t)n;
}

/* PIL's CMYK -> RGB for Adobe-inverted samples s: C = 255 - s_c, K = 255 - s_k,
 * R = (255 - K) - (C * (255 - K)) / 255 with PIL's rounded division. out has `ch`
 * (3 or 4) bytes per pixel; a 4th is set to 255. */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int n, int ch) {
    for (int x = 0; x < n; x++, in += 4, out += ch) {
        int nk = in[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - in[c]) * nk + 128;
            out[c] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
        }
        if (ch == 4) out[3] = 255;
    }
}

static void jpeg_fill_info(const struct jpeg_decompress_struct *ci, ln_image_info *info) {
    memset(info, 0, sizeof *info);
    info->format = LN_IMAGE_JPEG;
    info->width = (int)ci->image_width;
    info->height = (int)ci->image_height;
    info->channels = ci->num_components;
    info->converted = ci->jpeg_color_space != JCS_YCbCr && ci->jpeg_color_space != JCS_RGB;
    info->scale_denom = 1;
}

static bool ends_with_eoi(const uint8_t *buf, size_t len) {
    return len >= 4 && buf[len - 2] == 0xFF && buf[len - 1] == JPEG_EOI;
}

/* Runs the decode; every value that must survive a longjmp lives in *job. Hands the
 * plan's region to row_fn one row at a time. */
static ln_status jpeg_run(jpeg_job *job, ln_decode_plan_fn plan_fn, ln_decode_row_fn row_fn,
                          void *ud, ln_image_info *info, char *err, size_t errlen) {
    struct jpeg_decompress_struct *ci = &job->cinfo;
    if (setjmp(job->jump)) {
        info->warnings = job->warnings;
        if (job->eof)
            return ln_image_fail(err, errlen, LN_ERR_IO, "JPEG is truncated (%s)", job->msg);
        return ln_image_fail(err, errlen, LN_ERR_IO, "corrupt JPEG: %s", job->msg);
    }
    ci->err = jpeg_std_error(&job->jerr);
    job->jerr.error_exit = jpeg_on_error;
    job->jerr.emit_message = jpeg_on_message;
    job->jerr.output_message = jpeg_no_output;
    jpeg_create_decompress(ci);
    job->src.init_source = src_init;
    job->src.fill_input_buffer = src_fill;
    job->src.skip_input_data = src_skip;
    job->src.resync_to_restart = jpeg_resync_to_restart;
    job->src.term_source = src_term;
    job->src.next_input_byte = job->buf;
    job->src.bytes_in_buffer = job->len;
    ci->src = &job->src;
    jpeg_read_header(ci, TRUE);
    jpeg_fill_info(ci, info);
    if (!plan_fn) return LN_OK; /* probe */

    job->plan_status = plan_fn(ud, info, &job->plan, err, errlen);
    if (job->plan_status != LN_OK) return job->plan_status;
    const int s = job->plan.scale_denom;
    if (s != 1 && s != 2 && s != 4 && s != 8)
        return ln_image_fail(err, errlen, LN_ERR_ARG, "decode: scale 1/%d is not 1, 1/2, "
                             "1/4 or 1/8", s);
    const bool cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    ci->out_color_space = cmyk ? JCS_CMYK : job->channels == 4 ? JCS_EXT_RGBX : JCS_RGB;
    ci->scale_num = 1;
    ci->scale_denom = (unsigned)s;
    jpeg_calc_output_dimensions(ci);
    const int ow = (int)ci->output_width, oh = (int)ci->output_height;
    job->plan_status = check_plan(&job->plan, ow, oh, err, errlen);
    if (job->plan_status != LN_OK) return job->plan_status;
    jpeg_start_decompress(ci);

    /* columns: decoded from the iMCU boundary at or left of x0 - margin, kept from x0 */
    const int x0 = job->plan.x0, x1 = job->plan.x1, y0 = job->plan.y0, y1 = job->plan.y1;
    int dx0 = x0 > REGION_MARGIN ? x0 - REGION_MARGIN : 0;
    int dx1 = x1 + REGION_MARGIN < ow ? x1 + REGION_MARGIN : ow;
    JDIMENSION xoff = (JDIMENSION)dx0, cw = (JDIMENSION)(dx1 - dx0);
    if (dx0 > 0 || dx1 < ow) jpeg_crop_scanline(ci, &xoff, &cw);
    const int comps = cmyk ? 4 : job->channels;
    job->row = malloc((size_t)cw * 4);
    job->conv = malloc((size_t)(x1 - x0) * 4);
    if (!job->row || !job->conv)
        return ln_image_fail(err, errlen, LN_ERR_NOMEM, "decode: out of memory for a row of "
                             "%u pixels", (unsigned)cw);
    const uint8_t *keep_from = job->row + (size_t)(x0 - (int)xoff) * comps; /* column x0 */
    if (y0 > 0) jpeg_skip_scanlines(ci, (JDIMENSION)y0);
    while ((int)ci->output_scanline < y1) {
        const int y = (int)ci->output_scanline;
        JSAMPROW r = job->row;
        if (jpeg_read_scanlines(ci, &r, 1) != 1)
            return ln_image_fail(err, errlen, LN_ERR_IO, "corrupt JPEG: no scanline %d", y);
        if (cmyk) cmyk_to_rgb(keep_from, job->conv, x1 - x0, job->channels);
        row_fn(ud, y, cmyk ? job->conv : keep_from);
    }
    /* Rows below the region: unless the file visibly ends with its EOI marker, make
     * the entropy decoder run to the end so a truncated file fails here as it does
     * when decoded whole. */
    if (y1 < oh && !job->eof && !ends_with_eoi(job->buf, job->len)) {
        if (oh - y1 > 1) jpeg_skip_scanlines(ci, (JDIMENSION)(oh - y1 - 1));
        JSAMPROW r = job->row;
        jpeg_read_scanlines(ci, &r, 1);
    }
    if (job->eof)
        return ln_image_fail(err, errlen, LN_ERR_IO,
                             "JPEG is truncated: the data ends before the last scanline");
    if ((int)ci->output_scanline == oh) jpeg_finish_decompress(ci);
    info->warnings = job->warnings;
    info->scale_denom = s;
    return LN_OK;
}

static ln_status jpeg_decode(const uint8_t *buf, size_t len, ln_decode_plan_fn plan_fn,
                             ln_decode_row_fn row_fn, void *ud, int channels,
                             ln_image_info *info, char *err, size_t errlen) {
    jpeg_job *job = calloc(1, sizeof *job);
    if (!job) return ln_image_fail(err, errlen, LN_ERR_NOMEM, "decode: out of memory");
    job->buf = buf;
    job->len = len;
    job->channels = channels;
    ln_status st = jpeg_run(job, plan_fn, row_fn, ud, info, err, errlen);
    jpeg_destroy_decompress(&job->cinfo);
    free(job->row);
    free(job->conv);
    free(job);
    return st;
}

/* ================================================================== PNG */

typedef struct png_job {
    png_structp png;
    png_infop pinfo;
    char msg[256];
    int warnings;
    bool eof;
    const uint8_t *buf;
    size_t len, pos;
    uint8_t *pixels;    /* the whole image (libpng de-interlaces in place) */
    png_bytep *rows;
    ln_status plan_status;
} png_job;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)msg;
    ((png_job *)png_get_error_ptr(png))->warnings++;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos) {
        job->eof = true;
        png_error(png, "the data ends early");
    }
    memcpy(out, job->buf + job->pos, n);
    job->pos += n;
}

static ln_status png_run(png_job *job, ln_decode_plan_fn plan_fn, ln_decode_row_fn row_fn,
                         void *ud, int channels, ln_image_info *info, char *err,
                         size_t errlen) {
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_on_error,
                                      png_on_warning);
    if (job->png) job->pinfo = png_create_info_struct(job->png);
    if (!job->png || !job->pinfo)
        return ln_image_fail(err, errlen, LN_ERR_NOMEM, "decode: out of memory for libpng");
    if (setjmp(png_jmpbuf(job->png))) {
        info->warnings = job->warnings;
        if (job->eof)
            return ln_image_fail(err, errlen, LN_ERR_IO, "PNG is truncated (%s)", job->msg);
        return ln_image_fail(err, errlen, LN_ERR_IO, "corrupt PNG: %s", job->msg);
    }
    png_set_read_fn(job->png, job, png_read_mem);
    png_read_info(job->png, job->pinfo);
    png_uint_32 w = 0, h = 0;
    int depth = 0, color = 0;
    png_get_IHDR(job->png, job->pinfo, &w, &h, &depth, &color, NULL, NULL, NULL);
    memset(info, 0, sizeof *info);
    info->format = LN_IMAGE_PNG;
    info->width = (int)w;
    info->height = (int)h;
    info->channels = color == PNG_COLOR_TYPE_PALETTE ? 3 : png_get_channels(job->png, job->pinfo);
    info->converted = !(color == PNG_COLOR_TYPE_RGB && depth == 8);
    info->scale_denom = 1;
    if (!plan_fn) return LN_OK; /* probe */

    ln_decode_plan plan;
    job->plan_status = plan_fn(ud, info, &plan, err, errlen);
    if (job->plan_status != LN_OK) return job->plan_status;
    if (plan.scale_denom != 1)
        return ln_image_fail(err, errlen, LN_ERR_ARG, "decode: PNG has no scaled decoding");
    job->plan_status = check_plan(&plan, (int)w, (int)h, err, errlen);
    if (job->plan_status != LN_OK) return job->plan_status;
    if ((long)w * (long)h > MAX_PIXELS)
        return ln_image_fail(err, errlen, LN_ERR_UNSUPPORTED,
                             "decode: a %u x %u PNG is more than this decoder accepts",
                             (unsigned)w, (unsigned)h);
    if (depth == 16) png_set_strip_16(job->png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(job->png);
    /* RGBX: an alpha channel stays as the (ignored) 4th byte; else a filler is added.
     * Expanding a palette with transparency gives alpha too. */
    const bool alpha = (color & PNG_COLOR_MASK_ALPHA) ||
                       (color == PNG_COLOR_TYPE_PALETTE &&
                        png_get_valid(job->png, job->pinfo, PNG_INFO_tRNS));
    if (channels == 3 && alpha) png_set_strip_alpha(job->png);
    if (channels == 4 && !alpha) png_set_filler(job->png, 0xFF, PNG_FILLER_AFTER);
    if (!(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(job->png);
    png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->pinfo);
    const size_t stride = (size_t)w * channels;
    if (png_get_rowbytes(job->png, job->pinfo) != stride)
        return ln_image_fail(err, errlen, LN_ERR_UNSUPPORTED,
                             "decode: PNG colour type %d, depth %d not converted to RGB",
                             color, depth);
    job->pixels = malloc(stride * h);
    job->rows = malloc(sizeof(png_bytep) * h);
    if (!job->pixels || !job->rows)
        return ln_image_fail(err, errlen, LN_ERR_NOMEM,
                             "decode: out of memory for %u x %u pixels", (unsigned)w,
                             (unsigned)h);
    for (png_uint_32 y = 0; y < h; y++) job->rows[y] = job->pixels + stride * y;
    png_read_image(job->png, job->rows);
    info->warnings = job->warnings;
    for (int y = plan.y0; y < plan.y1; y++)
        row_fn(ud, y, job->rows[y] + (size_t)plan.x0 * channels);
    return LN_OK;
}

static ln_status png_decode(const uint8_t *buf, size_t len, ln_decode_plan_fn plan_fn,
                            ln_decode_row_fn row_fn, void *ud, int channels,
                            ln_image_info *info, char *err, size_t errlen) {
    png_job *job = calloc(1, sizeof *job);
    if (!job) return ln_image_fail(err, errlen, LN_ERR_NOMEM, "decode: out of memory");
    job->buf = buf;
    job->len = len;
    ln_status st = png_run(job, plan_fn, row_fn, ud, channels, info, err, errlen);
    if (job->png) png_destroy_read_struct(&job->png, job->pinfo ? &job->pinfo : NULL, NULL);
    free(job->pixels);
    free(job->rows);
    free(job);
    return st;
}

/* ================================================================== entry points */

static ln_status decode_any(const uint8_t *buf, size_t len, ln_decode_plan_fn plan_fn,
                            ln_decode_row_fn row_fn, void *ud, int channels,
                            ln_image_info *info, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    memset(info, 0, sizeof *info);
    if (!buf && len > 0)
        return ln_image_fail(err, errlen, LN_ERR_ARG, "decode: NULL buffer of %zu bytes", len);
    switch (ln_image_sniff(buf, len)) {
    case LN_IMAGE_JPEG:
        return jpeg_decode(buf, len, plan_fn, row_fn, ud, channels, info, err, errlen);
    case LN_IMAGE_PNG:
        return png_decode(buf, len, plan_fn, row_fn, ud, channels, info, err, errlen);
    default:
        if (len == 0) return ln_image_fail(err, errlen, LN_ERR_UNSUPPORTED, "empty file");
        return ln_image_fail(err, errlen, LN_ERR_UNSUPPORTED,
                             "not a JPEG or PNG (first bytes %02x %02x %02x %02x)", buf[0],
                             len > 1 ? buf[1] : 0, len > 2 ? buf[2] : 0, len > 3 ? buf[3] : 0);
    }
}

ln_status ln_image_decode_rows(const uint8_t *buf, size_t len, ln_decode_plan_fn plan_fn,
                               ln_decode_row_fn row_fn, void *ud, int channels,
                               ln_image_info *info, char *err, size_t errlen) {
    if (!plan_fn || !row_fn || !info || (channels != 3 && channels != 4))
        return ln_image_fail(err, errlen, LN_ERR_ARG, "decode: bad arguments");
    return decode_any(buf, len, plan_fn, row_fn, ud, channels, info, err, errlen);
}

ln_status ln_image_probe(const uint8_t *buf, size_t len, ln_image_info *info, char *err,
                         size_t errlen) {
    ln_image_info tmp;
    return decode_any(buf, len, NULL, NULL, NULL, 3, info ? info : &tmp, err, errlen);
}

/* ln_image_decode: the whole image at scale 1, into a buffer allocated by the plan */
static ln_status whole_plan(void *ud, const ln_image_info *info, ln_decode_plan *plan,
                            char *err, size_t errlen) {
    ln_image *img = ud;
    if ((long)info->width * info->height > MAX_PIXELS)
        return ln_image_fail(err, errlen, LN_ERR_UNSUPPORTED,
                             "decode: a %d x %d image is more than this decoder accepts",
                             info->width, info->height);
    img->data = malloc((size_t)info->width * info->height * 3);
    if (!img->data)
        return ln_image_fail(err, errlen, LN_ERR_NOMEM, "decode: out of memory for %d x %d "
                             "pixels", info->width, info->height);
    img->width = info->width;
    img->height = info->height;
    img->channels = 3;
    img->stride = (size_t)info->width * 3;
    plan->scale_denom = 1;
    plan->x0 = plan->y0 = 0;
    plan->x1 = info->width;
    plan->y1 = info->height;
    return LN_OK;
}

static void whole_row(void *ud, int y, const uint8_t *row) {
    ln_image *img = ud;
    memcpy(img->data + (size_t)y * img->stride, row, img->stride);
}

ln_status ln_image_decode(const uint8_t *buf, size_t len, ln_image *img, ln_image_info *info,
                          char *err, size_t errlen) {
    ln_image_info tmp;
    if (!img) return ln_image_fail(err, errlen, LN_ERR_ARG, "decode: NULL image");
    memset(img, 0, sizeof *img);
    ln_status st = decode_any(buf, len, whole_plan, whole_row, img, 3, info ? info : &tmp, err,
                              errlen);
    if (st != LN_OK) ln_image_free(img);
    return st;
}
