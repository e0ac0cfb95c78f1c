/* The PyTorch float64 fixtures of tests/data/enn_torch/ (generator bench/make_fixtures.py):
 * the model configuration they describe, and their tensors as float or uint32. */
#ifndef ENN_TEST_TORCH_FIXTURE_H
#define ENN_TEST_TORCH_FIXTURE_H

#include <jansson.h>
#include <stddef.h>

#include "enn.h"
#include "io/safetensors.h"

typedef struct torch_fixture {
    enn_safetensors *st;
    json_t *config;
    enn_model_config model; /* max_batch = B, max_seq_len = T */
    uint32_t B, T;
} torch_fixture;

/* Loads tests/data/enn_torch/<name>.safetensors; fails the test if it cannot. */
void torch_fixture_load(const char *name, torch_fixture *f);
void torch_fixture_free(torch_fixture *f);
/* A fixture tensor as floats (F64 -> F32) or uint32 (from I32 or F64); NULL if absent.
 * malloc'ed. */
void *torch_fixture_tensor(const torch_fixture *f, const char *name, size_t *count, int as_u32);

#endif
