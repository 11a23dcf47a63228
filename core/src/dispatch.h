/* The one dispatch point: picks which kernel family serves an op from the tensors'
 * device and dtype and the context's backend preference, and converts between tensors
 * and the double buffers the reference kernels work on.
 *   CUDA device           -> cuda/ kernels (f32)
 *   CPU, f32, pref AUTO   -> cpu/  fast kernels
 *   CPU, f64 or pref REF  -> ref/  reference kernels, computed in double */
#ifndef LUNET_DISPATCH_H
#define LUNET_DISPATCH_H

#include "internal.h"

typedef enum ln_path { LN_PATH_REF = 0, LN_PATH_CPU, LN_PATH_CUDA } ln_path;

/* Checks that the non-NULL tensors share device and (floating) dtype and picks a path. */
ln_status ln_pick_path(ln_ctx *ctx, const char *op, int n, ln_tensor *const *ts,
                       const char *const *names, ln_path *path);

/* A malloc'd contiguous double copy of t's values (CPU tensor). Free with free(). */
ln_status ln_ref_in(ln_ctx *ctx, const ln_tensor *t, double **buf);
/* A zeroed malloc'd double buffer for `numel` values. */
ln_status ln_ref_buf(ln_ctx *ctx, int64_t numel, double **buf);
/* Writes numel(t) doubles into the contiguous CPU tensor t (f32 or f64). */
ln_status ln_ref_out(ln_ctx *ctx, ln_tensor *t, const double *buf);
/* Contiguous float pointer of a contiguous f32 tensor (CPU or CUDA). */
static inline float *ln_f32(const ln_tensor *t) { return (float *)ln_tensor_data(t); }

#endif
