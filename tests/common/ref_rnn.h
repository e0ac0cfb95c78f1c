/* Double-precision reference of the baselines' recurrent stack (SimpleRNN tanh, GRU in
 * Keras's reset_after form, LSTM), as Keras defines them:
 *
 *   SimpleRNN  h = tanh(x W + h_prev U + b)
 *   LSTM       [i|f|g|o] = x W + h_prev U + b;  i, f, o sigmoid, g tanh
 *              c = f c_prev + i g;  h = o tanh(c)
 *   GRU        [x_z|x_r|x_h] = x W + b[0];  [r_z|r_r|r_h] = h_prev U + b[1]
 *              z = sigmoid(x_z + r_z);  r = sigmoid(x_r + r_r);  hh = tanh(x_h + r r_h)
 *              h = z h_prev + (1 - z) hh
 *
 * Layers are stacked (the input of layer l > 0 is layer l-1's h_1..h_T); h_0 = c_0 = 0.
 * Every array is time-major: x [T, B, d], hs [T, B, units of the top layer]. Weights as
 * libenn lays them out: W [in, G u], U [u, G u], b [G u] (GRU [2, 3u]). */
#ifndef ENN_TEST_REF_RNN_H
#define ENN_TEST_REF_RNN_H

#include <stdint.h>

#include "enn.h"

typedef struct ref_rnn {
    enn_model_kind kind; /* ENN_MODEL_RNN, ENN_MODEL_GRU or ENN_MODEL_LSTM */
    uint32_t layers, units[ENN_MAX_LAYERS];
    uint32_t T, B, d;
    const double *W[ENN_MAX_LAYERS], *U[ENN_MAX_LAYERS], *b[ENN_MAX_LAYERS];
} ref_rnn;

uint32_t ref_rnn_gates(enn_model_kind kind);
/* Sizes of layer l's kernel, recurrent kernel and bias (in doubles). */
void ref_rnn_param_sizes(const ref_rnn *r, uint32_t l, uint64_t *W, uint64_t *U, uint64_t *b);

/* hs [T, B, f]: the top layer's h_1..h_T. */
void ref_rnn_forward(const ref_rnn *r, const double *x, double *hs);
/* Given dhs [T, B, f] = dL/dh of the top layer, the gradients of every layer's W, U, b
 * (overwritten) and of x (dx [T, B, d], may be NULL). */
void ref_rnn_backward(const ref_rnn *r, const double *x, const double *dhs, double *const *dW, double *const *dU,
                      double *const *db, double *dx);

#endif
