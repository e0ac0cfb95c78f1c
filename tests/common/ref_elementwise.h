/* Double-precision references for runtime/ops/elementwise.h and reduce.h. */
#ifndef ENN_TEST_REF_ELEMENTWISE_H
#define ENN_TEST_REF_ELEMENTWISE_H

#include <stddef.h>
#include <stdint.h>

/* act: 0 identity, 1 relu, 2 tanh, 3 sigmoid (enn_activation's values). */
double ref_activation(int act, double x);
/* The derivative at the point whose forward OUTPUT is y (relu: y > 0). */
double ref_activation_derivative_from_output(int act, double y);
void ref_activation_forward(int act, size_t n, const double *x, double *y);
/* dx = dy * act'(.) + beta * dx, from the forward output y. */
void ref_activation_backward(int act, size_t n, const double *y, const double *dy, double beta, double *dx);

/* out[rows, sum cols] = [in_0 | in_1 | ...] */
void ref_concat_forward(size_t rows, size_t parts, const uint32_t *cols, const double *const *in, double *out);
/* din_i = dout[:, part i] + beta * din_i */
void ref_concat_backward(size_t rows, size_t parts, const uint32_t *cols, const double *dout, double beta,
                         double *const *din);

/* out[cols] = alpha * sum_r x[r, c] + beta * out[c] */
void ref_sum_rows(size_t rows, size_t cols, const double *x, double alpha, double beta, double *out);
/* out[rows] = alpha * sum_c x[r, c] + beta * out[r] */
void ref_sum_cols(size_t rows, size_t cols, const double *x, double alpha, double beta, double *out);
/* sum of squares */
double ref_sumsq(size_t n, const double *x);

#endif
