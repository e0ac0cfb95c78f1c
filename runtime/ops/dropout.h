/* Inverted dropout: y = x * keep / (1 - p). keep comes from the Philox stream (seed,
 * stream) at the element's index (P(keep) = 1 - p, see enn_philox_keep), or from a
 * caller's mask (mask[i] != 0 keeps). Forward and backward apply the same mask, so the
 * backward pass needs only the same seed and stream (or mask). */
#ifndef ENN_OPS_DROPOUT_H
#define ENN_OPS_DROPOUT_H

#include "ops/view.h"

typedef struct enn_dropout_params {
    float p;                 /* drop rate in [0, 1) */
    uint64_t seed, stream;   /* the stream, e.g. the training step */
    enn_view mask;           /* NULL buffer: Philox; else [n] floats, nonzero keeps */
} enn_dropout_params;

/* y: [n] out; x: [n]. */
enn_status enn_dropout_forward(enn_recorder *rec, enn_view y, enn_view x, uint32_t n, const enn_dropout_params *p);
/* dx: [n]; dy: [n]. beta_dx (0 or 1): 1 adds into dx. */
enn_status enn_dropout_backward(enn_recorder *rec, enn_view dx, enn_view dy, uint32_t n, const enn_dropout_params *p,
                                float beta_dx);
/* mask_out: [n] out, 1 where kept and 0 where dropped (the mask the two passes use). */
enn_status enn_dropout_mask(enn_recorder *rec, enn_view mask_out, uint32_t n, const enn_dropout_params *p);

#endif
