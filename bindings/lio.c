/* The I/O binding: safetensors files (core/include/lunet/io.h) and the context RNG
 * state, for lua/lunet/io.lua and lua/lunet/checkpoint.lua.
 *
 *   core.save_safetensors(path, names, tensors, meta[, fail_after_bytes])
 *       names: list of strings; tensors: list of tensors (same length, same order);
 *       meta: table string -> string (or nil). fail_after_bytes: test hook simulating a
 *       full disk after that many bytes. Atomic (temporary file + rename).
 *   core.load_safetensors(path) -> names, tensors, meta
 *       names and tensors in the file's data order; meta a table string -> string.
 *   core.get_rng_state() -> {w1, w2, w3, w4}: the 4 words of the context RNG as
 *       unsigned decimal strings (a Lua integer cannot hold them unsigned).
 *   core.set_rng_state(t): the inverse (strings or integers; integers are taken as
 *       the 64-bit pattern).
 *
 * Scratch arrays live in userdata, so a Lua error between allocation and release
 * leaks nothing; a loaded file is boxed in a userdata whose __gc frees it. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "lbind.h"
#include "lunet/io.h"

#define LB_ST_MT "lunet.SafetensorsBox"

/* ------------------------------------------------------------ save */
static int l_save_safetensors(lua_State *L) {
    const char *fn = "save_safetensors";
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    ln_save_opts opts = {0};
    if (!lua_isnoneornil(L, 5)) {
        lua_Integer n = lb_int_arg(L, 5, fn, "fail_after_bytes");
        if (n < 0) return lb_error(L, "%s: fail_after_bytes must be >= 0, got %I", fn, n);
        opts.fail_after_bytes = n;
    }
    lua_Integer n = luaL_len(L, 2);
    if (luaL_len(L, 3) != n)
        return lb_error(L, "%s: %I names but %I tensors", fn, n, luaL_len(L, 3));
    if (n > INT32_MAX) return lb_error(L, "%s: too many tensors", fn);
    ln_named_tensor *ts = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ts, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, 2, i) != LUA_TSTRING)
            return lb_error(L, "%s: name %I is a %s, not a string", fn, i, luaL_typename(L, -1));
        ts[i - 1].name = lua_tostring(L, -1); /* kept alive by the names table */
        if (strlen(ts[i - 1].name) != lua_rawlen(L, -1))
            return lb_error(L, "%s: name %I contains a NUL character", fn, i);
        lua_pop(L, 1);
        lua_geti(L, 3, i);
        ts[i - 1].tensor = lb_to_tensor(L, -1);
        if (!ts[i - 1].tensor)
            return lb_error(L, "%s: value for '%s' is a %s, not a live tensor", fn, ts[i - 1].name,
                            luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    int n_meta = 0;
    if (lua_istable(L, 4)) {
        lua_pushnil(L);
        while (lua_next(L, 4)) { n_meta++; lua_pop(L, 1); }
    }
    ln_meta_entry *meta = lua_newuserdatauv(L, (size_t)(n_meta ? n_meta : 1) * sizeof *meta, 0);
    if (n_meta) {
        int k = 0;
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                return lb_error(L, "%s: metadata must map strings to strings (got %s -> %s)", fn,
                                luaL_typename(L, -2), luaL_typename(L, -1));
            meta[k].key = lua_tostring(L, -2);
            meta[k].value = lua_tostring(L, -1);
            if (strlen(meta[k].value) != lua_rawlen(L, -1) || strlen(meta[k].key) != lua_rawlen(L, -2))
                return lb_error(L, "%s: metadata '%s' contains a NUL character", fn, meta[k].key);
            k++;
            lua_pop(L, 1);
        }
    }
    if (ln_safetensors_save(lb_ctx(L), path, (int)n, ts, n_meta, meta, &opts) != LN_OK)
        return lb_core_error(L, fn);
    return 0;
}

/* ------------------------------------------------------------ load */
static int st_box_gc(lua_State *L) {
    ln_safetensors **box = luaL_checkudata(L, 1, LB_ST_MT);
    ln_safetensors_free(*box);
    *box = NULL;
    return 0;
}

static int l_load_safetensors(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    ln_safetensors **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    if (luaL_newmetatable(L, LB_ST_MT)) {
        lua_pushcfunction(L, st_box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    if (ln_safetensors_load(lb_ctx(L), path, box) != LN_OK) return lb_core_error(L, "load_safetensors");
    ln_safetensors *st = *box;
    lua_createtable(L, st->n_tensors, 0);
    lua_createtable(L, st->n_tensors, 0);
    for (int i = 0; i < st->n_tensors; i++) {
        lua_pushstring(L, st->names[i]);
        lua_rawseti(L, -3, i + 1);
        lb_push_tensor(L, st->tensors[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, 0, st->n_meta);
    for (int i = 0; i < st->n_meta; i++) {
        lua_pushstring(L, st->meta_values[i]);
        lua_setfield(L, -2, st->meta_keys[i]);
    }
    ln_safetensors_free(st);
    *box = NULL;
    return 3;
}

/* ------------------------------------------------------------ RNG state */
static int l_get_rng_state(lua_State *L) {
    uint64_t s[4];
    ln_ctx_rng_get_state(lb_ctx(L), s);
    lua_createtable(L, 4, 0);
    for (int i = 0; i < 4; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, s[i]);
        lua_pushstring(L, buf);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* One word: an unsigned decimal string, or an integer taken as its bit pattern. */
static uint64_t rng_word(lua_State *L, int i) {
    const char *fn = "set_rng_state";
    int ty = lua_geti(L, 1, i);
    uint64_t w = 0;
    if (ty == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        char *end = NULL;
        errno = 0;
        w = strtoull(s, &end, 10);
        if (!*s || *s == '-' || *s == '+' || *s == ' ' || errno != 0 || *end != '\0')
            return (uint64_t)lb_error(L, "%s: word %d '%s' is not an unsigned 64-bit decimal", fn, i, s);
    } else if (ty == LUA_TNUMBER && lua_isinteger(L, -1)) {
        w = (uint64_t)lua_tointeger(L, -1);
    } else {
        return (uint64_t)lb_error(L, "%s: word %d must be a decimal string or an integer, got %s", fn, i,
                                  luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return w;
}

static int l_set_rng_state(lua_State *L) {
    if (lua_type(L, 1) != LUA_TTABLE)
        return lb_error(L, "set_rng_state: expected a table of 4 words, got %s", luaL_typename(L, 1));
    if (luaL_len(L, 1) != 4)
        return lb_error(L, "set_rng_state: expected 4 words, got %I", luaL_len(L, 1));
    uint64_t s[4];
    for (int i = 0; i < 4; i++) s[i] = rng_word(L, i + 1);
    if (!(s[0] | s[1] | s[2] | s[3]))
        return lb_error(L, "set_rng_state: the all-zero state is not a valid xoshiro256** state");
    ln_ctx_rng_set_state(lb_ctx(L), s);
    return 0;
}

void lb_open_io(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"save_safetensors", l_save_safetensors},
        {"load_safetensors", l_load_safetensors},
        {"get_rng_state", l_get_rng_state},
        {"set_rng_state", l_set_rng_state},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
