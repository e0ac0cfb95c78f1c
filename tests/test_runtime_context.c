/* Context creation and its switches: device listing and choice (by index, by name, by
 * ENN_DEVICE), validation by option or ENN_VALIDATION, the per-submit cap by option or
 * ENN_MAX_DISPATCHES_PER_SUBMIT (with out-of-range values refused), and capabilities
 * that are consistent with themselves. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "enn_vulkan.h"
#include "harness.h"
#include "runtime_helpers.h"

/* The index of the test device in enn_list_devices, or -1. */
static int test_device_index(void)
{
    enn_device_info infos[16];
    uint32_t count = 0;
    ENN_ASSERT_OK(enn_list_devices(infos, 16, &count));
    for (uint32_t i = 0; i < count && i < 16; i++)
        if (test_name_matches(infos[i].caps.device_name, test_device())) return (int)i;
    return -1;
}

Test(runtime_context, list_devices)
{
    cr_expect_neq(enn_version()[0], '\0');
    uint32_t count = 0;
    ENN_ASSERT_OK(enn_list_devices(NULL, 0, &count));
    cr_assert_geq(count, 1, "no device listed");
    enn_device_info infos[16];
    memset(infos, 0xAB, sizeof infos);
    uint32_t count1 = 0;
    ENN_ASSERT_OK(enn_list_devices(infos, 1, &count1));
    cr_expect_eq(count1, count, "capacity 1 changed the count");
    cr_expect_eq(infos[1].index, 0xABABABABu, "capacity 1 wrote a second entry");
    ENN_ASSERT_OK(enn_list_devices(infos, 16, &count));
    uint32_t chosen = 0;
    for (uint32_t i = 0; i < count && i < 16; i++) {
        cr_expect_eq(infos[i].index, i);
        cr_expect_neq(infos[i].caps.device_name[0], '\0', "device %u has no name", i);
        chosen += infos[i].chosen != 0;
    }
    cr_expect_eq(chosen, 1, "%u devices marked chosen", chosen);
    cr_expect_geq(test_device_index(), 0, "the test device %s is not listed", test_device());
}

Test(runtime_context, capabilities_are_consistent)
{
    enn_context *ctx = test_context();
    enn_capabilities c = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &c));
    cr_expect(test_name_matches(c.device_name, test_device()), "context on %s, asked for %s", c.device_name, test_device());
    cr_expect_geq(c.api_version, VK_API_VERSION_1_1);
    cr_expect_gt(c.subgroup_size, 0);
    cr_expect_eq(c.subgroup_size & (c.subgroup_size - 1), 0, "subgroup size %u", c.subgroup_size);
    cr_expect(c.min_subgroup_size <= c.subgroup_size && c.subgroup_size <= c.max_subgroup_size);
    cr_expect_geq(c.max_shared_memory, 16384, "Vulkan guarantees 16 KiB of shared memory");
    cr_expect_geq(c.max_workgroup_invocations, 128);
    cr_expect_geq(c.max_workgroup_count[0], 65535);
    cr_expect_geq(c.max_push_constants_size, 128);
    cr_expect_gt(c.min_storage_buffer_offset_alignment, 0);
    cr_expect_eq(c.min_storage_buffer_offset_alignment & (c.min_storage_buffer_offset_alignment - 1), 0);
    cr_expect_leq(c.min_storage_buffer_offset_alignment, 256, "enn_view assumes offsets of 256 suffice");
    cr_expect_geq(c.max_storage_buffer_range, (uint64_t)1 << 27);
    cr_expect_gt(c.device_local_bytes, 0);
    if (c.timestamps) cr_expect_gt(c.timestamp_period_ns, 0);
    cr_expect(!c.cooperative_matrix || c.storage_16bit, "cooperative matrices without 16-bit storage");
    ENN_ASSERT_OK(enn_context_wait_idle(ctx));
    test_context_finish(ctx);
}

Test(runtime_context, device_by_index_and_environment)
{
    int idx = test_device_index();
    cr_assert_geq(idx, 0);
    char name[16];
    snprintf(name, sizeof name, "%d", idx);
    enn_context_options opt = {.device = name};
    enn_context *ctx = test_context_with(&opt);
    enn_capabilities c = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &c));
    cr_expect(test_name_matches(c.device_name, test_device()), "device %s is %s", name, c.device_name);
    test_context_finish(ctx);

    /* ENN_DEVICE stands in for options->device when that is NULL. */
    test_setenv("ENN_DEVICE", test_device());
    enn_context *env_ctx = NULL;
    enn_context_options none = {0};
    ENN_ASSERT_OK(enn_context_create(&none, &env_ctx));
    ENN_ASSERT_OK(enn_context_capabilities(env_ctx, &c));
    cr_expect(test_name_matches(c.device_name, test_device()), "ENN_DEVICE=%s gave %s", test_device(), c.device_name);
    cr_expect_eq(enn_context_validation_messages(env_ctx, NULL), 0);
    enn_context_destroy(env_ctx);

    /* A request that names no device: the message says where it came from; "-1" is a
     * name to look for, not index 2^64 - 1. */
    test_setenv("ENN_DEVICE", "999");
    cr_expect_eq(enn_context_create(&none, &env_ctx), ENN_ERROR_NO_DEVICE);
    cr_expect(strstr(enn_last_error(), "ENN_DEVICE=999: device index 999"), "%s", enn_last_error());
    test_setenv("ENN_DEVICE", "-1");
    cr_expect_eq(enn_context_create(&none, &env_ctx), ENN_ERROR_NO_DEVICE);
    cr_expect(strstr(enn_last_error(), "no usable Vulkan device matches \"-1\""), "%s", enn_last_error());
    enn_context_options bad = {.device = "no-such-device"};
    cr_expect_eq(enn_context_create(&bad, &env_ctx), ENN_ERROR_NO_DEVICE);
    cr_expect(strstr(enn_last_error(), "the device option=no-such-device"), "%s", enn_last_error());
    unsetenv("ENN_DEVICE");
}

/* ENN_VALIDATION=1 turns the layer on without the option: the misuse of
 * test_runtime_validation is counted. */
Test(runtime_context, validation_by_environment)
{
    test_setenv("ENN_VALIDATION", "1");
    enn_context_options opt = {.device = test_device()};
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    enn_vulkan_handles h = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &h));
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 256, .usage = 0,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer buf;
    if (vkCreateBuffer(h.device, &bi, NULL, &buf) == VK_SUCCESS) vkDestroyBuffer(h.device, buf, NULL);
    const char *first = NULL;
    cr_expect_geq(enn_context_validation_messages(ctx, &first), 1, "ENN_VALIDATION=1 did not turn validation on");
    cr_expect(strstr(first, "usage"), "first message: %s", first);
    enn_context_destroy(ctx);
}

/* 12 independent fills with at most 5 commands a submission: 3 submissions. */
static void expect_submits(enn_context *ctx, uint32_t want)
{
    enn_buffer *buf;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 12 * 256, &buf));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (uint32_t i = 0; i < 12; i++) ENN_ASSERT_OK(enn_record_fill(rec, buf, i * 256, 256, i));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    cr_expect_eq(enn_recorder_get_stats(rec).submits, want);
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 0);
    uint32_t words[12 * 64];
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, 0, words, sizeof words));
    for (uint32_t i = 0; i < 12 * 64; i++) cr_assert_eq(words[i], i / 64, "word %u", i);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, buf);
}

Test(runtime_context, dispatch_cap_by_option_and_environment)
{
    enn_context_options opt = {.max_dispatches_per_submit = 5};
    enn_context *ctx = test_context_with(&opt);
    expect_submits(ctx, 3);
    test_context_finish(ctx);
    test_setenv("ENN_MAX_DISPATCHES_PER_SUBMIT", "4");
    enn_context_options none = {0};
    ctx = test_context_with(&none);
    expect_submits(ctx, 3);
    test_context_finish(ctx);
    opt.max_dispatches_per_submit = 12; /* the option wins over the environment */
    ctx = test_context_with(&opt);
    expect_submits(ctx, 1);
    test_context_finish(ctx);
}

Test(runtime_context, dispatch_cap_out_of_range)
{
    enn_context_options opt = {.device = test_device(), .max_dispatches_per_submit = UINT32_MAX};
    enn_context *ctx = (enn_context *)1;
    enn_error_clear();
    cr_expect_eq(enn_context_create(&opt, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_null(ctx);
    cr_expect(strstr(enn_last_error(), "max_dispatches_per_submit"), "message: %s", enn_last_error());
    opt.max_dispatches_per_submit = 0;
    const char *bad[] = {"abc", "-3", "99999999999999999999", "70000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_setenv("ENN_MAX_DISPATCHES_PER_SUBMIT", bad[i]);
        enn_error_clear();
        cr_expect_eq(enn_context_create(&opt, &ctx), ENN_ERROR_INVALID_ARGUMENT, "ENN_MAX_DISPATCHES_PER_SUBMIT=%s",
                     bad[i]);
        cr_expect(strstr(enn_last_error(), "ENN_MAX_DISPATCHES_PER_SUBMIT"), "message: %s", enn_last_error());
        if (ctx) enn_context_destroy(ctx);
    }
}
