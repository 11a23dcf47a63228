/* Test harness for the C tests: checks with counters, random tensors, closeness, a
 * finite-difference gradient checker (in f64) and a reference-vs-fast path comparer.
 * Every test binary ends with test_finish(), which prints "N passed, N failed". */
#ifndef LUNET_TESTUTIL_H
#define LUNET_TESTUTIL_H

#include <stdio.h>
#include "lunet/lunet.h"

typedef struct tu_state { int passed, failed; } tu_state;
extern tu_state tu_counts; /* per-binary counters; tests are single-threaded */

#define CHECK(cond, ...) tu_check((cond), __FILE__, __LINE__, __VA_ARGS__)
/* Asserts a status is LN_OK, printing the context's message otherwise. */
#define CHECK_OK(ctx, expr) tu_check_status((ctx), (expr), LN_OK, __FILE__, __LINE__, #expr)
/* Asserts a call fails with the given status (and leaves a message). */
#define CHECK_FAILS(ctx, expr, code) tu_check_status((ctx), (expr), (code), __FILE__, __LINE__, #expr)

int tu_check(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int tu_check_status(ln_ctx *ctx, ln_status got, ln_status want, const char *file, int line,
                    const char *expr);
/* Prints the summary line and returns the process exit code. */
int test_finish(void);
/* Prints "SKIPPED: why" and returns 77 (ctest's skip code). */
int test_skip(const char *why);

/* A new CPU tensor of normal(0,1) values (uniform in [lo,hi] with tu_rand_uniform). */
ln_tensor *tu_randn(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape);
ln_tensor *tu_rand_uniform(ln_ctx *ctx, ln_dtype dt, int ndim, const int64_t *shape,
                           double lo, double hi);
/* max |a-b| / (atol + rtol*|b|) over elements; <= 1 means close. -1 on shape mismatch. */
double tu_close_ratio(ln_ctx *ctx, const ln_tensor *a, const ln_tensor *b, double rtol, double atol);
int tu_check_close(ln_ctx *ctx, const ln_tensor *a, const ln_tensor *b, double rtol,
                   double atol, const char *what);

/* A function of tensors for the checkers: computes *out from inputs[0..n). */
typedef ln_status (*tu_fn)(ln_ctx *ctx, ln_tensor **inputs, void *ud, ln_tensor **out);

/* Finite-difference check of fn's gradients w.r.t. every input that requires grad.
 * Inputs must be f64 CPU tensors. Uses loss = sum(out * w) with a fixed random w,
 * central differences with step eps, and checks up to max_elems elements per input
 * (all if 0). Returns 1 when all are within tol (relative to max(1,|g|)). */
int tu_gradcheck(ln_ctx *ctx, tu_fn fn, void *ud, int n, ln_tensor **inputs, double eps,
                 double tol, int max_elems, const char *what);

/* Runs fn forward and backward (loss = sum(out*w)) with the reference backend and with
 * the fast backend on the same f32 inputs and checks outputs and gradients agree. */
int tu_compare_paths(ln_ctx *ctx, tu_fn fn, void *ud, int n, ln_tensor **inputs,
                     double rtol, double atol, const char *what);

#endif
