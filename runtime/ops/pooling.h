/* Heads' small ops: attention pooling over time, and the mean-squared-error loss. */
#ifndef ENN_OPS_POOLING_H
#define ENN_OPS_POOLING_H

#include "ops/view.h"

/* Attention pooling over time.
 *   hs  [T,B,h]  hidden states, time-major        w  [h+1]  weights, then the bias
 *   s   [T,B]    tanh scores (saved)              p  [T,B]  softmax over t (saved)
 *   ctx [B,h]    the pooled context */
enn_status enn_attention_pooling_forward(enn_recorder *rec, uint32_t T, uint32_t B, uint32_t h, enn_view hs,
                                         enn_view w, enn_view s, enn_view p, enn_view ctx);
/* Backward: dhs [T,B,h] (overwritten, or added to with accumulate_dhs), and dw [h+1]
 * (always added to: parameter gradients accumulate). partial [B,h+1] is scratch. */
enn_status enn_attention_pooling_backward(enn_recorder *rec, uint32_t T, uint32_t B, uint32_t h, enn_view hs,
                                          enn_view w, enn_view s, enn_view p, enn_view dctx, enn_view dhs,
                                          int accumulate_dhs, enn_view partial, enn_view dw);

/* loss[0] = scale * mean((pred - target)^2) over n elements;
 * dpred = scale * 2 (pred - target) / n. */
enn_status enn_mse_loss(enn_recorder *rec, uint32_t n, float scale, enn_view pred, enn_view target, enn_view dpred,
                        enn_view loss);

#endif
