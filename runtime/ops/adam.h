/* Adam and AdamW over a flat parameter buffer described by an enn_param_table, with
 * gradient clipping by norm per tensor (Keras clipnorm, the paper's setting) or global
 * (Keras global_clipnorm), all on the device. Kernel: shaders/adam.comp.
 *
 * The update is Keras's (tf.keras optimizer_v2 and Keras 3 agree), t the 1-based step:
 *   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *   p -= lr * weight_decay * p          (AdamW only, tensors flagged ENN_PARAM_DECAY, before the step)
 *   m += (g - m) (1 - beta1);  v += (g^2 - v) (1 - beta2)
 *   p -= alpha * m / (sqrt(v) + epsilon)   (epsilon outside the sqrt; Keras's default 1e-7)
 * Clipping (the gradient buffer itself is left unchanged):
 *   per tensor: g_k *= c / max(||g_k||, c)      global: g *= c / max(sqrt(sum_k ||g_k||^2), c) */
#ifndef ENN_OPS_ADAM_H
#define ENN_OPS_ADAM_H

#include "core/recorder.h"
#include "ops/reduce.h"
#include "ops/view.h"

/* enn_clip_mode (none, per tensor = Keras clipnorm, global = Keras global_clipnorm) is in enn.h. */

typedef struct enn_adam_params {
    float lr;             /* may change between steps (reduce-on-plateau) */
    float beta1, beta2;
    float epsilon;
    float weight_decay;   /* 0: Adam; > 0: AdamW (decoupled) on tensors flagged ENN_PARAM_DECAY */
    uint64_t step;        /* t, 1 for the first update */
    enn_clip_mode clip;
    float clipnorm;
} enn_adam_params;

/* Keras's defaults: lr 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-7, no decay, no clip, step 1. */
enn_adam_params enn_adam_params_keras(void);
/* The hyper-parameters of a model's optimiser configuration, at step `step`. */
enn_adam_params enn_adam_params_from_config(const enn_optimizer_config *config, uint64_t step);

/* One update of params, m, v (each a flat buffer of table->extent floats) from grads.
 * With clipping, first records the norm passes into table->sumsq. */
enn_status enn_adam_update(enn_recorder *rec, const enn_param_table *table, const enn_adam_params *hp,
                           enn_view params, enn_view grads, enn_view m, enn_view v);

#endif
