/* The context userdata (one ln_ctx per Lua state, kept in the registry and released
 * by its __gc) and the module functions that read or set context state: RNG seed,
 * grad mode, thread count, backend preference, CUDA availability. */
#include "lbind.h"

/* The context's out-of-memory hook: dead tensors that only the collector knows about
 * give their memory back before the allocator retries. ud is the main thread. */
static void collect_garbage(void *ud) { lua_gc((lua_State *)ud, LUA_GCCOLLECT); }

static int ctx_gc(lua_State *L) {
    lb_ctx_box *b = luaL_checkudata(L, 1, LB_CTX_MT);
    if (b->ctx) ln_ctx_set_oom_hook(b->ctx, NULL, NULL); /* the ctx may outlive L */
    ln_ctx_release(b->ctx); /* storages still alive keep their own reference */
    b->ctx = NULL;
    return 0;
}

void lb_push_ctx_box(lua_State *L) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, LB_CTX_KEY) == LUA_TUSERDATA) return;
    lua_pop(L, 1);
    lb_ctx_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->ctx = NULL;
    b->in_backward = 0;
    b->gc_paced = 0;
    if (luaL_newmetatable(L, LB_CTX_MT)) {
        lua_pushcfunction(L, ctx_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "lunet context");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    b->ctx = ln_ctx_create();
    if (!b->ctx) lb_error(L, "lunet: out of memory creating the context");
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    ln_ctx_set_oom_hook(b->ctx, collect_garbage, lua_tothread(L, -1));
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LB_CTX_KEY);
}

lb_ctx_box *lb_ctx_box_get(lua_State *L) {
    lb_ctx_box *b = luaL_testudata(L, lua_upvalueindex(1), LB_CTX_MT);
    if (b) return b;
    lb_push_ctx_box(L);
    b = lua_touserdata(L, -1);
    lua_pop(L, 1); /* still referenced by the registry */
    return b;
}

void lb_setfuncs(lua_State *L, const luaL_Reg *funcs) {
    lb_push_ctx_box(L);
    luaL_setfuncs(L, funcs, 1);
}

static int l_manual_seed(lua_State *L) {
    lua_Integer s = lb_int_arg(L, 1, "manual_seed", "seed");
    ln_ctx_manual_seed(lb_ctx(L), (uint64_t)s);
    return 0;
}

static int l_initial_seed(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)ln_ctx_seed(lb_ctx(L)));
    return 1;
}

static int l_set_grad_enabled(lua_State *L) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    lua_pushboolean(L, ln_ctx_set_grad_enabled(lb_ctx(L), lua_toboolean(L, 1)));
    return 1;
}

static int l_is_grad_enabled(lua_State *L) {
    lua_pushboolean(L, ln_ctx_grad_enabled(lb_ctx(L)));
    return 1;
}

static int l_set_num_threads(lua_State *L) {
    lua_Integer n = lb_int_arg(L, 1, "set_num_threads", "n");
    if (n > 4096) return lb_error(L, "set_num_threads: n must be at most 4096, got %d", (int)n);
    ln_ctx_set_num_threads(lb_ctx(L), (int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L) {
    lua_pushinteger(L, ln_ctx_num_threads(lb_ctx(L)));
    return 1;
}

static int l_set_backend(lua_State *L) {
    static const char *const names[] = {"auto", "ref", NULL};
    int i = luaL_checkoption(L, 1, NULL, names);
    ln_ctx_set_backend(lb_ctx(L), i == 0 ? LN_BACKEND_AUTO : LN_BACKEND_REF);
    return 0;
}

static int l_get_backend(lua_State *L) {
    lua_pushstring(L, ln_ctx_backend(lb_ctx(L)) == LN_BACKEND_REF ? "ref" : "auto");
    return 1;
}

static int l_cuda_available(lua_State *L) {
    lua_pushboolean(L, ln_cuda_available(lb_ctx(L)));
    return 1;
}

static int l_cuda_device_count(lua_State *L) {
    lua_pushinteger(L, ln_cuda_device_count(lb_ctx(L)));
    return 1;
}

void lb_open_context(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"manual_seed", l_manual_seed},
        {"initial_seed", l_initial_seed},
        {"set_grad_enabled", l_set_grad_enabled},
        {"is_grad_enabled", l_is_grad_enabled},
        {"set_num_threads", l_set_num_threads},
        {"get_num_threads", l_get_num_threads},
        {"set_backend", l_set_backend},
        {"get_backend", l_get_backend},
        {"cuda_available", l_cuda_available},
        {"cuda_device_count", l_cuda_device_count},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
