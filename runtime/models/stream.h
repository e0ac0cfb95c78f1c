/* Streaming inference: one time step of a model at a time, with the recurrent state kept
 * on the device (enn_stream_* in enn.h, enn_stream_record in enn_vulkan.h).
 *
 *   one step, recorded (record_step)                      shapes (B = streams)
 *   [embedding lookup of the tokens]                       [B] ids -> [B, e]
 *   zr = ReLU(x W_z + b_z);  z = LayerNorm1(zr)            [B,d] x [d,h]
 *   a, m, H_next = memory step(z, M, H)   (no noise)       H: [N,h] or [B,N,h]
 *   u = ReLU(z W_u[z] + b_u + m W_u[m] + h W_u[h])         three GEMMs, as the cell does
 *   h_next = LayerNorm2(ReLU(u W_o + b_o))
 *   h <- h_next, H <- H_next                                copies, so the recorded
 *                                                          commands are the same every step
 *   head: pooling sums (attention) and out = f W + b       [B,h] x [h,outputs]
 *
 * The ops and their order are those of enn_cell_forward, so a stream reproduces the
 * model's evaluation step for step. */
#ifndef ENN_MODELS_STREAM_H
#define ENN_MODELS_STREAM_H

#include "enn.h"
#include "models/model.h"

struct enn_stream {
    enn_model *model;
    uint32_t B;                   /* parallel streams */
    uint64_t position;            /* steps since the last reset */
    enn_recorder *rec;            /* host steps: own submissions */
    enn_recorder *external;       /* enn_stream_record: the caller's command buffers */

    enn_buffer *tokens;           /* [B] ids (embedding language model) */
    enn_buffer *x;                /* [B, d] */
    enn_buffer *zr, *z;           /* [B, h] (z is zr without layer norm) */
    enn_buffer *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; /* [B] */
    enn_buffer *a;                /* [B, N] */
    enn_buffer *m;                /* [B, h] */
    enn_buffer *H, *H_next;       /* [nH, N, h] */
    enn_buffer *u;                /* [B, 3h] */
    enn_buffer *hp;               /* [B, h] (layer norm only) */
    enn_buffer *h, *h_next;       /* [B, h] */
    enn_buffer *W_u_scratch;      /* W_u's row blocks that do not start on a view boundary */
    enn_buffer *pool_sum;         /* [B] attention pooling: running sum of exp(score) */
    enn_buffer *pool_acc;         /* [B, h] running weighted sum of h_t */
    enn_buffer *feature;          /* [B, h] pooled context */
    enn_buffer *out;              /* [B, outputs] */
};

#endif
