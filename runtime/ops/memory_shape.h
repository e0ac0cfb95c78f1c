/* The shape shared by the ENN's memory-path ops (cosine attention, Hebbian trace). */
#ifndef ENN_OPS_MEMORY_SHAPE_H
#define ENN_OPS_MEMORY_SHAPE_H

#include <stdint.h>

typedef struct enn_memory_shape {
    uint32_t B, N, h;    /* batch, memory slots, hidden size */
    int per_sample;      /* trace_mode = per_sample: H, E (and their gradients) are [B,N,h], not [N,h] */
} enn_memory_shape;

#endif
