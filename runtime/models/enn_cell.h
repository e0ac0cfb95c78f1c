/* The Engram cell over a whole sequence, forward and backward through time, on the device.
 *
 * The recurrence is restructured (DESIGN.md): everything that does not depend on h runs
 * for all time steps at once, so only two GEMMs and a layer norm per step remain in the
 * sequential loop.
 *
 *   forward                                             shapes (R = T * Bp rows)
 *   zr = ReLU(x W_z + b_z)            one GEMM          [R,d] x [d,h]
 *   z  = LayerNorm1(zr)               one dispatch      [R,h]
 *   for t: a_t, m_t, H_t+1 = memory step(z_t, M, H_t)   (cosine attention, retrieval,
 *                                                        Hebbian update; no h inside)
 *   u  = z W_u[z rows] + m W_u[m rows] + b_u   two GEMMs [R,h] x [h,3h]
 *   for t: u_t  = ReLU(h_t W_u[h rows] + u_t)          [B,h] x [h,3h]
 *          hp_t = ReLU(u_t W_o + b_o)                  [B,3h] x [3h,h]
 *          h_t+1 = LayerNorm2(hp_t)
 *
 * The backward pass mirrors it: a reverse loop over the h-dependent part, then every
 * weight gradient as one GEMM over all steps, then a reverse scan over the memory path
 * (two dispatches per step), then layer norm 1, the ReLU and W_z for all steps at once.
 *
 * Rows: every sequence buffer is [T, Bp, width] with Bp >= B chosen so that each step's
 * slice starts on a view boundary (Bp = B for the paper's shapes). Rows B..Bp-1 are
 * padding: they hold whatever row-wise ops make of zero input, never reach a real row,
 * and always carry zero gradient, so they add nothing to any parameter's gradient. */
#ifndef ENN_MODELS_ENN_CELL_H
#define ENN_MODELS_ENN_CELL_H

#include "enn.h"
#include "models/layout.h"
#include "ops/view.h"

typedef struct enn_cell {
    enn_context *ctx;
    /* shapes */
    uint32_t d, h, N, T, B, Bp, nH; /* nH: 1 (shared trace) or Bp (per-sample) */
    /* hyper-parameters */
    float eta, alpha, tau_e, noise_std, clip, ln_eps;
    int layer_norm, per_sample, stop_gradient, noise;
    uint32_t recompute;   /* trace recompute interval K (0: every H_t stored) */
    uint64_t seed;

    /* views of the parameters and their gradients in the model's flat buffers */
    enn_view W_z, b_z, M, W_u, b_u, W_o, b_o, ln1_gain, ln1_bias, ln2_gain, ln2_bias;
    enn_view dW_z, db_z, dM, dW_u, db_u, dW_o, db_o, dln1_gain, dln1_bias, dln2_gain, dln2_bias;

    /* the three row blocks of W_u ([h,3h] each) and of its gradient; a block whose
     * offset is not a view boundary is staged through a scratch buffer */
    enn_view W_u_block[3], dW_u_block[3];
    enn_buffer *W_u_scratch, *dW_u_scratch;
    int W_u_staged[3];

    /* activations, time-major, one slab per step */
    enn_buffer *x;        /* [T, Bp, d] input */
    enn_buffer *zr, *z;   /* [T, Bp, h] (z is zr when layer norm is off) */
    enn_buffer *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; /* [T, Bp] */
    enn_buffer *a;        /* [T] slabs of [B, N] */
    enn_buffer *m;        /* [T, Bp, h] */
    enn_buffer *H;        /* [T+1] slabs of [nH, N, h]: H_0 .. H_T; with recomputation the
                             stored ones only, and H_ring the others: see enn_cell_trace */
    enn_buffer *H_ring;   /* [K] slabs, or NULL */
    enn_buffer *u;        /* [T, Bp, 3h] */
    enn_buffer *hp;       /* [T, Bp, h] (hp is hs + one slab when layer norm is off) */
    enn_buffer *hs;       /* [T+1, Bp, h]: h_0 .. h_T */

    /* gradients of activations */
    enn_buffer *dhs;      /* [T+1, Bp, h]: the head writes slabs 1..T; slab 0 is dh_0 */
    enn_buffer *dhp, *du, *dz, *dzr, *dm, *dx; /* like their activations */
    enn_buffer *dH[2];    /* [nH, N, h]: the reverse scan's carry (see enn_memory_step_backward) */
    enn_buffer *dM_samples[2]; /* per-sample trace: [Bp, N, h], each sample's dM over the steps
                                  (the backward scan reads one and writes the other) */
    enn_buffer *attention_ws; /* softmax and similarity gradients of one step */
    enn_buffer *split_ws;     /* split-K partial weight gradients (GPUs), or NULL */
    enn_buffer *noise_buf; /* [T] slabs of [nH, N, h] given noise (enn grad), or NULL */
    int noise_buffer_set; /* use `noise` instead of Philox noise */

    uint64_t activation_bytes; /* device memory of everything above */
} enn_cell;

/* Allocates the cell's activations for sequences up to T steps and batches up to B. */
enn_status enn_cell_create(enn_context *ctx, const enn_model_config *config, const enn_layout *layout,
                           const enn_buffer *params, const enn_buffer *grads, uint32_t input_features,
                           enn_cell *cell);
void enn_cell_destroy(enn_cell *cell);

/* Bp for a batch of B rows: the smallest Bp >= B whose per-step slices of every width
 * the cell uses start on a view boundary. */
uint32_t enn_cell_padded_batch(uint32_t B, uint32_t h);

/* Views of one step's slab. */
enn_view enn_cell_step(const enn_buffer *seq, uint32_t t, uint64_t slab_bytes);
uint64_t enn_cell_row_slab(const enn_cell *cell, uint32_t width); /* Bp * width floats, rounded */
uint64_t enn_cell_trace_slab(const enn_cell *cell);              /* nH * N * h floats, rounded */
/* Where the trace H_i of a T-step pass lives (H_0 and H_T always stored). */
enn_view enn_cell_trace(const enn_cell *cell, uint32_t i, uint32_t T);

/* Forward over T steps of a batch of B (<= the sizes at creation). Reads x, hs slab 0
 * (h_0) and H slab 0 (H_0); `step` picks the noise stream (Philox, seed and step) when
 * noise is on and no noise buffer is given. */
enn_status enn_cell_forward(enn_cell *cell, enn_recorder *rec, uint32_t T, uint32_t B, uint64_t step);
/* Backward: reads dhs slabs 1..T (the head's gradient, overwritten), accumulates into the
 * parameter gradients (which the caller zeroes once per step), and leaves dh_0 in dhs
 * slab 0, dH_0 in dH[0] (exact mode) and, with want_dx, dx. */
enn_status enn_cell_backward(enn_cell *cell, enn_recorder *rec, uint32_t T, uint32_t B, uint64_t step, int want_dx);

#endif
