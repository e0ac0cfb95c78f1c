/* Layer normalisation over the last axis with a learnable gain and bias (ENN-SPEC:
 * biased variance, epsilon 1e-6 in the model, a parameter here). */
#ifndef ENN_OPS_LAYER_NORM_H
#define ENN_OPS_LAYER_NORM_H

#include "ops/view.h"

/* y: [rows,cols] out; mean, rstd: [rows] out (saved for the backward pass);
 * x: [rows,cols]; gain, bias: [cols]. y may not overlap x. */
enn_status enn_layer_norm_forward(enn_recorder *rec, enn_view y, enn_view mean, enn_view rstd, enn_view x,
                                  enn_view gain, enn_view bias, uint32_t rows, uint32_t cols, float eps);

/* dx: [rows,cols]; dgain, dbias: [cols]; from dy [rows,cols] and the forward pass's x,
 * gain, mean, rstd. beta_dx, beta_params (0 or 1): 1 adds into the existing gradient
 * (the ENN sums its layer norms' parameter gradients over time steps). dgain or dbias
 * with a NULL buffer skips the parameter gradients. Two dispatches. */
enn_status enn_layer_norm_backward(enn_recorder *rec, enn_view dx, enn_view dgain, enn_view dbias, enn_view dy,
                                   enn_view x, enn_view gain, enn_view mean, enn_view rstd, uint32_t rows,
                                   uint32_t cols, float beta_dx, float beta_params);

/* The parameter gradients alone, one dispatch: dgain[c] = beta dgain[c] + sum_rows dy xhat,
 * dbias[c] = beta dbias[c] + sum_rows dy, xhat = (x - mean) rstd; dy, x [rows,cols], mean,
 * rstd [rows] as the forward pass saved them; beta 0 or 1. For a layer norm applied step by
 * step (enn_recurrence): all T * Bp rows at once, padding rows with dy = 0 (and finite x,
 * mean, rstd) adding nothing. */
enn_status enn_layer_norm_backward_params(enn_recorder *rec, enn_view dgain, enn_view dbias, enn_view dy, enn_view x,
                                          enn_view mean, enn_view rstd, uint32_t rows, uint32_t cols, float beta);

#endif
