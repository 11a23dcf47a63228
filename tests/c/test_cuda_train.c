/* Two SGD training steps of a small network built from the ops, on the CPU and on
 * CUDA from the same weights, data and seed (cuda_parity.h): conv-bn-relu-maxpool,
 * a depthwise conv with bias and relu6, a 1x1 conv with bn, the option-A shortcut added back,
 * ECA channel attention (global pooling, conv1d across channels, sigmoid, broadcast
 * mul), dropout, linear, a temperature div and cross-entropy, plus an orthogonality
 * penalty on a cat of two weight matrices (matmul with a transpose, sub, pow, sum).
 * After each step the losses, every parameter's gradient, the updated parameters
 * (momentum, weight decay) and the running statistics must agree; then an eval-mode
 * forward (running statistics, no dropout). Without a device the checks are
 * rehearsed with the reference CPU kernels and the test reports SKIPPED. */
#include <stdio.h>
#include "cuda_parity.h"

enum { W1, G1, BE1, W2, B2, W3, LW, LB, ECA, NPARAM };
static const char *const param_names[NPARAM] = {"conv1.weight", "bn1.weight", "bn1.bias", "dw.weight",
                                                "dw.bias", "pw.weight", "fc.weight", "fc.bias", "eca.weight"};

/* One side's copy of the network: parameters (leaves), momentum buffers and the
 * batch-norm running statistics. */
typedef struct net {
    ln_tensor *p[NPARAM], *buf[NPARAM];
    ln_tensor *rm1, *rv1, *rm2, *rv2;
} net;

/* The inputs of a step: images, labels, the identity of the penalty, the temperature. */
typedef struct batch { ln_tensor *x, *labels, *eye, *temp; } batch;

static void net_release(net *n) {
    for (int i = 0; i < NPARAM; i++) { ln_tensor_release(n->p[i]); ln_tensor_release(n->buf[i]); }
    ln_tensor_release(n->rm1); ln_tensor_release(n->rv1); ln_tensor_release(n->rm2); ln_tensor_release(n->rv2);
}

static void batch_release(batch *b) {
    ln_tensor_release(b->x); ln_tensor_release(b->labels); ln_tensor_release(b->eye); ln_tensor_release(b->temp);
}

static ln_tensor *scaled_randn(ln_ctx *ctx, int ndim, const int64_t *shape, double scale) {
    ln_tensor *t = tu_randn(ctx, LN_F32, ndim, shape), *s = NULL;
    CHECK_OK(ctx, ln_affine_scalar(ctx, t, scale, 0, &s));
    ln_tensor_release(t);
    return s;
}

static net net_init(ln_ctx *ctx) {
    net n = {{0}, {0}, NULL, NULL, NULL, NULL};
    n.p[W1] = scaled_randn(ctx, 4, (int64_t[]){8, 3, 3, 3}, 0.3);
    n.p[G1] = tu_rand_uniform(ctx, LN_F32, 1, (int64_t[]){8}, 0.8, 1.2);
    n.p[BE1] = scaled_randn(ctx, 1, (int64_t[]){8}, 0.1);
    n.p[W2] = scaled_randn(ctx, 4, (int64_t[]){8, 1, 3, 3}, 0.4);
    n.p[B2] = scaled_randn(ctx, 1, (int64_t[]){8}, 0.1);
    n.p[W3] = scaled_randn(ctx, 4, (int64_t[]){16, 8, 1, 1}, 0.35);
    n.p[LW] = scaled_randn(ctx, 2, (int64_t[]){10, 16}, 0.25);
    n.p[LB] = scaled_randn(ctx, 1, (int64_t[]){10}, 0.1);
    n.p[ECA] = scaled_randn(ctx, 1, (int64_t[]){3}, 0.5);
    for (int i = 0; i < NPARAM; i++) {
        CHECK_OK(ctx, ln_tensor_zeros_like(ctx, n.p[i], &n.buf[i]));
        n.p[i]->requires_grad = true;
    }
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){8}, &n.rm1));
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){8}, 1.0, &n.rv1));
    CHECK_OK(ctx, ln_tensor_zeros(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){16}, &n.rm2));
    CHECK_OK(ctx, ln_tensor_full(ctx, LN_F32, ln_cpu(), 1, (int64_t[]){16}, 1.0, &n.rv2));
    return n;
}

static net net_copy(const par_side *P, bool other, const net *src) {
    net n;
    for (int i = 0; i < NPARAM; i++) {
        n.p[i] = par_copy(P, other, src->p[i]);
        n.buf[i] = par_copy(P, other, src->buf[i]);
    }
    n.rm1 = par_copy(P, other, src->rm1);
    n.rv1 = par_copy(P, other, src->rv1);
    n.rm2 = par_copy(P, other, src->rm2);
    n.rv2 = par_copy(P, other, src->rv2);
    return n;
}

static batch batch_copy(const par_side *P, bool other, const batch *src) {
    batch b = {par_copy(P, other, src->x), par_copy(P, other, src->labels), par_copy(P, other, src->eye),
               par_copy(P, other, src->temp)};
    return b;
}

/* Temporaries of one forward, released together. */
typedef struct tmp_list { ln_tensor *t[48]; int n; } tmp_list;

static ln_tensor *keep(tmp_list *l, ln_tensor *t) {
    if (l->n < 48) l->t[l->n++] = t;
    return t;
}

/* The loss (0-d) of the network on a batch: cross-entropy + 1e-3 * penalty when
 * training; the logits when not (out receives one new reference). */
static ln_status forward(ln_ctx *ctx, net *n, const batch *b, bool training, ln_tensor **out) {
    tmp_list l = {{0}, 0};
    ln_tensor *h, *p, *d, *e, *s, *r, *g, *a, *f, *y;
    ln_status st = LN_OK;
    ln_conv2d_params same = {1, 1, 1, 1, 1}, dw = {2, 2, 1, 1, 8}, pw = {1, 1, 0, 0, 1};
    ln_pool2d_params pool = {3, 3, 2, 2, 1, 1};
    *out = NULL;
#define T(var, call) do { st = (call); if (st != LN_OK) goto done; keep(&l, var); } while (0)
    T(h, ln_conv2d(ctx, b->x, n->p[W1], NULL, same, &h));                          /* (4,8,12,12) */
    T(h, ln_batch_norm2d(ctx, h, n->rm1, n->rv1, n->p[G1], n->p[BE1], training, 0.1, 1e-5, &h));
    T(h, ln_relu(ctx, h, &h));
    T(p, ln_max_pool2d(ctx, h, pool, &p));                                           /* (4,8,6,6) */
    T(d, ln_conv2d(ctx, p, n->p[W2], n->p[B2], dw, &d));                             /* (4,8,3,3) */
    T(d, ln_relu6(ctx, d, &d));
    T(e, ln_conv2d(ctx, d, n->p[W3], NULL, pw, &e));                                 /* (4,16,3,3) */
    T(e, ln_batch_norm2d(ctx, e, n->rm2, n->rv2, NULL, NULL, training, 0.1, 1e-5, &e));
    T(s, ln_shortcut_a(ctx, p, 2, 4, &s));                                           /* (4,16,3,3) */
    T(r, ln_add(ctx, e, s, &r));
    T(r, ln_relu(ctx, r, &r));
    T(g, ln_global_avg_pool2d(ctx, r, &g));                                          /* (4,16,1,1) */
    T(a, ln_conv1d_channels(ctx, g, n->p[ECA], 1, &a));
    T(a, ln_sigmoid(ctx, a, &a));
    T(r, ln_mul(ctx, r, a, &r));                                                     /* ECA */
    T(f, ln_global_avg_pool2d(ctx, r, &f));
    T(f, ln_reshape(ctx, f, 2, (int64_t[]){-1, 16}, &f));                             /* (4,16) */
    T(f, ln_dropout(ctx, f, 0.2, training, &f));
    T(y, ln_linear(ctx, f, n->p[LW], n->p[LB], &y));                                 /* (4,10) */
    T(y, ln_div(ctx, y, b->temp, &y));
    if (!training) {
        ln_tensor_retain(y);
        *out = y;
        goto done;
    }
    ln_tensor *loss, *w3, *lwt, *m, *mt, *gram, *dev, *sq, *pen, *pen_s, *total;
    T(loss, ln_cross_entropy(ctx, y, b->labels, &loss));
    T(w3, ln_reshape(ctx, n->p[W3], 2, (int64_t[]){16, 8}, &w3));
    T(lwt, ln_transpose(ctx, n->p[LW], 0, 1, &lwt));                                  /* (16,10) view */
    T(m, ln_cat(ctx, 2, (ln_tensor *[]){w3, lwt}, 1, &m));                            /* (16,18) */
    T(mt, ln_transpose(ctx, m, 0, 1, &mt));
    T(gram, ln_matmul(ctx, m, mt, &gram));                                           /* (16,16) */
    T(dev, ln_sub(ctx, gram, b->eye, &dev));
    T(sq, ln_pow_scalar(ctx, dev, 2.0, &sq));
    T(pen, ln_sum(ctx, sq, -1, false, &pen));
    T(pen_s, ln_affine_scalar(ctx, pen, 1e-3, 0, &pen_s));
    T(total, ln_add(ctx, loss, pen_s, &total));
    ln_tensor_retain(total);
    *out = total;
#undef T
done:
    for (int i = 0; i < l.n; i++) ln_tensor_release(l.t[i]);
    return st;
}

/* One training step on one side: forward, backward, SGD on every parameter. The
 * gradients stay in p->grad (for comparison); *loss gets the loss value. */
static void train_step(const par_side *P, bool other, net *n, const batch *b, bool first, double *loss) {
    ln_ctx *ctx = P->ctx;
    ln_sgd_params sgd = {0.05, 0.9, 5e-4, 0, false};
    par_select(P, other);
    ln_ctx_manual_seed(ctx, 1234); /* the same dropout mask on both sides */
    for (int i = 0; i < NPARAM; i++) { ln_tensor_release(n->p[i]->grad); n->p[i]->grad = NULL; }
    ln_tensor *total = NULL;
    *loss = NAN;
    if (CHECK_OK(ctx, forward(ctx, n, b, true, &total)) && CHECK_OK(ctx, ln_backward(ctx, total, NULL, false))) {
        CHECK_OK(ctx, ln_tensor_item(ctx, total, loss));
        for (int i = 0; i < NPARAM; i++)
            if (CHECK(n->p[i]->grad != NULL, "%s has a gradient", param_names[i]))
                CHECK_OK(ctx, ln_sgd_step(ctx, n->p[i], n->p[i]->grad, n->buf[i], first, sgd));
    }
    ln_tensor_release(total);
    par_select(P, false);
}

static void compare(const par_side *P, const net *c, const net *d, const char *when) {
    char what[160];
    for (int i = 0; i < NPARAM; i++) {
        snprintf(what, sizeof what, "%s: gradient of %s", when, param_names[i]);
        par_close(P, d->p[i]->grad, c->p[i]->grad, TOL_GEMM, what);
        snprintf(what, sizeof what, "%s: %s after the update", when, param_names[i]);
        par_close(P, d->p[i], c->p[i], TOL_GEMM, what);
        snprintf(what, sizeof what, "%s: momentum buffer of %s", when, param_names[i]);
        par_close(P, d->buf[i], c->buf[i], TOL_GEMM, what);
    }
    const ln_tensor *stats_c[4] = {c->rm1, c->rv1, c->rm2, c->rv2}, *stats_d[4] = {d->rm1, d->rv1, d->rm2, d->rv2};
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "%s: running statistic %d", when, i);
        par_close(P, stats_d[i], stats_c[i], TOL_GEMM, what);
    }
}

int main(void) {
    ln_ctx *ctx = ln_ctx_create();
    ln_ctx_manual_seed(ctx, 42);
    par_side P = par_open(ctx);
    net master = net_init(ctx);
    batch data = {scaled_randn(ctx, 4, (int64_t[]){4, 3, 12, 12}, 1.0), NULL, NULL, NULL};
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_I64, 1, (int64_t[]){4}, (const double[]){3, 0, 9, 3}, &data.labels));
    double eye[256] = {0};
    for (int i = 0; i < 16; i++) eye[i * 17] = 1;
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 2, (int64_t[]){16, 16}, eye, &data.eye));
    CHECK_OK(ctx, ln_tensor_from_f64(ctx, LN_F32, 0, NULL, (const double[]){2.0}, &data.temp));

    net cpu = net_copy(&P, false, &master), dev = net_copy(&P, true, &master);
    batch bc = batch_copy(&P, false, &data), bd = batch_copy(&P, true, &data);
    for (int step = 0; step < 2; step++) {
        double lc, ld;
        train_step(&P, false, &cpu, &bc, step == 0, &lc);
        train_step(&P, true, &dev, &bd, step == 0, &ld);
        printf("step %d: loss %.7f on the CPU, %.7f on the other side\n", step + 1, lc, ld);
        CHECK(fabs(lc - ld) <= 1e-5 * fabs(lc) + 1e-6, "step %d: losses %.9g and %.9g differ", step + 1, lc, ld);
        char when[32];
        snprintf(when, sizeof when, "step %d", step + 1);
        compare(&P, &cpu, &dev, when);
    }
    /* eval: the running statistics, no dropout */
    ln_tensor *yc = NULL, *yd = NULL;
    CHECK_OK(ctx, forward(ctx, &cpu, &bc, false, &yc));
    par_select(&P, true);
    CHECK_OK(ctx, forward(ctx, &dev, &bd, false, &yd));
    par_select(&P, false);
    par_close(&P, yd, yc, TOL_GEMM, "eval-mode logits after training");
    ln_tensor_release(yc);
    ln_tensor_release(yd);

    net_release(&master); net_release(&cpu); net_release(&dev);
    batch_release(&data); batch_release(&bc); batch_release(&bd);
    CHECK_OK(ctx, ln_cuda_synchronize(ctx));
    ln_ctx_release(ctx);
    return par_finish(&P);
}
