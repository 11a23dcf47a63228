/* Private to core/src/data: the pieces the image pipelines of lunet/image.h are built
 * from. Region decoding (decode.c) decodes, after reading the header, only the part of
 * an image that a plan asks for, optionally at a JPEG DCT scale; resampling axes
 * (resize.c) hold PIL's filter coefficients for a window of a resize, so a pipeline
 * can learn which source pixels it needs before decoding any, and a resampling stream
 * takes decoded rows as they come and emits output rows as soon as they are complete:
 * a whole train or eval transform runs in a few rows of memory. */
#ifndef LUNET_DATA_IMAGE_INTERNAL_H
#define LUNET_DATA_IMAGE_INTERNAL_H

#include "lunet/image.h"

/* Writes a printf-style message into err (when err and errlen allow) and returns code. */
ln_status ln_image_fail(char *err, size_t errlen, ln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ decode.c */

/* What a pipeline decides once the header is read. */
typedef struct ln_decode_plan {
    int scale_denom;    /* 1, 2, 4 or 8: decode at 1/scale_denom (JPEG only; PNG: 1) */
    int x0, y0, x1, y1; /* needed region of the scaled image, half-open, non-empty */
} ln_decode_plan;

/* Called by ln_image_decode_region between the header and the pixels. info holds the
 * format, size and channels. Returns LN_OK with *plan filled, or a failure (with its
 * message in err) that ln_image_decode_region returns as it is. */
typedef ln_status (*ln_decode_plan_fn)(void *ud, const ln_image_info *info,
                                       ln_decode_plan *plan, char *err, size_t errlen);

/* The size libjpeg gives a side of `size` pixels decoded at 1/denom: ceil(size/denom). */
static inline int ln_jpeg_scaled_size(int size, int denom) {
    return (int)(((long)size + denom - 1) / denom);
}

/* Receives row y (of the image at the plan's scale) of the plan's region: x1 - x0
 * pixels of `channels` bytes, valid during the call. Rows come in increasing y. */
typedef void (*ln_decode_row_fn)(void *ud, int y, const uint8_t *row);

/* Reads the header, asks plan_fn for the scale and region, and hands the region to
 * row_fn row by row (channels 3: RGB; 4: RGBX, the 4th byte 255 or a PNG's alpha).
 * JPEG decodes only the iMCU columns and rows the region needs, and its pixels equal
 * those of a whole decode at that scale; PNG decodes the whole image. info (not NULL)
 * is filled as ln_image_probe does, with scale_denom and the warnings seen. A
 * truncated file is an error even where the missing data lies outside the region, so
 * the outcome never depends on the region; rows already handed out are then garbage. */
ln_status ln_image_decode_rows(const uint8_t *buf, size_t len, ln_decode_plan_fn plan_fn,
                               ln_decode_row_fn row_fn, void *ud, int channels,
                               ln_image_info *info, char *err, size_t errlen);

/* ------------------------------------------------------------------ resize.c */

/* Fixed-point fraction bits of the 8-bit resampling weights (PIL: 32 - 8 - 2). */
#define LN_RESAMPLE_BITS 22

/* One axis of a PIL bilinear resize, for the outputs [win0, win0 + n) of a resize of
 * the input range [in0, in1) (of an axis of in_size pixels) to out_size pixels.
 * Output i reads inputs start[i] .. start[i] + count[i] - 1 (within [0, in_size)) with
 * weights k[i * ksize + t]. */
typedef struct ln_resample_axis {
    int n, ksize;
    int *start, *count; /* (n) each */
    int32_t *k;         /* (n, ksize) */
    bool identity;      /* output i is input win0 + i, unchanged (PIL skips the pass) */
} ln_resample_axis;

ln_status ln_resample_axis_init(ln_resample_axis *a, int in_size, double in0, double in1,
                                int out_size, int win0, int n, char *err, size_t errlen);
void ln_resample_axis_free(ln_resample_axis *a);
/* The first input index the axis reads and one past the last. */
int ln_resample_axis_lo(const ln_resample_axis *a);
int ln_resample_axis_hi(const ln_resample_axis *a);

/* Receives output row i (of the axes' window) of a resampling stream: ax->n pixels
 * of `channels` bytes, valid during the call. */
typedef void (*ln_resample_out_fn)(void *ud, int i, const uint8_t *row);

/* A two-pass resize fed one input row at a time: each pushed row goes through the
 * horizontal pass into a ring of the last few rows, and every output row whose input
 * rows are all in is computed by the vertical pass and handed to out_fn, rounded as
 * PIL does. Rows must be pushed in increasing y covering [lo, hi) of ay (others are
 * ignored); a pushed row's pixel 0 is input column sx of ax and the row must cover
 * every column ax reads. */
typedef struct ln_resample_stream {
    const ln_resample_axis *ax, *ay;
    int ch, sx;
    int ylo, yhi;          /* input rows ay reads */
    int ring_rows;
    size_t row_len;        /* ax->n * ch bytes */
    uint8_t *ring;         /* (ring_rows, row_len): input row y at y % ring_rows; then
                              one output row */
    uint8_t *out;
    const uint8_t **taps;  /* (ay->ksize) rows of one output row */
    int next;              /* next output row */
    ln_resample_out_fn out_fn;
    void *out_ud;
} ln_resample_stream;

ln_status ln_resample_stream_init(ln_resample_stream *s, const ln_resample_axis *ax,
                                  const ln_resample_axis *ay, int channels, int sx,
                                  ln_resample_out_fn out_fn, void *out_ud, char *err,
                                  size_t errlen);
void ln_resample_stream_push(ln_resample_stream *s, int y, const uint8_t *row);
void ln_resample_stream_free(ln_resample_stream *s);

#endif
