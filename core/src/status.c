/* Names of status codes, for messages and the binding. */
#include "lunet/status.h"

const char *ln_status_name(ln_status s) {
    switch (s) {
    case LN_OK: return "ok";
    case LN_ERR_ARG: return "invalid argument";
    case LN_ERR_SHAPE: return "shape mismatch";
    case LN_ERR_DTYPE: return "dtype mismatch";
    case LN_ERR_DEVICE: return "device error";
    case LN_ERR_NOMEM: return "out of memory";
    case LN_ERR_STATE: return "invalid state";
    case LN_ERR_IO: return "i/o error";
    case LN_ERR_BACKEND: return "backend failure";
    case LN_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}
