/* Antialiased bilinear resampling equal to PIL 9's Image.resize(size, BILINEAR, box):
 * separable, a horizontal pass into an 8-bit intermediate then a vertical pass, the
 * triangle filter's support widened by the downscale factor, weights normalised to
 * sum 1 and rounded to 22-bit fixed point, each sum rounded by adding half and
 * shifting. Only a window of the output is computed, which makes Resize + CenterCrop
 * cost no more than the crop. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "image_internal.h"

ln_status ln_image_fail(char *err, size_t errlen, ln_status code, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int32_t to_fixed(double w) {
    double s = w * (double)(1 << LN_RESAMPLE_BITS);
    return (int32_t)(w < 0 ? s - 0.5 : s + 0.5);
}

ln_status ln_resample_axis_init(ln_resample_axis *a, int in_size, double in0, double in1,
                                int out_size, int win0, int n, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    /* PIL keeps the box in single precision */
    float f0 = (float)in0, f1 = (float)in1;
    double scale = (double)(f1 - f0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale; /* the triangle's support is 1 */
    int ksize = (int)ceil(support) * 2 + 1;
    double ss = 1.0 / filterscale;
    a->n = n;
    a->ksize = ksize;
    a->identity = scale == 1.0 && floor((double)f0) == (double)f0;
    a->start = malloc((size_t)n * 2 * sizeof(int));
    a->k = malloc((size_t)n * (size_t)ksize * sizeof(int32_t));
    double *w = malloc((size_t)ksize * sizeof(double));
    if (!a->start || !a->k || !w) {
        free(w);
        ln_resample_axis_free(a);
        return ln_image_fail(err, errlen, LN_ERR_NOMEM,
                             "resize: out of memory for %d x %d filter weights", n, ksize);
    }
    a->count = a->start + n;
    for (int i = 0; i < n; i++) {
        double center = f0 + (win0 + i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int cnt = hi > lo ? hi - lo : 0;
        double sum = 0.0;
        for (int t = 0; t < cnt; t++) {
            w[t] = triangle((t + lo - center + 0.5) * ss);
            sum += w[t];
        }
        int32_t *k = a->k + (size_t)i * ksize;
        for (int t = 0; t < ksize; t++)
            k[t] = t < cnt ? to_fixed(sum != 0.0 ? w[t] / sum : w[t]) : 0;
        a->start[i] = lo;
        a->count[i] = cnt;
    }
    free(w);
    return LN_OK;
}

void ln_resample_axis_free(ln_resample_axis *a) {
    free(a->start);
    free(a->k);
    memset(a, 0, sizeof *a);
}

int ln_resample_axis_lo(const ln_resample_axis *a) {
    int lo = a->n > 0 ? a->start[0] : 0;
    for (int i = 1; i < a->n; i++)
        if (a->start[i] < lo) lo = a->start[i];
    return lo;
}

int ln_resample_axis_hi(const ln_resample_axis *a) {
    int hi = 0;
    for (int i = 0; i < a->n; i++)
        if (a->start[i] + a->count[i] > hi) hi = a->start[i] + a->count[i];
    return hi;
}

static inline uint8_t clip8(int32_t acc) {
    int32_t v = acc >> LN_RESAMPLE_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One row: in (input pixels, channels ch) whose pixel 0 is axis input sx -> out
 * (a->n pixels). */
static void horizontal_row(const uint8_t *in, int sx, int ch, const ln_resample_axis *a,
                           uint8_t *out) {
    const int32_t half = 1 << (LN_RESAMPLE_BITS - 1);
    if (ch == 3) {
        for (int i = 0; i < a->n; i++) {
            const uint8_t *p = in + (size_t)(a->start[i] - sx) * 3;
            const int32_t *k = a->k + (size_t)i * a->ksize;
            int32_t r = half, g = half, b = half;
            for (int t = 0; t < a->count[i]; t++) {
                r += p[3 * t] * k[t];
                g += p[3 * t + 1] * k[t];
                b += p[3 * t + 2] * k[t];
            }
            out[3 * i] = clip8(r);
            out[3 * i + 1] = clip8(g);
            out[3 * i + 2] = clip8(b);
        }
        return;
    }
    for (int i = 0; i < a->n; i++) {
        const uint8_t *p = in + (size_t)(a->start[i] - sx) * ch;
        const int32_t *k = a->k + (size_t)i * a->ksize;
        for (int c = 0; c < ch; c++) {
            int32_t s = half;
            for (int t = 0; t < a->count[i]; t++) s += p[t * ch + c] * k[t];
            out[i * ch + c] = clip8(s);
        }
    }
}

ln_status ln_resample_run(const ln_image *src, int sx, int sy, const ln_resample_axis *ax,
                          const ln_resample_axis *ay, uint8_t *dst, size_t dst_stride,
                          char *err, size_t errlen) {
    const int ch = src->channels;
    int xlo = ln_resample_axis_lo(ax), xhi = ln_resample_axis_hi(ax);
    int ylo = ln_resample_axis_lo(ay), yhi = ln_resample_axis_hi(ay);
    if (xlo < sx || xhi > sx + src->width || ylo < sy || yhi > sy + src->height)
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "resize: the filter reads columns [%d, %d) and rows [%d, %d) "
                             "but the source covers [%d, %d) and [%d, %d)",
                             xlo, xhi, ylo, yhi, sx, sx + src->width, sy, sy + src->height);
    const size_t row_len = (size_t)ax->n * ch;
    /* tmp: the horizontally resampled rows ylo..yhi-1, or a view of src when the
     * horizontal pass is the identity */
    uint8_t *tmp_buf = NULL;
    const uint8_t *tmp;
    size_t tmp_stride;
    if (ax->identity) {
        tmp = src->data + (size_t)(ylo - sy) * src->stride + (size_t)(ax->start[0] - sx) * ch;
        tmp_stride = src->stride;
    } else {
        tmp_buf = malloc((size_t)(yhi - ylo) * row_len + 1);
        if (!tmp_buf)
            return ln_image_fail(err, errlen, LN_ERR_NOMEM,
                                 "resize: out of memory for a %d x %d intermediate",
                                 yhi - ylo, ax->n);
        for (int y = ylo; y < yhi; y++)
            horizontal_row(src->data + (size_t)(y - sy) * src->stride, sx, ch, ax,
                           tmp_buf + (size_t)(y - ylo) * row_len);
        tmp = tmp_buf;
        tmp_stride = row_len;
    }
    if (ay->identity) {
        for (int i = 0; i < ay->n; i++)
            memcpy(dst + (size_t)i * dst_stride,
                   tmp + (size_t)(ay->start[i] - ylo) * tmp_stride, row_len);
        free(tmp_buf);
        return LN_OK;
    }
    int32_t *acc = malloc(row_len * sizeof(int32_t) + 1);
    if (!acc) {
        free(tmp_buf);
        return ln_image_fail(err, errlen, LN_ERR_NOMEM, "resize: out of memory");
    }
    for (int i = 0; i < ay->n; i++) {
        const int32_t *k = ay->k + (size_t)i * ay->ksize;
        for (size_t j = 0; j < row_len; j++) acc[j] = 1 << (LN_RESAMPLE_BITS - 1);
        for (int t = 0; t < ay->count[i]; t++) {
            const uint8_t *row = tmp + (size_t)(ay->start[i] + t - ylo) * tmp_stride;
            const int32_t w = k[t];
            for (size_t j = 0; j < row_len; j++) acc[j] += row[j] * w;
        }
        uint8_t *out = dst + (size_t)i * dst_stride;
        for (size_t j = 0; j < row_len; j++) out[j] = clip8(acc[j]);
    }
    free(acc);
    free(tmp_buf);
    return LN_OK;
}

ln_status ln_image_resize(const ln_image *src, const double box[4], int out_w, int out_h,
                          int win_x, int win_y, int win_w, int win_h,
                          uint8_t *dst, size_t dst_stride, char *err, size_t errlen) {
    if (!src || !src->data || !box || !dst)
        return ln_image_fail(err, errlen, LN_ERR_ARG, "resize: NULL argument");
    if (src->width <= 0 || src->height <= 0 || src->channels < 1 || src->channels > 4 ||
        src->stride < (size_t)src->width * src->channels)
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "resize: bad source image %d x %d x %d (stride %zu)",
                             src->width, src->height, src->channels, src->stride);
    if (!(box[0] >= 0 && box[1] >= 0 && box[0] < box[2] && box[1] < box[3] &&
          box[2] <= src->width && box[3] <= src->height))
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "resize: box (%g, %g, %g, %g) is not inside the %d x %d image",
                             box[0], box[1], box[2], box[3], src->width, src->height);
    if (out_w <= 0 || out_h <= 0 || win_x < 0 || win_y < 0 || win_w <= 0 || win_h <= 0 ||
        win_x > out_w - win_w || win_y > out_h - win_h)
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "resize: window %d x %d at (%d, %d) is not inside the %d x %d "
                             "output", win_w, win_h, win_x, win_y, out_w, out_h);
    if (dst_stride < (size_t)win_w * src->channels)
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "resize: dst_stride %zu < %d pixels x %d channels", dst_stride,
                             win_w, src->channels);
    ln_resample_axis ax, ay;
    ln_status st = ln_resample_axis_init(&ax, src->width, box[0], box[2], out_w, win_x, win_w,
                                         err, errlen);
    if (st != LN_OK) return st;
    st = ln_resample_axis_init(&ay, src->height, box[1], box[3], out_h, win_y, win_h, err,
                               errlen);
    if (st == LN_OK) {
        st = ln_resample_run(src, 0, 0, &ax, &ay, dst, dst_stride, err, errlen);
        ln_resample_axis_free(&ay);
    }
    ln_resample_axis_free(&ax);
    return st;
}
