/* Convolution kernels: reference (double), fast CPU (f32) and CUDA (f32).
 *
 * conv2d: x is (N,Cin,H,W), w is (Cout,Cin/groups,KH,KW), b is (Cout) or NULL,
 * y is (N,Cout,OH,OW) with OH = (H + 2*ph - KH)/sh + 1 (likewise OW): cross-correlation
 * with zero padding, as in PyTorch. Input channel block g (Cin/groups channels) feeds
 * output channel block g (Cout/groups channels).
 * The backward writes (never accumulates) gx (like x), gw (like w) and gb (Cout); each
 * may be NULL when that gradient is not wanted.
 *
 * conv1d across channels (ECA): x is (N,C), w is (K) with K == 2*pad + 1, y is (N,C):
 * y[n,c] = sum_k w[k] * x[n, c + k - pad], zero outside [0,C).
 *
 * All arrays are contiguous. */
#ifndef LUNET_KERNELS_CONV_H
#define LUNET_KERNELS_CONV_H

#include <stdint.h>
#include "../internal.h"

/* Every extent and parameter of one conv2d call (all int64 so it can serve as a key). */
typedef struct ln_conv_shape {
    int64_t n, cin, h, w;  /* x */
    int64_t cout, kh, kw;  /* w is (cout, cin/groups, kh, kw) */
    int64_t oh, ow;        /* y is (n, cout, oh, ow) */
    int64_t sh, sw, ph, pw;
    int64_t groups;
} ln_conv_shape;

void ln_ref_conv2d_fwd(const ln_conv_shape *s, const double *x, const double *w,
                       const double *b, double *y);
void ln_ref_conv2d_bwd(const ln_conv_shape *s, const double *x, const double *w,
                       const double *gy, double *gx, double *gw, double *gb);

/* oneDNN convolution primitives, cached in the context (cpu/conv_dnnl.c). */
ln_status ln_cpu_conv2d_fwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x,
                            const float *w, const float *b, float *y);
ln_status ln_cpu_conv2d_bwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x,
                            const float *w, const float *gy, float *gx, float *gw, float *gb);

void ln_ref_conv1d_channels_fwd(int64_t n, int64_t c, int64_t k, int64_t pad,
                                const double *x, const double *w, double *y);
/* gx (N,C) and gw (K) may each be NULL. */
void ln_ref_conv1d_channels_bwd(int64_t n, int64_t c, int64_t k, int64_t pad,
                                const double *x, const double *w, const double *gy,
                                double *gx, double *gw);

void ln_cpu_conv1d_channels_fwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                const float *x, const float *w, float *y);
void ln_cpu_conv1d_channels_bwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                const float *x, const float *w, const float *gy,
                                float *gx, float *gw);

/* CUDA: conv2d on cuDNN (cuda/conv_cudnn.c: algorithms chosen per shape and cached
 * in the CUDA state), conv1d_channels on its own kernel (cuda/conv1d.cu). Device
 * pointers; same contracts as above (gradient outputs may be NULL). */
ln_status ln_cuda_conv2d_fwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x,
                             const float *w, const float *b, float *y);
ln_status ln_cuda_conv2d_bwd(ln_ctx *ctx, const ln_conv_shape *s, const float *x,
                             const float *w, const float *gy, float *gx, float *gw, float *gb);
ln_status ln_cuda_conv1d_channels_fwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                      const float *x, const float *w, float *y);
ln_status ln_cuda_conv1d_channels_bwd(ln_ctx *ctx, int64_t n, int64_t c, int64_t k, int64_t pad,
                                      const float *x, const float *w, const float *gy,
                                      float *gx, float *gw);

#endif
