/* Parameter initialisation that needs linear algebra: (semi-)orthogonal matrices.
 * The tensors are filled in place (not recorded by autograd) from the context RNG. */
#ifndef LUNET_INIT_H
#define LUNET_INIT_H

#include "tensor.h"

/* t (f32 or f64, 2 or more dims, any device) viewed as a matrix of rows = t->shape[0]
 * and columns = the other dims flattened becomes Q of the QR factorisation of a
 * Gaussian matrix with R's diagonal positive (as PyTorch's orthogonal_): orthonormal
 * rows when rows <= columns, orthonormal columns when rows > columns. */
ln_status ln_orthogonal_(ln_ctx *ctx, ln_tensor *t);

/* The same for the matrix stacking ts[0..n) by rows (each ts[i] is (rows_i, ...) with
 * the same number of columns; dtypes and devices may differ): one orthogonal matrix
 * split over the tensors, so each has orthonormal rows and the rows of different
 * tensors are orthogonal too (when the total rows do not exceed the columns). */
ln_status ln_orthogonal_joint_(ln_ctx *ctx, int n, ln_tensor *const *ts);

#endif
