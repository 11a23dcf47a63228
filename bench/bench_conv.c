/* lunet side of the convolution benchmark (see bench/run.sh and bench/torch_conv.py).
 *
 * Times forward + backward (gradients to x and w, no bias) of the conv shapes of a
 * CIFAR ResNet-56 at batch 128 and one ResNet-34 layer at 56x56 (batch 32), on the CPU
 * in f32, through the public API (ln_conv2d + ln_backward), and prints per shape
 *     <name> <median total ms> <median forward ms> <median backward ms>
 * Usage: bench_conv [threads (default: all cores)] [iterations (default 10)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lunet/lunet.h"

typedef struct bench_shape {
    const char *name;
    int64_t n, cin, h, w, cout, k;
    int stride, pad;
} bench_shape;

/* must match SHAPES in torch_conv.py */
static const bench_shape shapes[] = {
    {"r56_stem_3to16_32", 128, 3, 32, 32, 16, 3, 1, 1},
    {"r56_16to16_32", 128, 16, 32, 32, 16, 3, 1, 1},
    {"r56_16to32_s2", 128, 16, 32, 32, 32, 3, 2, 1},
    {"r56_32to32_16", 128, 32, 16, 16, 32, 3, 1, 1},
    {"r56_32to64_s2", 128, 32, 16, 16, 64, 3, 2, 1},
    {"r56_64to64_8", 128, 64, 8, 8, 64, 3, 1, 1},
    {"r34_64to64_56_b32", 32, 64, 56, 56, 64, 3, 1, 1},
};

#define WARMUP 3
#define MAX_ITERS 1000

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static int fail(ln_ctx *ctx, const char *what) {
    fprintf(stderr, "bench_conv: %s failed: %s\n", what, ln_ctx_error(ctx));
    return 1;
}

static int run_shape(ln_ctx *ctx, const bench_shape *b, int iters) {
    int64_t xs[4] = {b->n, b->cin, b->h, b->w}, ws[4] = {b->cout, b->cin, b->k, b->k};
    int64_t oh = (b->h + 2 * b->pad - b->k) / b->stride + 1, ow = (b->w + 2 * b->pad - b->k) / b->stride + 1;
    int64_t ys[4] = {b->n, b->cout, oh, ow};
    ln_conv2d_params p = {b->stride, b->stride, b->pad, b->pad, 1};
    ln_tensor *x = NULL, *w = NULL, *gy = NULL;
    if (ln_tensor_empty(ctx, LN_F32, ln_cpu(), 4, xs, &x) || ln_tensor_normal_(ctx, x, 0, 1) ||
        ln_tensor_empty(ctx, LN_F32, ln_cpu(), 4, ws, &w) || ln_tensor_normal_(ctx, w, 0, 1) ||
        ln_tensor_empty(ctx, LN_F32, ln_cpu(), 4, ys, &gy) || ln_tensor_normal_(ctx, gy, 0, 1))
        return fail(ctx, "tensor creation");
    x->requires_grad = true;
    w->requires_grad = true;
    double tot[MAX_ITERS], fwd[MAX_ITERS], bwd[MAX_ITERS];
    int rc = 0;
    for (int i = 0; i < WARMUP + iters && rc == 0; i++) {
        ln_tensor_release(x->grad); x->grad = NULL;
        ln_tensor_release(w->grad); w->grad = NULL;
        ln_tensor *y = NULL;
        double t0 = now_ms();
        if (ln_conv2d(ctx, x, w, NULL, p, &y) != LN_OK) { rc = fail(ctx, "ln_conv2d"); break; }
        double t1 = now_ms();
        if (ln_backward(ctx, y, gy, false) != LN_OK) rc = fail(ctx, "ln_backward");
        double t2 = now_ms();
        ln_tensor_release(y);
        if (i >= WARMUP) {
            tot[i - WARMUP] = t2 - t0;
            fwd[i - WARMUP] = t1 - t0;
            bwd[i - WARMUP] = t2 - t1;
        }
    }
    if (rc == 0)
        printf("%s %.3f %.3f %.3f\n", b->name, median(tot, iters), median(fwd, iters), median(bwd, iters));
    fflush(stdout);
    ln_tensor_release(x);
    ln_tensor_release(w);
    ln_tensor_release(gy);
    return rc;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    int iters = argc > 2 ? atoi(argv[2]) : 10;
    if (iters < 1 || iters > MAX_ITERS) {
        fprintf(stderr, "usage: bench_conv [threads] [iterations 1..%d]\n", MAX_ITERS);
        return 2;
    }
    ln_ctx *ctx = ln_ctx_create();
    if (!ctx) return 1;
    ln_ctx_set_num_threads(ctx, threads);
    ln_ctx_manual_seed(ctx, 0);
    printf("# lunet threads=%d\n", ln_ctx_num_threads(ctx));
    int rc = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && rc == 0; i++)
        rc = run_shape(ctx, &shapes[i], iters);
    ln_ctx_release(ctx);
    return rc;
}
