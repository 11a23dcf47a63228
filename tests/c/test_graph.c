/* The autograd contract on real graphs: a tensor used twice gets the sum of its
 * gradients; a weight shared by three matmuls (a shared basis) gets the sum of the
 * three separate gradients; no_grad records nothing; backward twice needs
 * retain_graph and then accumulates; mixed devices and dtypes are errors naming both
 * arguments; and the orthogonality penalty ||B B^T - I||_F^2 has gradient
 * 4 (B B^T - I) B. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static double *values_of(ln_ctx *ctx, const ln_tensor *t) {
    double *v = malloc((size_t)(ln_tensor_numel(t) + 1) * sizeof *v);
    CHECK_OK(ctx, ln_tensor_to_f64(ctx, t, v));
    return v;
}

static void release_all(ln_tensor **ts, size_t n) {
    for (size_t i = 0; i < n; i++) ln_tensor_release(ts[i]);
}

/* ---------------------------------------------------------------- (a) */
/* z = cat(x*w + x, relu(x), transpose(x)) along dim 0: x is used four times */
static ln_status used_twice(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    ln_tensor *xw = NULL, *y = NULL, *r = NULL, *t = NULL;
    ln_status st;
    if ((st = ln_mul(ctx, in[0], in[1], &xw)) != LN_OK) goto done;
    if ((st = ln_add(ctx, xw, in[0], &y)) != LN_OK) goto done;
    if ((st = ln_relu(ctx, in[0], &r)) != LN_OK) goto done;
    if ((st = ln_transpose(ctx, in[0], 0, 1, &t)) != LN_OK) goto done;
    st = ln_cat(ctx, 3, (ln_tensor *[]){y, r, t}, 0, out);
done:
    ln_tensor_release(xw); ln_tensor_release(y); ln_tensor_release(r); ln_tensor_release(t);
    return st;
}

static void tensor_used_twice(ln_ctx *ctx) {
    /* x (3,3) so that its transpose cats with the others */
    ln_tensor *in[2] = {tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 3}), tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 3})};
    in[0]->requires_grad = in[1]->requires_grad = true;
    tu_gradcheck(ctx, used_twice, NULL, 2, in, 1e-6, 1e-7, 0, "x used four times");
    /* with a ones seed: dx = w + 1 + [x > 0] + 1 */
    ln_tensor_release(in[0]->grad);
    ln_tensor_release(in[1]->grad);
    in[0]->grad = in[1]->grad = NULL;
    ln_tensor *z, *s;
    CHECK_OK(ctx, used_twice(ctx, in, NULL, &z));
    CHECK_OK(ctx, ln_sum(ctx, z, -1, false, &s));
    CHECK_OK(ctx, ln_backward(ctx, s, NULL, false));
    double *x = values_of(ctx, in[0]), *w = values_of(ctx, in[1]), *g = values_of(ctx, in[0]->grad);
    int ok = 1;
    for (int i = 0; i < 9; i++) ok = ok && fabs(g[i] - (w[i] + 1 + (x[i] > 0) + 1)) < 1e-12;
    CHECK(ok, "x.grad is the sum of the gradients of all its uses");
    free(x); free(w); free(g);
    ln_tensor *all[] = {in[0], in[1], z, s};
    release_all(all, 4);
}

/* ---------------------------------------------------------------- (b) */
static ln_status shared_basis(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    ln_tensor *y[3] = {NULL, NULL, NULL}, *s = NULL;
    ln_status st = LN_OK;
    for (int i = 0; i < 3 && st == LN_OK; i++) st = ln_matmul(ctx, in[i], in[3], &y[i]);
    if (st == LN_OK) st = ln_add(ctx, y[0], y[1], &s);
    if (st == LN_OK) st = ln_add(ctx, s, y[2], out);
    release_all(y, 3);
    ln_tensor_release(s);
    return st;
}

static void shared_weight(ln_ctx *ctx) {
    ln_tensor *in[4];
    for (int i = 0; i < 3; i++) in[i] = tu_randn(ctx, LN_F64, 2, (int64_t[]){2, 3});
    in[3] = tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 4});
    in[3]->requires_grad = true;
    tu_gradcheck(ctx, shared_basis, NULL, 4, in, 1e-6, 1e-7, 0, "shared basis");
    ln_tensor_release(in[3]->grad);
    in[3]->grad = NULL;
    /* the combined gradient against three separate backward passes */
    ln_tensor *seed, *y;
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F64, ln_cpu(), 2, (int64_t[]){2, 4}, 1, &seed));
    CHECK_OK(ctx, shared_basis(ctx, in, NULL, &y));
    CHECK_OK(ctx, ln_backward(ctx, y, seed, false));
    ln_tensor_release(y);
    double *combined = values_of(ctx, in[3]->grad), sep[12] = {0};
    for (int i = 0; i < 3; i++) {
        ln_tensor_release(in[3]->grad);
        in[3]->grad = NULL;
        CHECK_OK(ctx, ln_matmul(ctx, in[i], in[3], &y));
        CHECK_OK(ctx, ln_backward(ctx, y, seed, false));
        double *g = values_of(ctx, in[3]->grad);
        for (int k = 0; k < 12; k++) sep[k] += g[k];
        free(g);
        ln_tensor_release(y);
    }
    int ok = 1;
    for (int k = 0; k < 12; k++) ok = ok && fabs(combined[k] - sep[k]) < 1e-12;
    CHECK(ok, "shared weight: gradient is the sum of the three uses' gradients");
    free(combined);
    ln_tensor_release(seed);
    release_all(in, 4);
}

/* ---------------------------------------------------------------- (c) */
static void no_grad(ln_ctx *ctx) {
    ln_tensor *x = tu_randn(ctx, LN_F32, 2, (int64_t[]){4, 4}), *w = tu_randn(ctx, LN_F32, 2, (int64_t[]){4, 4});
    x->requires_grad = w->requires_grad = true;
    bool prev = ln_ctx_set_grad_enabled(ctx, false);
    ln_tensor *r[10] = {0};
    CHECK_OK(ctx, ln_add(ctx, x, w, &r[0]));
    CHECK_OK(ctx, ln_matmul(ctx, x, w, &r[1]));
    CHECK_OK(ctx, ln_linear(ctx, x, w, NULL, &r[2]));
    CHECK_OK(ctx, ln_sum(ctx, x, 1, false, &r[3]));
    CHECK_OK(ctx, ln_transpose(ctx, x, 0, 1, &r[4]));
    CHECK_OK(ctx, ln_reshape(ctx, x, 1, (int64_t[]){16}, &r[5]));
    CHECK_OK(ctx, ln_cat(ctx, 2, (ln_tensor *[]){x, w}, 0, &r[6]));
    CHECK_OK(ctx, ln_dropout(ctx, x, 0.5, true, &r[7]));
    CHECK_OK(ctx, ln_pow_scalar(ctx, x, 2, &r[8]));
    CHECK_OK(ctx, ln_narrow(ctx, x, 0, 1, 2, &r[9]));
    ln_ctx_set_grad_enabled(ctx, prev);
    int clean = 1;
    for (int i = 0; i < 10; i++) clean = clean && r[i] && !r[i]->requires_grad && !r[i]->grad_fn;
    CHECK(clean, "no_grad: no op records a node");
    CHECK(!x->grad_fn && !w->grad_fn, "no_grad: the inputs are untouched");
    CHECK_FAILS(ctx, ln_backward(ctx, r[3], NULL, false), LN_ERR_STATE);
    release_all(r, 10);
    ln_tensor_release(x);
    ln_tensor_release(w);
}

/* ---------------------------------------------------------------- (d) */
static void backward_twice(ln_ctx *ctx) {
    ln_tensor *x = tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 2}), *w = tu_randn(ctx, LN_F64, 2, (int64_t[]){2, 2});
    x->requires_grad = true;
    ln_tensor *y, *l;
    CHECK_OK(ctx, ln_matmul(ctx, x, w, &y));
    CHECK_OK(ctx, ln_mean(ctx, y, -1, false, &l));
    CHECK_OK(ctx, ln_backward(ctx, l, NULL, false));
    CHECK_FAILS(ctx, ln_backward(ctx, l, NULL, false), LN_ERR_STATE);
    ln_tensor_release(l); ln_tensor_release(y);
    ln_tensor_release(x->grad);
    x->grad = NULL;
    CHECK_OK(ctx, ln_matmul(ctx, x, w, &y));
    CHECK_OK(ctx, ln_mean(ctx, y, -1, false, &l));
    CHECK_OK(ctx, ln_backward(ctx, l, NULL, true));
    double *g1 = values_of(ctx, x->grad);
    CHECK_OK(ctx, ln_backward(ctx, l, NULL, false));
    double *g2 = values_of(ctx, x->grad);
    int ok = 1;
    for (int i = 0; i < 6; i++) ok = ok && fabs(g2[i] - 2 * g1[i]) < 1e-12 && g1[i] != 0;
    CHECK(ok, "retain_graph: the second backward accumulates the same gradient again");
    CHECK_FAILS(ctx, ln_backward(ctx, l, NULL, false), LN_ERR_STATE);
    free(g1); free(g2);
    ln_tensor *all[] = {x, w, y, l};
    release_all(all, 4);
}

/* ---------------------------------------------------------------- (e) */
static void mixed_arguments(ln_ctx *ctx) {
    ln_tensor *a = tu_randn(ctx, LN_F32, 2, (int64_t[]){2, 3}), *b = tu_randn(ctx, LN_F32, 2, (int64_t[]){2, 3});
    ln_tensor *d = tu_randn(ctx, LN_F64, 2, (int64_t[]){2, 3}), *y = NULL;
    ln_device saved = b->storage->device;
    b->storage->device = (ln_device){LN_CUDA, 0}; /* pretend; restored before release */
    ln_status st = ln_add(ctx, a, b, &y);
    const char *msg = ln_ctx_error(ctx);
    CHECK(st == LN_ERR_DEVICE && strstr(msg, "'a'") && strstr(msg, "'b'") && strstr(msg, "cuda:0") &&
          strstr(msg, "cpu"), "mixed devices: %s (%s)", ln_status_name(st), msg);
    CHECK(y == NULL, "no output on a device error");
    ln_ctx_clear_error(ctx);
    CHECK_FAILS(ctx, ln_matmul(ctx, b, a, &y), LN_ERR_DEVICE);
    CHECK_FAILS(ctx, ln_cat(ctx, 2, (ln_tensor *[]){a, b}, 0, &y), LN_ERR_DEVICE);
    CHECK_FAILS(ctx, ln_linear(ctx, a, b, NULL, &y), LN_ERR_DEVICE);
    b->storage->device = saved;
    st = ln_mul(ctx, a, d, &y);
    msg = ln_ctx_error(ctx);
    CHECK(st == LN_ERR_DTYPE && strstr(msg, "'a'") && strstr(msg, "'b'") && strstr(msg, "f32") &&
          strstr(msg, "f64"), "mixed dtypes: %s (%s)", ln_status_name(st), msg);
    CHECK(y == NULL, "no output on a dtype error");
    ln_ctx_clear_error(ctx);
    ln_tensor *all[] = {a, b, d};
    release_all(all, 3);
}

/* ---------------------------------------------------------------- (f) */
/* ||B B^T - I||_F^2, squaring with pow_scalar (ud NULL) or with mul */
static ln_status ortho_penalty(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    ln_tensor *b = in[0], *bt = NULL, *g = NULL, *eye = NULL, *diff = NULL, *sq = NULL;
    int64_t r = b->shape[0];
    ln_status st;
    double *ev = calloc((size_t)(r * r), sizeof *ev);
    for (int64_t i = 0; i < r; i++) ev[i * r + i] = 1;
    if ((st = ln_tensor_from_f64(ctx, b->dtype, 2, (int64_t[]){r, r}, ev, &eye)) != LN_OK) goto done;
    if ((st = ln_transpose(ctx, b, 0, 1, &bt)) != LN_OK) goto done;
    if ((st = ln_matmul(ctx, b, bt, &g)) != LN_OK) goto done;
    if ((st = ln_sub(ctx, g, eye, &diff)) != LN_OK) goto done;
    st = ud ? ln_mul(ctx, diff, diff, &sq) : ln_pow_scalar(ctx, diff, 2, &sq);
    if (st == LN_OK) st = ln_sum(ctx, sq, -1, false, out);
done:
    free(ev);
    ln_tensor_release(bt); ln_tensor_release(g); ln_tensor_release(eye);
    ln_tensor_release(diff); ln_tensor_release(sq);
    return st;
}

static void orthogonality(ln_ctx *ctx) {
    int64_t shapes[][2] = {{3, 5}, {4, 4}, {2, 9}, {1, 3}};
    for (int s = 0; s < 4; s++)
        for (int use_mul = 0; use_mul < 2; use_mul++) {
            int64_t r = shapes[s][0], n = shapes[s][1];
            ln_tensor *b = tu_randn(ctx, LN_F64, 2, shapes[s]);
            b->requires_grad = true;
            void *ud = use_mul ? (void *)b : NULL;
            tu_gradcheck(ctx, ortho_penalty, ud, 1, &b, 1e-6, 1e-6, 0, "orthogonality penalty");
            ln_tensor_release(b->grad);
            b->grad = NULL;
            ln_tensor *p;
            CHECK_OK(ctx, ortho_penalty(ctx, &b, ud, &p));
            CHECK_OK(ctx, ln_backward(ctx, p, NULL, false));
            /* closed form: 4 (B B^T - I) B */
            double *bv = values_of(ctx, b), *gv = values_of(ctx, b->grad), worst = 0;
            for (int64_t i = 0; i < r; i++)
                for (int64_t j = 0; j < n; j++) {
                    double want = 0;
                    for (int64_t k = 0; k < r; k++) {
                        double m = (i == k) ? -1 : 0;
                        for (int64_t q = 0; q < n; q++) m += bv[i * n + q] * bv[k * n + q];
                        want += 4 * m * bv[k * n + j];
                    }
                    worst = fmax(worst, fabs(gv[i * n + j] - want));
                }
            CHECK(worst < 1e-10, "penalty gradient equals 4 (B B^T - I) B (max error %g)", worst);
            free(bv); free(gv);
            ln_tensor_release(p);
            ln_tensor_release(b);
        }
}

/* a small network: linear -> relu -> dropout -> linear -> mean, all gradients */
static ln_status small_net(ln_ctx *ctx, ln_tensor **in, void *ud, ln_tensor **out) {
    (void)ud;
    ln_tensor *h = NULL, *r = NULL, *d = NULL, *o = NULL;
    ln_status st;
    ln_ctx_manual_seed(ctx, 1234);
    if ((st = ln_linear(ctx, in[0], in[1], in[2], &h)) != LN_OK) goto done;
    if ((st = ln_relu(ctx, h, &r)) != LN_OK) goto done;
    if ((st = ln_dropout(ctx, r, 0.25, true, &d)) != LN_OK) goto done;
    if ((st = ln_linear(ctx, d, in[3], NULL, &o)) != LN_OK) goto done;
    st = ln_mean(ctx, o, 0, false, out);
done:
    ln_tensor_release(h); ln_tensor_release(r); ln_tensor_release(d); ln_tensor_release(o);
    return st;
}

static void network(ln_ctx *ctx) {
    ln_tensor *in[4] = {tu_randn(ctx, LN_F64, 2, (int64_t[]){5, 4}), tu_randn(ctx, LN_F64, 2, (int64_t[]){6, 4}),
                        tu_randn(ctx, LN_F64, 1, (int64_t[]){6}), tu_randn(ctx, LN_F64, 2, (int64_t[]){3, 6})};
    for (int i = 0; i < 4; i++) in[i]->requires_grad = true;
    tu_gradcheck(ctx, small_net, NULL, 4, in, 1e-6, 1e-6, 0, "small network");
    release_all(in, 4);
    for (int i = 0; i < 4; i++) {
        ln_dtype dt = LN_F32;
        in[i] = i == 0 ? tu_randn(ctx, dt, 2, (int64_t[]){64, 32}) : i == 1 ? tu_randn(ctx, dt, 2, (int64_t[]){48, 32})
              : i == 2 ? tu_randn(ctx, dt, 1, (int64_t[]){48}) : tu_randn(ctx, dt, 2, (int64_t[]){10, 48});
        in[i]->requires_grad = true;
    }
    tu_compare_paths(ctx, small_net, NULL, 4, in, 1e-4, 1e-5, "small network");
    release_all(in, 4);
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 13);
    tensor_used_twice(ctx);
    shared_weight(ctx);
    no_grad(ctx);
    backward_twice(ctx);
    mixed_arguments(ctx);
    orthogonality(ctx);
    network(ctx);
    ln_ctx_release(ctx);
    return test_finish();
}
