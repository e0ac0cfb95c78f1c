/* Parameter initialisation on the host, from Philox streams (one stream per tensor), so
 * that a seed gives the same model on every device. */
#ifndef ENN_MODELS_INIT_H
#define ENN_MODELS_INIT_H

#include "models/layout.h"

/* Fills `params` (layout->bytes bytes, tensors at their offsets) as each tensor's init
 * rule says (Keras's initialisers: he_normal, glorot_uniform, orthogonal, zeros, ones,
 * uniform(-0.05, 0.05) for embeddings). */
enn_status enn_init_parameters(const enn_layout *layout, uint64_t seed, float *params);

#endif
