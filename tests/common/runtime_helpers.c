#include "runtime_helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

int test_name_matches(const char *name, const char *want)
{
    size_t n = strlen(want);
    for (; *name; name++)
        if (!strncasecmp(name, want, n)) return 1;
    return 0;
}

void test_pick_physical_device(VkInstance instance, VkPhysicalDevice *pd, uint32_t *compute_family)
{
    uint32_t n = 0;
    VkPhysicalDevice devs[16];
    cr_assert_eq(vkEnumeratePhysicalDevices(instance, &n, NULL), VK_SUCCESS);
    if (n > 16) n = 16;
    VkResult r = vkEnumeratePhysicalDevices(instance, &n, devs);
    cr_assert(r == VK_SUCCESS || r == VK_INCOMPLETE, "vkEnumeratePhysicalDevices: %d", r);
    const char *want = test_device();
    char *end;
    unsigned long index = strtoul(want, &end, 10);
    *pd = VK_NULL_HANDLE;
    for (uint32_t i = 0; i < n && !*pd; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(devs[i], &p);
        if ((*end == '\0' && end != want) ? index == i : test_name_matches(p.deviceName, want)) *pd = devs[i];
    }
    cr_assert_not_null(*pd, "no device matches %s", want);
    VkQueueFamilyProperties q[16];
    n = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(*pd, &n, q);
    *compute_family = UINT32_MAX;
    for (uint32_t i = 0; i < n && *compute_family == UINT32_MAX; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) *compute_family = i;
    cr_assert_neq(*compute_family, UINT32_MAX, "no compute queue");
}
