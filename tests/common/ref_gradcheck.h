/* Finite-difference gradients of double-precision reference functions. */
#ifndef ENN_TEST_REF_GRADCHECK_H
#define ENN_TEST_REF_GRADCHECK_H

#include <stddef.h>

/* y[ny] = f(x[nx]) */
typedef void (*ref_forward_fn)(void *user, const double *x, double *y);

/* grad[nx] = d/dx of L(x) = sum_j w[j] f(x)[j], by central differences with step h
 * (relative to max(|x_i|, 1)). x is perturbed in place and restored. */
void ref_fd_gradient(ref_forward_fn f, void *user, double *x, size_t nx, size_t ny, const double *w, double h,
                     double *grad);

#endif
