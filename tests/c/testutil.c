/* Implementation of the C test harness (see testutil.h). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

tu_state tu_counts;

int tu_check(int cond, const char *file, int line, const char *fmt, ...) {
    if (cond) { tu_counts.passed++; return 1; }
    tu_counts.failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 0;
}

int tu_check_status(ln_ctx *ctx, ln_status got, ln_status want, const char *file, int line,
                    const char *expr) {
    if (got == want && (want == LN_OK || ln_ctx_error(ctx)[0] != '\0')) {
        tu_counts.passed++;
        ln_ctx_clear_error(ctx);
        return 1;
    }
    tu_counts.failed++;
    fprintf(stderr, "FAIL %s:%d: %s returned '%s' (wanted '%s'): %s\n", file, line, expr,
            ln_status_name(got), ln_status_name(want), ln_ctx_error(ctx));
    ln_ctx_clear_error(ctx);
    return 0;
}

int test_finish(void) {
    printf("%d passed, %d failed\n", tu_counts.passed, tu_counts.failed);
    return tu_counts.failed ? 1 : 0;
}

int test_skip(const char *why) {
    printf("SKIPPED: %s\n", why);
    return 77;
}

ln_tensor *tu_randn(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape) {
    ln_tensor *t = NULL;
    if (ln_tensor_empty(ctx, dt, ln_cpu(), ndim, shape, &t) != LN_OK) return NULL;
    if (ln_tensor_normal_(ctx, t, 0, 1) != LN_OK) { ln_tensor_release(t); return NULL; }
    return t;
}

ln_tensor *tu_rand_uniform(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape,
                           double lo, double hi) {
    ln_tensor *t = NULL;
    if (ln_tensor_empty(ctx, dt, ln_cpu(), ndim, shape, &t) != LN_OK) return NULL;
    if (ln_tensor_uniform_(ctx, t, lo, hi) != LN_OK) { ln_tensor_release(t); return NULL; }
    return t;
}

static double *to_f64(ln_ctx *ctx, const ln_tensor *t) {
    int64_t n = ln_tensor_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (v && ln_tensor_to_f64(ctx, t, v) != LN_OK) { free(v); v = NULL; }
    return v;
}

double tu_close_ratio(ln_ctx *ctx, const ln_tensor *a, const ln_tensor *b, double rtol, double atol) {
    if (!a || !b || !ln_tensor_same_shape(a, b)) return -1;
    int64_t n = ln_tensor_numel(a);
    double *va = to_f64(ctx, a), *vb = to_f64(ctx, b), worst = 0;
    if (!va || !vb) { free(va); free(vb); return -1; }
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(va[i] - vb[i]);
        double r = d == 0 ? 0 : d / (atol + rtol * fabs(vb[i]));
        if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
    }
    free(va); free(vb);
    return worst;
}

int tu_check_close(ln_ctx *ctx, const ln_tensor *a, const ln_tensor *b, double rtol,
                   double atol, const char *what) {
    double r = tu_close_ratio(ctx, a, b, rtol, atol);
    return CHECK(r >= 0 && r <= 1, "%s: not close (ratio %g, rtol %g atol %g)", what, r, rtol, atol);
}

/* loss = sum(out * w); returns its value. */
static double weighted_sum(ln_ctx *ctx, const ln_tensor *out, const double *w) {
    int64_t n = ln_tensor_numel(out);
    double *v = to_f64(ctx, out), s = 0;
    if (!v) return NAN;
    for (int64_t i = 0; i < n; i++) s += v[i] * w[i];
    free(v);
    return s;
}

static double *random_weights(int64_t n) {
    double *w = malloc((size_t)(n ? n : 1) * sizeof *w);
    uint64_t x = 12345;
    for (int64_t i = 0; w && i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = ((double)(x >> 11) / 9007199254740992.0) * 2 - 1;
    }
    return w;
}

static ln_tensor *weights_tensor(ln_ctx *ctx, const ln_tensor *out, const double *w) {
    ln_tensor *h = NULL, *t = NULL;
    if (ln_tensor_from_f64(ctx, out->dtype, out->ndim, out->shape, w, &h) != LN_OK) return NULL;
    if (ln_tensor_to_device(ctx, h, ln_tensor_device(out), &t) != LN_OK) t = NULL;
    ln_tensor_release(h);
    return t;
}

int tu_gradcheck(ln_ctx *ctx, tu_fn fn, void *ud, int n, ln_tensor **inputs, double eps,
                 double tol, int max_elems, const char *what) {
    ln_tensor *out = NULL;
    for (int i = 0; i < n; i++) if (inputs[i]) { ln_tensor_release(inputs[i]->grad); inputs[i]->grad = NULL; }
    if (!CHECK_OK(ctx, fn(ctx, inputs, ud, &out))) return 0;
    int64_t on = ln_tensor_numel(out);
    double *w = random_weights(on);
    ln_tensor *wt = weights_tensor(ctx, out, w);
    int ok = CHECK_OK(ctx, ln_backward(ctx, out, wt, false));
    ln_tensor_release(wt);
    ln_tensor_release(out);
    bool prev = ln_ctx_set_grad_enabled(ctx, false);
    double worst = 0;
    for (int i = 0; ok && i < n; i++) {
        ln_tensor *x = inputs[i];
        if (!x || !x->requires_grad) continue;
        if (!CHECK(x->grad != NULL, "%s: input %d got no gradient", what, i)) { ok = 0; break; }
        double *g = to_f64(ctx, x->grad);
        double *xd = ln_tensor_data(x);
        int64_t xn = ln_tensor_numel(x);
        int64_t step = (max_elems > 0 && xn > max_elems) ? (xn + max_elems - 1) / max_elems : 1;
        for (int64_t k = (step > 1 ? (int64_t)(i * 7) % step : 0); k < xn; k += step) {
            int64_t off = 0, rem = k; /* element k in row-major order of view x */
            for (int d = x->ndim - 1; d >= 0; d--) { off += (rem % x->shape[d]) * x->strides[d]; rem /= x->shape[d]; }
            double orig = xd[off];
            ln_tensor *o1 = NULL, *o2 = NULL;
            xd[off] = orig + eps;
            ln_status s1 = fn(ctx, inputs, ud, &o1);
            xd[off] = orig - eps;
            ln_status s2 = fn(ctx, inputs, ud, &o2);
            xd[off] = orig;
            if (s1 != LN_OK || s2 != LN_OK) { ok = CHECK_OK(ctx, s1 != LN_OK ? s1 : s2); ln_tensor_release(o1); ln_tensor_release(o2); break; }
            double num = (weighted_sum(ctx, o1, w) - weighted_sum(ctx, o2, w)) / (2 * eps);
            ln_tensor_release(o1);
            ln_tensor_release(o2);
            double err = fabs(num - g[k]) / fmax(1.0, fabs(g[k]));
            if (!(err <= worst)) worst = isnan(err) ? INFINITY : err;
            if (!(err <= tol)) {
                fprintf(stderr, "  %s: input %d element %lld: analytic %.8g numeric %.8g\n", what, i,
                        (long long)k, g[k], num);
                ok = 0;
                break;
            }
        }
        free(g);
    }
    ln_ctx_set_grad_enabled(ctx, prev);
    free(w);
    return CHECK(ok, "%s: gradient check failed (worst error %g, tol %g)", what, worst, tol);
}

static int run_path(ln_ctx *ctx, ln_backend_pref pref, tu_fn fn, void *ud, int n, ln_tensor **inputs,
                    ln_tensor **out, ln_tensor **grads) {
    ln_backend_pref prev = ln_ctx_backend(ctx);
    ln_ctx_set_backend(ctx, pref);
    for (int i = 0; i < n; i++) if (inputs[i]) { ln_tensor_release(inputs[i]->grad); inputs[i]->grad = NULL; }
    int ok = CHECK_OK(ctx, fn(ctx, inputs, ud, out));
    if (ok && (*out)->requires_grad) {
        double *w = random_weights(ln_tensor_numel(*out));
        ln_tensor *wt = weights_tensor(ctx, *out, w);
        ok = CHECK_OK(ctx, ln_backward(ctx, *out, wt, false));
        ln_tensor_release(wt);
        free(w);
    }
    for (int i = 0; i < n; i++) {
        grads[i] = inputs[i] ? inputs[i]->grad : NULL;
        if (inputs[i]) inputs[i]->grad = NULL;
    }
    ln_ctx_set_backend(ctx, prev);
    return ok;
}

int tu_compare_paths(ln_ctx *ctx, tu_fn fn, void *ud, int n, ln_tensor **inputs,
                     double rtol, double atol, const char *what) {
    ln_tensor *o_ref = NULL, *o_fast = NULL, *g_ref[16] = {0}, *g_fast[16] = {0};
    int ok = n <= 16;
    ok = ok && run_path(ctx, LN_BACKEND_REF, fn, ud, n, inputs, &o_ref, g_ref);
    ok = ok && run_path(ctx, LN_BACKEND_AUTO, fn, ud, n, inputs, &o_fast, g_fast);
    char label[256];
    if (ok) {
        snprintf(label, sizeof label, "%s: output fast vs reference", what);
        ok = tu_check_close(ctx, o_fast, o_ref, rtol, atol, label);
    }
    for (int i = 0; ok && i < n; i++) {
        if (!g_ref[i] && !g_fast[i]) continue;
        snprintf(label, sizeof label, "%s: grad of input %d fast vs reference", what, i);
        ok = CHECK(g_ref[i] && g_fast[i], "%s: gradient missing on one path", label) &&
             tu_check_close(ctx, g_fast[i], g_ref[i], rtol, atol, label);
    }
    for (int i = 0; i < n && i < 16; i++) { ln_tensor_release(g_ref[i]); ln_tensor_release(g_fast[i]); }
    ln_tensor_release(o_ref);
    ln_tensor_release(o_fast);
    return ok;
}
