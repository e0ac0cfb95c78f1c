/* The fused per-step gate kernels of the LSTM and GRU baselines (shaders/rnn_gates.comp),
 * Keras semantics: LSTM gates [i | f | c | o] (sigmoid, sigmoid, tanh, sigmoid), GRU in the
 * reset_after form with gates [z | r | h] and h = z h_prev + (1 - z) hh. Every operand is
 * one step's [rows, width] block, rows packed (row stride = width). */
#ifndef ENN_OPS_RNN_GATES_H
#define ENN_OPS_RNN_GATES_H

#include "core/recorder.h"
#include "ops/view.h"

/* pre [rows, 4u]: x W + b + h_prev U on entry, the activations (i, f, g, o) on exit.
 * c = f c_prev + i g, h = o tanh(c): c_prev, c, h [rows, u]. */
enn_status enn_lstm_gates_forward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view pre, enn_view c_prev,
                                  enn_view c, enn_view h);
/* act [rows, 4u] from the forward, c_prev and c [rows, u], dh [rows, u] = dL/dh_t.
 * dc [rows, u]: dL/dc_t from later steps on entry (0 after the last step), dL/dc_{t-1}
 * on exit. Writes dpre [rows, 4u], the gradient of the pre-activations. */
enn_status enn_lstm_gates_backward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view act, enn_view c_prev,
                                   enn_view c, enn_view dh, enn_view dc, enn_view dpre);

/* xw [rows, 3u] = x W + b_input on entry, the activations (z, r, hh) on exit;
 * hu [rows, 3u] = h_prev U + b_recurrent (kept for the backward).
 * h = z h_prev + (1 - z) tanh(xw_h + r hu_h): h_prev, h [rows, u]. */
enn_status enn_gru_gates_forward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view xw, enn_view hu,
                                 enn_view h_prev, enn_view h);
/* act [rows, 3u], hu [rows, 3u], h_prev [rows, u] from the forward, dh [rows, u].
 * Writes dxw [rows, 3u] (gradient of x W + b_input) and dhu [rows, 3u] (of h_prev U +
 * b_recurrent), and adds the direct part dh z to dh_prev [rows, u]. */
enn_status enn_gru_gates_backward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view act, enn_view hu,
                                  enn_view h_prev, enn_view dh, enn_view dh_prev, enn_view dxw, enn_view dhu);

#endif
