/* Custom differentiable ops written in Lua (lunet.autograd.Function): after the Lua
 * forward has run under no_grad, core.attach_function records ONE autograd node on
 * (a detached view of) its output. The node's backward is a C trampoline that calls
 * the Lua backward with lua_pcall on the main thread, so a Lua error never unwinds
 * through core frames: it comes back as an ln_status with the Lua message. The
 * returned gradients are checked against the inputs' shapes, dtypes and devices.
 * The node holds registry references to the Lua backward and to the ctx table; its
 * free_state releases them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lbind.h"

/* What the gradient of one input must look like (all zero for non-tensor inputs). */
typedef struct fn_input {
    ln_dtype dtype;
    ln_device device;
    int ndim;
    int64_t shape[LN_MAX_DIMS];
} fn_input;

typedef struct fn_state {
    lua_State *L;     /* the main thread of the Lua state that owns the refs */
    int backward_ref; /* registry refs, released by fn_free_state */
    int ctx_ref;
    int n_inputs;
    char name[64];    /* the node's name (node->name points here) */
    fn_input in[];    /* n_inputs entries: what each gradient must look like */
} fn_state;

static void fn_free_state(void *p) {
    fn_state *s = p;
    luaL_unref(s->L, LUA_REGISTRYINDEX, s->backward_ref);
    luaL_unref(s->L, LUA_REGISTRYINDEX, s->ctx_ref);
    free(s);
}

typedef struct fn_call {
    ln_ctx *ctx;
    ln_node *node;
    const ln_tensor *grad_out;
    ln_tensor **grad_in;
} fn_call;

/* Runs inside lua_pcall: backward(ctx, grad_out) -> one gradient (or nil) per input. */
static int fn_call_backward(lua_State *L) {
    fn_call *c = lua_touserdata(L, 1);
    fn_state *s = c->node->state;
    int n = s->n_inputs;
    luaL_checkstack(L, n + 4, "too many inputs");
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->backward_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ctx_ref);
    lb_push_tensor(L, (ln_tensor *)c->grad_out);
    int base = lua_gettop(L) - 2;
    lua_call(L, 2, n);
    for (int i = 0; i < n; i++) {
        int idx = base + i;
        if (lua_isnil(L, idx) || !ln_node_needs_grad(c->node, i)) continue;
        ln_tensor *g = lb_to_tensor(L, idx);
        if (!g)
            return lb_error(L, "gradient %d must be a tensor or nil, got %s", i + 1,
                              luaL_typename(L, idx));
        const fn_input *in = &s->in[i];
        char a[256], b[256];
        ln_shape_format(g->ndim, g->shape, a, sizeof a);
        ln_shape_format(in->ndim, in->shape, b, sizeof b);
        bool same_shape = g->ndim == in->ndim &&
                          memcmp(g->shape, in->shape, (size_t)in->ndim * sizeof(int64_t)) == 0;
        if (!same_shape)
            return lb_error(L, "gradient %d has shape %s but input %d has shape %s", i + 1, a,
                              i + 1, b);
        if (g->dtype != in->dtype || !ln_device_eq(ln_tensor_device(g), in->device))
            return lb_error(L, "gradient %d is %s but input %d is %s", i + 1,
                              ln_dtype_name(g->dtype), i + 1, ln_dtype_name(in->dtype));
        if (ln_tensor_contiguous(c->ctx, g, &c->grad_in[i]) != LN_OK)
            return lb_error(L, "%s", ln_ctx_error(c->ctx));
    }
    return 0;
}

static ln_status fn_backward(ln_ctx *ctx, ln_node *self, const ln_tensor *grad_out,
                             ln_tensor **grad_in) {
    fn_state *s = self->state;
    lua_State *L = s->L;
    if (!lua_checkstack(L, 3))
        return ln_fail(ctx, LN_ERR_NOMEM, "%s: out of Lua stack calling backward", s->name);
    fn_call c = {ctx, self, grad_out, grad_in};
    int top = lua_gettop(L);
    lua_pushcfunction(L, fn_call_backward);
    lua_pushlightuserdata(L, &c);
    int rc = lua_pcall(L, 1, 0, 0);
    if (rc == LUA_OK) {
        lua_settop(L, top);
        return LN_OK;
    }
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                     : "(error object is not a string)";
    ln_fail(ctx, LN_ERR_STATE, "%s backward: %s", s->name, msg);
    lua_settop(L, top);
    return LN_ERR_STATE;
}

/* core.attach_function(out, inputs, n, backward, ctx, name) -> tensor
 * inputs[1..n] are the forward's arguments (tensors or anything else). Returns a view
 * of out carrying the node, or out itself when no input requires grad (or grad mode
 * is off). */
static int l_attach_function(lua_State *L) {
    const char *fn = "Function";
    ln_tensor *out = lb_tensor_arg(L, 1, fn, "output");
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = lb_int_arg(L, 3, fn, "n");
    luaL_checktype(L, 4, LUA_TFUNCTION);
    luaL_checktype(L, 5, LUA_TTABLE);
    const char *name = luaL_optstring(L, 6, "Function");
    if (n < 0 || n > 1024) return lb_error(L, "%s: too many inputs (%I)", name, n);
    ln_ctx *ctx = lb_ctx(L);
    ln_tensor **ins = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *ins, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        ins[i] = lb_to_tensor(L, -1);
        lua_pop(L, 1);
    }
    if (!ln_any_requires_grad(ctx, (int)n, ins)) {
        lua_pushvalue(L, 1);
        return 1;
    }
    ln_tensor **res = lb_new_tensor(L);
    if (ln_tensor_detach(ctx, out, res) != LN_OK) return lb_core_error(L, name);
    lua_State *main;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, 4);
    int backward_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 5);
    int ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    fn_state *s = malloc(sizeof *s + (size_t)n * sizeof(fn_input));
    if (!s) {
        luaL_unref(L, LUA_REGISTRYINDEX, backward_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, ctx_ref);
        return lb_error(L, "%s: out of memory", name);
    }
    s->L = main;
    s->backward_ref = backward_ref;
    s->ctx_ref = ctx_ref;
    s->n_inputs = (int)n;
    snprintf(s->name, sizeof s->name, "%s", name);
    for (lua_Integer i = 0; i < n; i++) {
        fn_input *in = &s->in[i];
        memset(in, 0, sizeof *in);
        if (!ins[i]) continue;
        in->dtype = ins[i]->dtype;
        in->device = ln_tensor_device(ins[i]);
        in->ndim = ins[i]->ndim;
        memcpy(in->shape, ins[i]->shape, sizeof in->shape);
    }
    ln_node *node;
    if (ln_node_attach(ctx, *res, s->name, fn_backward, (int)n, ins, &node) != LN_OK) {
        fn_free_state(s);
        return lb_core_error(L, name);
    }
    ln_node_set_state_owned(node, s, fn_free_state);
    return 1;
}

void lb_open_function(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"attach_function", l_attach_function},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
