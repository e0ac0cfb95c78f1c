/* Shared test set-up: a context on the test device with the validation layer on, and
 * a check, at the end of each test, that the layer reported nothing. */
#ifndef ENN_TEST_HARNESS_H
#define ENN_TEST_HARNESS_H

#include <criterion/criterion.h>
#include <stdint.h>

#include "enn.h"

/* ENN_TEST_DEVICE, else "llvmpipe" (lavapipe): tests are pinned to the CPU device
 * unless told otherwise, so a GPU on the machine does not change what CI checks. */
const char *test_device(void);
/* A validated context on the test device; fails the test if it cannot be made. */
enn_context *test_context(void);
/* The same with the caller's options (cache_dir, max_dispatches_per_submit, ...); device
 * defaults to test_device(), validation is forced on and counted like test_context's. */
enn_context *test_context_with(const enn_context_options *options);
/* Validation messages seen so far in this test process. */
unsigned test_validation_count(void);
/* Fails the test if the validation layer reported anything, then destroys ctx. */
void test_context_finish(enn_context *ctx);

/* Asserts that an enn call succeeded, printing enn_last_error() if not. */
#define ENN_ASSERT_OK(call)                                                                   \
    do {                                                                                      \
        enn_status s_ = (call);                                                               \
        cr_assert_eq(s_, ENN_OK, "%s -> %s: %s", #call, enn_status_name(s_), enn_last_error()); \
    } while (0)

/* 1 when all n bytes at p equal value (guard bytes a call must not have written). */
int test_all_bytes(const void *p, size_t n, unsigned char value);

/* CLOCK_MONOTONIC in seconds: for checking a duration libenn measures, never for timing. */
double test_seconds(void);

/* Deterministic pseudo-random numbers for test data (splitmix64). */
uint64_t test_rand_u64(uint64_t *state);
/* Uniform in [lo, hi). */
double test_rand_uniform(uint64_t *state, double lo, double hi);
/* A classifier batch named by `seed`: x [x_count] uniform in [-range, range), then
 * labels [batch] below `classes`, drawn in that order from one stream. */
void test_random_batch(uint64_t seed, float *x, size_t x_count, double range, uint32_t *labels, uint32_t batch,
                       uint32_t classes);

#endif
