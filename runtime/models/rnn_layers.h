/* The baselines' recurrent part: a stack of SimpleRNN (tanh), GRU (reset_after) or LSTM
 * layers as Keras builds them, forward and backward through time on the device, with the
 * structure of the Engram cell (enn_cell.h): everything that does not depend on h runs
 * for all steps at once.
 *
 *   forward, layer l (input X = x or the layer below's h_1..h_T; R = T * Bp rows)
 *   P  = X W + b                           one GEMM     [R,in] x [in,G u]
 *   for t:  SimpleRNN  h_t = tanh(P_t + h_{t-1} U)     one GEMM with a tanh epilogue
 *           LSTM       P_t += h_{t-1} U;  gates(P_t, c_{t-1}) -> c_t, h_t
 *           GRU        Q_t = h_{t-1} U + b_rec;  gates(P_t, Q_t, h_{t-1}) -> h_t
 *   backward, layer l (from the top): a reverse loop of one gate-backward kernel and one
 *   GEMM (dh_{t-1} += dP_t U^T) per step, then dU, dW, db and the gradient of X (the
 *   layer below's dhs, or dx) as one GEMM each over all steps.
 *   On CPU devices each loop over t is one dispatch instead (ops/rnn_recurrence.h: units
 *   a multiple of 4, not ENN_DISABLE_RNN_RECURRENCE), writing the same buffers.
 *
 * G is 1, 4 or 3 gates packed [i|f|c|o] (LSTM) or [z|r|h] (GRU) along the columns of W,
 * U and b, as Keras packs them. The GRU bias is [2, 3u]: the input bias, then the
 * recurrent bias that reset_after applies inside r * (h U + b_rec).
 *
 * Rows as in the cell: every sequence buffer is [T, Bp, width] with Bp chosen so that
 * every step's slice of every layer starts on a view boundary and the slices are packed
 * (T slabs form one [T * Bp, width] matrix). Only rows < B are computed step by step;
 * padding rows carry zero gradient. SimpleRNN writes P straight into hs slabs 1..T, so
 * its padding rows there hold the bias: finite, and never read into a real row. */
#ifndef ENN_MODELS_RNN_LAYERS_H
#define ENN_MODELS_RNN_LAYERS_H

#include "enn.h"
#include "models/layout.h"
#include "ops/view.h"

typedef struct enn_rnn_layer {
    uint32_t in, units, width;  /* width = gates * units */
    enn_view W, U, b, dW, dU, db; /* kernel [in, width], recurrent_kernel [units, width], bias */
    uint64_t b_rec_offset;      /* GRU: bytes of the recurrent bias row in the flat buffers */
    enn_buffer *b_rec, *db_rec; /* GRU: [3u] staged copies (the row need not be view-aligned) */
    enn_buffer *pre;            /* [T, Bp, width]: X W + b, then the gate activations (not SimpleRNN) */
    enn_buffer *hu;             /* GRU [T, Bp, 3u]: h_{t-1} U + b_rec (fused path: the h block only) */
    enn_buffer *hs;             /* [T+1, Bp, units]: h_0 .. h_T */
    enn_buffer *cs;             /* LSTM [T+1, Bp, units]: c_0 .. c_T */
    enn_buffer *dpre;           /* [T, Bp, width]: gradient of P */
    enn_buffer *dhu;            /* GRU [T, Bp, 3u]: gradient of Q */
    enn_buffer *dhs;            /* [T+1, Bp, units]: slabs 1..T from above on entry */
    enn_buffer *dc;             /* LSTM [Bp, units]: the running gradient of c */
    enn_buffer *Ut;             /* [width, units]: U^T for the fused backward (CPU devices), else NULL */
} enn_rnn_layer;

typedef struct enn_rnn_stack {
    enn_context *ctx;
    enn_model_kind kind;
    uint32_t layers, d, T, B, Bp;
    enn_rnn_layer layer[ENN_MAX_LAYERS];
    enn_buffer *x, *dx;         /* [T, Bp, d] input and its gradient (rows packed) */
    uint64_t activation_bytes;
} enn_rnn_stack;

/* Allocates the stack's activations for sequences up to config->max_seq_len steps and
 * batches up to config->max_batch (kind RNN, GRU or LSTM). */
enn_status enn_rnn_stack_create(enn_context *ctx, const enn_model_config *config, const enn_layout *layout,
                                const enn_buffer *params, const enn_buffer *grads, uint32_t input_features,
                                enn_rnn_stack *stack);
void enn_rnn_stack_destroy(enn_rnn_stack *stack);

/* Bp for a batch of B rows through layers of these sizes. */
uint32_t enn_rnn_padded_batch(uint32_t B, uint32_t layers, const uint32_t *units);

/* The top layer's hidden states (h_0..h_T) and their gradient buffer. */
const enn_rnn_layer *enn_rnn_top(const enn_rnn_stack *stack);

/* Every layer's h_0 (and c_0): zero (Keras's default), or, when carry_from > 0, the
 * state after step carry_from of the last pass (stateful). */
enn_status enn_rnn_initial_state(enn_rnn_stack *stack, enn_recorder *rec, uint32_t carry_from);
/* Forward over T steps of a batch of B (<= the sizes at creation), from x. */
enn_status enn_rnn_forward(enn_rnn_stack *stack, enn_recorder *rec, uint32_t T, uint32_t B);
/* Backward: reads the top layer's dhs slabs 1..T (overwritten), accumulates into the
 * parameter gradients (which the caller zeroes once per step) and, with want_dx, writes dx. */
enn_status enn_rnn_backward(enn_rnn_stack *stack, enn_recorder *rec, uint32_t T, uint32_t B, int want_dx);

#endif
