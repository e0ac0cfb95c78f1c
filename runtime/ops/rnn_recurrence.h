/* The baselines' recurrence (SimpleRNN, GRU, LSTM; Keras semantics as in rnn_gates.h) over
 * a whole sequence in one dispatch per pass, for CPU devices (shaders/rnn_recurrence_cpu.comp).
 * It does what models/rnn_layers.c otherwise records per step (a GEMM with U and a gate
 * kernel), writing the same buffers, so the GEMMs hoisted out of the loop (x W + b, dU,
 * dW, db, the input's gradient) stay as they are. Batch rows are independent in the
 * recurrence: a workgroup carries 8 of them through all T steps.
 *
 * Sequences are per-step slabs: step t starts at view.offset + t * slab bytes (slab a
 * multiple of ENN_VIEW_ALIGN holding [Bp, width] rows, row-major); u-wide ones (hs, cs,
 * dhs: T+1 slabs, h_0..h_T) use slab_u, (gates * u)-wide ones (pre, hu, dpre, dhu: T
 * slabs) slab_w. Rows b >= B are neither read nor written. U is [u, gates * u] row-major,
 * gates packed [i|f|c|o] (LSTM) or [z|r|h] (GRU) along the columns.
 *
 * Forward, t = 0..T-1, rows b < B (P_t = x_t W + b on entry):
 *   LSTM    pre_t = P_t + h_{t-1} U -> (i, f, g, o) in place; c_t = f c_{t-1} + i g,
 *           h_t = o tanh(c_t)                          (P in pre; hs, cs slab 0 read)
 *   GRU     hu_t = h_{t-1} U + b_rec;  z, r = sigmoid(P + hu), hh = tanh(P_h + r hu_h),
 *           h_t = z h_{t-1} + (1 - z) hh;  pre_t -> (z, r, hh); of hu_t only the h block
 *           is stored (the backwards, this one and rnn_gates.h's, read no other)
 *   Simple  h_t = tanh(P_t + h_{t-1} U)                (P in hs slab t+1, in place)
 * Backward, t = T-1..0 (dhs slabs 1..T hold the gradient from above on entry, slab 0
 * zero): the gates' backward of rnn_gates.h (SimpleRNN: dpre_t = dh_t (1 - h_t^2)) with
 * dh_t = dhs slab t+1, then dhs slab t += dX_t U^T (X = dpre; dhu for the GRU). On return
 * dhs slab t is the whole gradient of h_t, dpre (and dhu) that of P (and of hu), dc the
 * gradient of c_0 (LSTM; read as zero on entry). */
#ifndef ENN_OPS_RNN_RECURRENCE_H
#define ENN_OPS_RNN_RECURRENCE_H

#include "core/recorder.h"
#include "ops/view.h"

typedef enum enn_rnn_cell {
    ENN_RNN_CELL_SIMPLE,
    ENN_RNN_CELL_GRU,
    ENN_RNN_CELL_LSTM,
} enn_rnn_cell;

typedef struct enn_rnn_recurrence_shape {
    enn_rnn_cell cell;
    uint32_t T, B, units;  /* steps >= 1, batch rows used, u */
    uint64_t slab_u;       /* bytes from one step to the next of hs, cs, dhs */
    uint64_t slab_w;       /* of pre, hu, dpre, dhu */
} enn_rnn_recurrence_shape;

/* 1 when the fused kernel runs for this shape and U on ctx's device: a CPU device (not
 * ENN_PLAN_AS_GPU) with RGBA32F uniform and storage texel buffers (not
 * ENN_DISABLE_TEXEL_BUFFERS), units % 4 == 0, every binding within the texel-buffer
 * limits, and not ENN_DISABLE_RNN_RECURRENCE. Else 0: record the per-step path. */
int enn_rnn_recurrence_available(const enn_context *ctx, const enn_rnn_recurrence_shape *s, enn_view U);

/* One dispatch. U [u, gates u]; b_rec [3u] (GRU only); hs [T+1 slabs, u] (slab 0 read,
 * 1..T written; SimpleRNN: P_t in slab t+1 on entry); pre [T slabs, gates u] (LSTM,
 * GRU); cs [T+1 slabs, u] (LSTM); hu [T slabs, 3u], its h blocks written (GRU). Unused
 * operands {0}. */
enn_status enn_rnn_recurrence_forward(enn_recorder *rec, const enn_rnn_recurrence_shape *s, enn_view U,
                                      enn_view b_rec, enn_view hs, enn_view pre, enn_view cs, enn_view hu);

/* Two dispatches: Ut [gates u, u] = U^T (scratch, written), then the recurrence. U, hs,
 * pre, cs, hu as the forward left them (hs: SimpleRNN and GRU; pre, cs: LSTM; pre, hu:
 * GRU). dhs [T+1 slabs, u] in/out; dpre [T slabs, gates u] written; dhu [T slabs, 3u]
 * written (GRU); dc [Bp, u] written (LSTM). Unused operands {0}. */
enn_status enn_rnn_recurrence_backward(enn_recorder *rec, const enn_rnn_recurrence_shape *s, enn_view U, enn_view Ut,
                                       enn_view hs, enn_view pre, enn_view cs, enn_view hu, enn_view dhs,
                                       enn_view dpre, enn_view dhu, enn_view dc);

#endif
