/* PyTorch checkpoints from Lua: core.pth_load(path) and core.pth_save(path, value).
 *
 * Values map both ways as: None <-> core.pth_none (a light userdata NULL, distinct
 * from nil), bool, int (Lua integer), float, str and bytes (Lua strings), list (a
 * sequence), tuple (a sequence whose metatable is core.pth_tuple_mt), dict (a table
 * whose metatable holds `pth_order`, the list of its keys in order, and
 * `pth_ordered`, true for a collections.OrderedDict), tensor (a tensor userdata). On
 * loading, an object the pickle references twice becomes one Lua value (a tensor
 * stored under two keys is one userdata). On saving, a table without a dict
 * metatable is a list when its keys are exactly 1..n (n >= 1), otherwise a dict with
 * its keys sorted (numbers first, then strings).
 *
 * The document lives in a userdata with a __gc (created empty first, then filled), so
 * a Lua error while converting leaks nothing. */
#include <string.h>
#include "lbind.h"

#define LB_PTHDOC_MT "lunet.PthDoc"
#define LB_TUPLE_KEY "lunet.pth.tuple" /* registry: the tuple metatable */
#define MAX_DEPTH 200

typedef struct doc_box { ln_pth_doc *doc; } doc_box;

static int doc_gc(lua_State *L) {
    doc_box *b = luaL_checkudata(L, 1, LB_PTHDOC_MT);
    ln_pth_doc_free(b->doc);
    b->doc = NULL;
    return 0;
}

static doc_box *new_doc_box(lua_State *L) {
    doc_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->doc = NULL;
    if (luaL_newmetatable(L, LB_PTHDOC_MT)) {
        lua_pushcfunction(L, doc_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

static void push_tuple_mt(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, LB_TUPLE_KEY) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushliteral(L, "pth.tuple");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LB_TUPLE_KEY);
}

/* ------------------------------------------------------------ loading */
/* Pushes the Lua form of v; memo (a table at index memo) maps values already made. */
static void push_value(lua_State *L, const ln_pth_value *v, int memo, int depth) {
    if (depth > MAX_DEPTH) lb_error(L, "pth_load: values nested deeper than %d", MAX_DEPTH);
    luaL_checkstack(L, 8, "pth_load");
    switch (v->kind) {
    case LN_PTH_NONE: lua_pushlightuserdata(L, NULL); return;
    case LN_PTH_BOOL: lua_pushboolean(L, v->i != 0); return;
    case LN_PTH_INT: lua_pushinteger(L, (lua_Integer)v->i); return;
    case LN_PTH_FLOAT: lua_pushnumber(L, v->f); return;
    case LN_PTH_STR:
    case LN_PTH_BYTES: lua_pushlstring(L, v->str, v->len); return;
    default: break;
    }
    if (lua_rawgetp(L, memo, v) != LUA_TNIL) return;
    lua_pop(L, 1);
    if (v->kind == LN_PTH_TENSOR) {
        lb_push_tensor(L, v->tensor);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, memo, v);
    } else if (v->kind == LN_PTH_LIST || v->kind == LN_PTH_TUPLE) {
        lua_createtable(L, (int)(v->n < 1u << 24 ? v->n : 0), 0);
        if (v->kind == LN_PTH_TUPLE) {
            push_tuple_mt(L);
            lua_setmetatable(L, -2);
        }
        lua_pushvalue(L, -1);
        lua_rawsetp(L, memo, v);
        for (size_t i = 0; i < v->n; i++) {
            push_value(L, v->items[i], memo, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    } else { /* DICT */
        lua_createtable(L, 0, (int)(v->n < 1u << 24 ? v->n : 0));
        lua_pushvalue(L, -1);
        lua_rawsetp(L, memo, v);
        lua_createtable(L, 0, 3); /* its metatable */
        lua_createtable(L, (int)(v->n < 1u << 24 ? v->n : 0), 0); /* the key order */
        for (size_t k = 0; k < v->n; k++) {
            const ln_pth_value *key = v->items[2 * k];
            if (key->kind == LN_PTH_FLOAT && key->f != key->f)
                lb_error(L, "pth_load: a dict key is NaN");
            push_value(L, key, memo, depth + 1);
            lua_pushvalue(L, -1);
            lua_rawseti(L, -3, (lua_Integer)k + 1);          /* order[k+1] = key */
            push_value(L, v->items[2 * k + 1], memo, depth + 1);
            lua_rawset(L, -5);                                /* dict[key] = value */
        }
        lua_setfield(L, -2, "pth_order");
        lua_pushboolean(L, v->ordered);
        lua_setfield(L, -2, "pth_ordered");
        lua_pushliteral(L, "pth.dict");
        lua_setfield(L, -2, "__name");
        lua_setmetatable(L, -2);
    }
}

/* core.pth_load(path) -> value, format ("zip" or "legacy") */
/* The path argument: a string (a number is not taken for a file name). */
static const char *path_arg(lua_State *L, const char *fn) {
    if (lua_type(L, 1) != LUA_TSTRING)
        lb_error(L, "%s: the path must be a string, got %s", fn, luaL_typename(L, 1));
    return lua_tostring(L, 1);
}

static int l_pth_load(lua_State *L) {
    const char *path = path_arg(L, "pth_load");
    doc_box *box = new_doc_box(L); /* index 2 */
    if (ln_pth_load_file(lb_ctx(L), path, &box->doc) != LN_OK) return lb_core_error(L, "pth_load");
    lua_newtable(L); /* memo, index 3 */
    push_value(L, ln_pth_doc_root(box->doc), 3, 0);
    lua_pushstring(L, ln_pth_doc_format(box->doc) == LN_PTH_ZIP ? "zip" : "legacy");
    ln_pth_doc_free(box->doc); /* tensors live on in their userdata */
    box->doc = NULL;
    return 2;
}

/* ------------------------------------------------------------ saving */
static ln_pth_value *make_value(lua_State *L, ln_pth_doc *doc, int idx, int depth);

static ln_pth_value *new_value(lua_State *L, ln_pth_doc *doc, ln_pth_kind kind) {
    ln_pth_value *v;
    if (ln_pth_new(lb_ctx(L), doc, kind, &v) != LN_OK) lb_core_error(L, "pth_save");
    return v;
}

static void dict_add(lua_State *L, ln_pth_doc *doc, ln_pth_value *dict, int key, int val,
                     int depth) {
    ln_pth_value *k = make_value(L, doc, key, depth + 1);
    ln_pth_value *v = make_value(L, doc, val, depth + 1);
    if (ln_pth_dict_add(lb_ctx(L), dict, k, v) != LN_OK) lb_core_error(L, "pth_save");
}

/* Sort order of plain-table keys: numbers first (by value), then strings. */
static int key_less(lua_State *L) {
    int ta = lua_type(L, 1), tb = lua_type(L, 2);
    if (ta != tb) lua_pushboolean(L, ta == LUA_TNUMBER);
    else lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

static ln_pth_value *make_table(lua_State *L, ln_pth_doc *doc, int idx, int depth) {
    ln_pth_value *v;
    if (lua_getmetatable(L, idx)) {
        push_tuple_mt(L);
        bool tuple = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        if (tuple) {
            lua_pop(L, 1);
            v = new_value(L, doc, LN_PTH_TUPLE);
            lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, idx, i);
                if (ln_pth_append(lb_ctx(L), v, make_value(L, doc, lua_gettop(L), depth + 1)) != LN_OK)
                    lb_core_error(L, "pth_save");
                lua_pop(L, 1);
            }
            return v;
        }
        if (lua_getfield(L, -1, "pth_order") == LUA_TTABLE) { /* a dict in this order */
            v = new_value(L, doc, LN_PTH_DICT);
            lua_getfield(L, -2, "pth_ordered");
            v->ordered = lua_toboolean(L, -1);
            lua_pop(L, 1);
            int order = lua_gettop(L);
            lua_Integer n = (lua_Integer)lua_rawlen(L, order);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, order, i);
                lua_pushvalue(L, -1);
                if (lua_rawget(L, idx) == LUA_TNIL)
                    lb_error(L, "pth_save: key %d of a dict's order has no value", (int)i);
                dict_add(L, doc, v, lua_gettop(L) - 1, lua_gettop(L), depth);
                lua_pop(L, 2);
            }
            lua_pop(L, 2);
            return v;
        }
        lua_pop(L, 2);
    }
    /* a plain table: a list when its keys are 1..n, else a dict with sorted keys */
    lua_Integer count = 0;
    bool ints = true;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        if (!lua_isinteger(L, -2)) ints = false;
        lua_pop(L, 1);
    }
    if (count > 0 && ints && (lua_Integer)lua_rawlen(L, idx) == count) {
        v = new_value(L, doc, LN_PTH_LIST);
        for (lua_Integer i = 1; i <= count; i++) {
            lua_rawgeti(L, idx, i);
            if (ln_pth_append(lb_ctx(L), v, make_value(L, doc, lua_gettop(L), depth + 1)) != LN_OK)
                lb_core_error(L, "pth_save");
            lua_pop(L, 1);
        }
        return v;
    }
    v = new_value(L, doc, LN_PTH_DICT);
    lua_createtable(L, (int)count, 0); /* the keys, sorted */
    int keys = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER && lua_type(L, -1) != LUA_TSTRING)
            lb_error(L, "pth_save: a dict key is a %s (numbers and strings only)", luaL_typename(L, -1));
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, keys);
    lua_pushcfunction(L, key_less);
    lua_call(L, 2, 0);
    lua_pop(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, keys, i);
        lua_pushvalue(L, -1);
        lua_rawget(L, idx);
        dict_add(L, doc, v, lua_gettop(L) - 1, lua_gettop(L), depth);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return v;
}

static ln_pth_value *make_value(lua_State *L, ln_pth_doc *doc, int idx, int depth) {
    if (depth > MAX_DEPTH) lb_error(L, "pth_save: values nested deeper than %d (a cycle?)", MAX_DEPTH);
    luaL_checkstack(L, 12, "pth_save");
    ln_pth_value *v;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        v = new_value(L, doc, LN_PTH_BOOL);
        v->i = lua_toboolean(L, idx);
        return v;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            v = new_value(L, doc, LN_PTH_INT);
            v->i = (int64_t)lua_tointeger(L, idx);
        } else {
            v = new_value(L, doc, LN_PTH_FLOAT);
            v->f = lua_tonumber(L, idx);
        }
        return v;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (ln_pth_new_str(lb_ctx(L), doc, LN_PTH_STR, s, len, &v) != LN_OK) lb_core_error(L, "pth_save");
        return v;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return new_value(L, doc, LN_PTH_NONE);
        break;
    case LUA_TUSERDATA: {
        ln_tensor *t = lb_to_tensor(L, idx);
        if (!t) break;
        if (ln_pth_new_tensor(lb_ctx(L), doc, t, &v) != LN_OK) lb_core_error(L, "pth_save");
        return v;
    }
    case LUA_TTABLE:
        return make_table(L, doc, idx, depth);
    default:
        break;
    }
    lb_error(L, "pth_save: cannot save a %s (tables, tensors, strings, numbers, booleans and "
                "core.pth_none only)", luaL_typename(L, idx));
    return NULL;
}

/* core.pth_save(path, value) */
static int l_pth_save(lua_State *L) {
    const char *path = path_arg(L, "pth_save");
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    doc_box *box = new_doc_box(L);
    if (ln_pth_doc_create(lb_ctx(L), &box->doc) != LN_OK) return lb_core_error(L, "pth_save");
    ln_pth_value *root = make_value(L, box->doc, 2, 0);
    if (ln_pth_save_file(lb_ctx(L), path, root) != LN_OK) return lb_core_error(L, "pth_save");
    ln_pth_doc_free(box->doc);
    box->doc = NULL;
    return 0;
}

void lb_open_pth(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"pth_load", l_pth_load},
        {"pth_save", l_pth_save},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "pth_none");
    push_tuple_mt(L);
    lua_setfield(L, -2, "pth_tuple_mt");
}
