/* sgd_step: three steps of several configurations (plain, weight decay, momentum,
 * dampening, nesterov) against hand-computed sequences, on the reference and fast
 * paths; fast vs reference (f32) on large tensors; strided parameters; and argument
 * errors that leave the parameter untouched. */
#include <math.h>
#include "testutil.h"

/* param starts at {1, -2}; the gradients of steps 1..3 */
static const double P0[2] = {1, -2};
static const double GRADS[3][2] = {{0.5, 0.1}, {-0.3, 0.2}, {0.2, -0.4}};

typedef struct sgd_case {
    const char *name;
    ln_sgd_params p;
    double param[3][2], buf[3][2]; /* after each step */
} sgd_case;

/* Hand computation of the first case (lr 0.1, momentum 0.9, weight decay 0.01):
 *   step 1: g = {0.5+0.01, 0.1-0.02} = {0.51, 0.08}; buf = g; p = {0.949, -2.008}
 *   step 2: g = {-0.3+0.00949, 0.2-0.02008} = {-0.29051, 0.17992};
 *           buf = 0.9*{0.51, 0.08} + g = {0.16849, 0.25192}; p = {0.932151, -2.033192}
 *   step 3: g = {0.20932151, -0.42033192}; buf = {0.36096251, -0.19360392};
 *           p = {0.896054749, -2.013831608}
 * The others follow the same rule (nesterov: p -= lr*(g + momentum*buf); dampening d:
 * buf = momentum*buf + (1-d)*g after the first step) and agree with torch.optim.SGD. */
static const sgd_case CASES[] = {
    {"momentum + weight decay", {0.1, 0.9, 0.01, 0, false},
     {{0.949, -2.008}, {0.932151, -2.033192}, {0.896054749, -2.013831608}},
     {{0.51, 0.08}, {0.16849, 0.25192}, {0.36096251, -0.19360392}}},
    {"nesterov", {0.1, 0.9, 0.01, 0, true},
     {{0.9031, -2.0152}, {0.91707411, -2.05585112}, {0.863721158191, -1.996344690872}},
     {{0.51, 0.08}, {0.168031, 0.251848}, {0.3603986411, -0.1938953112}}},
    {"dampening", {0.05, 0.8, 0, 0.5, false},
     {{0.975, -2.005}, {0.9625, -2.014}, {0.9475, -2.0112}},
     {{0.5, 0.1}, {0.25, 0.18}, {0.3, -0.056}}},
    {"no momentum", {0.2, 0, 0.1, 0, false},
     {{0.88, -1.98}, {0.9224, -1.9804}, {0.863952, -1.860792}},
     {{0, 0}, {0, 0}, {0, 0}}},
};

static ln_tensor *vec2(ln_ctx *ctx, ln_dtype dt, const double *v) {
    ln_tensor *t = NULL;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, dt, 1, (int64_t[]){2}, v, &t));
    return t;
}

static void sequences(ln_ctx *ctx, ln_dtype dt) {
    double tol = dt == LN_F32 ? 2e-6 : 1e-12;
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        const sgd_case *k = &CASES[c];
        bool mom = k->p.momentum != 0;
        ln_tensor *p = vec2(ctx, dt, P0), *buf = mom ? vec2(ctx, dt, (double[]){7, 7}) : NULL;
        for (int s = 0; s < 3; s++) {
            ln_tensor *g = vec2(ctx, dt, GRADS[s]);
            CHECK_OK(ctx, ln_sgd_step(ctx, p, g, buf, s == 0, k->p));
            double pv[2], bv[2] = {0, 0};
            CHECK_OK(ctx, ln_tensor_to_f64(ctx, p, pv));
            if (buf) CHECK_OK(ctx, ln_tensor_to_f64(ctx, buf, bv));
            CHECK(fabs(pv[0] - k->param[s][0]) < tol && fabs(pv[1] - k->param[s][1]) < tol &&
                      fabs(bv[0] - k->buf[s][0]) < tol && fabs(bv[1] - k->buf[s][1]) < tol,
                  "sgd %s (%s) step %d: param {%.12g, %.12g} buf {%.12g, %.12g}", k->name,
                  ln_dtype_name(dt), s + 1, pv[0], pv[1], bv[0], bv[1]);
            ln_tensor_release(g);
        }
        ln_tensor_release(p);
        ln_tensor_release(buf);
    }
}

/* Several steps of every configuration on 70000 values: fast f32 vs reference. */
static void fast_vs_ref(ln_ctx *ctx) {
    int64_t n = 70000;
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        ln_tensor *pa = tu_randn(ctx, LN_F32, 1, &n), *pb, *ba, *bb;
        CHECK_OK(ctx, ln_tensor_clone(ctx, pa, &pb));
        CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, &n, &ba));
        CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, &n, &bb));
        for (int s = 0; s < 4; s++) {
            ln_tensor *g = tu_randn(ctx, LN_F32, 1, &n);
            CHECK_OK(ctx, ln_sgd_step(ctx, pa, g, ba, s == 0, CASES[c].p));
            ln_ctx_set_backend(ctx, LN_BACKEND_REF);
            CHECK_OK(ctx, ln_sgd_step(ctx, pb, g, bb, s == 0, CASES[c].p));
            ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
            ln_tensor_release(g);
        }
        tu_check_close(ctx, pa, pb, 1e-5, 1e-6, "sgd param fast vs reference");
        tu_check_close(ctx, ba, bb, 1e-5, 1e-6, "sgd momentum buffer fast vs reference");
        ln_tensor_release(pa); ln_tensor_release(pb); ln_tensor_release(ba); ln_tensor_release(bb);
    }
}

/* A transposed (strided) param and buffer are updated in place like contiguous ones;
 * with momentum 0 a given buffer is left alone. */
static void strided_and_no_buffer(ln_ctx *ctx) {
    int64_t shp[2] = {5, 6}, tshp[2] = {6, 5};
    ln_tensor *base = tu_randn(ctx, LN_F32, 2, shp), *pt, *pc, *bbase, *bt, *bc;
    ln_tensor *g = tu_randn(ctx, LN_F32, 2, tshp);
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 2, shp, &bbase));
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, base, 0, 1, &pt));
    CHECK_OK(ctx, ln_tensor_transpose_view(ctx, bbase, 0, 1, &bt));
    CHECK_OK(ctx, ln_tensor_clone(ctx, pt, &pc));
    CHECK_OK(ctx, ln_tensor_clone(ctx, bt, &bc));
    ln_sgd_params p = {0.1, 0.9, 1e-4, 0, true};
    for (int s = 0; s < 2; s++) {
        CHECK_OK(ctx, ln_sgd_step(ctx, pt, g, bt, s == 0, p));
        CHECK_OK(ctx, ln_sgd_step(ctx, pc, g, bc, s == 0, p));
    }
    tu_check_close(ctx, pt, pc, 0, 0, "sgd strided param");
    tu_check_close(ctx, bt, bc, 0, 0, "sgd strided momentum buffer");
    ln_sgd_params plain = {0.1, 0, 0, 0, false};
    ln_tensor *before;
    CHECK_OK(ctx, ln_tensor_clone(ctx, bc, &before));
    CHECK_OK(ctx, ln_sgd_step(ctx, pc, g, bc, false, plain));
    tu_check_close(ctx, bc, before, 0, 0, "momentum 0 leaves the buffer alone");
    CHECK_OK(ctx, ln_sgd_step(ctx, pc, g, NULL, true, plain));
    ln_tensor *ts[] = {base, pt, pc, bbase, bt, bc, g, before};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ln_tensor_release(ts[i]);
}

static void errors(ln_ctx *ctx) {
    int64_t n = 4, m = 5;
    ln_tensor *p = tu_randn(ctx, LN_F32, 1, &n), *g = tu_randn(ctx, LN_F32, 1, &n), *buf, *before;
    ln_tensor *g5 = tu_randn(ctx, LN_F32, 1, &m), *g64 = tu_randn(ctx, LN_F64, 1, &n), *pi;
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, &n, &buf));
    ln_tensor *b5 = tu_randn(ctx, LN_F32, 1, &m);
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_I64, ln_cpu(), 1, &n, &pi));
    CHECK_OK(ctx, ln_tensor_clone(ctx, p, &before));
    ln_sgd_params ok = {0.1, 0.9, 0, 0, false};
    CHECK_FAILS(ctx, ln_sgd_step(ctx, p, g5, buf, true, ok), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_sgd_step(ctx, p, g, b5, true, ok), LN_ERR_SHAPE);
    CHECK_FAILS(ctx, ln_sgd_step(ctx, p, g, NULL, true, ok), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_sgd_step(ctx, p, g64, buf, true, ok), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_sgd_step(ctx, pi, g, buf, true, ok), LN_ERR_DTYPE);
    CHECK_FAILS(ctx, ln_sgd_step(ctx, NULL, g, buf, true, ok), LN_ERR_ARG);
    CHECK_FAILS(ctx, ln_sgd_step(ctx, p, NULL, buf, true, ok), LN_ERR_ARG);
    ln_sgd_params bad[] = {
        {-0.1, 0.9, 0, 0, false}, {NAN, 0.9, 0, 0, false}, {0.1, -0.5, 0, 0, false},
        {0.1, 0.9, -1e-4, 0, false}, {0.1, 0.9, 0, 0.5, true}, {0.1, 0, 0, 0, true},
        {INFINITY, 0.9, 0, 0, false},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_FAILS(ctx, ln_sgd_step(ctx, p, g, buf, true, bad[i]), LN_ERR_ARG);
    tu_check_close(ctx, p, before, 0, 0, "failed steps leave param alone");
    ln_tensor *ts[] = {p, g, buf, before, g5, g64, pi, b5};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ln_tensor_release(ts[i]);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 11);
    sequences(ctx, LN_F64);
    sequences(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_REF);
    sequences(ctx, LN_F32);
    ln_ctx_set_backend(ctx, LN_BACKEND_AUTO);
    fast_vs_ref(ctx);
    strided_and_no_buffer(ctx);
    errors(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
