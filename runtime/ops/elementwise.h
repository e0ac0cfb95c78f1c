/* Elementwise ops over flat float arrays, activations and their derivatives, and
 * concatenation / split along the feature axis. Shapes count floats; every operand is
 * an enn_view (aligned byte offset into a buffer). Outputs may be the same view as an
 * input (in place). Kernels: shaders/elementwise.comp, shaders/concat.comp. */
#ifndef ENN_OPS_ELEMENTWISE_H
#define ENN_OPS_ELEMENTWISE_H

#include "core/recorder.h"
#include "ops/view.h"

#include "ops/activation.h"

/* y[n] = alpha * x[n] + beta * y[n]; beta = 0 writes y without reading it. */
enn_status enn_axpby(enn_recorder *rec, uint64_t n, float alpha, enn_view x, float beta, enn_view y);
/* y[n] = alpha * x[n] */
enn_status enn_scale(enn_recorder *rec, uint64_t n, float alpha, enn_view x, enn_view y);
/* y[n] = a[n] + b[n] */
enn_status enn_add(enn_recorder *rec, uint64_t n, enn_view a, enn_view b, enn_view y);
/* y[n] = a[n] * b[n] */
enn_status enn_mul(enn_recorder *rec, uint64_t n, enn_view a, enn_view b, enn_view y);

/* y[n] = act(x[n]) */
enn_status enn_activation_forward(enn_recorder *rec, enn_activation act, uint64_t n, enn_view x, enn_view y);
/* dx[n] = dy[n] * act'(.) + beta * dx[n], the derivative taken from the forward OUTPUT
 * y[n] (relu: y > 0, tanh: 1 - y^2, sigmoid: y (1 - y)), so the input need not be
 * kept. beta = 1 accumulates into dx; beta = 0 overwrites it. */
enn_status enn_activation_backward(enn_recorder *rec, enn_activation act, uint64_t n, enn_view y, enn_view dy,
                                   float beta, enn_view dx);

/* dst[r, dst_col + c] = alpha * src[r, src_col + c] + beta * dst[r, dst_col + c] for
 * r < rows, c < cols; src has src_stride floats per row, dst dst_stride. */
enn_status enn_copy_columns(enn_recorder *rec, uint32_t rows, uint32_t cols, enn_view src, uint32_t src_stride,
                            uint32_t src_col, float alpha, enn_view dst, uint32_t dst_stride, uint32_t dst_col,
                            float beta);
/* out[rows, sum cols] = [in_0 | in_1 | ...]: parts[i] is [rows, cols[i]]. */
enn_status enn_concat_forward(enn_recorder *rec, uint32_t rows, uint32_t parts, const uint32_t *cols,
                              const enn_view *in, enn_view out);
/* The split that is concat's backward: din_i = dout[:, cols of part i] + beta * din_i. */
enn_status enn_concat_backward(enn_recorder *rec, uint32_t rows, uint32_t parts, const uint32_t *cols,
                               enn_view dout, float beta, const enn_view *din);

#endif
