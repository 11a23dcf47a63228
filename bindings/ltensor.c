/* The tensor userdata: check/push helpers, the metatable (arithmetic, __len, __eq,
 * __index with the `grad` field, and __gc/__close sharing one release function) and
 * the methods that are not ops: metadata, values to and from Lua, autograd controls,
 * copies and conversions. Methods that are differentiable ops live in lops.c. */
#include <stdlib.h>
#include <string.h>
#include "lbind.h"

/* ------------------------------------------------------------ push / check */
/* Lua's collector sees only the small userdata of a tensor, not the megabytes behind
 * it, so it would let dead tensors pile up. Each new tensor first reports the storage
 * allocated since the last report as collector debt, so collection keeps pace with
 * tensor memory (the next tensor pays for the previous op's output). */
static void pace_gc(lua_State *L) {
    lb_ctx_box *box = lb_ctx_box_get(L);
    uint64_t total = ln_ctx_allocated_total(box->ctx), fresh = total - box->gc_paced;
    if (fresh < ((uint64_t)1 << 20)) return;
    box->gc_paced = total;
    uint64_t kb = fresh >> 10;
    lua_gc(L, LUA_GCSTEP, (int)(kb > INT32_MAX ? INT32_MAX : kb));
}

ln_tensor **lb_new_tensor(lua_State *L) {
    pace_gc(L);
    lb_tensor *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->t = NULL;
    luaL_setmetatable(L, LB_TENSOR_MT);
    return &b->t;
}

void lb_push_tensor(lua_State *L, ln_tensor *t) {
    ln_tensor **slot = lb_new_tensor(L);
    ln_tensor_retain(t);
    *slot = t;
}

ln_tensor *lb_to_tensor(lua_State *L, int idx) {
    lb_tensor *b = luaL_testudata(L, idx, LB_TENSOR_MT);
    if (!b) return NULL;
    if (!b->t) lb_error(L, "attempt to use a freed tensor");
    return b->t;
}

ln_tensor *lb_tensor_arg(lua_State *L, int idx, const char *fn, const char *arg) {
    lb_tensor *b = luaL_testudata(L, idx, LB_TENSOR_MT);
    if (!b)
        lb_error(L, "%s: argument '%s' must be a tensor, got %s", fn, arg, luaL_typename(L, idx));
    else if (!b->t)
        lb_error(L, "%s: argument '%s' is a freed tensor", fn, arg);
    return b->t;
}

ln_tensor *lb_opt_tensor_arg(lua_State *L, int idx, const char *fn, const char *arg) {
    if (lua_isnoneornil(L, idx)) return NULL;
    return lb_tensor_arg(L, idx, fn, arg);
}

/* `self` of a method: a live tensor. */
static ln_tensor *self_arg(lua_State *L, const char *fn) {
    return lb_tensor_arg(L, 1, fn, "self");
}

/* ------------------------------------------------------------ release */
/* :free(), __close and __gc: drop this userdata's reference (idempotent). */
static int tensor_release(lua_State *L) {
    lb_tensor *b = luaL_checkudata(L, 1, LB_TENSOR_MT);
    ln_tensor_release(b->t);
    b->t = NULL;
    return 0;
}

/* ------------------------------------------------------------ metadata */
static int m_shape(lua_State *L) {
    ln_tensor *t = self_arg(L, "shape");
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_size(lua_State *L) {
    ln_tensor *t = self_arg(L, "size");
    if (lua_isnoneornil(L, 2)) return m_shape(L);
    int d = (int)lb_index0(L, 2, t->ndim, "size", "dimension");
    lua_pushinteger(L, t->shape[d]);
    return 1;
}

static int m_dim(lua_State *L) {
    lua_pushinteger(L, self_arg(L, "dim")->ndim);
    return 1;
}

static int m_numel(lua_State *L) {
    lua_pushinteger(L, ln_tensor_numel(self_arg(L, "numel")));
    return 1;
}

static int m_dtype(lua_State *L) {
    lua_pushstring(L, ln_dtype_name(self_arg(L, "dtype")->dtype));
    return 1;
}

static int m_device(lua_State *L) {
    char buf[32];
    ln_device_format(ln_tensor_device(self_arg(L, "device")), buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

static int m_is_contiguous(lua_State *L) {
    lua_pushboolean(L, ln_tensor_is_contiguous(self_arg(L, "is_contiguous")));
    return 1;
}

static int m_is_pinned(lua_State *L) {
    lua_pushboolean(L, ln_tensor_is_pinned(self_arg(L, "is_pinned")));
    return 1;
}

/* t:pin_memory([device]): a copy of CPU tensor t in page-locked memory, from which
 * copies to the CUDA device (default cuda:0) do not block (t itself if pinned). */
static int m_pin_memory(lua_State *L) {
    ln_tensor *t = self_arg(L, "pin_memory");
    ln_device dev = {LN_CUDA, 0};
    if (!lua_isnoneornil(L, 2)) dev = lb_device_arg(L, 2, "pin_memory");
    if (dev.type != LN_CUDA) return lb_error(L, "pin_memory: the device must be cuda or cuda:N");
    ln_tensor **out = lb_new_tensor(L);
    if (ln_tensor_pin(lb_ctx(L), t, dev.index, out) != LN_OK) return lb_core_error(L, "pin_memory");
    return 1;
}

static int m_is_leaf(lua_State *L) {
    lua_pushboolean(L, self_arg(L, "is_leaf")->grad_fn == NULL);
    return 1;
}

/* The name of the op that produced the tensor (its autograd node), or nil. */
static int m_grad_fn(lua_State *L) {
    ln_tensor *t = self_arg(L, "grad_fn");
    if (t->grad_fn) lua_pushstring(L, t->grad_fn->name);
    else lua_pushnil(L);
    return 1;
}

/* ------------------------------------------------------------ values */
static void push_value(lua_State *L, ln_dtype dt, double v) {
    if (ln_dtype_is_float(dt)) lua_pushnumber(L, v);
    else lua_pushinteger(L, (lua_Integer)v);
}

static int m_item(lua_State *L) {
    ln_tensor *t = self_arg(L, "item");
    double v;
    if (ln_tensor_item(lb_ctx(L), t, &v) != LN_OK) return lb_core_error(L, "item");
    push_value(L, t->dtype, v);
    return 1;
}

/* Element at `off` (in elements from the storage start) of a CPU tensor. */
static double elem_at(const ln_tensor *t, int64_t off) {
    const char *p = (const char *)t->storage->data;
    switch (t->dtype) {
    case LN_F32: return ((const float *)p)[off];
    case LN_F64: return ((const double *)p)[off];
    case LN_I64: return (double)((const int64_t *)p)[off];
    case LN_I32: return ((const int32_t *)p)[off];
    case LN_U8: return ((const uint8_t *)p)[off];
    default: return 0.0;
    }
}

/* Pushes dimension d of the CPU tensor t starting at element `off` as a nested table.
 * edge > 0 keeps only the first and last `edge` entries of dims longer than 2*edge
 * (what the printer shows); edge == 0 keeps everything. */
static void push_nested(lua_State *L, const ln_tensor *t, int d, int64_t off, int64_t edge) {
    if (d == t->ndim) {
        push_value(L, t->dtype, elem_at(t, off));
        return;
    }
    luaL_checkstack(L, 4, "tensor too deep");
    int64_t n = t->shape[d];
    bool cut = edge > 0 && n > 2 * edge;
    int64_t kept = cut ? 2 * edge : n;
    lua_createtable(L, kept < INT32_MAX ? (int)kept : 0, 0);
    for (int64_t k = 0; k < kept; k++) {
        int64_t i = (cut && k >= edge) ? n - 2 * edge + k : k;
        push_nested(L, t, d + 1, off + i * t->strides[d], edge);
        lua_rawseti(L, -2, k + 1);
    }
}

/* Pushes t's values (all, or the printer's edges) as nested tables; a number for 0-d. */
static int push_values(lua_State *L, ln_tensor *t, int64_t edge, const char *fn) {
    if (ln_tensor_device(t).type != LN_CPU) {
        ln_tensor **host = lb_new_tensor(L); /* collected even if we fail below */
        if (ln_tensor_to_device(lb_ctx(L), t, ln_cpu(), host) != LN_OK) return lb_core_error(L, fn);
        t = *host;
    }
    push_nested(L, t, 0, t->offset, edge);
    return 1;
}

static int m_totable(lua_State *L) {
    return push_values(L, self_arg(L, "totable"), 0, "totable");
}

/* core.edge_values(t, edge): the values the printer shows (see push_nested). */
static int l_edge_values(lua_State *L) {
    ln_tensor *t = lb_tensor_arg(L, 1, "edge_values", "t");
    lua_Integer edge = lb_int_arg(L, 2, "edge_values", "edge");
    return push_values(L, t, edge > 0 && edge < INT32_MAX ? edge : 0, "edge_values");
}

/* A GC-managed buffer of n doubles holding t's values in row-major order. */
static double *values_f64(lua_State *L, ln_tensor *t, const char *fn) {
    int64_t n = ln_tensor_numel(t);
    double *buf = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof(double), 0);
    if (ln_tensor_to_f64(lb_ctx(L), t, buf) != LN_OK) lb_core_error(L, fn);
    return buf;
}

/* Same shape and the same values (dtypes may differ; NaN equals nothing). */
static int m_equal(lua_State *L) {
    ln_tensor *a = self_arg(L, "equal");
    ln_tensor *b = lb_tensor_arg(L, 2, "equal", "other");
    if (!ln_tensor_same_shape(a, b)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    const double *va = values_f64(L, a, "equal");
    const double *vb = values_f64(L, b, "equal");
    int64_t n = ln_tensor_numel(a);
    bool eq = true;
    for (int64_t i = 0; i < n && eq; i++) eq = va[i] == vb[i];
    lua_pushboolean(L, eq);
    return 1;
}

/* ------------------------------------------------------------ autograd controls */
static int m_requires_grad(lua_State *L) {
    ln_tensor *t = self_arg(L, "requires_grad");
    if (lua_isnone(L, 2)) {
        lua_pushboolean(L, t->requires_grad);
        return 1;
    }
    if (lua_type(L, 2) != LUA_TBOOLEAN)
        return lb_error(L, "requires_grad: argument must be a boolean, got %s", luaL_typename(L, 2));
    bool on = lua_toboolean(L, 2);
    if (t->grad_fn)
        return lb_error(L, "requires_grad: can only be set on a leaf tensor; this one is the "
                          "result of '%s' (use :detach() to get a leaf)", t->grad_fn->name);
    if (on && !ln_dtype_is_float(t->dtype))
        return lb_error(L, "requires_grad: only floating tensors (f32, f64) can require grad, "
                          "this one is %s", ln_dtype_name(t->dtype));
    t->requires_grad = on;
    lua_settop(L, 1);
    return 1;
}

static int m_zero_grad(lua_State *L) {
    ln_tensor *t = self_arg(L, "zero_grad");
    ln_tensor_release(t->grad);
    t->grad = NULL;
    lua_settop(L, 1);
    return 1;
}

/* t:backward([grad][, {retain_graph = bool}]) */
static int m_backward(lua_State *L) {
    static const char *const opts[] = {"retain_graph", NULL};
    ln_tensor *t = self_arg(L, "backward");
    ln_tensor *grad = NULL;
    int oi = 2;
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_settop(L, 2);
    } else {
        grad = lb_opt_tensor_arg(L, 2, "backward", "grad");
        oi = 3;
    }
    lb_check_opts(L, oi, "backward", opts);
    bool retain = false;
    if (lua_type(L, oi) == LUA_TTABLE) {
        lua_getfield(L, oi, "retain_graph");
        retain = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lb_ctx_box *box = lb_ctx_box_get(L);
    if (box->in_backward)
        return lb_error(L, "backward: cannot start a backward pass inside a custom "
                          "Function's backward");
    /* hold the root and the seed: a custom backward may :free() their userdata */
    ln_tensor_retain(t);
    ln_tensor_retain(grad);
    box->in_backward++;
    ln_status st = ln_backward(box->ctx, t, grad, retain);
    box->in_backward--;
    ln_tensor_release(grad);
    ln_tensor_release(t);
    if (st != LN_OK) return lb_core_error(L, "backward");
    return 0;
}

static int m_detach(lua_State *L) {
    ln_tensor *t = self_arg(L, "detach");
    ln_tensor **out = lb_new_tensor(L);
    if (ln_tensor_detach(lb_ctx(L), t, out) != LN_OK) return lb_core_error(L, "detach");
    return 1;
}

/* ------------------------------------------------------------ copies, conversions */
/* A contiguous copy. Differentiable: when t takes part in autograd the copy is made
 * by the identity op x*1+0 so that gradients flow back to t. */
static int m_clone(lua_State *L) {
    ln_tensor *t = self_arg(L, "clone");
    ln_ctx *ctx = lb_ctx(L);
    ln_tensor **out = lb_new_tensor(L);
    ln_status st = ln_any_requires_grad(ctx, 1, &t) ? ln_affine_scalar(ctx, t, 1.0, 0.0, out)
                                                   : ln_tensor_clone(ctx, t, out);
    if (st != LN_OK) return lb_core_error(L, "clone");
    return 1;
}

/* t:to(dtype or device): t itself when nothing changes, else a copy (not recorded by
 * autograd). */
static int m_to(lua_State *L) {
    ln_tensor *t = self_arg(L, "to");
    if (lua_type(L, 2) != LUA_TSTRING)
        return lb_error(L, "to: expected a dtype or device name, got %s", luaL_typename(L, 2));
    const char *s = lua_tostring(L, 2);
    ln_ctx *ctx = lb_ctx(L);
    ln_dtype dt;
    ln_device dev;
    if (ln_dtype_parse(s, &dt)) {
        if (dt == t->dtype) { lua_settop(L, 1); return 1; }
        ln_tensor **out = lb_new_tensor(L);
        if (ln_tensor_to_dtype(ctx, t, dt, out) != LN_OK) return lb_core_error(L, "to");
        return 1;
    }
    if (ln_device_parse(s, &dev)) {
        if (ln_device_eq(dev, ln_tensor_device(t))) { lua_settop(L, 1); return 1; }
        ln_tensor **out = lb_new_tensor(L);
        if (ln_tensor_to_device(ctx, t, dev, out) != LN_OK) return lb_core_error(L, "to");
        return 1;
    }
    return lb_error(L, "to: '%s' is neither a dtype (f32, f64, i64, i32, u8) nor a device "
                      "(cpu, cuda, cuda:N)", s);
}

static int m_fill(lua_State *L) {
    ln_tensor *t = self_arg(L, "fill");
    double v = lb_num_arg(L, 2, "fill", "value");
    if (ln_tensor_fill_(lb_ctx(L), t, v) != LN_OK) return lb_core_error(L, "fill");
    lua_settop(L, 1);
    return 1;
}

static int m_copy(lua_State *L) {
    ln_tensor *t = self_arg(L, "copy");
    ln_tensor *src = lb_tensor_arg(L, 2, "copy", "src");
    if (ln_tensor_copy_(lb_ctx(L), t, src) != LN_OK) return lb_core_error(L, "copy");
    lua_settop(L, 1);
    return 1;
}

/* t:add_(src[, alpha]): t += alpha * src in place, not recorded by autograd (for
 * optimiser steps written in Lua). */
static int m_add_(lua_State *L) {
    ln_tensor *t = self_arg(L, "add_");
    ln_tensor *src = lb_tensor_arg(L, 2, "add_", "src");
    double alpha = lua_isnoneornil(L, 3) ? 1.0 : lb_num_arg(L, 3, "add_", "alpha");
    if (ln_tensor_add_(lb_ctx(L), t, src, alpha) != LN_OK) return lb_core_error(L, "add_");
    lua_settop(L, 1);
    return 1;
}

/* t:set_(u): this userdata now refers to u's tensor object (the same C tensor, not a
 * copy); what lets Module:to() convert a parameter in place while every Lua reference
 * to it (shared modules, optimisers) keeps seeing the same object. */
static int m_set_(lua_State *L) {
    lb_tensor *b = luaL_checkudata(L, 1, LB_TENSOR_MT);
    self_arg(L, "set_");
    ln_tensor *u = lb_tensor_arg(L, 2, "set_", "src");
    ln_tensor_retain(u);
    ln_tensor_release(b->t);
    b->t = u;
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------ metamethods */
static int mm_len(lua_State *L) {
    ln_tensor *t = self_arg(L, "len");
    if (t->ndim == 0) return lb_error(L, "len: a 0-d tensor has no length");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

/* Identity: the same tensor object (also across userdata, e.g. t.grad == t.grad). */
static int mm_eq(lua_State *L) {
    lb_tensor *a = luaL_testudata(L, 1, LB_TENSOR_MT);
    lb_tensor *b = luaL_testudata(L, 2, LB_TENSOR_MT);
    lua_pushboolean(L, a && b && a->t && a->t == b->t);
    return 1;
}

/* t.grad, then methods (upvalue 2). */
static int mm_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "grad") == 0) {
        ln_tensor *t = self_arg(L, "grad");
        if (t->grad) lb_push_tensor(L, t->grad);
        else lua_pushnil(L);
        return 1;
    }
    if (lua_type(L, 2) != LUA_TSTRING)
        return lb_error(L, "tensors cannot be indexed with a %s (use narrow, or totable)",
                          luaL_typename(L, 2));
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(2));
    return 1;
}

/* t.grad = nil | tensor of t's shape, dtype and device. Nothing else can be set. */
static int mm_newindex(lua_State *L) {
    ln_tensor *t = self_arg(L, "grad");
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "grad") != 0)
        return lb_error(L, "cannot set field '%s' of a tensor (only 'grad' can be set)",
                          luaL_tolstring(L, 2, NULL));
    ln_tensor *g = lb_opt_tensor_arg(L, 3, "grad", "value");
    if (g) {
        if (!ln_tensor_same_shape(g, t) || g->dtype != t->dtype ||
            !ln_device_eq(ln_tensor_device(g), ln_tensor_device(t))) {
            char a[256], b[256];
            ln_shape_format(t->ndim, t->shape, a, sizeof a);
            ln_shape_format(g->ndim, g->shape, b, sizeof b);
            return lb_error(L, "grad: assigned gradient (%s %s) must match the tensor (%s %s)",
                              b, ln_dtype_name(g->dtype), a, ln_dtype_name(t->dtype));
        }
        ln_tensor_retain(g);
    }
    ln_tensor_release(t->grad);
    t->grad = g;
    return 0;
}

/* core.is_tensor(v): true for a live tensor. */
static int l_is_tensor(lua_State *L) {
    lb_tensor *b = luaL_testudata(L, 1, LB_TENSOR_MT);
    lua_pushboolean(L, b && b->t);
    return 1;
}

/* ------------------------------------------------------------ registration */
void lb_open_tensor(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"shape", m_shape},
        {"size", m_size},
        {"dim", m_dim},
        {"numel", m_numel},
        {"dtype", m_dtype},
        {"device", m_device},
        {"is_contiguous", m_is_contiguous},
        {"is_pinned", m_is_pinned},
        {"pin_memory", m_pin_memory},
        {"is_leaf", m_is_leaf},
        {"grad_fn", m_grad_fn},
        {"item", m_item},
        {"totable", m_totable},
        {"equal", m_equal},
        {"requires_grad", m_requires_grad},
        {"zero_grad", m_zero_grad},
        {"backward", m_backward},
        {"detach", m_detach},
        {"clone", m_clone},
        {"to", m_to},
        {"fill", m_fill},
        {"copy", m_copy},
        {"add_", m_add_},
        {"set_", m_set_},
        {"free", tensor_release},
        {"sum", lb_op_sum},
        {"mean", lb_op_mean},
        {"reshape", lb_op_reshape},
        {"transpose", lb_op_transpose},
        {"narrow", lb_op_narrow},
        {"contiguous", lb_op_contiguous},
        {"matmul", lb_op_matmul},
        {"pow", lb_op_pow},
        {NULL, NULL},
    };
    static const luaL_Reg metamethods[] = {
        {"__add", lb_op_add},
        {"__sub", lb_op_sub},
        {"__mul", lb_op_mul},
        {"__div", lb_op_div},
        {"__unm", lb_op_neg},
        {"__len", mm_len},
        {"__eq", mm_eq},
        {"__newindex", mm_newindex},
        {"__gc", tensor_release},
        {"__close", tensor_release},
        {NULL, NULL},
    };
    /* module table is on top */
    luaL_newmetatable(L, LB_TENSOR_MT);
    lb_setfuncs(L, metamethods);
    lua_newtable(L); /* methods */
    lb_setfuncs(L, methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "Tensor"); /* core.Tensor: the methods table, extended in Lua */
    lb_push_ctx_box(L);
    lua_insert(L, -2);
    lua_pushcclosure(L, mm_index, 2);
    lua_setfield(L, -2, "__index");
    lua_setfield(L, -2, "metatable"); /* core.metatable */
    static const luaL_Reg funcs[] = {
        {"edge_values", l_edge_values},
        {"is_tensor", l_is_tensor},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
