/* Every parameter of a model and both Adam moments, concatenated (malloc'ed), for
 * bit-for-bit comparisons of two training runs. `extra` more floats are left at the end
 * for the caller (e.g. a final trace); *count includes them. */
#ifndef ENN_TEST_MODEL_SNAPSHOT_H
#define ENN_TEST_MODEL_SNAPSHOT_H

#include <stddef.h>

#include "enn.h"

float *test_model_snapshot(enn_model *m, size_t extra, size_t *count);

/* The first index where a and b differ bitwise, or n. */
size_t test_first_difference(const float *a, const float *b, size_t n);

#endif
