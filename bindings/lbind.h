/* Shared declarations of the Lua 5.4 binding (module `lunet.core`): the context box,
 * the tensor userdata and its check/push helpers, argument helpers and the error
 * path. Every C function the module registers carries the context userdata as its
 * upvalue 1, so lb_ctx(L) is one upvalue read.
 *
 * Userdata life cycle (the liolib.c order): a result tensor is pushed as an EMPTY
 * userdata first (lb_new_tensor), then the core fills the slot; if the core fails,
 * the empty userdata is garbage and nothing leaks. */
#ifndef LUNET_LBIND_H
#define LUNET_LBIND_H

#include <lua.h>
#include <lauxlib.h>
#include "lunet/lunet.h"

#define LB_TENSOR_MT "lunet.Tensor"
#define LB_CTX_MT "lunet.Context"
#define LB_CTX_KEY "lunet.context" /* registry field holding the context userdata */

/* The context userdata: one per Lua state, kept in the registry. */
typedef struct lb_ctx_box {
    ln_ctx *ctx;      /* owned reference, released by __gc */
    int in_backward;  /* >0 while ln_backward runs (custom backward must not recurse) */
    uint64_t gc_paced; /* ln_ctx_allocated_total already reported to Lua's collector */
} lb_ctx_box;

/* The tensor userdata: NULL after :free()/__close/__gc or before being filled. */
typedef struct lb_tensor {
    ln_tensor *t;
} lb_tensor;

/* ---- errors ---- */
/* Like luaL_error, but the position prefixed is that of the innermost caller outside
 * lunet's own Lua library (lua/lunet/), so errors point at the user's line rather than
 * at the wrapper in functional.lua that called into C. Never returns. */
int lb_error(lua_State *L, const char *fmt, ...);

/* ---- context ---- */
lb_ctx_box *lb_ctx_box_get(lua_State *L);
static inline ln_ctx *lb_ctx(lua_State *L) { return lb_ctx_box_get(L)->ctx; }
/* Pushes the context userdata (creating it in the registry on first use). */
void lb_push_ctx_box(lua_State *L);
/* Registers funcs with the context userdata as upvalue 1 into the table on top. */
void lb_setfuncs(lua_State *L, const luaL_Reg *funcs);

/* ---- tensors ---- */
/* Pushes an empty tensor userdata and returns its slot, to be filled by the core. */
ln_tensor **lb_new_tensor(lua_State *L);
/* Pushes a new userdata holding a new reference to t. */
void lb_push_tensor(lua_State *L, ln_tensor *t);
/* The tensor at idx, or a Lua error naming the function and argument. */
ln_tensor *lb_tensor_arg(lua_State *L, int idx, const char *fn, const char *arg);
/* Same, but nil/none gives NULL. */
ln_tensor *lb_opt_tensor_arg(lua_State *L, int idx, const char *fn, const char *arg);
/* The tensor at idx, or NULL if the value is not a (live) tensor. */
ln_tensor *lb_to_tensor(lua_State *L, int idx);
/* Registers the tensor metatable and methods (ltensor.c). */
void lb_open_tensor(lua_State *L);

/* ---- arguments ---- */
/* The ONE place where Lua's 1-based positions become 0-based: value v (at stack
 * index idx, for messages) must be in 1..extent or -extent..-1 (counted from the end).
 * `what` names the kind of position ("dimension", "start"). */
int64_t lb_index0(lua_State *L, int idx, int64_t extent, const char *fn, const char *what);
/* Reads a shape given as a table at idx, or as numbers from idx onwards; returns the
 * number of dimensions and the stack index just after the shape arguments. */
int lb_shape_arg(lua_State *L, int idx, const char *fn, int64_t *shape, int *next);
/* An integer argument, with a message naming the function and argument. */
lua_Integer lb_int_arg(lua_State *L, int idx, const char *fn, const char *arg);
double lb_num_arg(lua_State *L, int idx, const char *fn, const char *arg);
ln_dtype lb_dtype_arg(lua_State *L, int idx, const char *fn);
ln_device lb_device_arg(lua_State *L, int idx, const char *fn);
/* Checks that the value at idx is nil or a table whose keys are all in `allowed`
 * (NULL-terminated); an unknown key is an error naming it. */
void lb_check_opts(lua_State *L, int idx, const char *fn, const char *const *allowed);

/* ---- errors ---- */
/* Raises the context's last error as a Lua error prefixed by fn (unless the core's
 * message already starts with "fn:"). Release every temporary before calling. */
int lb_core_error(lua_State *L, const char *fn);

/* ---- ops that are also tensor methods or metamethods (lops.c); self is arg 1 ---- */
int lb_op_add(lua_State *L);
int lb_op_sub(lua_State *L);
int lb_op_mul(lua_State *L);
int lb_op_div(lua_State *L);
int lb_op_neg(lua_State *L);
int lb_op_sum(lua_State *L);
int lb_op_mean(lua_State *L);
int lb_op_reshape(lua_State *L);
int lb_op_transpose(lua_State *L);
int lb_op_narrow(lua_State *L);
int lb_op_contiguous(lua_State *L);
int lb_op_matmul(lua_State *L);
int lb_op_pow(lua_State *L);

/* ---- module parts ---- */
void lb_open_create(lua_State *L);   /* lcreate.c: tensor(), zeros(), ... */
void lb_open_ops(lua_State *L);      /* lops.c: functional ops */
void lb_open_function(lua_State *L); /* lfunction.c: custom autograd functions */
void lb_open_context(lua_State *L);  /* lctx.c: seed, grad mode, threads, cuda */
void lb_open_init(lua_State *L);     /* linit.c: uniform_, normal_, orthogonal_ */
void lb_open_data(lua_State *L);     /* ldata.c: datasets and loaders */
void lb_open_io(lua_State *L);       /* lio.c: safetensors files, RNG state */
void lb_open_cuda(lua_State *L);     /* lcuda.c: allocator statistics, synchronize */
void lb_open_process(lua_State *L);  /* lprocess.c: SIGINT flag, stdout tty, wall clock */
void lb_open_pth(lua_State *L);      /* lpth.c: PyTorch checkpoints (.pth) */

int luaopen_lunet_core(lua_State *L);

#endif
