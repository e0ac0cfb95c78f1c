/* Where each named tensor of a model lives in its flat buffers. Parameters, gradients
 * and both Adam moments share one layout, so tensor i is at the same offset in each. */
#ifndef ENN_MODELS_LAYOUT_H
#define ENN_MODELS_LAYOUT_H

#include <stdint.h>
#include "enn.h"

#define ENN_MAX_TENSORS 48
#define ENN_TENSOR_NAME 48

typedef enum enn_init {
    ENN_INIT_ZEROS = 0,
    ENN_INIT_ONES,
    ENN_INIT_HE_NORMAL,      /* truncated normal, std sqrt(2 / fan_in), cut at 2 std */
    ENN_INIT_GLOROT_UNIFORM, /* uniform, limit sqrt(6 / (fan_in + fan_out)) */
    ENN_INIT_ORTHOGONAL,     /* recurrent kernels of the baselines */
    ENN_INIT_UNIFORM_EMBEDDING, /* Keras Embedding: uniform(-0.05, 0.05) */
    ENN_INIT_LSTM_BIAS,      /* zeros, except the forget gate's quarter [u, 2u): ones (unit_forget_bias) */
} enn_init;

typedef struct enn_tensor_info {
    char name[ENN_TENSOR_NAME];
    uint32_t rank;             /* 1 or 2 */
    uint32_t shape[2];         /* [in, out] for matrices */
    uint64_t offset;           /* bytes into the flat buffers, a multiple of 256 */
    uint64_t count;            /* elements */
    enn_init init;
} enn_tensor_info;

typedef struct enn_layout {
    enn_tensor_info tensors[ENN_MAX_TENSORS];
    uint32_t count;
    uint64_t bytes;            /* size of each flat buffer */
    uint64_t elements;         /* parameters in all tensors */
} enn_layout;

/* Appends a tensor (cols 0: a vector of `rows` elements). */
enn_status enn_layout_add(enn_layout *l, const char *name, uint32_t rows, uint32_t cols, enn_init init);
const enn_tensor_info *enn_layout_find(const enn_layout *l, const char *name);

#endif
