/* The CUDA functions of the context for Lua (`lunet.cuda.*` in lua/lunet/init.lua):
 * the caching allocator's statistics, emptying its cache, waiting for the device,
 * and the cuDNN algorithm-choice flags. All work (as no-ops or zeros) in a build
 * without CUDA. */
#include "lbind.h"

/* core.cuda_memory_stats() -> {allocated =, cached =, peak_allocated =, n_cuda_malloc =,
 * n_cuda_free =, n_reused =, pinned_in_use =, pinned_cached =} (bytes and counts) */
static int l_memory_stats(lua_State *L) {
    ln_cuda_mem_stats s;
    ln_cuda_memory_stats(lb_ctx(L), &s);
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, (lua_Integer)s.allocated);
    lua_setfield(L, -2, "allocated");
    lua_pushinteger(L, (lua_Integer)s.cached);
    lua_setfield(L, -2, "cached");
    lua_pushinteger(L, (lua_Integer)s.peak_allocated);
    lua_setfield(L, -2, "peak_allocated");
    lua_pushinteger(L, (lua_Integer)s.n_cuda_malloc);
    lua_setfield(L, -2, "n_cuda_malloc");
    lua_pushinteger(L, (lua_Integer)s.n_cuda_free);
    lua_setfield(L, -2, "n_cuda_free");
    lua_pushinteger(L, (lua_Integer)s.n_reused);
    lua_setfield(L, -2, "n_reused");
    lua_pushinteger(L, (lua_Integer)s.pinned_in_use);
    lua_setfield(L, -2, "pinned_in_use");
    lua_pushinteger(L, (lua_Integer)s.pinned_cached);
    lua_setfield(L, -2, "pinned_cached");
    return 1;
}

static int l_synchronize(lua_State *L) {
    if (ln_cuda_synchronize(lb_ctx(L)) != LN_OK) return lb_core_error(L, "cuda.synchronize");
    return 0;
}

static int l_empty_cache(lua_State *L) {
    if (ln_cuda_empty_cache(lb_ctx(L)) != LN_OK) return lb_core_error(L, "cuda.empty_cache");
    return 0;
}

/* core.cudnn_benchmark([on]) and core.cudnn_deterministic([on]): set the flag when
 * given a boolean; return the (new) value. */
static int flag(lua_State *L, const char *fn, bool (*get)(const ln_ctx *), void (*set)(ln_ctx *, bool)) {
    if (!lua_isnoneornil(L, 1)) {
        if (!lua_isboolean(L, 1)) return lb_error(L, "%s: expected a boolean, got %s", fn, luaL_typename(L, 1));
        set(lb_ctx(L), lua_toboolean(L, 1));
    }
    lua_pushboolean(L, get(lb_ctx(L)));
    return 1;
}

static int l_cudnn_benchmark(lua_State *L) {
    return flag(L, "cuda.cudnn_benchmark", ln_ctx_cudnn_benchmark, ln_ctx_set_cudnn_benchmark);
}

static int l_cudnn_deterministic(lua_State *L) {
    return flag(L, "cuda.cudnn_deterministic", ln_ctx_cudnn_deterministic, ln_ctx_set_cudnn_deterministic);
}

void lb_open_cuda(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"cuda_memory_stats", l_memory_stats},
        {"cuda_synchronize", l_synchronize},
        {"cuda_empty_cache", l_empty_cache},
        {"cudnn_benchmark", l_cudnn_benchmark},
        {"cudnn_deterministic", l_cudnn_deterministic},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
