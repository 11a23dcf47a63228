/* Shared by the CUDA parity tests (test_cuda_ops.c, test_cuda_train.c): the "other
 * side" of a comparison and a runner that computes an op's output and its inputs'
 * gradients on the CPU (fast kernels) and on the other side from the same values.
 *
 * The other side is cuda:0 when a device is usable. Without one the tests rehearse
 * themselves: the same checks run with the CPU's reference kernels standing in for
 * CUDA, so the checks, their shapes and tolerances are exercised on every machine,
 * and the test then reports SKIPPED (exit 77), or fails if the rehearsal failed.
 *
 * Tolerances: got is close to want when |got - want| <= rtol*|want| + ftol*max|want|
 * for every element (max over the whole of want): ftol absorbs the rounding of sums
 * whose terms cancel. */
#ifndef LUNET_TEST_CUDA_PARITY_H
#define LUNET_TEST_CUDA_PARITY_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

typedef struct par_side {
    ln_ctx *ctx;
    ln_device dev;   /* cuda:0, or the CPU in a rehearsal */
    bool rehearsal;
} par_side;

typedef struct par_tol { double rtol, ftol; } par_tol;

/* Per op family (the CUDA and CPU kernels round differently, not the formulas). */
static const par_tol TOL_EXACT = {0, 0};       /* moves and comparisons: bit-identical */
static const par_tol TOL_ELEM = {1e-5, 1e-6};  /* elementwise arithmetic */
static const par_tol TOL_SUM = {1e-5, 1e-5};   /* sums accumulated in double */
static const par_tol TOL_GEMM = {1e-4, 1e-4};  /* conv, GEMM, batch norm: f32 dot products */

static inline par_side par_open(ln_ctx *ctx) {
    par_side p = {ctx, {LN_CUDA, 0}, false};
    if (!ln_cuda_available(ctx)) {
        p.dev = ln_cpu();
        p.rehearsal = true;
        printf("no CUDA device: rehearsing the checks with the reference CPU kernels as the other side\n");
    }
    return p;
}

/* Selects the kernels of one side: the CPU's fast ones, or the other side's. */
static inline void par_select(const par_side *P, bool other) {
    ln_ctx_set_backend(P->ctx, other && P->rehearsal ? LN_BACKEND_REF : LN_BACKEND_AUTO);
}

/* A copy of the CPU tensor t on one side, a leaf with t's requires_grad. */
static inline ln_tensor *par_copy(const par_side *P, bool other, const ln_tensor *t) {
    if (!t) return NULL;
    ln_tensor *c = NULL;
    CHECK_OK(P->ctx, ln_tensor_to_device(P->ctx, t, other ? P->dev : ln_cpu(), &c)); /* always a new tensor */
    if (c) c->requires_grad = t->requires_grad;
    return c;
}

static inline double par_max_abs(ln_ctx *ctx, const ln_tensor *t) {
    int64_t n = ln_tensor_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v), m = 0;
    if (!v || ln_tensor_to_f64(ctx, t, v) != LN_OK) { free(v); return NAN; }
    for (int64_t i = 0; i < n; i++) m = fabs(v[i]) > m ? fabs(v[i]) : m;
    free(v);
    return m;
}

static inline int par_close(const par_side *P, const ln_tensor *got, const ln_tensor *want, par_tol tol,
                            const char *what) {
    if (!CHECK(got && want, "%s: missing tensor (got %p, want %p)", what, (const void *)got, (const void *)want))
        return 0;
    double atol = tol.ftol * par_max_abs(P->ctx, want);
    return tu_check_close(P->ctx, got, want, tol.rtol, atol > 0 ? atol : 1e-30, what);
}

/* Fixed weights in [-1, 1] shaped like t, on t's device: the backward seeds. */
static inline ln_tensor *par_weights(ln_ctx *ctx, const ln_tensor *t) {
    int64_t n = ln_tensor_numel(t);
    double *w = malloc((size_t)(n ? n : 1) * sizeof *w);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int64_t i = 0; w && i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = (double)(x >> 11) / 9007199254740992.0 * 2 - 1;
    }
    ln_tensor *h = NULL, *d = NULL;
    if (w && ln_tensor_from_f64(ctx, t->dtype, t->ndim, t->shape, w, &h) == LN_OK)
        CHECK_OK(ctx, ln_tensor_to_device(ctx, h, ln_tensor_device(t), &d));
    free(w);
    ln_tensor_release(h);
    return d;
}

/* Runs fn on one side with copies of inputs (kept in used[]), then backward of
 * sum(out * weights) when out requires grad; grads[i] takes input i's gradient. */
static inline int par_run(const par_side *P, bool other, tu_fn fn, void *ud, int n, ln_tensor *const *inputs,
                          ln_tensor **used, ln_tensor **out, ln_tensor **grads) {
    par_select(P, other);
    for (int i = 0; i < n; i++) used[i] = par_copy(P, other, inputs[i]);
    *out = NULL;
    int ok = CHECK_OK(P->ctx, fn(P->ctx, used, ud, out));
    if (ok && other) {
        char want[16], got[16];
        ln_device_format(P->dev, want, sizeof want);
        ln_device_format(ln_tensor_device(*out), got, sizeof got);
        ok = CHECK(strcmp(want, got) == 0, "output on %s, expected %s", got, want);
    }
    if (ok && (*out)->requires_grad) {
        ln_tensor *w = par_weights(P->ctx, *out);
        ok = CHECK_OK(P->ctx, ln_backward(P->ctx, *out, w, false));
        ln_tensor_release(w);
    }
    for (int i = 0; i < n; i++) {
        grads[i] = used[i] ? used[i]->grad : NULL;
        if (used[i]) used[i]->grad = NULL;
    }
    par_select(P, false);
    return ok;
}

/* fn's output and input gradients on both sides must agree within tol; inputs whose
 * bit is set in compare_inputs (in-place updates such as running statistics) too. */
static inline int par_check(const par_side *P, tu_fn fn, void *ud, int n, ln_tensor *const *inputs, par_tol tol,
                            unsigned compare_inputs, const char *what) {
    ln_tensor *uc[16] = {0}, *ud_[16] = {0}, *gc[16] = {0}, *gd[16] = {0}, *oc = NULL, *od = NULL;
    char label[300];
    int ok = CHECK(n <= 16, "%s: at most 16 inputs", what);
    ok = ok && par_run(P, false, fn, ud, n, inputs, uc, &oc, gc);
    ok = ok && par_run(P, true, fn, ud, n, inputs, ud_, &od, gd);
    if (ok) {
        snprintf(label, sizeof label, "%s: output", what);
        ok = par_close(P, od, oc, tol, label);
    }
    for (int i = 0; ok && i < n; i++) {
        if (gc[i] || gd[i]) {
            snprintf(label, sizeof label, "%s: gradient of input %d", what, i);
            ok = CHECK(gc[i] && gd[i], "%s missing on one side", label) && par_close(P, gd[i], gc[i], tol, label);
        }
        if (ok && (compare_inputs >> i & 1u)) {
            snprintf(label, sizeof label, "%s: input %d after the call", what, i);
            ok = par_close(P, ud_[i], uc[i], tol, label);
        }
    }
    for (int i = 0; i < n && i < 16; i++) {
        ln_tensor_release(uc[i]); ln_tensor_release(ud_[i]);
        ln_tensor_release(gc[i]); ln_tensor_release(gd[i]);
    }
    ln_tensor_release(oc);
    ln_tensor_release(od);
    return ok;
}

/* Exit: the counts, then SKIPPED (77) after a successful rehearsal. */
static inline int par_finish(const par_side *P) {
    if (!P->rehearsal || tu_counts.failed) return test_finish();
    printf("rehearsal: %d passed, %d failed\n", tu_counts.passed, tu_counts.failed);
    return test_skip("no CUDA device (the checks were rehearsed on the CPU)");
}

#endif
