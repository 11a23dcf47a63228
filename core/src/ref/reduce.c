/* Reference sum and expand in double: one pass over the full tensor in row-major
 * order, mapping each element to its place in the small (kept-dimensions) tensor. */
#include <string.h>
#include "../kernels/reduce.h"

/* Index into the small tensor of full element i (row-major over shape). */
static int64_t small_index(int ndim, const int64_t *shape, const bool *reduced, int64_t i) {
    int64_t k = 0, kstride = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t idx = i % shape[d];
        i /= shape[d];
        if (!reduced[d]) {
            k += idx * kstride;
            kstride *= shape[d];
        }
    }
    return k;
}

static int64_t numel_of(int ndim, const int64_t *shape, const bool *reduced, bool kept_only) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (!kept_only || !reduced[d]) n *= shape[d];
    return n;
}

void ln_ref_sum(int ndim, const int64_t *shape, const bool *reduced, double alpha,
                const double *full, double *small) {
    int64_t n = numel_of(ndim, shape, reduced, false), k = numel_of(ndim, shape, reduced, true);
    memset(small, 0, (size_t)k * sizeof *small);
    for (int64_t i = 0; i < n; i++) small[small_index(ndim, shape, reduced, i)] += full[i];
    for (int64_t j = 0; j < k; j++) small[j] *= alpha;
}

void ln_ref_expand(int ndim, const int64_t *shape, const bool *reduced, double alpha,
                   const double *small, double *full) {
    int64_t n = numel_of(ndim, shape, reduced, false);
    for (int64_t i = 0; i < n; i++) full[i] = alpha * small[small_index(ndim, shape, reduced, i)];
}
