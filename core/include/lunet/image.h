/* Image decoding and per-image transforms for the data loader's worker threads.
 *
 * Everything here is thread-safe and context-free: no function takes an ln_ctx or
 * touches global state, so loader threads may call them concurrently. Failures come
 * back as an ln_status plus a message written into the caller's buffer `err` of
 * `errlen` bytes (always NUL-terminated; err may be NULL or errlen 0 to drop it):
 *   LN_ERR_UNSUPPORTED  the bytes are neither JPEG nor PNG (text file, GIF, 0 bytes...)
 *   LN_ERR_IO           a JPEG/PNG that is truncated or corrupt beyond decoding
 *   LN_ERR_NOMEM        an allocation failed
 *   LN_ERR_ARG          a bad argument (NULL pointer, empty size, crop outside image)
 * Nothing here prints, exits, aborts or leaks on failure (libjpeg and libpng errors
 * are caught and everything they held is released).
 *
 * The transforms equal torchvision 0.14 with PIL 9 (the pipeline of method.md
 * section 6):
 *   train: RandomResizedCrop(size, scale, ratio) + RandomHorizontalFlip(flip_p)
 *          + ToTensor + Normalize(mean, std)
 *   eval:  Resize(resize) + CenterCrop(size) + ToTensor + Normalize(mean, std)
 * with PIL's antialiased bilinear resampling (Image.resize(..., BILINEAR)).
 * The format is detected from the magic bytes, never from a file name: a PNG named
 * .JPEG is decoded. Every decoded image is 8-bit RGB; grayscale, CMYK, YCCK, palette,
 * alpha and 16-bit inputs are converted and flagged (ln_image_info.converted).
 *
 * Output buffers: the float outputs are one sample's (C, H, W) slot, contiguous,
 * e.g. `batch + n * 3 * size * size` inside an (N, 3, size, size) batch. The pipelines
 * write it while decoding; after a failure its contents are unspecified. */
#ifndef LUNET_IMAGE_H
#define LUNET_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* ------------------------------------------------------------------ formats */

typedef enum ln_image_format {
    LN_IMAGE_UNKNOWN = 0,
    LN_IMAGE_JPEG,
    LN_IMAGE_PNG
} ln_image_format;

/* The format named by the first bytes of buf (JPEG: FF D8; PNG: its 8-byte
 * signature); LN_IMAGE_UNKNOWN for anything else, including len 0. */
ln_image_format ln_image_sniff(const uint8_t *buf, size_t len);

/* What is known about an encoded image; filled by probe, decode and the pipelines. */
typedef struct ln_image_info {
    ln_image_format format;
    int width, height;  /* of the encoded image, in pixels */
    int channels;       /* components in the file: 1 gray, 2 gray+alpha, 3 RGB/YCbCr,
                           4 CMYK/YCCK/RGBA (PNG palette images report 3) */
    bool converted;     /* not plain 8-bit RGB/YCbCr: converted to RGB when decoded */
    int warnings;       /* corrupt-data warnings libjpeg/libpng recovered from (the
                           image still decoded, as PIL would) */
    int scale_denom;    /* the DCT scaling a pipeline used: 1 (none), 2, 4 or 8 */
} ln_image_info;

/* Reads only the header: format, size, channels and whether decoding converts.
 * info->warnings and info->scale_denom are set to 0 and 1. */
ln_status ln_image_probe(const uint8_t *buf, size_t len, ln_image_info *info,
                         char *err, size_t errlen);

/* ------------------------------------------------------------------ images */

/* An 8-bit interleaved image: pixel (y, x) channel c is
 * data[y * stride + x * channels + c]; data is (height, width, channels) with rows
 * `stride` bytes apart (stride >= width * channels). As returned by ln_image_decode
 * the image owns data (release with ln_image_free); callers may also build views on
 * their own memory, which they must not pass to ln_image_free. */
typedef struct ln_image {
    uint8_t *data;
    int width, height, channels;
    size_t stride;
} ln_image;

/* Decodes a whole JPEG or PNG into a new RGB image (channels 3, stride width * 3).
 * info may be NULL. A truncated JPEG or PNG is an error (LN_ERR_IO), as in PIL. On
 * failure *img is zeroed. */
ln_status ln_image_decode(const uint8_t *buf, size_t len, ln_image *img,
                          ln_image_info *info, char *err, size_t errlen);

/* Frees the pixels of a decoded image and zeroes it; NULL or zeroed is fine. */
void ln_image_free(ln_image *img);

/* PIL's Image.resize((out_w, out_h), BILINEAR, box) restricted to an output window:
 * the box (x0, y0, x1, y1) of src, in src pixels (the whole image is
 * (0, 0, width, height); fractions allowed), is resampled to out_w x out_h with the
 * antialiased triangle filter (support scaled by the downscale factor, separable,
 * horizontal then vertical pass, 8-bit intermediate with PIL's fixed-point rounding),
 * and of that result only columns [win_x, win_x + win_w) and rows
 * [win_y, win_y + win_h) are computed, into dst (win_h, win_w, src->channels), rows
 * dst_stride bytes apart. Pixels outside src are never read (the filter is clipped at
 * src's edges, as PIL clips at the image's). Results are bit-identical to PIL 9.
 * channels 1..4. */
ln_status ln_image_resize(const ln_image *src, const double box[4], int out_w, int out_h,
                          int win_x, int win_y, int win_w, int win_h,
                          uint8_t *dst, size_t dst_stride, char *err, size_t errlen);

/* ToTensor + Normalize (+ optional horizontal flip) of an 8-bit image into out
 * (channels, height, width) float: out[c][y][x] = (v / 255 - mean[c]) / std[c],
 * computed in float as torchvision does, where v is pixel (y, width - 1 - x) when
 * flip, else (y, x). mean and std have src->channels entries. */
void ln_image_to_chw(const ln_image *src, bool flip, const float *mean, const float *std,
                     float *out);

/* ------------------------------------------------------------------ randomness */

/* A sample's own random stream: xoshiro256** seeded through splitmix64. Seed one per
 * sample from (seed, epoch, index) so the sample's crop and flip depend only on those,
 * never on which worker thread runs it or in what order. */
typedef struct ln_image_rng {
    uint64_t s[4];
} ln_image_rng;

void ln_image_rng_seed(ln_image_rng *rng, uint64_t seed, uint64_t epoch, uint64_t index);
uint64_t ln_image_rng_next(ln_image_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double ln_image_rng_uniform(ln_image_rng *rng);
/* Uniform integer in [0, n); n >= 1. */
uint64_t ln_image_rng_below(ln_image_rng *rng, uint64_t n);

/* ------------------------------------------------------------------ geometry */

/* A crop rectangle in pixels: left x (torchvision's j), top y (its i), width, height. */
typedef struct ln_image_crop {
    int x, y, w, h;
} ln_image_crop;

/* torchvision 0.14 RandomResizedCrop.get_params on a width x height image: up to 10
 * attempts of area fraction uniform in [scale[0], scale[1]] and aspect ratio
 * log-uniform in [ratio[0], ratio[1]] (w = round(sqrt(area * r)),
 * h = round(sqrt(area / r)), Python's half-to-even rounding), accepted when
 * 0 < w <= width and 0 < h <= height, with the offset uniform over every position;
 * otherwise the central fallback (the whole image clamped to the ratio range).
 * Returns true when an attempt was accepted, false when the fallback was used. */
bool ln_image_rrc_sample(int width, int height, const double scale[2],
                         const double ratio[2], ln_image_rng *rng, ln_image_crop *crop);

/* torchvision's Resize(short_side) size rule for an int size: the shorter side
 * becomes short_side, the longer int(short_side * long / short). */
void ln_image_resize_dims(int width, int height, int short_side, int *out_w, int *out_h);

/* torchvision's CenterCrop offsets: top = int(round((height - size) / 2.0)), left the
 * same with width (half-to-even rounding). Requires width, height >= size. */
void ln_image_center_offsets(int width, int height, int size, int *left, int *top);

/* ------------------------------------------------------------------ pipelines */

/* Settings of the ILSVRC-style train and eval pipelines. */
typedef struct ln_image_cfg {
    int size;          /* output side of the crop (224) */
    int resize;        /* eval: the shorter side is resized to this first (256) */
    double scale[2];   /* train: area fraction range of the random crop (0.08, 1) */
    double ratio[2];   /* train: aspect ratio range, log-uniform (3/4, 4/3) */
    double flip_p;     /* train: probability of a horizontal flip (0.5) */
    float mean[3];     /* normalisation per RGB channel (0.485, 0.456, 0.406) */
    float std[3];      /* (0.229, 0.224, 0.225) */
    double dct_min;    /* JPEG DCT scaling (decode at 1/2, 1/4, 1/8) is used only when
                          the region to resample keeps at least dct_min times the output
                          size on both axes after scaling; 0 turns it off (exact path,
                          bit-identical to PIL/torchvision). Default 2: it applies only to
                          large images (a crop of at least 896 pixels a side for a 224
                          output); measured mean |difference| to the exact path about
                          0.2/255, worst image 0.6/255. */
} ln_image_cfg;

/* Fills cfg with the ILSVRC settings above (method.md section 6), dct_min 2. */
void ln_image_cfg_ilsvrc(ln_image_cfg *cfg);

/* The train transform with given crop and flip: crop (in the encoded image's pixels)
 * resized to cfg->size x cfg->size, flipped when flip, normalised into
 * out (3, size, size). JPEGs decode only the rows and columns the crop needs, at a
 * DCT scale chosen by cfg->dct_min. info may be NULL. */
ln_status ln_image_resized_crop(const uint8_t *buf, size_t len, const ln_image_cfg *cfg,
                                const ln_image_crop *crop, bool flip, float *out,
                                ln_image_info *info, char *err, size_t errlen);

/* The full train transform: reads the header, samples the crop
 * (ln_image_rrc_sample with cfg->scale, cfg->ratio) and then the flip
 * (ln_image_rng_uniform(rng) < cfg->flip_p) from rng, then ln_image_resized_crop.
 * out is (3, size, size). info may be NULL. */
ln_status ln_image_train(const uint8_t *buf, size_t len, const ln_image_cfg *cfg,
                         ln_image_rng *rng, float *out, ln_image_info *info,
                         char *err, size_t errlen);

/* The eval transform: Resize(cfg->resize) + CenterCrop(cfg->size) + normalise into
 * out (3, size, size); only the pixels of the crop are resampled and (for JPEG) only
 * the rows and columns they need are decoded. info may be NULL. */
ln_status ln_image_eval(const uint8_t *buf, size_t len, const ln_image_cfg *cfg,
                        float *out, ln_image_info *info, char *err, size_t errlen);

/* ln_image_train / ln_image_eval with ln_image_cfg_ilsvrc's settings;
 * out is (3, 224, 224). */
ln_status ln_image_train_ilsvrc(const uint8_t *buf, size_t len, ln_image_rng *rng,
                                float *out, ln_image_info *info, char *err, size_t errlen);
ln_status ln_image_eval_ilsvrc(const uint8_t *buf, size_t len, float *out,
                               ln_image_info *info, char *err, size_t errlen);

/* ------------------------------------------------------------------ small datasets */

/* CIFAR / MNIST-style transform of an already-decoded planar image src
 * (channels, height, width) uint8 into out (channels, height, width) float:
 * torchvision's RandomCrop((height, width), padding=pad) with zero padding (offsets
 * uniform in [0, 2 * pad], drawn top then left), then a horizontal flip with
 * probability flip_p (one ln_image_rng_uniform draw, made only when flip_p > 0), then
 * ToTensor + Normalize(mean, std) (channels entries each). With pad 0 and flip_p 0
 * this is the eval transform and rng may be NULL. */
ln_status ln_image_crop_flip_planar(const uint8_t *src, int channels, int height, int width,
                                    int pad, double flip_p, const float *mean,
                                    const float *std, ln_image_rng *rng, float *out,
                                    char *err, size_t errlen);

#endif
