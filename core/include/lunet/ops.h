/* Differentiable ops. Each checks its arguments (the error names the argument and the
 * shapes), dispatches to the reference, fast CPU or CUDA kernel by the tensors' device
 * and dtype (see dispatch in core/src/dispatch.h), and records an autograd node when
 * grad mode is on and an input requires grad. Inputs may be any strided views; outputs
 * are new contiguous tensors handed to the caller (one reference). Dimensions are
 * 0-based. Images are NCHW. */
#ifndef LUNET_OPS_H
#define LUNET_OPS_H

#include "autograd.h"

/* ---------------- elementwise (numpy broadcasting for binary ops) ---------------- */
ln_status ln_add(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out);
ln_status ln_sub(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out);
ln_status ln_mul(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out);
ln_status ln_div(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out);
/* out = a * scale + shift */
ln_status ln_affine_scalar(ln_ctx *ctx, ln_tensor *a, double scale, double shift,
                           ln_tensor **out);
ln_status ln_pow_scalar(ln_ctx *ctx, ln_tensor *a, double exponent, ln_tensor **out);
ln_status ln_relu(ln_ctx *ctx, ln_tensor *x, ln_tensor **out);
ln_status ln_relu6(ln_ctx *ctx, ln_tensor *x, ln_tensor **out);
ln_status ln_sigmoid(ln_ctx *ctx, ln_tensor *x, ln_tensor **out);
/* Inverted dropout: zeroes with probability p, scales kept values by 1/(1-p).
 * training=false or p=0 returns x's values unchanged (a copy). */
ln_status ln_dropout(ln_ctx *ctx, ln_tensor *x, double p, bool training, ln_tensor **out);

/* ---------------- reductions ---------------- */
/* dim < 0: over all elements (0-d result). Otherwise over dim, keepdim as in PyTorch. */
ln_status ln_sum(ln_ctx *ctx, ln_tensor *x, int dim, bool keepdim, ln_tensor **out);
ln_status ln_mean(ln_ctx *ctx, ln_tensor *x, int dim, bool keepdim, ln_tensor **out);

/* ---------------- shape (differentiable views and copies) ---------------- */
ln_status ln_reshape(ln_ctx *ctx, ln_tensor *x, int ndim, const int64_t *shape,
                     ln_tensor **out);
ln_status ln_transpose(ln_ctx *ctx, ln_tensor *x, int d0, int d1, ln_tensor **out);
ln_status ln_narrow(ln_ctx *ctx, ln_tensor *x, int dim, int64_t start, int64_t length,
                    ln_tensor **out);
ln_status ln_contiguous(ln_ctx *ctx, ln_tensor *x, ln_tensor **out);
ln_status ln_cat(ln_ctx *ctx, int n, ln_tensor *const *xs, int dim, ln_tensor **out);
/* Option-A shortcut of CIFAR ResNets: x[:, :, ::2, ::2] (when stride 2) then zero-pad
 * `pad` channels on each side. x is (N,C,H,W) -> (N, C+2*pad, H', W'). */
ln_status ln_shortcut_a(ln_ctx *ctx, ln_tensor *x, int stride, int64_t pad, ln_tensor **out);

/* ---------------- convolution ---------------- */
typedef struct ln_conv2d_params {
    int stride_h, stride_w;
    int pad_h, pad_w;
    int groups;
} ln_conv2d_params;

/* x (N,Cin,H,W), w (Cout,Cin/groups,KH,KW), b (Cout) or NULL -> (N,Cout,OH,OW). */
ln_status ln_conv2d(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, ln_tensor *b,
                    ln_conv2d_params p, ln_tensor **out);
/* ECA: 1-D convolution across channels of a pooled (N,C,1,1) or (N,C) tensor with a
 * (1,1,K) or (K) kernel, zero padding `pad`, no bias -> same shape as x. */
ln_status ln_conv1d_channels(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, int pad,
                             ln_tensor **out);

/* ---------------- normalisation and pooling ---------------- */
/* x (N,C,H,W); running_mean/var (C) updated in place when training (momentum, and the
 * unbiased batch variance as PyTorch keeps it); weight/bias (C) or NULL.
 * Eval uses the running statistics. */
ln_status ln_batch_norm2d(ln_ctx *ctx, ln_tensor *x, ln_tensor *running_mean,
                          ln_tensor *running_var, ln_tensor *weight, ln_tensor *bias,
                          bool training, double momentum, double eps, ln_tensor **out);
typedef struct ln_pool2d_params {
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
} ln_pool2d_params;
ln_status ln_max_pool2d(ln_ctx *ctx, ln_tensor *x, ln_pool2d_params p, ln_tensor **out);
/* (N,C,H,W) -> (N,C,1,1) */
ln_status ln_global_avg_pool2d(ln_ctx *ctx, ln_tensor *x, ln_tensor **out);

/* ---------------- linear algebra ---------------- */
/* a (M,K) @ b (K,N) -> (M,N) */
ln_status ln_matmul(ln_ctx *ctx, ln_tensor *a, ln_tensor *b, ln_tensor **out);
/* x (N,in), w (out,in), b (out) or NULL -> (N,out) */
ln_status ln_linear(ln_ctx *ctx, ln_tensor *x, ln_tensor *w, ln_tensor *b, ln_tensor **out);

/* ---------------- losses and metrics ---------------- */
/* logits (N,C) float, labels (N) i64 holding 0-based classes in [0,C) (the Lua layer
 * converts from 1-based). Mean over the batch of -log_softmax(logits)[label]. */
ln_status ln_cross_entropy(ln_ctx *ctx, ln_tensor *logits, ln_tensor *labels,
                           ln_tensor **out);
/* Number of rows whose label is among the k largest logits (not differentiable), k in
 * [1,C]. Ties: classes rank by logit descending, NaN above every number, equal logits
 * by class index (lower first), so the result never depends on a sort's tie order. */
ln_status ln_topk_correct(ln_ctx *ctx, ln_tensor *logits, ln_tensor *labels, int k,
                          int64_t *correct);

/* ---------------- optimiser kernels (no autograd, in place) ---------------- */
/* PyTorch SGD: g = grad + wd*param; buf = momentum*buf + g (buf = g on first step,
 * signalled by first_step); g = nesterov ? g + momentum*buf : buf; param -= lr*g. */
typedef struct ln_sgd_params {
    double lr, momentum, weight_decay, dampening;
    bool nesterov;
} ln_sgd_params;
ln_status ln_sgd_step(ln_ctx *ctx, ln_tensor *param, const ln_tensor *grad,
                      ln_tensor *momentum_buf, bool first_step, ln_sgd_params p);

#endif
