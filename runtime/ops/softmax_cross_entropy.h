/* Softmax cross-entropy with integer labels, fused (no probability matrix is stored),
 * numerically stable (max subtraction, online over the classes), for vocabularies up to
 * hundreds of thousands of classes. Kernels: shaders/softmax_cross_entropy.comp.
 *
 * Reduction: the mean over the rows that count, i.e. whose label is not the ignore
 * index and is < classes (Keras's and PyTorch's "mean" with an ignore index / a
 * sample-weight mask: sum of losses / number of counted rows). The gradient is that of
 * this mean: (softmax - onehot) / count on counted rows, 0 on the others. */
#ifndef ENN_OPS_SOFTMAX_CROSS_ENTROPY_H
#define ENN_OPS_SOFTMAX_CROSS_ENTROPY_H

#include "core/recorder.h"
#include "ops/view.h"

#define ENN_NO_IGNORE 0xffffffffu

/* The statistics the forward writes to its `stats` view (20 bytes, this layout). */
typedef struct enn_xent_stats {
    float mean_loss;   /* sum_loss / count (0 when count is 0) */
    float sum_loss;
    uint32_t count;    /* rows that count */
    uint32_t correct;  /* counted rows whose argmax equals the label */
    uint32_t invalid;  /* rows with a label >= classes that is not the ignore index (not counted) */
} enn_xent_stats;

typedef struct enn_xent_shape {
    uint32_t rows;          /* R = B*T */
    uint32_t classes;       /* V */
    uint32_t ignore_index;  /* a label value that does not count (e.g. 0, the padding id), or ENN_NO_IGNORE */
    uint32_t max_rows_per_dispatch; /* 0: as many as a binding and the grid allow */
} enn_xent_shape;

/* logits [R, V] float, labels [R] uint32
 *   -> loss [R] (0 on rows that do not count), lse [R] (log-sum-exp, kept for the
 *      backward), pred [R] uint32 (argmax, lowest index on ties), stats (enn_xent_stats). */
enn_status enn_softmax_cross_entropy_forward(enn_recorder *rec, const enn_xent_shape *shape, enn_view logits,
                                             enn_view labels, enn_view loss, enn_view lse, enn_view pred,
                                             enn_view stats);
/* dlogits [R, V] = scale * d mean_loss / d logits = scale * (softmax - onehot) / count.
 * dlogits may be the logits view itself: the gradient then overwrites the logits, which
 * saves an R x V buffer (3 GB for the paper's WikiText shapes). Needs the forward's
 * lse and stats. With dbias.buf, also dbias [V] += sum over rows of dlogits (the bias
 * gradient of the layer that made the logits; CPU devices add it in the same pass). */
enn_status enn_softmax_cross_entropy_backward(enn_recorder *rec, const enn_xent_shape *shape, enn_view logits,
                                              enn_view labels, enn_view lse, enn_view stats, float scale,
                                              enn_view dlogits, enn_view dbias);

#endif
