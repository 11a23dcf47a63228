/* Process-level facilities of `lunet.core` that the training loop needs:
 *   core.sigint_catch(on)   on = true: Ctrl-C (SIGINT) only sets a flag, and the
 *                           default action comes back after that first signal (a
 *                           second Ctrl-C ends the process at once); on = false: the
 *                           default action again, flag cleared.
 *   core.sigint_pending()   whether a SIGINT arrived since sigint_catch(true); clears it.
 *   core.stdout_is_tty()    whether standard output is a terminal (progress bars then).
 *   core.wall_clock()       seconds of a monotonic clock (for rates and ETAs; os.clock
 *                           is CPU time, summed over threads).
 * The core never handles signals; only this binding does. */
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lbind.h"

/* The ONE process-wide mutable variable of lunet: a signal handler receives no
 * argument through which it could reach a context, so the flag it sets has to be
 * static. Only on_sigint writes 1 to it; sigint_catch and sigint_pending clear it. */
static volatile sig_atomic_t sigint_seen = 0;

static void on_sigint(int sig) {
    (void)sig;
    sigint_seen = 1;
}

static int l_sigint_catch(lua_State *L) {
    int on = lua_toboolean(L, 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on ? on_sigint : SIG_DFL;
    sa.sa_flags = on ? (SA_RESETHAND | SA_RESTART) : 0;
    sigint_seen = 0;
    if (sigaction(SIGINT, &sa, NULL) != 0) return lb_error(L, "sigint_catch: sigaction failed");
    return 0;
}

static int l_sigint_pending(lua_State *L) {
    int seen = sigint_seen != 0;
    if (seen) sigint_seen = 0;
    lua_pushboolean(L, seen);
    return 1;
}

static int l_stdout_is_tty(lua_State *L) {
    lua_pushboolean(L, isatty(STDOUT_FILENO));
    return 1;
}

static int l_wall_clock(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

void lb_open_process(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"sigint_catch", l_sigint_catch},
        {"sigint_pending", l_sigint_pending},
        {"stdout_is_tty", l_stdout_is_tty},
        {"wall_clock", l_wall_clock},
        {NULL, NULL},
    };
    lb_setfuncs(L, funcs);
}
