/* Every op of lunet/ops.h on CUDA against the CPU, forward and backward, at several
 * shapes (cuda_parity.h runs both sides from the same values and compares outputs,
 * input gradients and in-place updates): conv2d (groups, depthwise, strides, padding,
 * bias, an empty batch, strided inputs, the deterministic and benchmark algorithm
 * choices), conv1d_channels, batch_norm2d (train with running statistics, eval, no
 * affine), max and global average pooling, matmul and linear (transposed operands),
 * the binary ops under broadcasting patterns, affine/pow, dropout (mask semantics and
 * determinism), sum/mean, the shape ops (strided device copies, narrow, cat, the
 * option-A shortcut), cross-entropy (incl. bad labels) and top-k, and the SGD step.
 * Tolerances are per op family (cuda_parity.h). Without a device the checks are
 * rehearsed with the reference CPU kernels and the test reports SKIPPED. */
#include <stdio.h>
#include <string.h>
#include "cuda_parity.h"

/* Returns the status of a failing call from a tu_fn. */
#define TRY(expr) do { ln_status try_ = (expr); if (try_ != LN_OK) return try_; } while (0)

static ln_tensor *randn(ln_ctx *ctx, int ndim, const int64_t *shape, bool grad) {
    ln_tensor *t = tu_randn(ctx, LN_F32, ndim, shape);
    if (t) t->requires_grad = grad;
    return t;
}

static ln_tensor *uniform(ln_ctx *ctx, int ndim, const int64_t *shape, double lo, double hi, bool grad) {
    ln_tensor *t = tu_rand_uniform(ctx, LN_F32, ndim, shape, lo, hi);
    if (t) t->requires_grad = grad;
    return t;
}

/* i64 labels (n) in [0, classes) */
static ln_tensor *labels_of(ln_ctx *ctx, int64_t n, int64_t classes) {
    double v[4096];
    for (int64_t i = 0; i < n && i < 4096; i++) v[i] = (double)((i * 7 + 3) % classes);
    ln_tensor *t = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_I64, 1, &n, v, &t));
    return t;
}

static void release_all(int n, ln_tensor **ts) {
    for (int i = 0; i < n; i++) ln_tensor_release(ts[i]);
}

/* ================================================================ conv */
typedef struct conv_case {
    const char *name;
    int64_t x[4], w[4];
    ln_conv2d_params p;
    bool bias;
} conv_case;

static ln_status conv_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_conv2d(ctx, in[0], in[1], in[2], *(const ln_conv2d_params *)ud, out);
}

/* conv2d of x with its H and W swapped (a strided input) */
static ln_status conv_t_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    ln_tensor *xt = NULL;
    TRY(ln_transpose(ctx, in[0], 2, 3, &xt));
    ln_status st = ln_conv2d(ctx, xt, in[1], in[2], *(const ln_conv2d_params *)ud, out);
    ln_tensor_release(xt);
    return st;
}

static void conv_inputs(ln_ctx *ctx, const conv_case *c, ln_tensor **in) {
    in[0] = randn(ctx, 4, c->x, true);
    in[1] = randn(ctx, 4, c->w, true);
    in[2] = c->bias ? randn(ctx, 1, c->w, true) : NULL;
}

static void test_conv(const par_side *P) {
    static const conv_case cases[] = {
        {"3x3 s1 p1 bias", {2, 3, 9, 9}, {8, 3, 3, 3}, {1, 1, 1, 1, 1}, true},
        {"3x3 s2 p1 groups 2", {2, 4, 10, 10}, {6, 2, 3, 3}, {2, 2, 1, 1, 2}, false},
        {"depthwise 3x3 s1 p1", {3, 8, 7, 7}, {8, 1, 3, 3}, {1, 1, 1, 1, 8}, false},
        {"depthwise x2 multiplier s2 bias", {2, 4, 9, 9}, {8, 1, 3, 3}, {2, 2, 1, 1, 4}, true},
        {"1x1 16->32 bias", {2, 16, 8, 8}, {32, 16, 1, 1}, {1, 1, 0, 0, 1}, true},
        {"5x3 s(2,1) p(2,1) bias", {1, 3, 11, 13}, {5, 3, 5, 3}, {2, 1, 2, 1, 1}, true},
        {"7x7 s2 p3 stem", {2, 3, 24, 24}, {8, 3, 7, 7}, {2, 2, 3, 3, 1}, false},
        {"cifar 16->16 16x16 b4", {4, 16, 16, 16}, {16, 16, 3, 3}, {1, 1, 1, 1, 1}, false},
        {"groups 4 16->32 bias", {2, 16, 10, 10}, {32, 4, 3, 3}, {1, 1, 1, 1, 4}, true},
        {"kernel larger than input", {1, 1, 2, 2}, {1, 1, 3, 3}, {1, 1, 1, 1, 1}, true},
        {"empty batch", {0, 3, 5, 5}, {4, 3, 3, 3}, {1, 1, 1, 1, 1}, true},
    };
    char what[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        ln_tensor *in[3];
        conv_inputs(P->ctx, c, in);
        snprintf(what, sizeof what, "conv2d %s", c->name);
        par_check(P, conv_fn, (void *)&c->p, 3, in, TOL_GEMM, 0, what);
        /* only the input gradient: backward runs without the weight gradient */
        in[1]->requires_grad = false;
        if (in[2]) in[2]->requires_grad = false;
        snprintf(what, sizeof what, "conv2d %s, input gradient only", c->name);
        par_check(P, conv_fn, (void *)&c->p, 3, in, TOL_GEMM, 0, what);
        release_all(3, in);
    }
    /* a strided (transposed) input */
    const conv_case *sq = &cases[0];
    ln_tensor *in[3];
    conv_inputs(P->ctx, sq, in);
    par_check(P, conv_t_fn, (void *)&sq->p, 3, in, TOL_GEMM, 0, "conv2d of a transposed input");

    /* the cached algorithms serve a second call; deterministic and benchmark choices */
    par_check(P, conv_fn, (void *)&sq->p, 3, in, TOL_GEMM, 0, "conv2d again (cached algorithms)");
    ln_ctx_set_cudnn_benchmark(P->ctx, true);
    par_check(P, conv_fn, (void *)&sq->p, 3, in, TOL_GEMM, 0, "conv2d, benchmarked algorithms");
    ln_ctx_set_cudnn_benchmark(P->ctx, false);
    ln_ctx_set_cudnn_deterministic(P->ctx, true);
    CHECK(ln_ctx_cudnn_deterministic(P->ctx) && !ln_ctx_cudnn_benchmark(P->ctx), "cudnn flags read back");
    par_check(P, conv_fn, (void *)&sq->p, 3, in, TOL_GEMM, 0, "conv2d, deterministic algorithms");
    ln_tensor *u1[3], *u2[3], *o1 = NULL, *o2 = NULL, *g1[3], *g2[3];
    par_run(P, true, conv_fn, (void *)&sq->p, 3, in, u1, &o1, g1);
    par_run(P, true, conv_fn, (void *)&sq->p, 3, in, u2, &o2, g2);
    par_close(P, o2, o1, TOL_EXACT, "deterministic conv2d: output run to run");
    for (int i = 0; i < 3; i++)
        if (g1[i] || g2[i]) par_close(P, g2[i], g1[i], TOL_EXACT, "deterministic conv2d: gradients run to run");
    ln_ctx_set_cudnn_deterministic(P->ctx, false);
    release_all(3, u1); release_all(3, u2); release_all(3, g1); release_all(3, g2);
    ln_tensor_release(o1); ln_tensor_release(o2);
    release_all(3, in);
}

typedef struct conv1d_case { int64_t x[4]; int xdim; int64_t w[3]; int wdim; int pad; } conv1d_case;

static ln_status conv1d_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_conv1d_channels(ctx, in[0], in[1], *(const int *)ud, out);
}

static void test_conv1d(const par_side *P) {
    static const conv1d_case cases[] = {
        {{4, 17}, 2, {3}, 1, 1},
        {{2, 64, 1, 1}, 4, {1, 1, 5}, 3, 2},
        {{3, 5}, 2, {7}, 1, 3},
        {{16, 320}, 2, {5}, 1, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ln_tensor *in[2] = {randn(P->ctx, cases[i].xdim, cases[i].x, true),
                            randn(P->ctx, cases[i].wdim, cases[i].w, true)};
        char what[64];
        snprintf(what, sizeof what, "conv1d_channels case %zu", i);
        par_check(P, conv1d_fn, (void *)&cases[i].pad, 2, in, TOL_SUM, 0, what);
        release_all(2, in);
    }
}

/* ================================================================ batch norm */
typedef struct bn_cfg { bool training; double momentum, eps; } bn_cfg;

static ln_status bn_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const bn_cfg *c = ud;
    return ln_batch_norm2d(ctx, in[0], in[1], in[2], in[3], in[4], c->training, c->momentum, c->eps, out);
}

static void test_batch_norm(const par_side *P) {
    static const struct { int64_t x[4]; bool affine, running, training; double shift; } cases[] = {
        {{4, 3, 5, 5}, true, true, true, 0},
        {{2, 16, 7, 7}, false, true, true, 0},
        {{16, 8, 32, 32}, true, true, true, 0},  /* many values per channel: partial sums */
        {{8, 5, 1, 1}, true, true, true, 0},
        {{2, 6, 4, 4}, true, false, true, 0},    /* no running statistics */
        {{4, 3, 6, 6}, true, true, true, 100},   /* |mean| >> std */
        {{4, 3, 5, 5}, true, true, false, 0},    /* eval */
        {{3, 7, 6, 5}, false, true, false, 0},   /* eval, no affine */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t C = cases[i].x[1];
        ln_tensor *in[5] = {randn(P->ctx, 4, cases[i].x, false), NULL, NULL, NULL, NULL};
        if (cases[i].shift != 0) {
            ln_tensor *sh = NULL;
            CHECK_OK(P->ctx, ln_affine_scalar(P->ctx, in[0], 1.0, cases[i].shift, &sh));
            ln_tensor_release(in[0]);
            in[0] = sh;
        }
        in[0]->requires_grad = true;
        if (cases[i].running) {
            in[1] = randn(P->ctx, 1, &C, false);
            in[2] = uniform(P->ctx, 1, &C, 0.5, 2, false);
        }
        if (cases[i].affine) {
            in[3] = uniform(P->ctx, 1, &C, 0.5, 1.5, true);
            in[4] = randn(P->ctx, 1, &C, true);
        }
        bn_cfg cfg = {cases[i].training, 0.1, 1e-5};
        char what[96];
        snprintf(what, sizeof what, "batch_norm2d case %zu (%s)", i, cfg.training ? "train" : "eval");
        par_check(P, bn_fn, &cfg, 5, in, TOL_GEMM, cases[i].running ? 0x6u : 0u, what);
        release_all(5, in);
    }
}

/* ================================================================ pooling */
static ln_status maxpool_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_max_pool2d(ctx, in[0], *(const ln_pool2d_params *)ud, out);
}

static ln_status gap_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    return ln_global_avg_pool2d(ctx, in[0], out);
}

static void test_pool(const par_side *P) {
    static const struct { int64_t x[4]; ln_pool2d_params p; } cases[] = {
        {{2, 3, 6, 6}, {2, 2, 2, 2, 0, 0}},
        {{2, 2, 7, 7}, {3, 3, 2, 2, 1, 1}},
        {{1, 2, 5, 5}, {3, 3, 1, 1, 1, 1}},
        {{2, 1, 5, 6}, {2, 3, 1, 2, 1, 1}},
        {{3, 2, 9, 8}, {3, 2, 3, 2, 0, 1}},
        {{4, 16, 24, 24}, {3, 3, 2, 2, 1, 1}},
    };
    char what[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ln_tensor *x = randn(P->ctx, 4, cases[i].x, true);
        snprintf(what, sizeof what, "max_pool2d case %zu", i);
        par_check(P, maxpool_fn, (void *)&cases[i].p, 1, &x, TOL_ELEM, 0, what);
        x->requires_grad = false; /* forward without indices */
        snprintf(what, sizeof what, "max_pool2d case %zu without grad", i);
        par_check(P, maxpool_fn, (void *)&cases[i].p, 1, &x, TOL_EXACT, 0, what);
        ln_tensor_release(x);
    }
    /* ties: every window's first element takes the gradient, overlapping windows add */
    ln_tensor *ones = NULL;
    CHECK_OK(P->ctx, ln_tensor_full(P->ctx, LN_F32, ln_cpu(), 4, (int64_t[]){1, 2, 4, 4}, 1.0, &ones));
    ones->requires_grad = true;
    ln_pool2d_params tie = {2, 2, 1, 1, 0, 0};
    par_check(P, maxpool_fn, &tie, 1, &ones, TOL_ELEM, 0, "max_pool2d ties");
    ln_tensor_release(ones);

    static const int64_t gap_shapes[][4] = {{2, 3, 5, 5}, {4, 64, 7, 7}, {2, 5, 1, 1}, {1, 2, 64, 64}};
    for (size_t i = 0; i < sizeof gap_shapes / sizeof gap_shapes[0]; i++) {
        ln_tensor *x = randn(P->ctx, 4, gap_shapes[i], true);
        snprintf(what, sizeof what, "global_avg_pool2d case %zu", i);
        par_check(P, gap_fn, NULL, 1, &x, TOL_SUM, 0, what);
        ln_tensor_release(x);
    }
}

/* ================================================================ matmul, linear */
static ln_status matmul_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    return ln_matmul(ctx, in[0], in[1], out);
}

/* a^T @ b for a given as (K,M): a transposed view operand */
static ln_status matmul_at_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    ln_tensor *at = NULL;
    TRY(ln_transpose(ctx, in[0], 0, 1, &at));
    ln_status st = ln_matmul(ctx, at, in[1], out);
    ln_tensor_release(at);
    return st;
}

/* B @ B^T, the regulariser's Gram matrix */
static ln_status gram_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    ln_tensor *bt = NULL;
    TRY(ln_transpose(ctx, in[0], 0, 1, &bt));
    ln_status st = ln_matmul(ctx, in[0], bt, out);
    ln_tensor_release(bt);
    return st;
}

static ln_status linear_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    return ln_linear(ctx, in[0], in[1], in[2], out);
}

static void test_linear_algebra(const par_side *P) {
    static const int64_t mm[][3] = {{5, 7, 3}, {64, 300, 33}, {1, 1, 1}, {3, 0, 4}, {17, 129, 1}};
    char what[96];
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        ln_tensor *in[2] = {randn(P->ctx, 2, (int64_t[]){mm[i][0], mm[i][1]}, true),
                            randn(P->ctx, 2, (int64_t[]){mm[i][1], mm[i][2]}, true)};
        snprintf(what, sizeof what, "matmul %lldx%lldx%lld", (long long)mm[i][0], (long long)mm[i][1],
                 (long long)mm[i][2]);
        par_check(P, matmul_fn, NULL, 2, in, TOL_GEMM, 0, what);
        release_all(2, in);
    }
    ln_tensor *at[2] = {randn(P->ctx, 2, (int64_t[]){7, 5}, true), randn(P->ctx, 2, (int64_t[]){7, 4}, true)};
    par_check(P, matmul_at_fn, NULL, 2, at, TOL_GEMM, 0, "matmul of a transposed view");
    release_all(2, at);
    ln_tensor *b = randn(P->ctx, 2, (int64_t[]){24, 147}, true);
    par_check(P, gram_fn, NULL, 1, &b, TOL_GEMM, 0, "B @ B^T");
    ln_tensor_release(b);

    static const struct { int64_t rows, in, out; bool bias; } lin[] = {
        {8, 20, 5, true}, {8, 20, 5, false}, {1, 1, 1, true}, {64, 512, 100, true}};
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        ln_tensor *in[3] = {randn(P->ctx, 2, (int64_t[]){lin[i].rows, lin[i].in}, true),
                            randn(P->ctx, 2, (int64_t[]){lin[i].out, lin[i].in}, true),
                            lin[i].bias ? randn(P->ctx, 1, &lin[i].out, true) : NULL};
        snprintf(what, sizeof what, "linear %lld x %lld -> %lld%s", (long long)lin[i].rows, (long long)lin[i].in,
                 (long long)lin[i].out, lin[i].bias ? " bias" : "");
        par_check(P, linear_fn, NULL, 3, in, TOL_GEMM, 0, what);
        release_all(3, in);
    }
}

/* ================================================================ elementwise */
typedef ln_status (*binary_op)(ln_ctx *, ln_tensor *, ln_tensor *, ln_tensor **);

static ln_status binary_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return (*(const binary_op *)ud)(ctx, in[0], in[1], out);
}

static void test_binary(const par_side *P) {
    static const struct { const char *name; binary_op op; } ops[] = {
        {"add", ln_add}, {"sub", ln_sub}, {"mul", ln_mul}, {"div", ln_div}};
    static const struct { int an, bn; int64_t a[5], b[5]; } shapes[] = {
        {4, 4, {2, 3, 4, 5}, {2, 3, 4, 5}},
        {4, 4, {2, 3, 4, 5}, {1, 3, 1, 1}},   /* channel broadcast */
        {4, 1, {2, 3, 4, 5}, {5}},            /* trailing dim */
        {2, 2, {4, 1}, {1, 6}},               /* both broadcast */
        {0, 2, {0}, {3, 4}},                  /* 0-d with a matrix */
        {4, 3, {2, 1, 4, 1}, {3, 1, 5}},      /* interleaved */
        {5, 5, {1, 3, 1, 7, 1}, {2, 1, 5, 7, 3}},
        {1, 1, {1048583}, {1048583}},         /* past the grid's stride */
    };
    char what[96];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
            ln_tensor *in[2] = {randn(P->ctx, shapes[s].an, shapes[s].a, true),
                                uniform(P->ctx, shapes[s].bn, shapes[s].b, 0.5, 2, true)};
            snprintf(what, sizeof what, "%s, shapes case %zu", ops[o].name, s);
            par_check(P, binary_fn, (void *)&ops[o].op, 2, in, TOL_SUM, 0, what);
            /* one operand constant: only the other's gradient */
            in[o % 2]->requires_grad = false;
            snprintf(what, sizeof what, "%s, shapes case %zu, one gradient", ops[o].name, s);
            par_check(P, binary_fn, (void *)&ops[o].op, 2, in, TOL_SUM, 0, what);
            release_all(2, in);
        }
}

typedef struct scalar_case { bool pow; double a, b; } scalar_case;

static ln_status scalar_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const scalar_case *c = ud;
    return c->pow ? ln_pow_scalar(ctx, in[0], c->a, out) : ln_affine_scalar(ctx, in[0], c->a, c->b, out);
}

static void test_scalar(const par_side *P) {
    static const scalar_case cases[] = {{false, 2.5, -1}, {false, 0, 3}, {true, 2, 0}, {true, 1, 0},
                                        {true, 0.5, 0}, {true, 3, 0}, {true, -1.5, 0}, {true, 0, 0}};
    char what[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ln_tensor *x = uniform(P->ctx, 2, (int64_t[]){7, 1001}, 0.5, 2, true);
        snprintf(what, sizeof what, "%s case %zu", cases[i].pow ? "pow_scalar" : "affine_scalar", i);
        par_check(P, scalar_fn, (void *)&cases[i], 1, &x, TOL_ELEM, 0, what);
        ln_tensor_release(x);
    }
}

static ln_status dropout_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_dropout(ctx, in[0], *(const double *)ud, true, out);
}

/* The mask: each value is 0 or x/(1-p), about a fraction p zeros, the gradient is the
 * backward seed times the mask, and a seed gives the same values (the mask is drawn on
 * the host: the same on both sides too). */
static void test_dropout(const par_side *P) {
    ln_ctx *ctx = P->ctx;
    int64_t n = 100000;
    double p = 0.3;
    ln_tensor *x = uniform(ctx, 1, &n, 1, 2, true), *uc[1], *u1[1], *u2[1], *yc = NULL, *y1 = NULL, *y2 = NULL;
    ln_tensor *gc[1], *g1[1], *g2[1];
    ln_ctx_manual_seed(ctx, 11);
    par_run(P, false, dropout_fn, &p, 1, &x, uc, &yc, gc);
    ln_ctx_manual_seed(ctx, 11);
    par_run(P, true, dropout_fn, &p, 1, &x, u1, &y1, g1);
    ln_ctx_manual_seed(ctx, 11);
    par_run(P, true, dropout_fn, &p, 1, &x, u2, &y2, g2);
    par_close(P, y1, yc, TOL_ELEM, "dropout: the same seed on both sides, output");
    par_close(P, g1[0], gc[0], TOL_ELEM, "dropout: the same seed on both sides, gradient");
    par_close(P, y2, y1, TOL_EXACT, "dropout: the same seed twice, output");
    par_close(P, g2[0], g1[0], TOL_EXACT, "dropout: the same seed twice, gradient");
    ln_tensor *w = y1 ? par_weights(ctx, y1) : NULL;
    double *xv = malloc((size_t)n * sizeof *xv), *yv = malloc((size_t)n * sizeof *yv);
    double *gv = malloc((size_t)n * sizeof *gv), *wv = malloc((size_t)n * sizeof *wv);
    if (xv && yv && gv && wv && w && g1[0] && ln_tensor_to_f64(ctx, x, xv) == LN_OK &&
        ln_tensor_to_f64(ctx, y1, yv) == LN_OK && ln_tensor_to_f64(ctx, g1[0], gv) == LN_OK &&
        ln_tensor_to_f64(ctx, w, wv) == LN_OK) {
        int64_t zeros = 0, bad = 0;
        double keep = 1 / (1 - p);
        for (int64_t i = 0; i < n; i++) {
            if (yv[i] == 0) { zeros++; bad += gv[i] != 0; continue; }
            bad += fabs(yv[i] - xv[i] * keep) > 1e-6 * fabs(yv[i]) || fabs(gv[i] - wv[i] * keep) > 1e-6;
        }
        CHECK(bad == 0, "dropout: %lld values are neither 0 nor x/(1-p), or their gradient is not seed * mask",
              (long long)bad);
        CHECK(fabs((double)zeros / (double)n - p) < 0.01, "dropout: %lld zeros of %lld for p = %g", (long long)zeros,
              (long long)n, p);
    } else {
        CHECK(0, "dropout: reading the results back failed");
    }
    free(xv); free(yv); free(gv); free(wv);
    ln_tensor *ev = NULL, *xd = par_copy(P, true, x);
    CHECK_OK(ctx, ln_dropout(ctx, xd, p, false, &ev));
    par_close(P, ev, x, TOL_EXACT, "dropout in eval mode is a copy");
    ln_tensor *all[] = {ev, xd, w, uc[0], u1[0], u2[0], gc[0], g1[0], g2[0], yc, y1, y2, x};
    release_all((int)(sizeof all / sizeof all[0]), all);
}

/* ================================================================ reductions */
typedef struct red_case { bool mean; int dim; bool keepdim; } red_case;

static ln_status reduce_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const red_case *c = ud;
    return c->mean ? ln_mean(ctx, in[0], c->dim, c->keepdim, out) : ln_sum(ctx, in[0], c->dim, c->keepdim, out);
}

static void test_reduce(const par_side *P) {
    static const struct { int nd; int64_t shape[5]; } shapes[] = {
        {3, {3, 4, 5}}, {2, {1000, 3}}, {2, {5, 20000}}, {5, {2, 3, 4, 5, 6}}, {1, {1}}, {2, {4, 1}}};
    char what[96];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int dim = -1; dim < shapes[s].nd; dim++)
            for (int k = 0; k < 4; k++) {
                red_case c = {k & 1, dim, (k & 2) != 0};
                if (dim < 0 && c.keepdim) continue;
                ln_tensor *x = randn(P->ctx, shapes[s].nd, shapes[s].shape, true);
                snprintf(what, sizeof what, "%s shape case %zu dim %d%s", c.mean ? "mean" : "sum", s, dim,
                         c.keepdim ? " keepdim" : "");
                par_check(P, reduce_fn, &c, 1, &x, TOL_SUM, 0, what);
                ln_tensor_release(x);
            }
}

/* ================================================================ shape ops */
typedef struct view_case { int kind; } view_case;

/* 0: contiguous(transpose(x, 0, 2)); 1: narrow(x, 1, 1, 2); 2: reshape of a transposed
 * x; 3: contiguous(narrow) times 2 */
static ln_status view_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    int kind = ((const view_case *)ud)->kind;
    ln_tensor *v = NULL;
    ln_status st;
    switch (kind) {
    case 0:
        TRY(ln_transpose(ctx, in[0], 0, 2, &v));
        st = ln_contiguous(ctx, v, out);
        break;
    case 1:
        return ln_narrow(ctx, in[0], 1, 1, 2, out);
    case 2:
        TRY(ln_transpose(ctx, in[0], 1, 2, &v));
        st = ln_reshape(ctx, v, 2, (int64_t[]){-1, 4}, out);
        break;
    default: {
        ln_tensor *c = NULL;
        TRY(ln_narrow(ctx, in[0], 2, 1, 3, &v));
        st = ln_contiguous(ctx, v, &c);
        if (st == LN_OK) st = ln_affine_scalar(ctx, c, 2.0, 0.0, out);
        ln_tensor_release(c);
    }
    }
    ln_tensor_release(v);
    return st;
}

static ln_status cat_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_cat(ctx, 3, in, *(const int *)ud, out);
}

typedef struct shortcut_case { int stride; int64_t pad; } shortcut_case;

static ln_status shortcut_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    const shortcut_case *c = ud;
    return ln_shortcut_a(ctx, in[0], c->stride, c->pad, out);
}

/* copy_ into strided device views, from the host and from the device, of f32, i64 and
 * u8 tensors: the same as on the CPU */
static void strided_copies(const par_side *P) {
    ln_ctx *ctx = P->ctx;
    const ln_dtype dts[] = {LN_F32, LN_I64, LN_U8};
    for (int k = 0; k < 3; k++) {
        ln_tensor *base = tu_rand_uniform(ctx, LN_F64, 3, (int64_t[]){4, 6, 5}, 0, 100), *src = NULL;
        ln_tensor *bc = NULL, *host_dst = NULL, *dev_dst = NULL, *hv = NULL, *dv = NULL, *srcd = NULL, *dv2 = NULL;
        CHECK_OK(ctx, ln_tensor_to_dtype(ctx, base, dts[k], &bc));
        src = tu_rand_uniform(ctx, LN_F64, 3, (int64_t[]){4, 3, 5}, 0, 100);
        ln_tensor *src_t = NULL;
        CHECK_OK(ctx, ln_tensor_to_dtype(ctx, src, dts[k], &src_t));
        host_dst = par_copy(P, false, bc);
        dev_dst = par_copy(P, true, bc);
        CHECK_OK(ctx, ln_tensor_narrow_view(ctx, host_dst, 1, 2, 3, &hv));
        CHECK_OK(ctx, ln_tensor_narrow_view(ctx, dev_dst, 1, 2, 3, &dv));
        CHECK_OK(ctx, ln_tensor_copy_(ctx, hv, src_t));
        CHECK_OK(ctx, ln_tensor_copy_(ctx, dv, src_t)); /* host -> strided device view */
        par_close(P, dev_dst, host_dst, TOL_EXACT, "copy_ from the host into a strided device view");
        srcd = par_copy(P, true, src_t);
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, dev_dst, 0, 2, &dv2));
        ln_tensor *hv2 = NULL, *srcd_t = NULL, *src_tt = NULL;
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, host_dst, 0, 2, &hv2));
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, srcd, 0, 2, &srcd_t));
        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, src_t, 0, 2, &src_tt));
        ln_tensor *dv3 = NULL, *hv3 = NULL;
        CHECK_OK(ctx, ln_tensor_narrow_view(ctx, dv2, 1, 1, 3, &dv3));
        CHECK_OK(ctx, ln_tensor_narrow_view(ctx, hv2, 1, 1, 3, &hv3));
        CHECK_OK(ctx, ln_tensor_copy_(ctx, dv3, srcd_t)); /* strided device -> strided device */
        CHECK_OK(ctx, ln_tensor_copy_(ctx, hv3, src_tt));
        par_close(P, dev_dst, host_dst, TOL_EXACT, "copy_ between strided device views");
        ln_tensor *cl = NULL;
        CHECK_OK(ctx, ln_tensor_clone(ctx, dv3, &cl)); /* strided device gather */
        CHECK(cl && ln_tensor_is_contiguous(cl), "clone of a strided view is contiguous");
        par_close(P, cl, hv3, TOL_EXACT, "clone of a strided device view");
        ln_tensor *all[] = {base, src, bc, host_dst, dev_dst, hv, dv, srcd, dv2, src_t, hv2, srcd_t, src_tt,
                            dv3, hv3, cl};
        release_all((int)(sizeof all / sizeof all[0]), all);
    }
}

static void test_shape(const par_side *P) {
    char what[64];
    for (int k = 0; k < 4; k++) {
        view_case c = {k};
        ln_tensor *x = randn(P->ctx, 3, (int64_t[]){3, 4, 5}, true);
        snprintf(what, sizeof what, "view op %d", k);
        par_check(P, view_fn, &c, 1, &x, TOL_ELEM, 0, what);
        ln_tensor_release(x);
    }
    static const struct { int dim; int64_t s[3][3]; } cats[] = {
        {1, {{2, 3, 4}, {2, 5, 4}, {2, 1, 4}}},
        {0, {{2, 3, 4}, {1, 3, 4}, {3, 3, 4}}},
        {2, {{2, 3, 1}, {2, 3, 4}, {2, 3, 2}}},
    };
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        ln_tensor *in[3];
        for (int j = 0; j < 3; j++) in[j] = randn(P->ctx, 3, cats[i].s[j], j != 1);
        snprintf(what, sizeof what, "cat along dim %d", cats[i].dim);
        par_check(P, cat_fn, (void *)&cats[i].dim, 3, in, TOL_EXACT, 0, what);
        release_all(3, in);
    }
    static const struct { int64_t x[4]; shortcut_case c; } sc[] = {
        {{2, 4, 7, 7}, {2, 2}}, {{3, 5, 8, 8}, {1, 0}}, {{2, 16, 32, 32}, {2, 8}}, {{1, 3, 5, 6}, {3, 1}}};
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        ln_tensor *x = randn(P->ctx, 4, sc[i].x, true);
        snprintf(what, sizeof what, "shortcut_a case %zu", i);
        par_check(P, shortcut_fn, (void *)&sc[i].c, 1, &x, TOL_EXACT, 0, what);
        ln_tensor_release(x);
    }
    strided_copies(P);
}

/* ================================================================ losses */
static ln_status xent_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    return ln_cross_entropy(ctx, in[0], in[1], out);
}

static void test_losses(const par_side *P) {
    ln_ctx *ctx = P->ctx;
    static const int64_t shapes[][2] = {{5, 10}, {64, 1000}, {1, 1}, {33, 37}, {300, 3}};
    char what[64];
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        ln_tensor *in[2] = {randn(ctx, 2, shapes[i], true), labels_of(ctx, shapes[i][0], shapes[i][1])};
        snprintf(what, sizeof what, "cross_entropy %lldx%lld", (long long)shapes[i][0], (long long)shapes[i][1]);
        par_check(P, xent_fn, NULL, 2, in, TOL_SUM, 0, what);
        for (int k = 1; k <= 5 && k <= shapes[i][1]; k += 4) {
            int64_t cc = -1, cd = -2;
            ln_tensor *xd = par_copy(P, true, in[0]), *ld = par_copy(P, true, in[1]);
            CHECK_OK(ctx, ln_topk_correct(ctx, in[0], in[1], k, &cc));
            par_select(P, true);
            CHECK_OK(ctx, ln_topk_correct(ctx, xd, ld, k, &cd));
            par_select(P, false);
            CHECK(cc == cd, "topk_correct k=%d %s: %lld on the other side, %lld on the CPU", k, what, (long long)cd,
                  (long long)cc);
            ln_tensor_release(xd);
            ln_tensor_release(ld);
        }
        release_all(2, in);
    }
    /* ties: all logits equal, a row counts only when its label is below k */
    ln_tensor *z = NULL, *zd = NULL, *lab = labels_of(ctx, 6, 10), *labd = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){6, 10}, &z));
    zd = par_copy(P, true, z);
    labd = par_copy(P, true, lab);
    int64_t want = 0, got = -1;
    double lv[6];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, lab, lv));
    for (int i = 0; i < 6; i++) want += lv[i] < 3;
    par_select(P, true);
    CHECK_OK(ctx, ln_topk_correct(ctx, zd, labd, 3, &got));
    par_select(P, false);
    CHECK(got == want, "topk_correct ties: %lld, expected %lld", (long long)got, (long long)want);

    /* out-of-range labels: an error naming the first bad position, and no output */
    double bad[2][4] = {{0, 3, 7, 1}, {0, -1, 2, 9}};
    const char *expect[2] = {"labels[2] = 7", "labels[1] = -1"};
    for (int b = 0; b < 2; b++) {
        ln_tensor *lh = NULL, *l_d = NULL, *x = randn(ctx, 2, (int64_t[]){4, 5}, false), *xd = NULL, *y = NULL;
        CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_I64, 1, (int64_t[]){4}, bad[b], &lh));
        l_d = par_copy(P, true, lh);
        xd = par_copy(P, true, x);
        ln_status st = ln_cross_entropy(ctx, xd, l_d, &y);
        CHECK(st == LN_ERR_ARG && y == NULL && strstr(ln_ctx_error(ctx), expect[b]),
              "bad label on the other side: %s (%s), expected '%s'", ln_status_name(st), ln_ctx_error(ctx), expect[b]);
        ln_ctx_clear_error(ctx);
        int64_t cnt = 0;
        CHECK_FAILS(ctx, ln_topk_correct(ctx, xd, l_d, 1, &cnt), LN_ERR_ARG);
        ln_tensor *all[] = {lh, l_d, x, xd, y};
        release_all(5, all);
    }
    ln_tensor *all[] = {z, zd, lab, labd};
    release_all(4, all);
}

/* ================================================================ SGD */
static void test_sgd(const par_side *P) {
    ln_ctx *ctx = P->ctx;
    static const ln_sgd_params ps[] = {
        {0.1, 0, 0, 0, false}, {0.1, 0.9, 5e-4, 0, false}, {0.05, 0.9, 1e-4, 0, true}, {0.2, 0.5, 0, 0.1, false}};
    int64_t shape[2] = {13, 7};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        for (int strided = 0; strided < 2; strided++) {
            ln_tensor *p = randn(ctx, 2, shape, false), *g = randn(ctx, 2, shape, false);
            ln_tensor *buf = randn(ctx, 2, shape, false);
            ln_tensor *side[2][3];
            for (int s = 0; s < 2; s++) {
                side[s][0] = par_copy(P, s, p);
                side[s][1] = par_copy(P, s, g);
                side[s][2] = par_copy(P, s, buf);
            }
            for (int step = 0; step < 2; step++)
                for (int s = 0; s < 2; s++) {
                    ln_tensor *pv = side[s][0], *bv = side[s][2], *pt = NULL, *bt = NULL, *gt = NULL;
                    if (strided) { /* update through transposed views */
                        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, side[s][0], 0, 1, &pt));
                        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, side[s][2], 0, 1, &bt));
                        CHECK_OK(ctx, ln_tensor_transpose_view(ctx, side[s][1], 0, 1, &gt));
                        pv = pt;
                        bv = bt;
                    }
                    par_select(P, s);
                    CHECK_OK(ctx, ln_sgd_step(ctx, pv, strided ? gt : side[s][1], bv, step == 0, ps[i]));
                    par_select(P, false);
                    ln_tensor_release(pt); ln_tensor_release(bt); ln_tensor_release(gt);
                }
            char what[96];
            snprintf(what, sizeof what, "sgd_step case %zu%s: param", i, strided ? " strided" : "");
            par_close(P, side[1][0], side[0][0], TOL_ELEM, what);
            snprintf(what, sizeof what, "sgd_step case %zu%s: momentum buffer", i, strided ? " strided" : "");
            par_close(P, side[1][2], side[0][2], TOL_ELEM, what);
            release_all(3, side[0]); release_all(3, side[1]);
            ln_tensor_release(p); ln_tensor_release(g); ln_tensor_release(buf);
        }
}

/* ================================================================ errors */
static void test_errors(const par_side *P) {
    if (P->rehearsal) return; /* needs two devices */
    ln_ctx *ctx = P->ctx;
    ln_tensor *h = randn(ctx, 2, (int64_t[]){3, 4}, false), *d = par_copy(P, true, h), *y = NULL;
    CHECK_FAILS(ctx, ln_add(ctx, d, h, &y), LN_ERR_DEVICE);
    CHECK_FAILS(ctx, ln_matmul(ctx, h, d, &y), LN_ERR_DEVICE);
    CHECK(y == NULL, "no output for mixed devices");
    ln_tensor *lab = labels_of(ctx, 3, 4);
    CHECK_FAILS(ctx, ln_cross_entropy(ctx, d, lab, &y), LN_ERR_DEVICE);
    ln_tensor_release(h); ln_tensor_release(d); ln_tensor_release(lab);
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 5);
    par_side P = par_open(ctx);
    test_conv(&P);
    test_conv1d(&P);
    test_batch_norm(&P);
    test_pool(&P);
    test_linear_algebra(&P);
    test_binary(&P);
    test_scalar(&P);
    test_dropout(&P);
    test_reduce(&P);
    test_shape(&P);
    test_losses(&P);
    test_sgd(&P);
    test_errors(&P);
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));
    ln_ctx_release(ctx);
    return par_finish(&P);
}
