/* Bindings of the differentiable ops of ops.h, with positional arguments (the Lua
 * layer, lua/lunet/nn/functional.lua, reads option tables and documents them).
 * Each pushes its result userdata empty, then lets the core fill it; on failure the
 * core's message is raised prefixed by the op name. Class labels arrive 1-based and
 * are checked and converted to the core's 0-based labels here. */
#include <limits.h>
#include "lbind.h"

/* An int argument (for strides, paddings, groups, k...). */
static int int_arg(lua_State *L, int idx, const char *fn, const char *arg) {
    lua_Integer v = lb_int_arg(L, idx, fn, arg);
    if (v < INT_MIN || v > INT_MAX)
        return lb_error(L, "%s: argument '%s' is out of range (%I)", fn, arg, v);
    return (int)v;
}

/* ------------------------------------------------------------ arithmetic */
typedef ln_status (*binop_fn)(ln_ctx *, ln_tensor *, ln_tensor *, ln_tensor **);
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

/* A 0-d tensor holding s with t's dtype and device (pushed, GC-managed). */
static ln_tensor *push_scalar_like(lua_State *L, const ln_tensor *t, double s, const char *fn) {
    static const int64_t no_shape[1] = {1};
    ln_tensor **sc = lb_new_tensor(L);
    if (ln_tensor_full(lb_ctx(L), t->dtype, ln_tensor_device(t), 0, no_shape, s, sc) != LN_OK)
        lb_core_error(L, fn);
    return *sc;
}

/* a op b where each side is a tensor or a number (not both numbers). */
static int arith(lua_State *L, int op) {
    static const binop_fn fns[] = {ln_add, ln_sub, ln_mul, ln_div};
    static const char *const names[] = {"add", "sub", "mul", "div"};
    const char *fn = names[op];
    ln_ctx *ctx = lb_ctx(L);
    ln_tensor *a = lb_to_tensor(L, 1), *b = lb_to_tensor(L, 2);
    bool an = lua_type(L, 1) == LUA_TNUMBER, bn = lua_type(L, 2) == LUA_TNUMBER;
    if (!(a || an) || !(b || bn) || (an && bn))
        return lb_error(L, "%s: expected tensors or numbers, got %s and %s", fn,
                          a ? "tensor" : luaL_typename(L, 1), b ? "tensor" : luaL_typename(L, 2));
    ln_status st;
    if (a && b) {
        ln_tensor **out = lb_new_tensor(L);
        st = fns[op](ctx, a, b, out);
    } else if (a) { /* tensor op number */
        double s = lua_tonumber(L, 2);
        if (op == OP_DIV) {
            ln_tensor *sc = push_scalar_like(L, a, s, fn);
            st = ln_div(ctx, a, sc, lb_new_tensor(L));
        } else {
            double scale = op == OP_MUL ? s : 1.0;
            double shift = op == OP_ADD ? s : op == OP_SUB ? -s : 0.0;
            st = ln_affine_scalar(ctx, a, scale, shift, lb_new_tensor(L));
        }
    } else { /* number op tensor */
        double s = lua_tonumber(L, 1);
        if (op == OP_DIV) {
            ln_tensor *sc = push_scalar_like(L, b, s, fn);
            st = ln_div(ctx, sc, b, lb_new_tensor(L));
        } else {
            double scale = op == OP_MUL ? s : op == OP_SUB ? -1.0 : 1.0;
            double shift = op == OP_MUL ? 0.0 : s;
            st = ln_affine_scalar(ctx, b, scale, shift, lb_new_tensor(L));
        }
    }
    if (st != LN_OK) return lb_core_error(L, fn);
    return 1;
}

int lb_op_add(lua_State *L) { return arith(L, OP_ADD); }
int lb_op_sub(lua_State *L) { return arith(L, OP_SUB); }
int lb_op_mul(lua_State *L) { return arith(L, OP_MUL); }
int lb_op_div(lua_State *L) { return arith(L, OP_DIV); }

int lb_op_neg(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "neg", "x");
    if (ln_affine_scalar(lb_ctx(L), x, -1.0, 0.0, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "neg");
    return 1;
}

int lb_op_pow(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "pow", "x");
    double p = lb_num_arg(L, 2, "pow", "exponent");
    if (ln_pow_scalar(lb_ctx(L), x, p, lb_new_tensor(L)) != LN_OK) return lb_core_error(L, "pow");
    return 1;
}

/* ------------------------------------------------------------ reductions */
/* x:sum() over everything, or x:sum(dim[, keepdim]) with a 1-based dim. */
static int reduce(lua_State *L, bool mean) {
    const char *fn = mean ? "mean" : "sum";
    ln_tensor *x = lb_tensor_arg(L, 1, fn, "x");
    int dim = -1;
    bool keepdim = false;
    if (!lua_isnoneornil(L, 2)) {
        dim = (int)lb_index0(L, 2, x->ndim, fn, "dimension");
        keepdim = lua_toboolean(L, 3);
    }
    ln_tensor **out = lb_new_tensor(L);
    ln_status st = mean ? ln_mean(lb_ctx(L), x, dim, keepdim, out)
                        : ln_sum(lb_ctx(L), x, dim, keepdim, out);
    if (st != LN_OK) return lb_core_error(L, fn);
    return 1;
}

int lb_op_sum(lua_State *L) { return reduce(L, false); }
int lb_op_mean(lua_State *L) { return reduce(L, true); }

/* ------------------------------------------------------------ shape */
int lb_op_reshape(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "reshape", "x");
    int64_t shape[LN_MAX_DIMS];
    int next;
    int ndim = lb_shape_arg(L, 2, "reshape", shape, &next);
    if (ln_reshape(lb_ctx(L), x, ndim, shape, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "reshape");
    return 1;
}

int lb_op_transpose(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "transpose", "x");
    int d0 = (int)lb_index0(L, 2, x->ndim, "transpose", "dimension");
    int d1 = (int)lb_index0(L, 3, x->ndim, "transpose", "dimension");
    if (ln_transpose(lb_ctx(L), x, d0, d1, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "transpose");
    return 1;
}

/* x:narrow(dim, start, length), dim and start 1-based. */
int lb_op_narrow(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "narrow", "x");
    int dim = (int)lb_index0(L, 2, x->ndim, "narrow", "dimension");
    int64_t start = lb_index0(L, 3, x->shape[dim], "narrow", "start");
    lua_Integer len = lb_int_arg(L, 4, "narrow", "length");
    if (ln_narrow(lb_ctx(L), x, dim, start, len, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "narrow");
    return 1;
}

int lb_op_contiguous(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "contiguous", "x");
    if (ln_contiguous(lb_ctx(L), x, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "contiguous");
    return 1;
}

int lb_op_matmul(lua_State *L) {
    ln_tensor *a = lb_tensor_arg(L, 1, "matmul", "a");
    ln_tensor *b = lb_tensor_arg(L, 2, "matmul", "b");
    if (ln_matmul(lb_ctx(L), a, b, lb_new_tensor(L)) != LN_OK) return lb_core_error(L, "matmul");
    return 1;
}

/* cat(list, dim) */
static int l_cat(lua_State *L) {
    luaL_argexpected(L, lua_type(L, 1) == LUA_TTABLE, 1, "table of tensors");
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n < 1) return lb_error(L, "cat: expected a non-empty list of tensors");
    if (n > INT_MAX / 2) return lb_error(L, "cat: too many tensors (%I)", n);
    ln_tensor **xs = lua_newuserdatauv(L, (size_t)n * sizeof *xs, 0); /* GC-managed */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        xs[i - 1] = lb_to_tensor(L, -1);
        if (!xs[i - 1])
            return lb_error(L, "cat: list entry %I must be a tensor, got %s", i, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    int dim = (int)lb_index0(L, 2, xs[0]->ndim, "cat", "dimension");
    if (ln_cat(lb_ctx(L), (int)n, xs, dim, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "cat");
    return 1;
}

static int l_shortcut_a(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "shortcut_a", "x");
    int stride = int_arg(L, 2, "shortcut_a", "stride");
    lua_Integer pad = lb_int_arg(L, 3, "shortcut_a", "pad");
    if (ln_shortcut_a(lb_ctx(L), x, stride, pad, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "shortcut_a");
    return 1;
}

/* ------------------------------------------------------------ activations, dropout */
typedef ln_status (*unop_fn)(ln_ctx *, ln_tensor *, ln_tensor **);

static int unary(lua_State *L, unop_fn f, const char *fn) {
    ln_tensor *x = lb_tensor_arg(L, 1, fn, "x");
    if (f(lb_ctx(L), x, lb_new_tensor(L)) != LN_OK) return lb_core_error(L, fn);
    return 1;
}

static int l_relu(lua_State *L) { return unary(L, ln_relu, "relu"); }
static int l_relu6(lua_State *L) { return unary(L, ln_relu6, "relu6"); }
static int l_sigmoid(lua_State *L) { return unary(L, ln_sigmoid, "sigmoid"); }
static int l_global_avg_pool2d(lua_State *L) { return unary(L, ln_global_avg_pool2d, "global_avg_pool2d"); }

/* dropout(x, p, training) */
static int l_dropout(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "dropout", "x");
    double p = lb_num_arg(L, 2, "dropout", "p");
    bool training = lua_toboolean(L, 3);
    if (ln_dropout(lb_ctx(L), x, p, training, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "dropout");
    return 1;
}

/* ------------------------------------------------------------ convolution, linear */
/* conv2d(x, w, b|nil, stride_h, stride_w, pad_h, pad_w, groups) */
static int l_conv2d(lua_State *L) {
    const char *fn = "conv2d";
    ln_tensor *x = lb_tensor_arg(L, 1, fn, "x");
    ln_tensor *w = lb_tensor_arg(L, 2, fn, "w");
    ln_tensor *b = lb_opt_tensor_arg(L, 3, fn, "b");
    ln_conv2d_params p = {
        .stride_h = int_arg(L, 4, fn, "stride_h"), .stride_w = int_arg(L, 5, fn, "stride_w"),
        .pad_h = int_arg(L, 6, fn, "pad_h"), .pad_w = int_arg(L, 7, fn, "pad_w"),
        .groups = int_arg(L, 8, fn, "groups"),
    };
    if (ln_conv2d(lb_ctx(L), x, w, b, p, lb_new_tensor(L)) != LN_OK) return lb_core_error(L, fn);
    return 1;
}

/* conv1d_channels(x, w, pad) */
static int l_conv1d_channels(lua_State *L) {
    const char *fn = "conv1d_channels";
    ln_tensor *x = lb_tensor_arg(L, 1, fn, "x");
    ln_tensor *w = lb_tensor_arg(L, 2, fn, "w");
    int pad = int_arg(L, 3, fn, "pad");
    if (ln_conv1d_channels(lb_ctx(L), x, w, pad, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, fn);
    return 1;
}

/* linear(x, w, b|nil) */
static int l_linear(lua_State *L) {
    ln_tensor *x = lb_tensor_arg(L, 1, "linear", "x");
    ln_tensor *w = lb_tensor_arg(L, 2, "linear", "w");
    ln_tensor *b = lb_opt_tensor_arg(L, 3, "linear", "b");
    if (ln_linear(lb_ctx(L), x, w, b, lb_new_tensor(L)) != LN_OK) return lb_core_error(L, "linear");
    return 1;
}

/* ------------------------------------------------------------ normalisation, pooling */
/* batch_norm2d(x, running_mean, running_var, weight|nil, bias|nil, training, momentum, eps) */
static int l_batch_norm2d(lua_State *L) {
    const char *fn = "batch_norm2d";
    ln_tensor *x = lb_tensor_arg(L, 1, fn, "x");
    ln_tensor *rm = lb_tensor_arg(L, 2, fn, "running_mean");
    ln_tensor *rv = lb_tensor_arg(L, 3, fn, "running_var");
    ln_tensor *w = lb_opt_tensor_arg(L, 4, fn, "weight");
    ln_tensor *b = lb_opt_tensor_arg(L, 5, fn, "bias");
    bool training = lua_toboolean(L, 6);
    double momentum = lb_num_arg(L, 7, fn, "momentum");
    double eps = lb_num_arg(L, 8, fn, "eps");
    if (ln_batch_norm2d(lb_ctx(L), x, rm, rv, w, b, training, momentum, eps, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, fn);
    return 1;
}

/* max_pool2d(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w) */
static int l_max_pool2d(lua_State *L) {
    const char *fn = "max_pool2d";
    ln_tensor *x = lb_tensor_arg(L, 1, fn, "x");
    ln_pool2d_params p = {
        .kernel_h = int_arg(L, 2, fn, "kernel_h"), .kernel_w = int_arg(L, 3, fn, "kernel_w"),
        .stride_h = int_arg(L, 4, fn, "stride_h"), .stride_w = int_arg(L, 5, fn, "stride_w"),
        .pad_h = int_arg(L, 6, fn, "pad_h"), .pad_w = int_arg(L, 7, fn, "pad_w"),
    };
    if (ln_max_pool2d(lb_ctx(L), x, p, lb_new_tensor(L)) != LN_OK) return lb_core_error(L, fn);
    return 1;
}

/* ------------------------------------------------------------ losses, metrics */
/* The core's 0-based labels from the 1-based i64 labels at idx, checked against the
 * class count of logits (N,C). Pushed (GC-managed); when logits is not 2-D the labels
 * are passed on unchanged and the core reports the shape error. */
static ln_tensor *labels0(lua_State *L, ln_tensor *logits, int idx, const char *fn) {
    ln_tensor *lab = lb_tensor_arg(L, idx, fn, "labels");
    if (lab->dtype != LN_I64)
        lb_error(L, "%s: argument 'labels' must be an i64 tensor of 1-based class indices, got %s",
                   fn, ln_dtype_name(lab->dtype));
    if (logits->ndim != 2 || lab->ndim != 1) return lab;
    ln_ctx *ctx = lb_ctx(L);
    int64_t n = lab->shape[0], classes = logits->shape[1];
    double *v = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *v, 0);
    if (ln_tensor_to_f64(ctx, lab, v) != LN_OK) lb_core_error(L, fn);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < 1 || v[i] > (double)classes) {
            lua_Integer label = v[i] < -9e18 ? LUA_MININTEGER
                                : v[i] > 9e18 ? LUA_MAXINTEGER : (lua_Integer)v[i];
            lb_error(L, "%s: label %I at position %I is out of range for %I classes "
                       "(labels are 1-based: 1..%I)", fn, label, (lua_Integer)(i + 1),
                       (lua_Integer)classes, (lua_Integer)classes);
        }
        v[i] -= 1;
    }
    ln_tensor **host = lb_new_tensor(L);
    if (ln_tensor_from_f64(ctx, LN_I64, 1, lab->shape, v, host) != LN_OK) lb_core_error(L, fn);
    if (ln_tensor_device(lab).type == LN_CPU) return *host;
    ln_tensor **dev = lb_new_tensor(L);
    if (ln_tensor_to_device(ctx, *host, ln_tensor_device(lab), dev) != LN_OK) lb_core_error(L, fn);
    return *dev;
}

/* cross_entropy(logits (N,C), labels (N) i64, 1-based) -> 0-d mean loss */
static int l_cross_entropy(lua_State *L) {
    ln_tensor *logits = lb_tensor_arg(L, 1, "cross_entropy", "logits");
    ln_tensor *lab = labels0(L, logits, 2, "cross_entropy");
    if (ln_cross_entropy(lb_ctx(L), logits, lab, lb_new_tensor(L)) != LN_OK)
        return lb_core_error(L, "cross_entropy");
    return 1;
}

/* topk_correct(logits (N,C), labels (N) i64 1-based, k) -> integer */
static int l_topk_correct(lua_State *L) {
    ln_tensor *logits = lb_tensor_arg(L, 1, "topk_correct", "logits");
    int k = int_arg(L, 3, "topk_correct", "k");
    ln_tensor *lab = labels0(L, logits, 2, "topk_correct");
    int64_t correct = 0;
    if (ln_topk_correct(lb_ctx(L), logits, lab, k, &correct) != LN_OK)
        return lb_core_error(L, "topk_correct");
    lua_pushinteger(L, correct);
    return 1;
}

/* ------------------------------------------------------------ optimiser */
/* sgd_step(param, grad, momentum_buf|nil, first_step, lr, momentum, weight_decay,
 *          dampening, nesterov): in place, no autograd. */
static int l_sgd_step(lua_State *L) {
    const char *fn = "sgd_step";
    ln_tensor *param = lb_tensor_arg(L, 1, fn, "param");
    ln_tensor *grad = lb_tensor_arg(L, 2, fn, "grad");
    ln_tensor *buf = lb_opt_tensor_arg(L, 3, fn, "momentum_buf");
    bool first = lua_toboolean(L, 4);
    ln_sgd_params p = {
        .lr = lb_num_arg(L, 5, fn, "lr"), .momentum = lb_num_arg(L, 6, fn, "momentum"),
        .weight_decay = lb_num_arg(L, 7, fn, "weight_decay"),
        .dampening = lb_num_arg(L, 8, fn, "dampening"), .nesterov = lua_toboolean(L, 9),
    };
    if (ln_sgd_step(lb_ctx(L), param, grad, buf, first, p) != LN_OK) return lb_core_error(L, fn);
    return 0;
}

void lb_open_ops(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"add", lb_op_add},
        {"sub", lb_op_sub},
        {"mul", lb_op_mul},
        {"div", lb_op_div},
        {"neg", lb_op_neg},
        {"pow", lb_op_pow},
        {"sum", lb_op_sum},
        {"mean", lb_op_mean},
        {"reshape", lb_op_reshape},
        {"transpose", lb_op_transpose},
        {"narrow", lb_op_narrow},
        {"contiguous", lb_op_contiguous},
        {"matmul", lb_op_matmul},
        {"cat", l_cat},
        {"shortcut_a", l_shortcut_a},
        {"relu", l_relu},
        {"relu6", l_relu6},
        {"sigmoid", l_sigmoid},
        {"dropout", l_dropout},
        {"conv2d", l_conv2d},
        {"conv1d_channels", l_conv1d_channels},
        {"linear", l_linear},
        {"batch_norm2d", l_batch_norm2d},
        {"max_pool2d", l_max_pool2d},
        {"global_avg_pool2d", l_global_avg_pool2d},
        {"cross_entropy", l_cross_entropy},
        {"topk_correct", l_topk_correct},
        {"sgd_step", l_sgd_step},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
