/* conv2d and conv1d_channels: finite-difference gradients (f64) over shapes, strides,
 * paddings, kernel sizes and groups; fast (oneDNN) vs reference (f32) including
 * CIFAR-sized and strided inputs, thread counts and the primitive cache; argument
 * errors (status, no output, a message naming the arguments and shapes). */
#include <string.h>
#include "testutil.h"

typedef struct conv_case {
    const char *name;
    int64_t x[4], w[4];
    int sh, sw, ph, pw, groups;
    bool bias;
} conv_case;

/* small shapes for the gradient checks (and the f32 comparison) */
static const conv_case small_cases[] = {
    {"3x3 s1 p1 bias", {2, 3, 5, 5}, {4, 3, 3, 3}, 1, 1, 1, 1, 1, true},
    {"1x1 s1 p0", {1, 2, 6, 7}, {3, 2, 1, 1}, 1, 1, 0, 0, 1, false},
    {"1x1 s2 p0 bias", {2, 3, 5, 4}, {2, 3, 1, 1}, 2, 2, 0, 0, 1, true},
    {"3x3 s2 p1 groups 2 bias", {2, 4, 7, 6}, {6, 2, 3, 3}, 2, 2, 1, 1, 2, true},
    {"3x3 s1 p2", {1, 3, 4, 5}, {2, 3, 3, 3}, 1, 1, 2, 2, 1, false},
    {"3x3 s1 p0", {2, 2, 6, 5}, {3, 2, 3, 3}, 1, 1, 0, 0, 1, true},
    {"7x7 s1 p2", {1, 2, 9, 8}, {2, 2, 7, 7}, 1, 1, 2, 2, 1, false},
    {"7x7 s2 p1", {1, 2, 9, 10}, {3, 2, 7, 7}, 2, 2, 1, 1, 1, true},
    {"depthwise 3x3 s1 p1 bias", {2, 3, 6, 6}, {3, 1, 3, 3}, 1, 1, 1, 1, 3, true},
    {"depthwise 3x3 s2 p1", {2, 4, 7, 7}, {4, 1, 3, 3}, 2, 2, 1, 1, 4, false},
    {"depthwise x2 multiplier", {1, 2, 5, 5}, {4, 1, 3, 3}, 1, 1, 1, 1, 2, true},
    {"non-square 3x1 s(2,1) p(1,0)", {2, 2, 7, 5}, {3, 2, 3, 1}, 2, 1, 1, 0, 1, true},
    {"non-square 1x5 s(1,2) p(0,2)", {1, 3, 4, 9}, {2, 3, 1, 5}, 1, 2, 0, 2, 1, false},
    {"kernel larger than input", {1, 1, 2, 2}, {1, 1, 3, 3}, 1, 1, 1, 1, 1, true},
};

/* bigger shapes for fast vs reference */
static const conv_case big_cases[] = {
    {"cifar 16->16 32x32 b4", {4, 16, 32, 32}, {16, 16, 3, 3}, 1, 1, 1, 1, 1, false},
    {"cifar 16->32 s2 b4 bias", {4, 16, 32, 32}, {32, 16, 3, 3}, 2, 2, 1, 1, 1, true},
    {"cifar stem 3->16 b4", {4, 3, 32, 32}, {16, 3, 3, 3}, 1, 1, 1, 1, 1, false},
    {"1x1 16->32 8x8 b4", {4, 16, 8, 8}, {32, 16, 1, 1}, 1, 1, 0, 0, 1, true},
    {"depthwise 16ch 32x32 b4", {4, 16, 32, 32}, {16, 1, 3, 3}, 1, 1, 1, 1, 16, true},
    {"depthwise 12ch s2 b2", {2, 12, 15, 15}, {12, 1, 3, 3}, 2, 2, 1, 1, 12, false},
    {"groups 2, 6->4 ch", {2, 6, 9, 9}, {4, 3, 3, 3}, 1, 1, 1, 1, 2, true},
    {"groups 4, 16->32 ch", {2, 16, 10, 10}, {32, 4, 3, 3}, 1, 1, 1, 1, 4, false},
    {"5x5 s2 p2 10->12", {3, 10, 13, 11}, {12, 10, 5, 5}, 2, 2, 2, 2, 1, true},
};

static ln_conv2d_params params_of(const conv_case *c) {
    ln_conv2d_params p = {c->sh, c->sw, c->ph, c->pw, c->groups};
    return p;
}

static ln_status conv_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_conv2d(ctx, in[0], in[1], in[2], *(ln_conv2d_params *)ud, out);
}

static ln_status conv1d_fn(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    return ln_conv1d_channels(ctx, in[0], in[1], *(int *)ud, out);
}

static void make_inputs(ln_ctx *ctx, ln_dtype dt, const conv_case *c, ln_tensor **in) {
    in[0] = tu_randn(ctx, dt, 4, c->x);
    in[1] = tu_randn(ctx, dt, 4, c->w);
    in[2] = c->bias ? tu_randn(ctx, dt, 1, c->w) : NULL;
    for (int i = 0; i < 3; i++) if (in[i]) in[i]->requires_grad = true;
}

static void release3(ln_tensor **in) {
    for (int i = 0; i < 3; i++) ln_tensor_release(in[i]);
}

static void gradchecks(ln_ctx *ctx) {
    for (size_t i = 0; i < sizeof small_cases / sizeof small_cases[0]; i++) {
        const conv_case *c = &small_cases[i];
        ln_conv2d_params p = params_of(c);
        ln_tensor *in[3];
        make_inputs(ctx, LN_F64, c, in);
        tu_gradcheck(ctx, conv_fn, &p, 3, in, 1e-6, 1e-6, 0, c->name);
        /* one input at a time: backward saves only what that gradient needs */
        in[1]->requires_grad = false;
        if (in[2]) in[2]->requires_grad = false;
        tu_gradcheck(ctx, conv_fn, &p, 3, in, 1e-6, 1e-6, 0, c->name);
        in[0]->requires_grad = false;
        in[1]->requires_grad = true;
        tu_gradcheck(ctx, conv_fn, &p, 3, in, 1e-6, 1e-6, 0, c->name);
        release3(in);
    }
}

static void compare_case(ln_ctx *ctx, const conv_case *c, double tol) {
    ln_conv2d_params p = params_of(c);
    ln_tensor *in[3];
    make_inputs(ctx, LN_F32, c, in);
    tu_compare_paths(ctx, conv_fn, &p, 3, in, tol, tol, c->name);
    /* bias only (weights frozen): the fast path sums gy itself */
    if (in[2]) {
        in[0]->requires_grad = false;
        in[1]->requires_grad = false;
        tu_compare_paths(ctx, conv_fn, &p, 3, in, tol, tol, c->name);
    }
    release3(in);
}

static void fast_vs_ref(ln_ctx *ctx) {
    for (size_t i = 0; i < sizeof small_cases / sizeof small_cases[0]; i++)
        compare_case(ctx, &small_cases[i], 1e-4);
    for (size_t i = 0; i < sizeof big_cases / sizeof big_cases[0]; i++)
        compare_case(ctx, &big_cases[i], 2e-4);
}

/* Non-contiguous x and w (transposed views) give the reference's results and the
 * same output as their contiguous copies. */
static void strided_inputs(ln_ctx *ctx) {
    ln_tensor *xb = tu_randn(ctx, LN_F32, 4, (int64_t[]){4, 16, 32, 32});
    ln_tensor *wb = tu_randn(ctx, LN_F32, 4, (int64_t[]){16, 16, 3, 3});
    ln_tensor *in[3] = {NULL, NULL, tu_randn(ctx, LN_F32, 1, (int64_t[]){16})};
    ln_tensor *xc = NULL, *wc = NULL, *y1 = NULL, *y2 = NULL;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, xb, 2, 3, &in[0]));
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, wb, 0, 1, &in[1]));
    CHECK(!ln_tensor_is_contiguous(in[0]) && !ln_tensor_is_contiguous(in[1]), "views are strided");
    ln_conv2d_params p = {2, 2, 1, 1, 1};
    for (int i = 0; i < 3; i++) in[i]->requires_grad = true;
    tu_compare_paths(ctx, conv_fn, &p, 3, in, 2e-4, 2e-4, "strided x and w");
    bool prev = ln_ctx_set_grad_enabled(ctx, false);
    CHECK_OK(ctx, ln_tensor_clone(ctx, in[0], &xc));
    CHECK_OK(ctx, ln_tensor_clone(ctx, in[1], &wc));
    CHECK_OK(ctx, ln_conv2d(ctx, in[0], in[1], in[2], p, &y1));
    CHECK_OK(ctx, ln_conv2d(ctx, xc, wc, in[2], p, &y2));
    tu_check_close(ctx, y1, y2, 0, 0, "strided vs contiguous input");
    ln_ctx_set_grad_enabled(ctx, prev);
    release3(in);
    ln_tensor_release(xb); ln_tensor_release(wb); ln_tensor_release(xc); ln_tensor_release(wc);
    ln_tensor_release(y1); ln_tensor_release(y2);
}

/* One and two threads agree; more shapes than the primitive cache holds (64) are
 * served correctly, including a shape evicted and created again. */
static void threads_and_cache(ln_ctx *ctx) {
    const conv_case *c = &big_cases[0];
    ln_conv2d_params p = params_of(c);
    ln_tensor *in[3], *y1 = NULL, *y2 = NULL;
    make_inputs(ctx, LN_F32, c, in);
    bool prev = ln_ctx_set_grad_enabled(ctx, false);
    int nt = ln_ctx_num_threads(ctx);
    ln_ctx_set_num_threads(ctx, 1);
    CHECK_OK(ctx, ln_conv2d(ctx, in[0], in[1], in[2], p, &y1));
    ln_ctx_set_num_threads(ctx, 2);
    CHECK_OK(ctx, ln_conv2d(ctx, in[0], in[1], in[2], p, &y2));
    ln_ctx_set_num_threads(ctx, nt);
    tu_check_close(ctx, y1, y2, 1e-5, 1e-5, "1 vs 2 threads");
    ln_tensor_release(y1); ln_tensor_release(y2);
    release3(in);

    ln_tensor *w = tu_randn(ctx, LN_F32, 4, (int64_t[]){2, 1, 3, 3});
    ln_conv2d_params q = {1, 1, 1, 1, 1};
    int ok = 1;
    for (int round = 0; round < 2; round++) {
        for (int64_t h = 1; h <= 70; h++) {
            ln_tensor *x = tu_randn(ctx, LN_F32, 4, (int64_t[]){1, 1, h, 3}), *yf = NULL, *yr = NULL;
            ok &= ln_conv2d(ctx, x, w, NULL, q, &yf) == LN_OK;
            ln_ctx_set_backend(ctx, LN_BACKEND_REF);
            ok &= ln_conv2d(ctx, x, w, NULL, q, &yr) == LN_OK;
            ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
            double r = tu_close_ratio(ctx, yf, yr, 1e-5, 1e-5);
            ok &= r >= 0 && r <= 1;
            ln_tensor_release(x); ln_tensor_release(yf); ln_tensor_release(yr);
        }
    }
    CHECK(ok, "70 shapes, twice, through the primitive cache: %s", ln_ctx_error(ctx));
    ln_tensor_release(w);
    ln_ctx_set_grad_enabled(ctx, prev);
}

/* Checks a failing call: its status, no output, and that the message holds each needle. */
static void expect_fail(ln_ctx *ctx, ln_status got, ln_status want, const ln_tensor *out,
                        const char *what, const char *const *needles) {
    const char *msg = ln_ctx_error(ctx);
    CHECK(got == want, "%s: got status %s, wanted %s (%s)", what, ln_status_name(got),
          ln_status_name(want), msg);
    CHECK(out == NULL, "%s: no output on failure", what);
    for (int i = 0; needles[i]; i++)
        CHECK(strstr(msg, needles[i]) != NULL, "%s: message '%s' lacks '%s'", what, msg, needles[i]);
    ln_ctx_clear_error(ctx);
}

#define EXPECT_FAIL(ctx, call, want, out, ...) \
    expect_fail((ctx), (call), (want), (out), #call, (const char *const[]){__VA_ARGS__, NULL})

static void conv2d_errors(ln_ctx *ctx) {
    ln_tensor *x = tu_randn(ctx, LN_F32, 4, (int64_t[]){2, 3, 8, 8});
    ln_tensor *w = tu_randn(ctx, LN_F32, 4, (int64_t[]){5, 4, 3, 3});
    ln_tensor *w3 = tu_randn(ctx, LN_F32, 4, (int64_t[]){6, 3, 3, 3});
    ln_tensor *w64 = tu_randn(ctx, LN_F64, 4, (int64_t[]){6, 3, 3, 3});
    ln_tensor *wbig = tu_randn(ctx, LN_F32, 4, (int64_t[]){6, 3, 11, 3});
    ln_tensor *x3 = tu_randn(ctx, LN_F32, 3, (int64_t[]){3, 8, 8});
    ln_tensor *x4 = tu_randn(ctx, LN_F32, 4, (int64_t[]){2, 4, 8, 8});
    ln_tensor *w4 = tu_randn(ctx, LN_F32, 4, (int64_t[]){6, 2, 3, 3});
    ln_tensor *w5 = tu_randn(ctx, LN_F32, 4, (int64_t[]){5, 2, 3, 3});
    ln_tensor *b5 = tu_randn(ctx, LN_F32, 1, (int64_t[]){5});
    ln_tensor *xi = NULL, *y = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 4, (int64_t[]){2, 3, 8, 8}, &xi));
    ln_conv2d_params p = {1, 1, 1, 1, 1};

    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, w, NULL, p, &y), LN_ERR_SHAPE, y,
                "conv2d", "'x'", "'w'", "[2, 3, 8, 8]", "[5, 4, 3, 3]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x3, w3, NULL, p, &y), LN_ERR_SHAPE, y, "conv2d", "'x'", "[3, 8, 8]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, x3, NULL, p, &y), LN_ERR_SHAPE, y, "conv2d", "'w'", "[3, 8, 8]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x4, w4, NULL, (ln_conv2d_params){1, 1, 1, 1, 3}, &y), LN_ERR_SHAPE, y,
                "conv2d", "groups 3", "'x'", "[2, 4, 8, 8]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x4, w5, NULL, (ln_conv2d_params){1, 1, 1, 1, 2}, &y),
                LN_ERR_SHAPE, y, "conv2d", "groups 2", "'w'", "[5, 2, 3, 3]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, w64, NULL, p, &y), LN_ERR_DTYPE, y, "conv2d", "'x'", "'w'", "f64",
                "[6, 3, 3, 3]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, w3, NULL, (ln_conv2d_params){1, 1, -1, 1, 1}, &y), LN_ERR_ARG, y,
                "conv2d", "padding", "-1");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, w3, NULL, (ln_conv2d_params){0, 1, 1, 1, 1}, &y), LN_ERR_ARG, y,
                "conv2d", "stride");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, w3, NULL, (ln_conv2d_params){1, 1, 1, 1, 0}, &y), LN_ERR_ARG, y,
                "conv2d", "groups");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, wbig, NULL, p, &y), LN_ERR_SHAPE, y,
                "conv2d", "kernel 11x3", "'w'", "'x'", "10x10", "[2, 3, 8, 8]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, w3, b5, p, &y), LN_ERR_SHAPE, y, "conv2d", "'b'", "[5]", "[6, 3, 3, 3]");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, NULL, w3, NULL, p, &y), LN_ERR_ARG, y, "conv2d", "'x'");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, x, NULL, NULL, p, &y), LN_ERR_ARG, y, "conv2d", "'w'");
    EXPECT_FAIL(ctx, ln_conv2d(ctx, xi, w3, NULL, p, &y), LN_ERR_DTYPE, y, "conv2d", "'x'", "i64");
    ln_tensor *ts[] = {x, w, w3, w64, wbig, x3, x4, w4, w5, b5, xi};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ln_tensor_release(ts[i]);
}

static void conv1d_tests(ln_ctx *ctx) {
    struct { int64_t x[4]; int xn; int64_t k; int wn; int pad; } cases[] = {
        {{3, 8}, 2, 3, 1, 1},
        {{2, 9, 1, 1}, 4, 5, 3, 2},
        {{2, 4}, 2, 7, 1, 3},   /* kernel wider than the channels */
        {{1, 1, 1, 1}, 4, 1, 3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ws[3] = {1, 1, cases[i].k};
        ln_tensor *in[2] = {tu_randn(ctx, LN_F64, cases[i].xn, cases[i].x),
                            tu_randn(ctx, LN_F64, cases[i].wn, ws + 3 - cases[i].wn)};
        in[0]->requires_grad = in[1]->requires_grad = true;
        tu_gradcheck(ctx, conv1d_fn, &cases[i].pad, 2, in, 1e-6, 1e-6, 0, "conv1d_channels");
        in[1]->requires_grad = false;
        tu_gradcheck(ctx, conv1d_fn, &cases[i].pad, 2, in, 1e-6, 1e-6, 0, "conv1d_channels x only");
        in[0]->requires_grad = false;
        in[1]->requires_grad = true;
        tu_gradcheck(ctx, conv1d_fn, &cases[i].pad, 2, in, 1e-6, 1e-6, 0, "conv1d_channels w only");
        ln_tensor_release(in[0]); ln_tensor_release(in[1]);
    }
    struct { int64_t x[4]; int xn; int64_t k; int pad; } big[] = {
        {{8, 64}, 2, 3, 1}, {{16, 256, 1, 1}, 4, 5, 2}, {{64, 512}, 2, 9, 4}};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        ln_tensor *in[2] = {tu_randn(ctx, LN_F32, big[i].xn, big[i].x),
                            tu_randn(ctx, LN_F32, 1, &big[i].k)};
        in[0]->requires_grad = in[1]->requires_grad = true;
        tu_compare_paths(ctx, conv1d_fn, &big[i].pad, 2, in, 1e-4, 1e-4, "conv1d_channels f32");
        ln_tensor_release(in[0]); ln_tensor_release(in[1]);
    }
    /* strided x: a column slice of a wider matrix */
    ln_tensor *wide = tu_randn(ctx, LN_F32, 2, (int64_t[]){6, 40}), *xs = NULL;
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, wide, 1, 3, 30, &xs));
    ln_tensor *in[2] = {xs, tu_randn(ctx, LN_F32, 1, (int64_t[]){3})};
    in[0]->requires_grad = in[1]->requires_grad = true;
    int pad = 1;
    tu_compare_paths(ctx, conv1d_fn, &pad, 2, in, 1e-5, 1e-5, "conv1d_channels strided x");
    ln_tensor_release(in[0]); ln_tensor_release(in[1]); ln_tensor_release(wide);

    /* errors */
    ln_tensor *x = tu_randn(ctx, LN_F32, 2, (int64_t[]){2, 8});
    ln_tensor *x3 = tu_randn(ctx, LN_F32, 3, (int64_t[]){2, 8, 2});
    ln_tensor *w = tu_randn(ctx, LN_F32, 1, (int64_t[]){3});
    ln_tensor *w4 = tu_randn(ctx, LN_F32, 1, (int64_t[]){4});
    ln_tensor *wbad = tu_randn(ctx, LN_F32, 3, (int64_t[]){2, 1, 3});
    ln_tensor *w64 = tu_randn(ctx, LN_F64, 1, (int64_t[]){3});
    ln_tensor *y = NULL;
    EXPECT_FAIL(ctx, ln_conv1d_channels(ctx, x3, w, 1, &y), LN_ERR_SHAPE, y, "conv1d_channels", "'x'", "[2, 8, 2]");
    EXPECT_FAIL(ctx, ln_conv1d_channels(ctx, x, wbad, 1, &y), LN_ERR_SHAPE, y, "conv1d_channels", "'w'", "[2, 1, 3]");
    EXPECT_FAIL(ctx, ln_conv1d_channels(ctx, x, w4, 1, &y), LN_ERR_SHAPE, y, "conv1d_channels", "'w'", "[4]", "[2, 8]");
    EXPECT_FAIL(ctx, ln_conv1d_channels(ctx, x, w, -1, &y), LN_ERR_ARG, y, "conv1d_channels", "padding");
    EXPECT_FAIL(ctx, ln_conv1d_channels(ctx, x, w64, 1, &y), LN_ERR_DTYPE, y, "conv1d_channels", "'w'", "f64");
    EXPECT_FAIL(ctx, ln_conv1d_channels(ctx, NULL, w, 1, &y), LN_ERR_ARG, y, "conv1d_channels", "'x'");
    ln_tensor *ts[] = {x, x3, w, w4, wbad, w64};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ln_tensor_release(ts[i]);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 7);
    gradchecks(ctx);
    fast_vs_ref(ctx);
    strided_inputs(ctx);
    threads_and_cache(ctx);
    conv2d_errors(ctx);
    conv1d_tests(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
