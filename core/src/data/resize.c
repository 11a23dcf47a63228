/* Antialiased bilinear resampling equal to PIL 9's Image.resize(size, BILINEAR, box):
 * separable, a horizontal pass into an 8-bit intermediate then a vertical pass, the
 * triangle filter's support widened by the downscale factor, weights normalised to
 * sum 1 and rounded to 22-bit fixed point, each sum rounded by adding half and
 * shifting. Only a window of the output is computed, which makes Resize + CenterCrop
 * cost no more than the crop. 4-channel (RGBX) images take an AVX2 path with the same
 * integer arithmetic, so every path gives the same bytes. */
#include <math.h>
#include <stdarg.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
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

#ifdef __AVX2__
/* acc >> BITS clamped to 0..255, four lanes -> four bytes */
static inline uint32_t pack4(__m128i acc) {
    __m128i v = _mm_srai_epi32(acc, LN_RESAMPLE_BITS);
    v = _mm_packus_epi32(v, v);
    return (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(v, v));
}

/* 4 channels: one pixel's channels in four int32 lanes, two taps per AVX2 step. */
static void horizontal_row4(const uint8_t *in, int sx, const ln_resample_axis *a,
                            uint8_t *out) {
    const __m128i half = _mm_set1_epi32(1 << (LN_RESAMPLE_BITS - 1));
    for (int i = 0; i < a->n; i++) {
        const uint8_t *p = in + (size_t)(a->start[i] - sx) * 4;
        const int32_t *k = a->k + (size_t)i * a->ksize;
        const int cnt = a->count[i];
        __m256i acc2 = _mm256_setzero_si256();
        int t = 0;
        for (; t + 1 < cnt; t += 2) {
            __m256i px = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 4 * t)));
            __m256i w = _mm256_set_m128i(_mm_set1_epi32(k[t + 1]), _mm_set1_epi32(k[t]));
            acc2 = _mm256_add_epi32(acc2, _mm256_mullo_epi32(px, w));
        }
        __m128i acc = _mm_add_epi32(_mm256_castsi256_si128(acc2),
                                    _mm256_extracti128_si256(acc2, 1));
        if (t < cnt) {
            int32_t one;
            memcpy(&one, p + 4 * t, 4);
            __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(one));
            acc = _mm_add_epi32(acc, _mm_mullo_epi32(px, _mm_set1_epi32(k[t])));
        }
        uint32_t v = pack4(_mm_add_epi32(acc, half));
        memcpy(out + 4 * (size_t)i, &v, 4);
    }
}

/* One output row of the vertical pass: rows[t] (t < cnt) weighted by k, m bytes. */
static void vertical_row(const uint8_t *const *rows, int cnt, const int32_t *k, size_t m,
                         uint8_t *out) {
    const __m256i half = _mm256_set1_epi32(1 << (LN_RESAMPLE_BITS - 1));
    size_t j = 0;
    for (; j + 8 <= m; j += 8) {
        __m256i acc = half;
        for (int t = 0; t < cnt; t++) {
            __m256i px = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(rows[t] + j)));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, _mm256_set1_epi32(k[t])));
        }
        __m256i v = _mm256_srai_epi32(acc, LN_RESAMPLE_BITS);
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(out + j), _mm_packus_epi16(w, w));
    }
    for (; j < m; j++) {
        int32_t acc = 1 << (LN_RESAMPLE_BITS - 1);
        for (int t = 0; t < cnt; t++) acc += rows[t][j] * k[t];
        out[j] = clip8(acc);
    }
}
#else
static void vertical_row(const uint8_t *const *rows, int cnt, const int32_t *k, size_t m,
                         uint8_t *out) {
    for (size_t j = 0; j < m; j++) {
        int32_t acc = 1 << (LN_RESAMPLE_BITS - 1);
        for (int t = 0; t < cnt; t++) acc += rows[t][j] * k[t];
        out[j] = clip8(acc);
    }
}
#endif

/* One row: in (input pixels, channels ch) whose pixel 0 is axis input sx -> out
 * (a->n pixels). */
static void horizontal_row(const uint8_t *in, int sx, int ch, const ln_resample_axis *a,
                           uint8_t *out) {
    const int32_t half = 1 << (LN_RESAMPLE_BITS - 1);
#ifdef __AVX2__
    if (ch == 4) {
        horizontal_row4(in, sx, a, out);
        return;
    }
#endif
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

static int max_count(const ln_resample_axis *a) {
    int m = 1;
    for (int i = 0; i < a->n; i++)
        if (a->count[i] > m) m = a->count[i];
    return m;
}

ln_status ln_resample_stream_init(ln_resample_stream *s, const ln_resample_axis *ax,
                                  const ln_resample_axis *ay, int channels, int sx,
                                  ln_resample_out_fn out_fn, void *out_ud, char *err,
                                  size_t errlen) {
    memset(s, 0, sizeof *s);
    s->ax = ax;
    s->ay = ay;
    s->ch = channels;
    s->sx = sx;
    s->ylo = ln_resample_axis_lo(ay);
    s->yhi = ln_resample_axis_hi(ay);
    s->ring_rows = max_count(ay);
    s->row_len = (size_t)ax->n * channels;
    s->out_fn = out_fn;
    s->out_ud = out_ud;
    s->ring = malloc(s->row_len * (size_t)(s->ring_rows + 1));
    s->taps = malloc(sizeof(*s->taps) * (size_t)ay->ksize);
    if (!s->ring || !s->taps) {
        ln_resample_stream_free(s);
        return ln_image_fail(err, errlen, LN_ERR_NOMEM,
                             "resize: out of memory for %d rows of %d pixels", s->ring_rows,
                             ax->n);
    }
    s->out = s->ring + s->row_len * (size_t)s->ring_rows;
    return LN_OK;
}

void ln_resample_stream_free(ln_resample_stream *s) {
    free(s->ring);
    free((void *)s->taps);
    s->ring = NULL;
    s->taps = NULL;
}

static uint8_t *ring_row(const ln_resample_stream *s, int y) {
    return s->ring + (size_t)(y % s->ring_rows) * s->row_len;
}

void ln_resample_stream_push(ln_resample_stream *s, int y, const uint8_t *row) {
    if (y < s->ylo || y >= s->yhi) return;
    const ln_resample_axis *ax = s->ax, *ay = s->ay;
    uint8_t *slot = ring_row(s, y);
    if (ax->identity)
        memcpy(slot, row + (size_t)(ax->start[0] - s->sx) * s->ch, s->row_len);
    else
        horizontal_row(row, s->sx, s->ch, ax, slot);
    /* emit every output row whose last input row this was */
    while (s->next < ay->n && ay->start[s->next] + ay->count[s->next] - 1 <= y) {
        const int i = s->next++;
        if (ay->identity) {
            s->out_fn(s->out_ud, i, ring_row(s, ay->start[i]));
            continue;
        }
        for (int t = 0; t < ay->count[i]; t++) s->taps[t] = ring_row(s, ay->start[i] + t);
        vertical_row(s->taps, ay->count[i], ay->k + (size_t)i * ay->ksize, s->row_len, s->out);
        s->out_fn(s->out_ud, i, s->out);
    }
}

typedef struct {
    uint8_t *dst;
    size_t stride, len;
} copy_out;

static void copy_row(void *ud, int i, const uint8_t *row) {
    copy_out *c = ud;
    memcpy(c->dst + (size_t)i * c->stride, row, c->len);
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
    ln_resample_stream s;
    copy_out c = {dst, dst_stride, (size_t)win_w * src->channels};
    ln_status st = ln_resample_axis_init(&ax, src->width, box[0], box[2], out_w, win_x, win_w,
                                         err, errlen);
    if (st != LN_OK) return st;
    st = ln_resample_axis_init(&ay, src->height, box[1], box[3], out_h, win_y, win_h, err,
                               errlen);
    if (st == LN_OK) {
        st = ln_resample_stream_init(&s, &ax, &ay, src->channels, 0, copy_row, &c, err, errlen);
        if (st == LN_OK) {
            for (int y = s.ylo; y < s.yhi; y++)
                ln_resample_stream_push(&s, y, src->data + (size_t)y * src->stride);
            ln_resample_stream_free(&s);
        }
        ln_resample_axis_free(&ay);
    }
    ln_resample_axis_free(&ax);
    return st;
}
