/* The per-sample transforms of method.md section 6, equal to torchvision 0.14 + PIL 9:
 * the per-sample RNG, RandomResizedCrop's sampler, Resize/CenterCrop geometry,
 * ToTensor + Normalize (+ flip) into a caller's (C, H, W) float slot, the ILSVRC train
 * and eval pipelines with crop-aware decoding, and the CIFAR/MNIST padded random crop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "image_internal.h"

/* ------------------------------------------------------------------ randomness */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ln_image_rng_seed(ln_image_rng *rng, uint64_t seed, uint64_t epoch, uint64_t index) {
    uint64_t x = seed;
    uint64_t h = splitmix64(&x) ^ epoch;
    h = splitmix64(&h) ^ index;
    h = splitmix64(&h);
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&h);
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ln_image_rng_next(ln_image_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

double ln_image_rng_uniform(ln_image_rng *rng) {
    return (double)(ln_image_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t ln_image_rng_below(ln_image_rng *rng, uint64_t n) {
    if (n <= 1) return 0;
    uint64_t threshold = (0 - n) % n; /* 2^64 mod n: reject below it for no bias */
    for (;;) {
        uint64_t x = ln_image_rng_next(rng);
        if (x >= threshold) return x % n;
    }
}

/* ------------------------------------------------------------------ geometry */

/* Python's round() to an int: halves go to the even neighbour. */
static int round_half_even(double v) {
    double r = floor(v), d = v - r;
    if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
    return (int)r;
}

bool ln_image_rrc_sample(int width, int height, const double scale[2],
                         const double ratio[2], ln_image_rng *rng, ln_image_crop *crop) {
    const double area = (double)width * height;
    const double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale[0] + (scale[1] - scale[0]) * ln_image_rng_uniform(rng));
        double ar = exp(lr0 + (lr1 - lr0) * ln_image_rng_uniform(rng));
        int w = round_half_even(sqrt(target * ar));
        int h = round_half_even(sqrt(target / ar));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            crop->y = (int)ln_image_rng_below(rng, (uint64_t)(height - h + 1));
            crop->x = (int)ln_image_rng_below(rng, (uint64_t)(width - w + 1));
            crop->w = w;
            crop->h = h;
            return true;
        }
    }
    const double in_ratio = (double)width / height;
    const double rmin = fmin(ratio[0], ratio[1]), rmax = fmax(ratio[0], ratio[1]);
    int w = width, h = height;
    if (in_ratio < rmin) h = round_half_even(w / rmin);
    else if (in_ratio > rmax) w = round_half_even(h * rmax);
    crop->w = w;
    crop->h = h;
    crop->y = (height - h) / 2;
    crop->x = (width - w) / 2;
    return false;
}

void ln_image_resize_dims(int width, int height, int short_side, int *out_w, int *out_h) {
    int s = width <= height ? width : height, l = width <= height ? height : width;
    int nl = (int)((double)short_side * l / s);
    *out_w = width <= height ? short_side : nl;
    *out_h = width <= height ? nl : short_side;
}

void ln_image_center_offsets(int width, int height, int size, int *left, int *top) {
    *top = round_half_even((height - size) / 2.0);
    *left = round_half_even((width - size) / 2.0);
}

/* ------------------------------------------------------------------ to tensor */

void ln_image_to_chw(const ln_image *src, bool flip, const float *mean, const float *std,
                     float *out) {
    const int ch = src->channels, w = src->width, h = src->height;
    float lut[4][256];
    for (int c = 0; c < ch; c++)
        for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
    const size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src->data + (size_t)y * src->stride;
        for (int c = 0; c < ch; c++) {
            float *o = out + c * plane + (size_t)y * w;
            const float *t = lut[c];
            const uint8_t *r = row + c;
            if (flip)
                for (int x = 0; x < w; x++) o[x] = t[r[(size_t)(w - 1 - x) * ch]];
            else
                for (int x = 0; x < w; x++) o[x] = t[r[(size_t)x * ch]];
        }
    }
}

/* ------------------------------------------------------------------ pipelines */

void ln_image_cfg_ilsvrc(ln_image_cfg *cfg) {
    static const ln_image_cfg ilsvrc = {
        .size = 224,
        .resize = 256,
        .scale = {0.08, 1.0},
        .ratio = {3.0 / 4.0, 4.0 / 3.0},
        .flip_p = 0.5,
        .mean = {0.485f, 0.456f, 0.406f},
        .std = {0.229f, 0.224f, 0.225f},
        .dct_min = 2.0,
    };
    *cfg = ilsvrc;
}

/* One pipeline run: the geometry asked for, then (set by the plan once the header is
 * known) the resampling axes over a view whose input index 0 is scaled pixel
 * (vx, vy). */
typedef struct pipe {
    const ln_image_cfg *cfg;
    bool eval;
    ln_image_rng *rng;     /* train: sample the crop and flip here when not NULL */
    ln_image_crop crop;    /* train: in the encoded image's pixels */
    bool flip;
    ln_resample_axis ax, ay;
    bool have_axes;
    ln_resample_stream stream;
    bool have_stream;
    int vx, vy;
    float *out;            /* (3, size, size) */
    float lut[3][256];     /* byte -> normalised value per channel */
} pipe;

static ln_status check_cfg(const ln_image_cfg *cfg, bool eval, char *err, size_t errlen) {
    if (cfg->size <= 0 || (eval && cfg->resize < cfg->size) || !(cfg->dct_min >= 0))
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "image pipeline: bad settings (size %d, resize %d, dct_min %g)",
                             cfg->size, cfg->resize, cfg->dct_min);
    for (int c = 0; c < 3; c++)
        if (!(cfg->std[c] != 0.0f))
            return ln_image_fail(err, errlen, LN_ERR_ARG, "image pipeline: std[%d] is 0", c);
    if (!eval && !(cfg->scale[0] > 0 && cfg->scale[0] <= cfg->scale[1] && cfg->ratio[0] > 0 &&
                   cfg->ratio[0] <= cfg->ratio[1] && cfg->flip_p >= 0 && cfg->flip_p <= 1))
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "image pipeline: bad scale (%g, %g), ratio (%g, %g) or flip_p %g",
                             cfg->scale[0], cfg->scale[1], cfg->ratio[0], cfg->ratio[1],
                             cfg->flip_p);
    return LN_OK;
}

/* The largest DCT scale 1/s at which a region of w x h pixels keeps at least dct_min
 * times out_w x out_h. */
static int pick_scale(const ln_image_info *info, double w, double h, int out_w, int out_h,
                      double dct_min) {
    if (info->format != LN_IMAGE_JPEG || dct_min <= 0) return 1;
    for (int s = 8; s > 1; s /= 2)
        if (w / s >= dct_min * out_w && h / s >= dct_min * out_h) return s;
    return 1;
}

/* An RGBX output row i of the resampling into the three float planes. */
static void pipe_out(void *ud, int i, const uint8_t *row) {
    pipe *p = ud;
    const int n = p->cfg->size;
    for (int c = 0; c < 3; c++) {
        float *o = p->out + ((size_t)c * n + i) * n;
        const float *t = p->lut[c];
        const uint8_t *r = row + c;
        if (p->flip)
            for (int x = 0; x < n; x++) o[x] = t[r[(size_t)(n - 1 - x) * 4]];
        else
            for (int x = 0; x < n; x++) o[x] = t[r[(size_t)x * 4]];
    }
}

/* A decoded region row y (scaled image) into the resampling stream. */
static void pipe_row(void *ud, int y, const uint8_t *row) {
    pipe *p = ud;
    ln_resample_stream_push(&p->stream, y - p->vy, row);
}

static ln_status pipe_plan(void *ud, const ln_image_info *info, ln_decode_plan *plan,
                           char *err, size_t errlen) {
    pipe *p = ud;
    const ln_image_cfg *cfg = p->cfg;
    const int W = info->width, H = info->height;
    double box[4];
    int in_w, in_h, out_w, out_h, win_x, win_y, s;
    if (p->eval) {
        ln_image_resize_dims(W, H, cfg->resize, &out_w, &out_h);
        ln_image_center_offsets(out_w, out_h, cfg->size, &win_x, &win_y);
        s = pick_scale(info, W, H, out_w, out_h, cfg->dct_min);
        in_w = ln_jpeg_scaled_size(W, s);
        in_h = ln_jpeg_scaled_size(H, s);
        box[0] = box[1] = 0.0;
        box[2] = (double)W / s;
        box[3] = (double)H / s;
        p->vx = p->vy = 0;
    } else {
        if (p->rng) {
            ln_image_rrc_sample(W, H, cfg->scale, cfg->ratio, p->rng, &p->crop);
            p->flip = cfg->flip_p > 0 && ln_image_rng_uniform(p->rng) < cfg->flip_p;
        }
        const ln_image_crop *c = &p->crop;
        if (c->x < 0 || c->y < 0 || c->w <= 0 || c->h <= 0 || c->x > W - c->w ||
            c->y > H - c->h)
            return ln_image_fail(err, errlen, LN_ERR_ARG,
                                 "resized crop: crop %d x %d at (%d, %d) is not inside the "
                                 "%d x %d image", c->w, c->h, c->x, c->y, W, H);
        out_w = out_h = cfg->size;
        win_x = win_y = 0;
        s = pick_scale(info, c->w, c->h, out_w, out_h, cfg->dct_min);
        /* the crop in scaled pixels, inside the view of whole scaled pixels it touches */
        double fx0 = (double)c->x / s, fx1 = (double)(c->x + c->w) / s;
        double fy0 = (double)c->y / s, fy1 = (double)(c->y + c->h) / s;
        p->vx = (int)floor(fx0);
        p->vy = (int)floor(fy0);
        in_w = (int)ceil(fx1) - p->vx; /* ceil(fx1) <= ceil(W / s), the scaled width */
        in_h = (int)ceil(fy1) - p->vy;
        box[0] = fx0 - p->vx;
        box[1] = fy0 - p->vy;
        box[2] = fx1 - p->vx;
        box[3] = fy1 - p->vy;
    }
    ln_status st = ln_resample_axis_init(&p->ax, in_w, box[0], box[2], out_w, win_x,
                                         cfg->size, err, errlen);
    if (st != LN_OK) return st;
    st = ln_resample_axis_init(&p->ay, in_h, box[1], box[3], out_h, win_y, cfg->size, err,
                               errlen);
    if (st != LN_OK) {
        ln_resample_axis_free(&p->ax);
        return st;
    }
    p->have_axes = true;
    plan->scale_denom = s;
    st = ln_resample_stream_init(&p->stream, &p->ax, &p->ay, 4,
                                 ln_resample_axis_lo(&p->ax), pipe_out, p, err, errlen);
    if (st != LN_OK) return st;
    p->have_stream = true;
    /* the region: what the axes read, in scaled-image pixels */
    plan->x0 = p->vx + ln_resample_axis_lo(&p->ax);
    plan->x1 = p->vx + ln_resample_axis_hi(&p->ax);
    plan->y0 = p->vy + ln_resample_axis_lo(&p->ay);
    plan->y1 = p->vy + ln_resample_axis_hi(&p->ay);
    return LN_OK;
}

/* Decode as planned (RGBX), streaming rows through the resampler into out. */
static ln_status pipe_run(pipe *p, const uint8_t *buf, size_t len, float *out,
                          ln_image_info *info, char *err, size_t errlen) {
    ln_image_info tmp_info;
    if (!info) info = &tmp_info;
    p->out = out;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            p->lut[c][v] = ((float)v / 255.0f - p->cfg->mean[c]) / p->cfg->std[c];
    ln_status st = ln_image_decode_rows(buf, len, pipe_plan, pipe_row, p, 4, info, err, errlen);
    if (st == LN_OK && p->stream.next != p->ay.n)
        st = ln_image_fail(err, errlen, LN_ERR_IO, "image pipeline: %d of %d rows produced",
                           p->stream.next, p->ay.n);
    if (p->have_stream) ln_resample_stream_free(&p->stream);
    if (p->have_axes) {
        ln_resample_axis_free(&p->ax);
        ln_resample_axis_free(&p->ay);
    }
    return st;
}

static ln_status check_io(const uint8_t *buf, size_t len, const ln_image_cfg *cfg,
                          const float *out, const char *what, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if ((!buf && len) || !cfg || !out)
        return ln_image_fail(err, errlen, LN_ERR_ARG, "%s: NULL argument", what);
    return LN_OK;
}

ln_status ln_image_resized_crop(const uint8_t *buf, size_t len, const ln_image_cfg *cfg,
                                const ln_image_crop *crop, bool flip, float *out,
                                ln_image_info *info, char *err, size_t errlen) {
    ln_status st = check_io(buf, len, cfg, out, "resized crop", err, errlen);
    if (st == LN_OK && !crop) st = ln_image_fail(err, errlen, LN_ERR_ARG, "resized crop: NULL crop");
    if (st == LN_OK) st = check_cfg(cfg, false, err, errlen);
    if (st != LN_OK) return st;
    pipe p = {.cfg = cfg, .crop = *crop, .flip = flip};
    return pipe_run(&p, buf, len, out, info, err, errlen);
}

ln_status ln_image_train(const uint8_t *buf, size_t len, const ln_image_cfg *cfg,
                         ln_image_rng *rng, float *out, ln_image_info *info,
                         char *err, size_t errlen) {
    ln_status st = check_io(buf, len, cfg, out, "train transform", err, errlen);
    if (st == LN_OK && !rng) st = ln_image_fail(err, errlen, LN_ERR_ARG, "train transform: NULL rng");
    if (st == LN_OK) st = check_cfg(cfg, false, err, errlen);
    if (st != LN_OK) return st;
    pipe p = {.cfg = cfg, .rng = rng};
    return pipe_run(&p, buf, len, out, info, err, errlen);
}

ln_status ln_image_eval(const uint8_t *buf, size_t len, const ln_image_cfg *cfg,
                        float *out, ln_image_info *info, char *err, size_t errlen) {
    ln_status st = check_io(buf, len, cfg, out, "eval transform", err, errlen);
    if (st == LN_OK) st = check_cfg(cfg, true, err, errlen);
    if (st != LN_OK) return st;
    pipe p = {.cfg = cfg, .eval = true};
    return pipe_run(&p, buf, len, out, info, err, errlen);
}

ln_status ln_image_train_ilsvrc(const uint8_t *buf, size_t len, ln_image_rng *rng,
                                float *out, ln_image_info *info, char *err, size_t errlen) {
    ln_image_cfg cfg;
    ln_image_cfg_ilsvrc(&cfg);
    return ln_image_train(buf, len, &cfg, rng, out, info, err, errlen);
}

ln_status ln_image_eval_ilsvrc(const uint8_t *buf, size_t len, float *out,
                               ln_image_info *info, char *err, size_t errlen) {
    ln_image_cfg cfg;
    ln_image_cfg_ilsvrc(&cfg);
    return ln_image_eval(buf, len, &cfg, out, info, err, errlen);
}

/* ------------------------------------------------------------------ small datasets */

ln_status ln_image_crop_flip_planar(const uint8_t *src, int channels, int height, int width,
                                    int pad, double flip_p, const float *mean,
                                    const float *std, ln_image_rng *rng, float *out,
                                    char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!src || !mean || !std || !out)
        return ln_image_fail(err, errlen, LN_ERR_ARG, "random crop: NULL argument");
    if (channels < 1 || channels > 4 || height <= 0 || width <= 0 || pad < 0 ||
        !(flip_p >= 0 && flip_p <= 1))
        return ln_image_fail(err, errlen, LN_ERR_ARG,
                             "random crop: bad image (%d, %d, %d), pad %d or flip_p %g",
                             channels, height, width, pad, flip_p);
    if ((pad > 0 || flip_p > 0) && !rng)
        return ln_image_fail(err, errlen, LN_ERR_ARG, "random crop: NULL rng");
    for (int c = 0; c < channels; c++)
        if (!(std[c] != 0.0f))
            return ln_image_fail(err, errlen, LN_ERR_ARG, "random crop: std[%d] is 0", c);
    /* offsets into the padded image; output (y, x) reads source (y + top - pad, ...) */
    int top = pad > 0 ? (int)ln_image_rng_below(rng, (uint64_t)(2 * pad + 1)) : 0;
    int left = pad > 0 ? (int)ln_image_rng_below(rng, (uint64_t)(2 * pad + 1)) : 0;
    bool flip = flip_p > 0 && ln_image_rng_uniform(rng) < flip_p;
    for (int c = 0; c < channels; c++) {
        const float zero = (0.0f - mean[c]) / std[c];
        float lut[256];
        for (int v = 0; v < 256; v++) lut[v] = ((float)v / 255.0f - mean[c]) / std[c];
        const uint8_t *plane = src + (size_t)c * height * width;
        for (int y = 0; y < height; y++) {
            float *o = out + ((size_t)c * height + y) * width;
            int sy = y + top - pad;
            for (int x = 0; x < width; x++) {
                int xo = flip ? width - 1 - x : x; /* flip after the crop */
                int sx = xo + left - pad;
                bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
                o[x] = inside ? lut[plane[(size_t)sy * width + sx]] : zero;
            }
        }
    }
    return LN_OK;
}
