/* Status codes returned by every fallible lunet call. The message that goes with a
 * failure lives in the context (ln_ctx_error); the core never prints or exits. */
#ifndef LUNET_STATUS_H
#define LUNET_STATUS_H

typedef enum ln_status {
    LN_OK = 0,
    LN_ERR_ARG,         /* a bad argument value (negative stride, unknown option...) */
    LN_ERR_SHAPE,       /* shapes do not fit together */
    LN_ERR_DTYPE,       /* wrong or mixed element types */
    LN_ERR_DEVICE,      /* tensors on different devices, or device not available */
    LN_ERR_NOMEM,       /* an allocation failed */
    LN_ERR_STATE,       /* call not valid now (backward twice, no grad_fn...) */
    LN_ERR_IO,          /* file or stream failure */
    LN_ERR_BACKEND,     /* a vendor library (oneDNN, CUDA, cuDNN, cuBLAS) failed */
    LN_ERR_UNSUPPORTED  /* valid request that this build cannot serve */
} ln_status;

const char *ln_status_name(ln_status s);

#endif
