/* Tensor constructors: tensor(nested_table[, opts]) and zeros/ones/empty/full/randn/
 * rand(shape[, opts]). opts = {dtype = "f32", device = "cpu", requires_grad = false};
 * an unknown key is an error. A ragged nested table is an error naming the position
 * (1-based, like Lua) of the first entry that does not fit. */
#include <stdio.h>
#include <string.h>
#include "lbind.h"

typedef struct topts {
    ln_dtype dtype;
    ln_device device;
    bool requires_grad;
} topts;

static void read_topts(lua_State *L, int idx, const char *fn, topts *o) {
    static const char *const keys[] = {"dtype", "device", "requires_grad", NULL};
    o->dtype = LN_F32;
    o->device = ln_cpu();
    o->requires_grad = false;
    lb_check_opts(L, idx, fn, keys);
    if (lua_type(L, idx) != LUA_TTABLE) return;
    if (lua_getfield(L, idx, "dtype") != LUA_TNIL) o->dtype = lb_dtype_arg(L, -1, fn);
    if (lua_getfield(L, idx, "device") != LUA_TNIL) o->device = lb_device_arg(L, -1, fn);
    int t = lua_getfield(L, idx, "requires_grad");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        lb_error(L, "%s: option 'requires_grad' must be a boolean, got %s", fn, luaL_typename(L, -1));
    o->requires_grad = lua_toboolean(L, -1);
    lua_pop(L, 3);
    if (o->requires_grad && !ln_dtype_is_float(o->dtype))
        lb_error(L, "%s: only floating tensors (f32, f64) can require grad, not %s", fn,
                   ln_dtype_name(o->dtype));
}

/* ------------------------------------------------------------ nested tables */
typedef struct scan {
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    lua_Integer path[LN_MAX_DIMS]; /* 1-based position of the entry being read */
    double *buf;
    int64_t pos;
} scan;

/* "[2][1]" for the first `depth` entries of the path. */
static const char *path_str(const scan *s, int depth, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < depth && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "[%lld]", (long long)s->path[i]);
    return depth ? buf : "at the top level";
}

/* Reads the value on top of the stack, expected at depth d, into s->buf. */
static void scan_fill(lua_State *L, scan *s, int d) {
    char where[128];
    if (d == s->ndim) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            lb_error(L, "tensor: element %s is a %s, expected a number%s",
                       path_str(s, d, where, sizeof where), luaL_typename(L, -1),
                       lua_istable(L, -1) ? " (ragged nested table)" : "");
        s->buf[s->pos++] = lua_tonumber(L, -1);
        return;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        lb_error(L, "tensor: ragged nested table: element %s is a %s, expected a table of %I entries",
                   path_str(s, d, where, sizeof where), luaL_typename(L, -1), (lua_Integer)s->shape[d]);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n != s->shape[d])
        lb_error(L, "tensor: ragged nested table: element %s has %I entries, expected %I "
                   "(as its first sibling)", path_str(s, d, where, sizeof where), n,
                   (lua_Integer)s->shape[d]);
    luaL_checkstack(L, 2, "nested table too deep");
    for (lua_Integer i = 1; i <= n; i++) {
        s->path[d] = i;
        lua_rawgeti(L, -1, i);
        scan_fill(L, s, d + 1);
        lua_pop(L, 1);
    }
}

/* tensor(data[, opts]): data is a number, a nested table of numbers or a tensor
 * (copied, detached). */
static int l_tensor(lua_State *L) {
    topts o;
    read_topts(L, 2, "tensor", &o);
    ln_ctx *ctx = lb_ctx(L);
    ln_tensor *src = lb_to_tensor(L, 1);
    ln_tensor **host = lb_new_tensor(L);
    int result = lua_gettop(L);
    if (src) {
        if (ln_tensor_to_dtype(ctx, src, o.dtype, host) != LN_OK) return lb_core_error(L, "tensor");
    } else {
        if (lua_type(L, 1) != LUA_TNUMBER && lua_type(L, 1) != LUA_TTABLE)
            return lb_error(L, "tensor: expected a number, a nested table of numbers or a "
                              "tensor, got %s", luaL_typename(L, 1));
        scan s = {0};
        lua_pushvalue(L, 1);
        while (lua_type(L, -1) == LUA_TTABLE) { /* the shape: along the first entries */
            if (s.ndim == LN_MAX_DIMS)
                return lb_error(L, "tensor: nested table deeper than %d dimensions", LN_MAX_DIMS);
            lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
            s.shape[s.ndim++] = n;
            if (n == 0) break;
            lua_rawgeti(L, -1, 1);
            lua_remove(L, -2);
        }
        lua_pop(L, 1);
        int64_t numel = 1;
        for (int i = 0; i < s.ndim; i++) numel *= s.shape[i];
        s.buf = lua_newuserdatauv(L, (size_t)(numel > 0 ? numel : 1) * sizeof(double), 0);
        lua_pushvalue(L, 1);
        scan_fill(L, &s, 0);
        lua_pop(L, 1);
        if (ln_tensor_from_f64(ctx, o.dtype, s.ndim, s.shape, s.buf, host) != LN_OK)
            return lb_core_error(L, "tensor");
    }
    ln_tensor *t = *host;
    if (o.device.type != LN_CPU || ln_tensor_device(t).type != LN_CPU) {
        ln_tensor **dev = lb_new_tensor(L);
        if (ln_tensor_to_device(ctx, t, o.device, dev) != LN_OK) return lb_core_error(L, "tensor");
        t = *dev;
        result = lua_gettop(L);
    }
    t->requires_grad = o.requires_grad;
    lua_pushvalue(L, result);
    return 1;
}

/* ------------------------------------------------------------ from a shape */
typedef enum fill_kind { FILL_EMPTY, FILL_ZEROS, FILL_ONES, FILL_VALUE, FILL_NORMAL, FILL_UNIFORM } fill_kind;

/* Shape at arg 1 (a table, or numbers except for full), then for full the value, then
 * the options. */
static int make(lua_State *L, const char *fn, fill_kind kind) {
    int64_t shape[LN_MAX_DIMS];
    int next;
    if (kind == FILL_VALUE && lua_type(L, 1) != LUA_TTABLE)
        return lb_error(L, "%s: the shape must be a table, got %s", fn, luaL_typename(L, 1));
    int ndim = lb_shape_arg(L, 1, fn, shape, &next);
    double value = 1.0;
    if (kind == FILL_VALUE) value = lb_num_arg(L, next++, fn, "value");
    topts o;
    read_topts(L, next, fn, &o);
    if ((kind == FILL_NORMAL || kind == FILL_UNIFORM) && !ln_dtype_is_float(o.dtype))
        return lb_error(L, "%s: random tensors must be f32 or f64, not %s", fn, ln_dtype_name(o.dtype));
    ln_ctx *ctx = lb_ctx(L);
    ln_tensor **out = lb_new_tensor(L);
    ln_status st;
    switch (kind) {
    case FILL_ZEROS: st = ln_tensor_zeros(ctx, o.dtype, o.device, ndim, shape, out); break;
    case FILL_ONES:
    case FILL_VALUE: st = ln_tensor_full(ctx, o.dtype, o.device, ndim, shape, value, out); break;
    default: st = ln_tensor_empty(ctx, o.dtype, o.device, ndim, shape, out); break;
    }
    if (st == LN_OK && kind == FILL_NORMAL) st = ln_tensor_normal_(ctx, *out, 0.0, 1.0);
    if (st == LN_OK && kind == FILL_UNIFORM) st = ln_tensor_uniform_(ctx, *out, 0.0, 1.0);
    if (st != LN_OK) return lb_core_error(L, fn);
    (*out)->requires_grad = o.requires_grad;
    return 1;
}

static int l_empty(lua_State *L) { return make(L, "empty", FILL_EMPTY); }
static int l_zeros(lua_State *L) { return make(L, "zeros", FILL_ZEROS); }
static int l_ones(lua_State *L) { return make(L, "ones", FILL_ONES); }
static int l_full(lua_State *L) { return make(L, "full", FILL_VALUE); }
static int l_randn(lua_State *L) { return make(L, "randn", FILL_NORMAL); }
static int l_rand(lua_State *L) { return make(L, "rand", FILL_UNIFORM); }

void lb_open_create(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"tensor", l_tensor},
        {"empty", l_empty},
        {"zeros", l_zeros},
        {"ones", l_ones},
        {"full", l_full},
        {"randn", l_randn},
        {"rand", l_rand},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
