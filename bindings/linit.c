/* Initialisation functions of `lunet.core` used by `lunet.nn.init`: in-place random
 * fills from the context RNG (uniform_, normal_) and orthogonal matrices
 * (orthogonal_, orthogonal_joint_). Each returns its tensor argument. */
#include "lbind.h"

/* core.uniform_(t, lo, hi) */
static int l_uniform_(lua_State *L) {
    ln_tensor *t = lb_tensor_arg(L, 1, "uniform_", "t");
    double lo = lb_num_arg(L, 2, "uniform_", "lo");
    double hi = lb_num_arg(L, 3, "uniform_", "hi");
    if (ln_tensor_uniform_(lb_ctx(L), t, lo, hi) != LN_OK) return lb_core_error(L, "uniform_");
    lua_settop(L, 1);
    return 1;
}

/* core.normal_(t, mean, std) */
static int l_normal_(lua_State *L) {
    ln_tensor *t = lb_tensor_arg(L, 1, "normal_", "t");
    double mean = lb_num_arg(L, 2, "normal_", "mean");
    double std = lb_num_arg(L, 3, "normal_", "std");
    if (ln_tensor_normal_(lb_ctx(L), t, mean, std) != LN_OK) return lb_core_error(L, "normal_");
    lua_settop(L, 1);
    return 1;
}

/* core.orthogonal_(t) */
static int l_orthogonal_(lua_State *L) {
    ln_tensor *t = lb_tensor_arg(L, 1, "orthogonal_", "t");
    if (ln_orthogonal_(lb_ctx(L), t) != LN_OK) return lb_core_error(L, "orthogonal_");
    lua_settop(L, 1);
    return 1;
}

/* core.orthogonal_joint_({t1, t2, ...}) */
static int l_orthogonal_joint_(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 1 || n > 1 << 20)
        return lb_error(L, "orthogonal_joint_: expected a non-empty list of tensors, got %I entries", n);
    ln_tensor **ts = lua_newuserdatauv(L, (size_t)n * sizeof *ts, 0); /* collected with the call */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        ts[i - 1] = lb_to_tensor(L, -1);
        if (!ts[i - 1])
            return lb_error(L, "orthogonal_joint_: entry %I is a %s, not a tensor", i,
                            luaL_typename(L, -1));
        lua_pop(L, 1); /* the list keeps the tensor alive */
    }
    if (ln_orthogonal_joint_(lb_ctx(L), (int)n, ts) != LN_OK)
        return lb_core_error(L, "orthogonal_joint_");
    lua_settop(L, 1);
    return 1;
}

void lb_open_init(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"uniform_", l_uniform_},
        {"normal_", l_normal_},
        {"orthogonal_", l_orthogonal_},
        {"orthogonal_joint_", l_orthogonal_joint_},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
