/* The CUDA backend's context, memory and first kernels, checked against the CPU path:
 * relu/relu6/sigmoid forward and backward parity (odd sizes, > 1M elements), autograd
 * through CUDA tensors and gradient accumulation on the device, host/device copies
 * (strided views, dtype conversion), the caching allocator (reuse, statistics, the
 * workspace, out-of-memory recovery), and the errors for mixed devices and a missing
 * ordinal. Without a usable device it checks the no-device errors, then reports
 * itself skipped (exit 77). */
#include <stdio.h>
#include <string.h>
#include "testutil.h"
#include "cuda/cuda_api.h"

typedef ln_status (*unary_op)(ln_ctx *, ln_tensor *, ln_tensor **);

static const ln_device cuda0 = {LN_CUDA, 0};

static bool on_cuda(const ln_tensor *t) { return t && ln_tensor_device(t).type == LN_CUDA; }

/* A CUDA copy of the CPU tensor h (a leaf: no autograd history). */
static ln_tensor *to_cuda(ln_ctx *ctx, const ln_tensor *h) {
    ln_tensor *d = NULL;
    CHECK_OK(ctx, ln_tensor_to_device(ctx, h, cuda0, &d));
    return d;
}

/* ---------------------------------------------------------------- no device */
static void check_no_device(ln_ctx *ctx) {
    ln_tensor *t = NULL;
    ln_status st = ln_tensor_empty(ctx, LN_F32, cuda0, 1, (int64_t[]){4}, &t);
    CHECK(st == LN_ERR_DEVICE && t == NULL && ln_ctx_error(ctx)[0] != '\0',
          "cuda tensor without a device: got %s (%s)", ln_status_name(st), ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    CHECK(ln_cuda_device_count(ctx) == 0 && !ln_cuda_available(ctx), "no device counted");
    CHECK(ctx->cuda == NULL, "no CUDA state created without a device");
    ln_cuda_mem_stats ms;
    ln_cuda_memory_stats(ctx, &ms);
    CHECK(ms.allocated == 0 && ms.cached == 0 && ms.n_cuda_malloc == 0, "empty allocator statistics");
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));
    CHECK_OK(ctx, ln_cuda_empty_cache(ctx));
}

/* ---------------------------------------------------------------- activations */
/* y = op(x) and x.grad from backward(y, gy) on CPU and on CUDA; both must agree. */
static void act_parity(ln_ctx *ctx, unary_op op, const char *name, int ndim, const int64_t *shape,
                       double rtol, double atol) {
    char label[128], shp[96];
    ln_shape_format(ndim, shape, shp, sizeof shp);
    ln_tensor *x = tu_rand_uniform(ctx, LN_F32, ndim, shape, -8, 8);
    ln_tensor *gy = tu_rand_uniform(ctx, LN_F32, ndim, shape, -1, 1);
    ln_tensor *xd = to_cuda(ctx, x), *gyd = to_cuda(ctx, gy), *y = NULL, *yd = NULL;
    x->requires_grad = true;
    xd->requires_grad = true;
    CHECK_OK(ctx, op(ctx, x, &y));
    CHECK_OK(ctx, op(ctx, xd, &yd));
    if (!CHECK(on_cuda(yd), "%s %s: output on cuda", name, shp)) goto done;
    snprintf(label, sizeof label, "%s %s forward cuda vs cpu", name, shp);
    tu_check_close(ctx, yd, y, rtol, atol, label);
    CHECK_OK(ctx, ln_backward(ctx, y, gy, false));
    CHECK_OK(ctx, ln_backward(ctx, yd, gyd, false));
    if (!CHECK(on_cuda(xd->grad), "%s %s: gradient on cuda", name, shp)) goto done;
    snprintf(label, sizeof label, "%s %s backward cuda vs cpu", name, shp);
    tu_check_close(ctx, xd->grad, x->grad, rtol, atol, label);
done:
    ln_tensor_release(x); ln_tensor_release(gy); ln_tensor_release(xd);
    ln_tensor_release(gyd); ln_tensor_release(y); ln_tensor_release(yd);
}

static void test_activations(ln_ctx *ctx) {
    struct { const char *name; unary_op op; double rtol, atol; } ops[] = {
        {"relu", ln_relu, 0, 0}, {"relu6", ln_relu6, 0, 0}, {"sigmoid", ln_sigmoid, 1e-5, 1e-6}};
    /* 1-D sizes around block and grid boundaries, past 1M (grid-stride loops) */
    static const int64_t sizes[] = {1, 31, 256, 257, 1000, 65537, 1048577, 3000001};
    for (size_t o = 0; o < 3; o++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            act_parity(ctx, ops[o].op, ops[o].name, 1, &sizes[s], ops[o].rtol, ops[o].atol);
        act_parity(ctx, ops[o].op, ops[o].name, 4, (int64_t[]){2, 3, 17, 19}, ops[o].rtol, ops[o].atol);
    }
    /* a transposed CUDA input gives the values of the transposed CPU input */
    ln_tensor *x = tu_randn(ctx, LN_F32, 2, (int64_t[]){37, 53}), *xd = to_cuda(ctx, x);
    ln_tensor *xt = NULL, *xdt = NULL, *y = NULL, *yd = NULL;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, x, 0, 1, &xt));
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, xd, 0, 1, &xdt));
    CHECK_OK(ctx, ln_sigmoid(ctx, xt, &y));
    CHECK_OK(ctx, ln_sigmoid(ctx, xdt, &yd));
    tu_check_close(ctx, yd, y, 1e-5, 1e-6, "sigmoid of a transposed cuda tensor");
    ln_tensor_release(x); ln_tensor_release(xd); ln_tensor_release(xt);
    ln_tensor_release(xdt); ln_tensor_release(y); ln_tensor_release(yd);
    /* CUDA ops take f32 only */
    ln_tensor *d64 = NULL, *out = NULL;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F64, cuda0, 1, (int64_t[]){5}, &d64));
    CHECK_FAILS(ctx, ln_relu(ctx, d64, &out), LN_ERR_UNSUPPORTED);
    CHECK(out == NULL, "no output for an f64 cuda input");
    ln_tensor_release(d64);
}

/* ---------------------------------------------------------------- autograd */
/* loss-free chain y = sigmoid(relu(x)) on x (device dev); backward with g, `times`
 * times (each a fresh graph), so x.grad holds the accumulated sum. */
static void chain_backward(ln_ctx *ctx, ln_tensor *x, ln_tensor *g, int times) {
    for (int k = 0; k < times; k++) {
        ln_tensor *r = NULL, *y = NULL;
        CHECK_OK(ctx, ln_relu(ctx, x, &r));
        CHECK_OK(ctx, ln_sigmoid(ctx, r, &y));
        CHECK_OK(ctx, ln_backward(ctx, y, g, false));
        ln_tensor_release(r);
        ln_tensor_release(y);
    }
}

static void test_autograd(ln_ctx *ctx) {
    int64_t shape[] = {7, 13, 11};
    ln_tensor *x = tu_randn(ctx, LN_F32, 3, shape), *g = tu_randn(ctx, LN_F32, 3, shape);
    ln_tensor *xd = to_cuda(ctx, x), *gd = to_cuda(ctx, g);
    x->requires_grad = true;
    xd->requires_grad = true;
    chain_backward(ctx, x, g, 1);
    chain_backward(ctx, xd, gd, 1);
    CHECK(on_cuda(xd->grad), "x.grad of a cuda leaf is on cuda");
    tu_check_close(ctx, xd->grad, x->grad, 1e-5, 1e-6, "sigmoid(relu(x)) gradient cuda vs cpu");
    ln_tensor *first = NULL;
    CHECK_OK(ctx, ln_tensor_to_device(ctx, xd->grad, ln_cpu(), &first));
    /* a second backward accumulates into the existing device gradient (axpy) */
    chain_backward(ctx, x, g, 1);
    chain_backward(ctx, xd, gd, 1);
    tu_check_close(ctx, xd->grad, x->grad, 1e-5, 1e-6, "accumulated gradient cuda vs cpu");
    ln_tensor *twice = NULL;
    CHECK_OK(ctx, ln_tensor_clone(ctx, first, &twice));
    CHECK_OK(ctx, ln_tensor_add_(ctx, twice, first, 1.0));
    tu_check_close(ctx, xd->grad, twice, 0, 0, "two backwards give twice the gradient");
    /* ln_tensor_add_ with alpha, and from a strided (transposed) device source */
    ln_tensor *a = tu_randn(ctx, LN_F32, 2, (int64_t[]){9, 5}), *b = tu_randn(ctx, LN_F32, 2, (int64_t[]){5, 9});
    ln_tensor *ad = to_cuda(ctx, a), *bd = to_cuda(ctx, b), *bt = NULL, *bdt = NULL;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, b, 0, 1, &bt));
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, bd, 0, 1, &bdt));
    CHECK_OK(ctx, ln_tensor_add_(ctx, a, bt, -0.5));
    CHECK_OK(ctx, ln_tensor_add_(ctx, ad, bdt, -0.5));
    tu_check_close(ctx, ad, a, 1e-6, 1e-7, "add_ with alpha from a transposed source");
    ln_tensor_release(a); ln_tensor_release(b); ln_tensor_release(ad); ln_tensor_release(bd);
    ln_tensor_release(bt); ln_tensor_release(bdt);
    ln_tensor_release(x); ln_tensor_release(g); ln_tensor_release(xd); ln_tensor_release(gd);
    ln_tensor_release(first); ln_tensor_release(twice);
}

/* ---------------------------------------------------------------- copies */
static void test_copies(ln_ctx *ctx) {
    double v[60];
    for (int i = 0; i < 60; i++) v[i] = i - 20.25;
    int64_t shape[] = {3, 4, 5};
    ln_tensor *h = NULL, *d = NULL, *d2 = NULL, *back = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 3, shape, v, &h));
    CHECK_OK(ctx, ln_tensor_to_device(ctx, h, cuda0, &d));     /* host to device */
    CHECK_OK(ctx, ln_tensor_clone(ctx, d, &d2));               /* device to device */
    CHECK(on_cuda(d2) && d2->storage != d->storage, "clone is a new device tensor");
    CHECK_OK(ctx, ln_tensor_to_device(ctx, d2, ln_cpu(), &back)); /* device to host */
    tu_check_close(ctx, back, h, 0, 0, "h2d, d2d, d2h round trip");
    double item = 0;
    ln_tensor *one = NULL;
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, d, 2, 3, 1, &one));
    ln_tensor *one_flat = NULL;
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, one, 0, 2, 1, &one_flat));
    ln_tensor *one_el = NULL;
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, one_flat, 1, 1, 1, &one_el));
    CHECK_OK(ctx, ln_tensor_item(ctx, one_el, &item));
    CHECK(item == v[2 * 20 + 1 * 5 + 3], "item of a device element (got %g)", item);
    ln_tensor_release(one); ln_tensor_release(one_flat); ln_tensor_release(one_el);

    /* strided device views back to the host: transposed, and narrowed (offset) */
    ln_tensor *ht = NULL, *dt = NULL, *dt_h = NULL, *dt_c = NULL, *dt_c_h = NULL, *hdst = NULL;
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, h, 0, 2, &ht));
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, d, 0, 2, &dt));
    CHECK_OK(ctx, ln_tensor_to_device(ctx, dt, ln_cpu(), &dt_h));
    tu_check_close(ctx, dt_h, ht, 0, 0, "transposed device tensor to host");
    CHECK_OK(ctx, ln_tensor_contiguous(ctx, dt, &dt_c));
    CHECK(on_cuda(dt_c) && ln_tensor_is_contiguous(dt_c), "contiguous copy stays on the device");
    CHECK_OK(ctx, ln_tensor_to_device(ctx, dt_c, ln_cpu(), &dt_c_h));
    tu_check_close(ctx, dt_c_h, ht, 0, 0, "contiguous copy of a transposed device tensor");
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 3, (int64_t[]){5, 4, 3}, &hdst));
    CHECK_OK(ctx, ln_tensor_copy_(ctx, hdst, dt));
    tu_check_close(ctx, hdst, ht, 0, 0, "copy_ from a transposed device tensor");
    ln_tensor *hn = NULL, *dn = NULL, *dn_h = NULL;
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, h, 1, 1, 2, &hn));
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, d, 1, 1, 2, &dn));
    CHECK_OK(ctx, ln_tensor_to_device(ctx, dn, ln_cpu(), &dn_h));
    tu_check_close(ctx, dn_h, hn, 0, 0, "narrowed device tensor to host");

    /* dtype conversion on copy, both directions and on the device */
    ln_tensor *d64 = NULL, *h64 = NULL, *hi = NULL, *src64 = NULL, *df = NULL, *di = NULL;
    CHECK_OK(ctx, ln_tensor_to_dtype(ctx, d, LN_F64, &d64));
    CHECK(on_cuda(d64) && d64->dtype == LN_F64, "f64 copy stays on the device");
    CHECK_OK(ctx, ln_tensor_to_device(ctx, d64, ln_cpu(), &h64));
    tu_check_close(ctx, h64, h, 0, 0, "device f32 -> device f64");
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_I64, ln_cpu(), 3, shape, &hi));
    CHECK_OK(ctx, ln_tensor_copy_(ctx, hi, d));
    double iv[60];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, hi, iv));
    CHECK(iv[0] == -20 && iv[59] == 38, "device f32 -> host i64 truncates (%g %g)", iv[0], iv[59]);
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F64, 3, shape, v, &src64));
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, cuda0, 3, shape, &df));
    CHECK_OK(ctx, ln_tensor_copy_(ctx, df, src64));
    tu_check_close(ctx, df, h, 0, 0, "host f64 -> device f32");
    CHECK_OK(ctx, ln_tensor_to_dtype(ctx, d, LN_I32, &di));
    double dv[60];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, di, dv));
    CHECK(dv[0] == -20 && dv[59] == 38, "device f32 -> device i32 (%g %g)", dv[0], dv[59]);

    /* fills: zeros (memset) and full */
    ln_tensor *z = NULL, *f = NULL;
    double zv[60], fv[60];
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, cuda0, 3, shape, &z));
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F32, cuda0, 3, shape, 2.5, &f));
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, z, zv));
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, f, fv));
    int bad = 0;
    for (int i = 0; i < 60; i++) bad += zv[i] != 0 || fv[i] != 2.5;
    CHECK(bad == 0, "device zeros and full (%d wrong)", bad);
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));

    ln_tensor *all[] = {h, d, d2, back, ht, dt, dt_h, dt_c, dt_c_h, hdst, hn, dn, dn_h,
                        d64, h64, hi, src64, df, di, z, f};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ln_tensor_release(all[i]);
}

/* ---------------------------------------------------------------- allocator */
/* Allocate n floats, free, allocate again: the second must come from the cache. */
static void check_reuse(ln_ctx *ctx, int64_t n, size_t rounded) {
    ln_cuda_mem_stats s0, s1, s2, s3;
    CHECK_OK(ctx, ln_cuda_empty_cache(ctx));
    ln_cuda_memory_stats(ctx, &s0);
    CHECK(s0.cached == 0, "empty cache leaves nothing cached (%zu)", s0.cached);
    ln_tensor *t = NULL, *u = NULL;
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, cuda0, 1, &n, &t));
    ln_cuda_memory_stats(ctx, &s1);
    CHECK(s1.n_cuda_malloc == s0.n_cuda_malloc + 1, "first allocation calls cudaMalloc");
    CHECK(s1.allocated == s0.allocated + rounded, "allocated grows by the rounded size %zu (%zu -> %zu)",
          rounded, s0.allocated, s1.allocated);
    CHECK(s1.peak_allocated >= s1.allocated, "peak >= allocated");
    void *p = t ? t->storage->data : NULL;
    ln_tensor_release(t);
    ln_cuda_memory_stats(ctx, &s2);
    CHECK(s2.allocated == s0.allocated && s2.cached == rounded, "freed block is cached (%zu)", s2.cached);
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, cuda0, 1, &n, &u));
    ln_cuda_memory_stats(ctx, &s3);
    CHECK(s3.n_cuda_malloc == s1.n_cuda_malloc && s3.n_reused == s2.n_reused + 1,
          "same size again: no new cudaMalloc (%lld -> %lld)", (long long)s1.n_cuda_malloc,
          (long long)s3.n_cuda_malloc);
    CHECK(u && u->storage->data == p && s3.cached == 0, "the cached block is handed out again");
    ln_tensor_release(u);
}

static void test_allocator(ln_ctx *ctx) {
    check_reuse(ctx, 100, 512);                    /* 400 B -> 512 B */
    check_reuse(ctx, 777777, (size_t)4 << 20);     /* 3.1 MB -> 4 MiB */
    /* a block more than 25% larger than the request is not used for it */
    ln_cuda_mem_stats s0, s1;
    ln_tensor *big = NULL, *small = NULL;
    CHECK_OK(ctx, ln_cuda_empty_cache(ctx));
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, cuda0, 1, (int64_t[]){1 << 22}, &big)); /* 16 MiB */
    ln_tensor_release(big);
    ln_cuda_memory_stats(ctx, &s0);
    CHECK_OK(ctx, ln_tensor_empty(ctx, LN_F32, cuda0, 1, (int64_t[]){1 << 20}, &small)); /* 4 MiB */
    ln_cuda_memory_stats(ctx, &s1);
    CHECK(s1.n_cuda_malloc == s0.n_cuda_malloc + 1 && s1.cached == s0.cached,
          "a 16 MiB cached block does not serve a 4 MiB request");
    ln_tensor_release(small);
    /* empty_cache returns everything to the driver */
    ln_cuda_memory_stats(ctx, &s0);
    CHECK_OK(ctx, ln_cuda_empty_cache(ctx));
    ln_cuda_memory_stats(ctx, &s1);
    CHECK(s1.cached == 0 && s1.n_cuda_free > s0.n_cuda_free, "empty_cache frees cached blocks");

    /* the workspace grows and keeps its block for smaller requests */
    void *w1 = NULL, *w2 = NULL, *w3 = NULL;
    CHECK_OK(ctx, ln_cuda_workspace(ctx, (size_t)1 << 20, &w1));
    CHECK_OK(ctx, ln_cuda_workspace(ctx, 1000, &w2));
    CHECK(w1 && w1 == w2, "a smaller workspace request keeps the block");
    CHECK_OK(ctx, ln_cuda_workspace(ctx, (size_t)8 << 20, &w3));
    CHECK(w3 != NULL, "workspace grows");
    CHECK_OK(ctx, ln_cuda_memset0(ctx, w3, (size_t)8 << 20));
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));

    /* out of memory: an error with a message, and the allocator still works after */
    ln_tensor *huge = NULL;
    ln_status st = ln_tensor_empty(ctx, LN_F32, cuda0, 1, (int64_t[]){(int64_t)1 << 48}, &huge);
    const char *msg = ln_ctx_error(ctx);
    CHECK(st == LN_ERR_NOMEM && huge == NULL && strstr(msg, "out of memory") && strstr(msg, "PiB"),
          "1 PiB request: got %s (%s)", ln_status_name(st), msg);
    printf("out-of-memory message: %s\n", msg);
    ln_ctx_clear_error(ctx);
    ln_cuda_memory_stats(ctx, &s0);
    CHECK(s0.cached == 0, "the cache was emptied before the retry");
    ln_tensor *after = NULL;
    double av[3] = {0};
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F32, cuda0, 1, (int64_t[]){3}, 1.5, &after));
    if (after) CHECK_OK(ctx, ln_tensor_to_f64(ctx, after, av));
    CHECK(av[0] == 1.5 && av[2] == 1.5, "allocations work after an out-of-memory error");
    ln_tensor_release(after);
}

/* ---------------------------------------------------------------- errors */
static void test_errors(ln_ctx *ctx) {
    ln_tensor *hd = tu_randn(ctx, LN_F32, 1, (int64_t[]){3}), *dd = to_cuda(ctx, hd);
    ln_status st = ln_tensor_add_(ctx, dd, hd, 1.0);
    CHECK(st == LN_ERR_DEVICE && strstr(ln_ctx_error(ctx), "device"), "add_ of a cuda and a cpu tensor: %s (%s)",
          ln_status_name(st), ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    st = ln_tensor_add_(ctx, hd, dd, 1.0);
    CHECK(st == LN_ERR_DEVICE, "add_ of a cpu and a cuda tensor fails");
    ln_ctx_clear_error(ctx);
    ln_tensor_release(hd);
    ln_tensor_release(dd);

    int count = ln_cuda_device_count(ctx);
    int bad_ordinals[] = {count, count + 2};
    for (int i = 0; i < 2; i++) {
        ln_device dev = {LN_CUDA, bad_ordinals[i]};
        char want[96];
        snprintf(want, sizeof want, "cuda:%d requested but %d device(s) present", bad_ordinals[i], count);
        ln_tensor *t = NULL;
        st = ln_tensor_empty(ctx, LN_F32, dev, 1, (int64_t[]){4}, &t);
        CHECK(st == LN_ERR_DEVICE && t == NULL && strstr(ln_ctx_error(ctx), want),
              "invalid ordinal: got %s (%s), wanted '%s'", ln_status_name(st), ln_ctx_error(ctx), want);
        ln_ctx_clear_error(ctx);
    }
    if (count >= 2) { /* a context drives the first device it was given */
        ln_tensor *t = NULL;
        CHECK_FAILS(ctx, ln_tensor_empty(ctx, LN_F32, (ln_device){LN_CUDA, 1}, 1, (int64_t[]){4}, &t),
                    LN_ERR_UNSUPPORTED);
    }
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 7);
    if (!ln_cuda_available(ctx)) {
        check_no_device(ctx);
        ln_ctx_release(ctx);
        if (tu_counts.failed) return test_finish();
        return test_skip("no CUDA device");
    }
    printf("CUDA devices: %d\n", ln_cuda_device_count(ctx));
    test_activations(ctx);
    test_autograd(ctx);
    test_copies(ctx);
    test_allocator(ctx);
    test_errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
