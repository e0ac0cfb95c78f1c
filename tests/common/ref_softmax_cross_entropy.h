/* Double-precision reference for runtime/ops/softmax_cross_entropy.h. */
#ifndef ENN_TEST_REF_SOFTMAX_CROSS_ENTROPY_H
#define ENN_TEST_REF_SOFTMAX_CROSS_ENTROPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_xent_result {
    double mean_loss, sum_loss;
    uint32_t count, correct, invalid;
} ref_xent_result;

/* logits [rows, classes], labels [rows]: loss [rows] (0 where the row does not count),
 * pred [rows] (argmax, lowest index on ties); returns the statistics. A row counts when
 * label != ignore and label < classes. */
ref_xent_result ref_softmax_cross_entropy_forward(size_t rows, size_t classes, uint32_t ignore, const double *logits,
                                                  const uint32_t *labels, double *loss, uint32_t *pred);
/* dlogits = scale * d mean_loss / d logits */
void ref_softmax_cross_entropy_backward(size_t rows, size_t classes, uint32_t ignore, const double *logits,
                                        const uint32_t *labels, double scale, double *dlogits);

#endif
