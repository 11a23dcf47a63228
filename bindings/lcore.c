/* luaopen_lunet_core: assembles the module `lunet.core` (the context, tensor type,
 * constructors, ops and custom-function support). The Lua library in lua/lunet/
 * builds the user-facing `lunet` module on top of it. */
#include <unistd.h>
#include "lbind.h"

/* core.stdin_is_tty(): whether standard input is a terminal (the REPL prompts then). */
static int l_stdin_is_tty(lua_State *L) {
    lua_pushboolean(L, isatty(STDIN_FILENO));
    return 1;
}

int luaopen_lunet_core(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"stdin_is_tty", l_stdin_is_tty},
        {NULL, NULL},
    };
    luaL_checkversion(L);
    lua_newtable(L);
    lb_open_context(L);
    lb_open_tensor(L);
    lb_open_create(L);
    lb_open_ops(L);
    lb_open_function(L);
    lb_open_init(L);
    lb_open_data(L);
    lb_open_io(L);
    lb_open_cuda(L);
    lb_open_process(L);
    lb_open_pth(L);
    lb_setfuncs(L, funcs);
    return 1;
}
