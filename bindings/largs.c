/* Argument helpers of the binding: Lua's 1-based positions to 0-based (in one place,
 * lb_index0), shapes given as a table or as numbers, integers, numbers, dtype and
 * device names, and the path that turns a core failure into a Lua error. */
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include "lbind.h"

int64_t lb_index0(lua_State *L, int idx, int64_t extent, const char *fn, const char *what) {
    int isnum;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum || lua_type(L, idx) != LUA_TNUMBER)
        return lb_error(L, "%s: %s must be an integer, got %s", fn, what, luaL_typename(L, idx));
    if (extent <= 0)
        return lb_error(L, "%s: %s %I is out of range (the extent is %I)", fn, what,
                          v, (lua_Integer)extent);
    if (v >= 1 && v <= extent) return v - 1;
    if (v < 0 && -v <= extent) return extent + v;
    return lb_error(L, "%s: %s %I is out of range (expected 1..%I, or -%I..-1 from the end)",
                      fn, what, v, (lua_Integer)extent, (lua_Integer)extent);
}

lua_Integer lb_int_arg(lua_State *L, int idx, const char *fn, const char *arg) {
    int isnum;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum || lua_type(L, idx) != LUA_TNUMBER) {
        if (lua_type(L, idx) == LUA_TNUMBER)
            return lb_error(L, "%s: argument '%s' must be an integer, got %f", fn, arg,
                              lua_tonumber(L, idx));
        return lb_error(L, "%s: argument '%s' must be an integer, got %s", fn, arg,
                          luaL_typename(L, idx));
    }
    return v;
}

double lb_num_arg(lua_State *L, int idx, const char *fn, const char *arg) {
    if (lua_type(L, idx) != LUA_TNUMBER)
        return lb_error(L, "%s: argument '%s' must be a number, got %s", fn, arg,
                          luaL_typename(L, idx));
    return lua_tonumber(L, idx);
}

/* One extent of a shape: a non-negative integer, or -1 where reshape infers it. */
static int64_t shape_entry(lua_State *L, int idx, const char *fn, int pos) {
    int isnum;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum || lua_type(L, idx) != LUA_TNUMBER)
        return lb_error(L, "%s: shape entry %d must be an integer, got %s", fn, pos,
                          lua_type(L, idx) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, idx));
    if (v < -1)
        return lb_error(L, "%s: shape entry %d must be non-negative, got %I", fn, pos, v);
    return v;
}

int lb_shape_arg(lua_State *L, int idx, const char *fn, int64_t *shape, int *next) {
    int ndim = 0;
    if (lua_type(L, idx) == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        if (n > LN_MAX_DIMS)
            return lb_error(L, "%s: shape has %I entries; tensors have at most %d dimensions",
                              fn, n, LN_MAX_DIMS);
        for (int i = 1; i <= (int)n; i++) {
            lua_rawgeti(L, idx, i);
            shape[ndim++] = shape_entry(L, -1, fn, i);
            lua_pop(L, 1);
        }
        *next = idx + 1;
        return ndim;
    }
    int top = lua_gettop(L);
    while (idx <= top && lua_type(L, idx) == LUA_TNUMBER) {
        if (ndim == LN_MAX_DIMS)
            return lb_error(L, "%s: tensors have at most %d dimensions", fn, LN_MAX_DIMS);
        shape[ndim] = shape_entry(L, idx, fn, ndim + 1);
        ndim++;
        idx++;
    }
    if (ndim == 0 && idx <= top && !lua_isnil(L, idx))
        return lb_error(L, "%s: expected a shape (a table of sizes or sizes as numbers), got %s",
                          fn, luaL_typename(L, idx));
    *next = idx;
    return ndim;
}

ln_dtype lb_dtype_arg(lua_State *L, int idx, const char *fn) {
    if (lua_type(L, idx) != LUA_TSTRING)
        return (ln_dtype)lb_error(L, "%s: dtype must be a string, got %s", fn, luaL_typename(L, idx));
    const char *s = lua_tostring(L, idx);
    ln_dtype dt;
    if (!ln_dtype_parse(s, &dt))
        return (ln_dtype)lb_error(L, "%s: unknown dtype '%s' (expected f32, f64, i64, i32 or u8, "
                                    "or float32, float, float64, double, int64, long, int32, int, uint8, byte)",
                                    fn, s);
    return dt;
}

ln_device lb_device_arg(lua_State *L, int idx, const char *fn) {
    ln_device d = ln_cpu();
    if (lua_type(L, idx) != LUA_TSTRING) {
        lb_error(L, "%s: device must be a string, got %s", fn, luaL_typename(L, idx));
        return d;
    }
    const char *s = lua_tostring(L, idx);
    if (!ln_device_parse(s, &d))
        lb_error(L, "%s: unknown device '%s' (expected cpu, cuda or cuda:N)", fn, s);
    return d;
}

int lb_error(lua_State *L, const char *fmt, ...) {
    lua_Debug ar;
    int level = 1;
    lua_pushliteral(L, "");
    for (; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0 && !strstr(ar.source, "/lua/lunet/")) {
            lua_pop(L, 1);
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            break;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

int lb_core_error(lua_State *L, const char *fn) {
    const char *msg = ln_ctx_error(lb_ctx(L));
    size_t n = strlen(fn);
    if (strncmp(msg, fn, n) == 0 && msg[n] == ':') return lb_error(L, "%s", msg);
    return lb_error(L, "%s: %s", fn, msg[0] ? msg : "failed");
}

void lb_check_opts(lua_State *L, int idx, const char *fn, const char *const *allowed) {
    if (lua_isnoneornil(L, idx)) return;
    if (lua_type(L, idx) != LUA_TTABLE)
        lb_error(L, "%s: options must be a table, got %s", fn, luaL_typename(L, idx));
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        bool known = false;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (int i = 0; allowed[i]; i++)
                if (strcmp(k, allowed[i]) == 0) known = true;
        }
        if (!known) {
            luaL_tolstring(L, -1, NULL); /* the key, as text */
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int i = 0; allowed[i]; i++) {
                if (i) luaL_addstring(&b, ", ");
                luaL_addstring(&b, allowed[i]);
            }
            luaL_pushresult(&b);
            lb_error(L, "%s: unknown option '%s' (expected %s)", fn, lua_tostring(L, -2),
                       lua_tostring(L, -1));
        }
    }
}
