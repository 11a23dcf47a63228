/* Private to core/src/data: the pieces the image pipelines of lunet/image.h are built
 * from. Region decoding (decode.c) decodes, after reading the header, only the part of
 * an image that a plan asks for, optionally at a JPEG DCT scale; resampling axes
 * (resize.c) hold PIL's filter coefficients for a window of a resize, so a pipeline
 * can learn which source pixels it needs before decoding any. */
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

/* Decodes the region the plan asks for into a new RGB image *img (owned, release
 * with ln_image_free): img covers columns [*ox, *ox + img->width) and rows
 * [*oy, *oy + img->height) of the image at the plan's scale: exactly the region for
 * JPEG, with pixels equal to a whole decode at that scale; the whole image for PNG. info (not NULL) is filled
 * as ln_image_probe does, with scale_denom and the warnings seen. A truncated file is
 * an error even where the missing data lies outside the region, so the outcome never
 * depends on the region. */
ln_status ln_image_decode_region(const uint8_t *buf, size_t len, ln_decode_plan_fn plan_fn,
                                 void *ud, ln_image *img, int *ox, int *oy,
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

/* Resamples with the two axes: src pixel (x, y) is input (sx + x, sy + y) of the axes
 * (sx, sy may be negative), and src must cover every input the axes read. Writes
 * (ay->n, ax->n, src->channels) into dst with rows dst_stride bytes apart: horizontal
 * pass into an 8-bit intermediate, then vertical pass, rounded as PIL does. */
ln_status ln_resample_run(const ln_image *src, int sx, int sy, const ln_resample_axis *ax,
                          const ln_resample_axis *ay, uint8_t *dst, size_t dst_stride,
                          char *err, size_t errlen);

#endif
