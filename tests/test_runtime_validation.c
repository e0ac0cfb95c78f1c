/* The validation check can fail: misusing Vulkan through the context's own VkDevice must
 * be reported by the layer and counted, both by the context and by the test harness.
 * Without this, "no validation messages" in every other test would prove nothing. */
#include <string.h>

#include <vulkan/vulkan.h>

#include "enn_vulkan.h"
#include "harness.h"

Test(runtime_validation, misuse_is_counted)
{
    enn_context *ctx = test_context();
    enn_vulkan_handles h = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &h));
    cr_assert_neq(h.device, VK_NULL_HANDLE);
    unsigned before = test_validation_count();
    cr_assert_eq(enn_context_validation_messages(ctx, NULL), 0, "a fresh context already has messages");

    /* usage 0 is invalid (VUID-VkBufferCreateInfo-usage-requiredbitmask); the size is
     * valid so that the driver itself is not asked to do anything odd. */
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 256, .usage = 0,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer buf = VK_NULL_HANDLE;
    VkResult r = vkCreateBuffer(h.device, &bi, NULL, &buf);
    if (r == VK_SUCCESS) vkDestroyBuffer(h.device, buf, NULL);

    const char *first = NULL;
    uint32_t n = enn_context_validation_messages(ctx, &first);
    cr_log_info("validation saw %u message(s); first: %s", n, first);
    cr_expect_geq(n, 1, "vkCreateBuffer with usage 0 was not reported by the validation layer");
    cr_expect(first && first[0], "no text for the first validation message");
    cr_expect_geq(test_validation_count() - before, 1, "the harness callback did not count the message");
    /* Not test_context_finish: that would (rightly) fail on the message provoked here. */
    enn_context_destroy(ctx);
}

/* Synchronization validation (turned on through VK_LAYER_ENABLES) sees a missing barrier:
 * the recorder is told a dispatch only reads a buffer that it in fact writes, so it puts
 * no barrier before the next dispatch, which reads that buffer. The recorder suites run
 * with the same switch, so a barrier the recorder wrongly leaves out fails them. */
#include "runtime_helpers.h"

Test(runtime_validation, sync_validation_sees_missing_barrier)
{
    test_sync_validation();
    enn_context *ctx = test_context();
    const uint32_t n = 256;
    enn_buffer *a, *b, *c;
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * 4, &a));
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * 4, &b));
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * 4, &c));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    unsigned before = test_validation_count();
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(a), ENN_IN(b), n, 1.0f, 0.0f)); /* writes b: a lie */
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(b), ENN_OUT(c), n, 1.0f, 0.0f));
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 0, "the lie should have left the barrier out");
    ENN_ASSERT_OK(enn_recorder_run(rec));
    unsigned seen = test_validation_count() - before;
    cr_log_info("synchronization validation reported %u message(s)", seen);
    cr_expect_geq(seen, 1, "a read-after-write hazard with no barrier was not reported");
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, a);
    enn_buffer_destroy(ctx, b);
    enn_buffer_destroy(ctx, c);
    enn_context_destroy(ctx);
}

/* GPU-assisted validation with ENN_EXACT_BINDINGS (the *_gpu_av suites' switches) sees a
 * kernel that writes past its tensor: y has 500 floats and the kernel writes 1000. The
 * tensors are sub-allocated from one memory block, so the stray writes land in memory
 * the test owns (the buffer made after y); without exact bindings the binding would span
 * the block and nothing would be reported. */
Test(runtime_validation, gpu_assisted_validation_sees_a_write_past_a_tensor)
{
    test_setenv("VK_LAYER_ENABLES", "VK_VALIDATION_FEATURE_ENABLE_GPU_ASSISTED_EXT");
    test_setenv("ENN_EXACT_BINDINGS", "1");
    enn_context *ctx = test_context();
    const uint32_t n = 1000;
    enn_buffer *x, *y, *after;
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * 4, &x));
    ENN_ASSERT_OK(enn_buffer_create(ctx, n / 2 * 4, &y));
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * 4, &after));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    unsigned before = test_validation_count();
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(x), ENN_OUT(y), n, 2.0f, 0.0f));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    unsigned seen = test_validation_count() - before;
    const char *first = NULL;
    enn_context_validation_messages(ctx, &first);
    cr_log_info("GPU-assisted validation reported %u message(s); first: %s", seen, first ? first : "");
    cr_expect_geq(seen, 1, "a write past a 500-float tensor was not reported");
    cr_expect(first && strstr(first, "out of bounds"), "%s", first ? first : "(no message)");
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, x);
    enn_buffer_destroy(ctx, y);
    enn_buffer_destroy(ctx, after);
    enn_context_destroy(ctx);
}

/* The loader's own notices are not validation findings: with VK_INSTANCE_LAYERS naming
 * the validation layer (a usual way to turn it on by hand), the loader warns that the
 * variable adds layers. A context with validation on counts no message for it, so a
 * clean `enn train` does not end in "1 validation message"; misuse is still counted. */
Test(runtime_validation, loader_notices_are_not_counted)
{
    test_setenv("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation");
    enn_context_options opt = {.device = test_device(), .validation = 1};
    enn_context *ctx;
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    const char *first = NULL;
    uint32_t n = enn_context_validation_messages(ctx, &first);
    cr_expect_eq(n, 0, "%u message(s), the first: %s", n, first ? first : "");
    enn_vulkan_handles h = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &h));
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 256, .usage = 0,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer buf = VK_NULL_HANDLE;
    if (vkCreateBuffer(h.device, &bi, NULL, &buf) == VK_SUCCESS) vkDestroyBuffer(h.device, buf, NULL);
    cr_expect_geq(enn_context_validation_messages(ctx, NULL), n + 1, "misuse was not counted");
    enn_context_destroy(ctx);
}
