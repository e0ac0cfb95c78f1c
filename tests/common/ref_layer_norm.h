/* Double-precision reference of layer normalisation over the last axis (biased
 * variance, gain and bias). */
#ifndef ENN_TEST_REF_LAYER_NORM_H
#define ENN_TEST_REF_LAYER_NORM_H

#include <stdint.h>

/* x [R,C], gain, bias [C] -> y [R,C]. */
void ref_layer_norm_forward(uint32_t R, uint32_t C, const double *x, const double *gain, const double *bias, double eps,
                            double *y);
/* dy [R,C] -> dx [R,C], dgain, dbias [C] (all overwritten). */
void ref_layer_norm_backward(uint32_t R, uint32_t C, const double *x, const double *gain, double eps, const double *dy,
                             double *dx, double *dgain, double *dbias);

#endif
