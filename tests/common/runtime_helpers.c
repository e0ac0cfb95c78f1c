#include "runtime_helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

const enn_pipeline *test_axpby_pipeline(enn_context *ctx)
{
    const uint32_t spec[1] = {TEST_AXPBY_LOCAL};
    enn_pipeline_desc d = {.shader = "elementwise", .num_buffers = 2, .push_size = sizeof(test_axpby_push),
                           .spec = spec, .spec_count = 1};
    const enn_pipeline *p = NULL;
    ENN_ASSERT_OK(enn_pipeline_get(ctx, &d, &p));
    return p;
}

enn_status test_record_axpby(enn_recorder *rec, const enn_pipeline *p, enn_binding x, enn_binding y, uint32_t n,
                             float alpha, float beta)
{
    test_axpby_push push = {n, 0, alpha, beta};
    enn_binding b[2] = {x, y};
    return enn_record_dispatch(rec, p, b, 2, &push, (n + TEST_AXPBY_LOCAL - 1) / TEST_AXPBY_LOCAL, 1, 1, "axpby");
}

static uint64_t to_little_endian(uint64_t w)
{
    uint8_t b[8];
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(w >> (8 * k));
    memcpy(&w, b, 8);
    return w;
}

void test_pattern_fill(uint8_t *dst, size_t n, size_t first_index, uint32_t seed)
{
    size_t i = 0;
    for (; i < n && (first_index + i) % 8; i++) dst[i] = test_pattern_byte(first_index + i, seed);
    for (; i + 8 <= n; i += 8) {
        uint64_t w = to_little_endian(test_pattern_word((first_index + i) / 8, seed));
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) dst[i] = test_pattern_byte(first_index + i, seed);
}

size_t test_pattern_check(const uint8_t *src, size_t n, size_t first_index, uint32_t seed)
{
    size_t i = 0;
    for (; i < n && (first_index + i) % 8; i++)
        if (src[i] != test_pattern_byte(first_index + i, seed)) return i;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = to_little_endian(test_pattern_word((first_index + i) / 8, seed)), got;
        memcpy(&got, src + i, 8);
        if (got != w) break; /* the byte loop below finds which */
    }
    for (; i < n; i++)
        if (src[i] != test_pattern_byte(first_index + i, seed)) return i;
    return n;
}

void test_setenv(const char *name, const char *value)
{
    cr_assert_eq(setenv(name, value, 1), 0, "setenv(%s)", name);
}

void test_sync_validation(void)
{
    /* A GPU-assisted run (README, "Tests") keeps its own checks. */
    const char *enables = getenv("VK_LAYER_ENABLES");
    if (enables && strstr(enables, "GPU_ASSISTED")) return;
    test_setenv("VK_LAYER_ENABLES", "VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT");
}
