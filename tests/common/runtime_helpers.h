/* Helpers for the runtime suites (tests/test_runtime_*.c): the "elementwise" kernel's
 * axpby op driven straight through the recorder, and byte patterns for transfer checks. */
#ifndef ENN_TEST_RUNTIME_HELPERS_H
#define ENN_TEST_RUNTIME_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "core/recorder.h"
#include "enn.h"

#define TEST_AXPBY_LOCAL 64

/* Push constants of shaders/elementwise.comp. */
typedef struct test_axpby_push {
    uint32_t n, op;
    float alpha, beta;
} test_axpby_push;

/* The elementwise pipeline with local size TEST_AXPBY_LOCAL; fails the test if it cannot
 * be made. */
const enn_pipeline *test_axpby_pipeline(enn_context *ctx);
/* Records y = alpha x + beta y over n floats (op 0); x and y are the bindings as given. */
enn_status test_record_axpby(enn_recorder *rec, const enn_pipeline *p, enn_binding x, enn_binding y, uint32_t n,
                             float alpha, float beta);

/* Deterministic bytes: byte i of stream `seed` is byte i % 8 (little-endian) of a hash
 * of i / 8, so that fills and checks can work a 64-bit word at a time. */
static inline uint64_t test_pattern_word(size_t word, uint32_t seed)
{
    uint64_t z = (uint64_t)word * 0x9e3779b97f4a7c15ull + (seed + 1) * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 29);
}
static inline uint8_t test_pattern_byte(size_t i, uint32_t seed)
{
    return (uint8_t)(test_pattern_word(i / 8, seed) >> (8 * (i % 8)));
}
void test_pattern_fill(uint8_t *dst, size_t n, size_t first_index, uint32_t seed);
/* Index of the first byte that differs from the pattern, or n if none does. */
size_t test_pattern_check(const uint8_t *src, size_t n, size_t first_index, uint32_t seed);

/* setenv that fails the test when it cannot be done (Criterion runs each test in a
 * process of its own, so the variable does not leak into other tests). */
void test_setenv(const char *name, const char *value);

/* Turns on the validation layer's synchronization checks (missing or wrong barriers) for
 * contexts created after this call in this test's process; in a run with GPU-assisted
 * validation (VK_LAYER_ENABLES naming it) it leaves that run's checks as they are. */
void test_sync_validation(void);

/* 1 when `want` occurs in `name`, case ignored (as ENN_DEVICE names a device). */
int test_name_matches(const char *name, const char *want);
/* For a test that makes its own VkDevice: the physical device test_device() names (an
 * index or a part of the name) among `instance`'s, and its first queue family with
 * compute. Fails the test when there is none. */
void test_pick_physical_device(VkInstance instance, VkPhysicalDevice *pd, uint32_t *compute_family);

#endif
