/* The h-dependent (sequential) part of the ENN cell over a whole sequence, one dispatch
 * per pass (shaders/enn_recurrence.comp; on CPU devices shaders/enn_recurrence_cpu.comp,
 * which reads its own outputs back through storage texel buffers). Batch rows are
 * independent in this recurrence, so a workgroup carries its rows through all T steps.
 *
 * Forward, for t = 0..T-1, every row b < B:
 *   u_t[b]     = ReLU(u_t[b] + h_t[b] W_uh)        (u_t holds z W_u[z] + m W_u[m] + b_u on entry)
 *   hp_t[b]    = ReLU(u_t[b] W_o + b_o)
 *   h_{t+1}[b] = LayerNorm(hp_t[b]; gain, bias, eps), saving mean, rstd (biased variance),
 *                or h_{t+1}[b] = hp_t[b] without layer norm (hp is then not used)
 * Backward, for t = T-1..0, every row b < B:
 *   g = dhs_{t+1}[b]
 *   dhp_t[b] = LayerNormBackwardInput(g; hp_t[b], gain, mean, rstd) * (hp_t[b] > 0)   [LN]
 *            = g * (h_{t+1}[b] > 0)                                                   [no LN]
 *   du_t[b]  = (dhp_t[b] W_o^T) * (u_t[b] > 0)
 *   dhs_t[b] += du_t[b] W_uh^T
 * The layer norm's parameter gradients need a sum over rows: enn_layer_norm_backward_params
 * over all T*Bp rows afterwards (dy = dhs slabs 1..T, x = hp, mean, rstd as saved here).
 *
 * Sequence operands are per-step slabs: step t of a sequence starts at view.offset +
 * t * slab bytes (slab a multiple of ENN_VIEW_ALIGN, at least Bp * width * 4) and holds rows
 * [Bp, width] row-major, width h (hs, hp, dhs, dhp) or 3h (u, du). Rows B..Bp-1 of every
 * slab, and of mean and rstd, are neither read nor written. mean and rstd are CONTIGUOUS
 * [T * Bp] floats (index t * Bp + b), so the parameter reduction sees one matrix.
 * Weights: W_uh [h, 3h] and W_o [3h, h] row-major, b_o, gain, bias [h]. No operand may
 * overlap another one that the same pass writes. */
#ifndef ENN_OPS_RECURRENCE_H
#define ENN_OPS_RECURRENCE_H

#include "core/context.h"
#include "ops/view.h"

typedef struct enn_recurrence_seq {
    enn_view view;  /* step 0 */
    uint64_t slab;  /* bytes from one step to the next */
} enn_recurrence_seq;

typedef struct enn_recurrence_shape {
    uint32_t T;              /* steps, >= 1 */
    uint32_t B;              /* rows used, 1..Bp */
    uint32_t Bp;             /* rows per slab (padded batch); row stride of mean/rstd per step */
    uint32_t h;              /* hidden width */
    int layer_norm;          /* 1: h_{t+1} = LayerNorm(hp_t) */
    float eps;               /* layer-norm epsilon (the model: 1e-6) */
    uint32_t rows_per_group; /* batch rows per workgroup; 0: the launcher picks from the
                                device (8 on CPU devices, 1-4 on GPUs) and shared memory */
} enn_recurrence_shape;

/* The batch rows per workgroup the launcher will use for shape s on ctx's device (after
 * shrinking to fit shared memory); 0 with an error set if not even one row fits. */
uint32_t enn_recurrence_rows_per_group(const enn_context *ctx, const enn_recurrence_shape *s);

/* One dispatch. u: T slabs [Bp, 3h], in/out. hs: T+1 slabs [Bp, h]; slab 0 = h_0 is read,
 * slabs 1..T written. hp: T slabs [Bp, h], written (LN only; ignored otherwise). mean,
 * rstd: [T * Bp] written (LN only). gain, bias: LN only (may be {0} without). */
enn_status enn_recurrence_forward(enn_recorder *rec, const enn_recurrence_shape *s, enn_recurrence_seq u,
                                  enn_recurrence_seq hs, enn_recurrence_seq hp, enn_view mean, enn_view rstd,
                                  enn_view W_uh, enn_view W_o, enn_view b_o, enn_view gain, enn_view bias);

/* One dispatch. dhs: T+1 slabs [Bp, h], in/out: on entry slab t (t >= 1) holds the gradient
 * reaching h_t from outside the recurrence (the head), slab 0 anything (usually zero); on
 * return slab t holds the whole gradient of h_t (slab T unchanged). dhp: T slabs [Bp, h],
 * du: T slabs [Bp, 3h], written (the gradients before the output and integrator ReLUs,
 * for the weight gradients). u, hs, hp, mean, rstd: as the forward pass left them (hp,
 * mean, rstd, gain with layer norm only; hs without layer norm only, may be {0} with). */
enn_status enn_recurrence_backward(enn_recorder *rec, const enn_recurrence_shape *s, enn_recurrence_seq dhs,
                                   enn_recurrence_seq dhp, enn_recurrence_seq du, enn_recurrence_seq u,
                                   enn_recurrence_seq hs, enn_recurrence_seq hp, enn_view mean, enn_view rstd,
                                   enn_view W_uh, enn_view W_o, enn_view gain);

#endif
