/* Tensors: creation, dtypes, views (reshape, transpose, narrow), copies across dtypes,
 * fill, seeded RNG reproducibility and statistics, and error paths. */
#include <math.h>
#include <string.h>
#include "testutil.h"

static void test_views(ln_ctx *ctx) {
    double v[24];
    for (int i = 0; i < 24; i++) v[i] = i;
    ln_tensor *t, *r, *tr, *nr, *c;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 3, (int64_t[]){2, 3, 4}, v, &t));
    CHECK(ln_tensor_numel(t) == 24 && ln_tensor_is_contiguous(t), "numel/contiguous");
    CHECK_OK(ctx, ln_tensor_view(ctx, t, 2, (int64_t[]){-1, 4}, &r));
    CHECK(r->shape[0] == 6 && r->shape[1] == 4, "reshape infers -1");
    CHECK(r->storage == t->storage, "reshape shares storage");
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, r, 0, 1, &tr));
    CHECK(!ln_tensor_is_contiguous(tr) && tr->shape[0] == 4, "transpose is a strided view");
    double out[24];
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, tr, out));
    CHECK(out[1] == 4 && out[6] == 1, "transposed element order (%g %g)", out[1], out[6]);
    CHECK_OK(ctx, ln_tensor_narrow_view(ctx, t, 2, 1, 2, &nr));
    CHECK_OK(ctx, ln_tensor_contiguous(ctx, nr, &c));
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, c, out));
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 5 && ln_tensor_numel(c) == 12, "narrow + contiguous");
    ln_tensor *bad = NULL;
    CHECK_FAILS(ctx, ln_tensor_view(ctx, tr, 1, (int64_t[]){24}, &bad), LN_ERR_STATE);
    CHECK_FAILS(ctx, ln_tensor_view(ctx, t, 2, (int64_t[]){5, 5}, &bad), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_tensor_narrow_view(ctx, t, 2, 3, 2, &bad), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_tensor_transpose_view(ctx, t, 0, 3, &bad), LN_ERR_ARG);
    CHECK(bad == NULL, "no tensor on failure");
    ln_tensor_release(t); ln_tensor_release(r); ln_tensor_release(tr);
    ln_tensor_release(nr); ln_tensor_release(c);
}

static void test_dtypes(ln_ctx *ctx) {
    double v[4] = {-1.5, 0, 2.7, 300};
    ln_tensor *f, *i64, *u8, *f64;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 1, (int64_t[]){4}, v, &f));
    CHECK_OK(ctx, ln_tensor_to_dtype(ctx, f, LN_I64, &i64));
    CHECK_OK(ctx, ln_tensor_to_dtype(ctx, f, LN_U8, &u8));
    CHECK_OK(ctx, ln_tensor_to_dtype(ctx, i64, LN_F64, &f64));
    double o[4];
    ln_tensor_to_f64(ctx, i64, o);
    CHECK(o[0] == -1 && o[2] == 2 && o[3] == 300, "f32 -> i64 truncates");
    ln_tensor_to_f64(ctx, u8, o);
    CHECK(o[0] == 0 && o[3] == 255, "f32 -> u8 saturates");
    CHECK(f64->dtype == LN_F64 && ln_dtype_size(LN_F64) == 8, "f64");
    ln_dtype dt;
    CHECK(ln_dtype_parse("float64", &dt) && dt == LN_F64 && !ln_dtype_parse("f16x", &dt), "dtype names");
    ln_device d;
    CHECK(ln_device_parse("cuda:1", &d) && d.type == LN_CUDA && d.index == 1, "device cuda:1");
    CHECK(!ln_device_parse("cuda:", &d) && !ln_device_parse("gpu", &d), "bad device names");
    double item;
    CHECK_FAILS(ctx, ln_tensor_item(ctx, f, &item), LN_ERR_SHAPE);
    ln_tensor_release(f); ln_tensor_release(i64); ln_tensor_release(u8); ln_tensor_release(f64);
}

static void test_rng(ln_ctx *ctx) {
    int64_t n = 100000;
    ln_tensor *a, *b;
    ln_ctx_manual_seed(ctx, 42);
    a = tu_randn(ctx, LN_F64, 1, &n);
    ln_ctx_manual_seed(ctx, 42);
    b = tu_randn(ctx, LN_F64, 1, &n);
    CHECK(tu_close_ratio(ctx, a, b, 0, 1e-300) <= 1, "same seed, same numbers");
    double *v = ln_tensor_data(a), m = 0, s = 0;
    for (int64_t i = 0; i < n; i++) m += v[i];
    m /= (double)n;
    for (int64_t i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    s = sqrt(s / (double)n);
    CHECK(fabs(m) < 0.02 && fabs(s - 1) < 0.02, "normal(0,1) moments: mean %g std %g", m, s);
    ln_tensor *u = tu_rand_uniform(ctx, LN_F32, 1, &n, 2, 3);
    float *uf = ln_tensor_data(u);
    int inside = 1;
    for (int64_t i = 0; i < n; i++) inside &= uf[i] >= 2 && uf[i] <= 3;
    CHECK(inside, "uniform within bounds");
    ln_tensor_release(a); ln_tensor_release(b); ln_tensor_release(u);
}

static void test_errors(ln_ctx *ctx) {
    ln_tensor *t = NULL;
    CHECK_FAILS(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){-1, 3}, &t), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, &t), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_tensor_empty(ctx, LN_F32, ln_cpu(), 2, (int64_t[]){INT64_MAX / 2, 3}, &t), LN_ERR_SHAPE);
    CHECK(t == NULL, "no tensor on failure");
    ln_tensor *a, *b;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){3}, &a));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){4}, &b));
    CHECK_FAILS(ctx, ln_tensor_copy_(ctx, a, b), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_tensor_add_(ctx, a, b, 1), LN_ERR_SHAPE);
    ln_tensor_release(a); ln_tensor_release(b);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    test_views(ctx);
    test_dtypes(ctx);
    test_rng(ctx);
    test_errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
