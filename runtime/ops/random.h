/* Random fills from Philox streams (see philox.h for the addressing), for initial states
 * (h0, H0 ~ Normal(0, 0.01^2)), initialisation and tests. Element i of the view takes
 * stream index first_index + i; the host functions in philox.h give the same floats. */
#ifndef ENN_OPS_RANDOM_H
#define ENN_OPS_RANDOM_H

#include "ops/view.h"

/* out[i] = mean + std * normal(seed, stream, first_index + i), i < n.   out: [n] */
enn_status enn_random_normal(enn_recorder *rec, enn_view out, uint32_t n, uint64_t seed, uint64_t stream,
                             uint32_t first_index, float mean, float std);
/* out[i] = lo + (hi - lo) * uniform(seed, stream, first_index + i), i < n.   out: [n] */
enn_status enn_random_uniform(enn_recorder *rec, enn_view out, uint32_t n, uint64_t seed, uint64_t stream,
                              uint32_t first_index, float lo, float hi);
/* out[i] = mean + std * t, t the standard normal truncated to [-2, 2]
 * (enn_philox_truncated_normal; its own standard deviation is 0.87962566). */
enn_status enn_random_truncated_normal(enn_recorder *rec, enn_view out, uint32_t n, uint64_t seed, uint64_t stream,
                                       uint32_t first_index, float mean, float std);

#endif
