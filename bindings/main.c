/* The `lunet` executable: a Lua 5.4 interpreter (linked statically) with `lunet.core`
 * preloaded and package.path pointing at the Lua library, wherever it is:
 *   <exe dir>/../lua and <exe dir>/lua   (a bundle: the binary next to lua/)
 *   LUNET_SOURCE_LUA_DIR                (the source tree it was built from)
 *   the system Lua 5.4 paths            (busted, penlight, lfs...)
 * It sets the global `arg` as lua.c does (arg[0] = script or command, arg[1..] = the
 * rest, arg[-1] = this program) and hands the command line to lua/lunet/cli.lua,
 * which runs a script, `-e code`, a subcommand or the REPL. An uncaught error prints
 * "lunet: <message>" and a traceback on stderr and exits with status 1. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "lbind.h"

#ifndef LUNET_SOURCE_LUA_DIR
#define LUNET_SOURCE_LUA_DIR "lua"
#endif

#define SYSTEM_LUA_PATH "/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua"
#define SYSTEM_LUA_CPATH "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;/usr/lib/lua/5.4/?.so"

/* Directory of the running executable (from /proc/self/exe, else argv[0]). */
static void exe_dir(const char *argv0, char *buf, size_t n) {
    ssize_t len = readlink("/proc/self/exe", buf, n - 1);
    if (len > 0) {
        buf[len] = '\0';
    } else {
        snprintf(buf, n, "%s", argv0 ? argv0 : "");
    }
    char *slash = strrchr(buf, '/');
    if (slash) *slash = '\0';
    else snprintf(buf, n, ".");
}

/* Prepends our Lua directories to package.path and the system C module directory to
 * package.cpath. */
static void set_paths(lua_State *L, const char *argv0) {
    char dir[PATH_MAX];
    exe_dir(argv0, dir, sizeof dir);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L,
                    "%s/../lua/?.lua;%s/../lua/?/init.lua;%s/lua/?.lua;%s/lua/?/init.lua;"
                    "%s/?.lua;%s/?/init.lua;" SYSTEM_LUA_PATH ";%s",
                    dir, dir, dir, dir, LUNET_SOURCE_LUA_DIR, LUNET_SOURCE_LUA_DIR,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "cpath");
    lua_pushfstring(L, SYSTEM_LUA_CPATH ";%s", lua_tostring(L, -1));
    lua_setfield(L, -3, "cpath");
    lua_pop(L, 2);
}

static void preload_core(lua_State *L) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_lunet_core);
    lua_setfield(L, -2, "lunet.core");
    lua_pop(L, 1);
}

static void create_arg_table(lua_State *L, int argc, char **argv) {
    int script = argc > 1 ? 1 : 0;
    lua_createtable(L, argc - script, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* Message handler: the error message plus a traceback. */
static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Runs in protected mode: set up, then require("lunet.cli").main(argv[1..]). */
static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    luaL_openlibs(L);
    set_paths(L, argv[0]);
    preload_core(L);
    create_arg_table(L, argc, argv);
    lua_pushcfunction(L, msghandler);
    int handler = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lunet.cli");
    if (lua_pcall(L, 1, 1, handler) != LUA_OK) return lua_error(L);
    lua_getfield(L, -1, "main");
    luaL_checkstack(L, argc, "too many arguments");
    for (int i = 1; i < argc; i++) lua_pushstring(L, argv[i]);
    if (lua_pcall(L, argc - 1, 1, handler) != LUA_OK) return lua_error(L);
    return 1;
}

int main(int argc, char **argv) {
    /* libgomp reads OMP_WAIT_POLICY once, as it loads, before main. Its default lets
     * idle OpenMP threads spin, which starves the data loader's threads and costs
     * most of a step's time as soon as anything else runs (seen on 2 cores: steps of
     * 1 to 23 s instead of 0.3 s). Unless the user chose a policy, run again with
     * passive waits; if that fails, go on with the default. */
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
        execv("/proc/self/exe", argv);
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "lunet: cannot create the Lua state: out of memory\n");
        return 1;
    }
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int code = 0;
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "lunet: %s\n", msg ? msg : "(error object is not a string)");
        code = 1;
    } else if (lua_isinteger(L, -1)) {
        code = (int)lua_tointeger(L, -1);
    } else if (lua_isboolean(L, -1)) {
        code = lua_toboolean(L, -1) ? 0 : 1;
    }
    lua_close(L);
    return code;
}
