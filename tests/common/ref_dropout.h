/* Double-precision reference of inverted dropout with a given keep mask. */
#ifndef ENN_TEST_REF_DROPOUT_H
#define ENN_TEST_REF_DROPOUT_H

#include <stddef.h>

/* y = keep ? x / (1 - p) : 0. The backward pass is the same map applied to dy. */
void ref_dropout(size_t n, const double *x, const unsigned char *keep, double p, double *y);

#endif
