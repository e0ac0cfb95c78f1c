/* The small ENN classifier most model tests build: the spec's defaults (ENN-SPEC.md) with
 * the test's shapes; each test then sets what it is about. */
#ifndef ENN_TEST_SMALL_CONFIG_H
#define ENN_TEST_SMALL_CONFIG_H

#include "enn.h"

/* input [T, features], batches of up to `batch`, `classes` outputs, h = hidden, N = slots */
enn_model_config test_small_classifier(uint32_t features, uint32_t T, uint32_t batch, uint32_t classes,
                                       uint32_t hidden, uint32_t slots);

#endif
